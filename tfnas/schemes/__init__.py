"""Training schemes: which subnets a step trains, on what targets, with what state.

One file per scheme; each is a `Scheme` subclass plugged into the one
`tfnas.trainer.SupernetTrainer.train_step` (see `tfnas.schemes.base` for the contract).
Adding a scheme is adding its file and a row of `SCHEMES`; the trainer does not change.
"""

from __future__ import annotations

from tfnas import schedules
from tfnas import search_space as ss
from tfnas.schemes import cpt
from tfnas.schemes import kshot
from tfnas.schemes import rdnas
from tfnas.schemes import sse
from tfnas.schemes.base import SUPERNET_GROUP
from tfnas.schemes.base import TARGETS
from tfnas.schemes.base import Member
from tfnas.schemes.base import Scheme
from tfnas.schemes.cpt import CPTScheme
from tfnas.schemes.fewshot import FewShotScheme
from tfnas.schemes.kshot import KShotScheme
from tfnas.schemes.multipath import MultiPathScheme
from tfnas.schemes.rdnas import RDNASScheme
from tfnas.schemes.sandwich import SandwichScheme
from tfnas.schemes.sse import SSEScheme
from tfnas.schemes.uniform import UniformScheme

__all__ = [
    "SCHEMES",
    "SUPERNET_GROUP",
    "TARGETS",
    "CPTScheme",
    "FewShotScheme",
    "KShotScheme",
    "Member",
    "MultiPathScheme",
    "RDNASScheme",
    "SSEScheme",
    "SandwichScheme",
    "Scheme",
    "UniformScheme",
    "build_scheme",
]

SCHEMES = {
    cls.scheme_name: cls
    for cls in (
        SandwichScheme,
        UniformScheme,
        RDNASScheme,
        FewShotScheme,
        KShotScheme,
        MultiPathScheme,
        CPTScheme,
        SSEScheme,
    )
}


def build_scheme(config, steps_per_epoch=None) -> Scheme:
    """The scheme ``config.train.scheme`` with its arguments from the config.

    This is where config fields become scheme arguments (no config enters a scheme).
    ``steps_per_epoch``: the run's steps per epoch, for schemes whose weights follow the
    epoch (``rdnas``'s lambda); None: ``config.train.steps_per_epoch``.
    """
    name = config.train.scheme
    if name not in SCHEMES:
        raise ValueError(
            f"Unknown scheme {name!r}; expected one of {', '.join(sorted(SCHEMES))}. Set "
            "--config.train.scheme."
        )
    space = ss.get_space(config.space)
    dropout = config.supernet.dropout
    bounds = ss.BOUNDS_PRESETS[config.train.bounds]
    bounds = None if bounds == ss.FULL_BOUNDS else bounds
    # What every scheme takes: per-phase sampled spaces and the (transductive) code file.
    common = dict(
        phase_bounds=schedules.phase_bounds(config.train.phases, config.train.bounds),
        codes_file=config.train.codes_file,
    )
    if name == "sandwich":
        return SandwichScheme(
            space, config.seed, config.train.num_random_subnets, dropout, bounds=bounds,
            **common,
        )
    if name == "fewshot":
        return FewShotScheme(
            space,
            config.seed,
            config.train.num_random_subnets,
            dropout,
            bounds=bounds,
            lr_mode=config.fewshot.lr_mode,
            **common,
        )
    if name == "rdnas":
        return rdnas.scheme_from_config(
            config, space, config.seed, dropout, bounds, steps_per_epoch, **common
        )
    if name == "kshot":
        return kshot.scheme_from_config(
            config, space, config.seed, dropout, bounds, steps_per_epoch, **common
        )
    if name == "multipath":
        return MultiPathScheme(
            space, config.seed, config.train.num_paths, dropout, bounds=bounds, **common
        )
    if name == "cpt":
        section = config.train.cpt
        return CPTScheme(
            space, config.seed, bounds, **cpt.pool_arguments(section),
            sampled_weight=section.sampled_weight, pool_weight=section.pool_weight,
            dropout=dropout, **common,
        )
    if name == "sse":
        return sse.scheme_from_config(config, space, dropout, bounds, **common)
    return SCHEMES[name](space, config.seed, dropout, bounds=bounds, **common)


def build_group_optimizers(config, steps_per_epoch: int) -> dict:
    """The optimizers of the scheme's variable groups other than ``supernet``
    (`tfnas.trainer.SupernetTrainer.compile`'s ``group_optimizers``): the K-shot
    simplex-net's for ``kshot``, none for the other schemes."""
    return kshot.group_optimizers(config, steps_per_epoch)

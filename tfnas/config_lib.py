"""Experiment configs (`configs/<name>.py`): the shared defaults and their validation.

Every config file builds on `base_config`, changes what its experiment needs and returns the
ConfigDict; ``variant="tiny"`` goes through `make_tiny` (synthetic data of the dataset's shape,
a few steps) for tests and smoke runs::

    def get_config(variant=None):
        config = config_lib.base_config("fmnist", space="fmnist", dataset="fashion_mnist")
        config.train.epochs = 5
        return config_lib.finish(config, variant)

`validate_config` checks a (possibly command-line overridden) config before a stage runs:
each problem is a ValueError naming the field, the value received, what is expected and how
to fix it; a missing field, and a field the schema does not have (a typo in a config file),
are errors too. The schema, section by section -- each section is documented, field by
field, and checked by the module that owns it:

- top level: ``name`` (non-empty; names exports and reports), ``seed`` (int >= 0), ``space``
  (a `tfnas.search_space.SPACES` variant), and the sections below (checked here).
- ``data``: `tfnas.data.dataset_info` (defaults: `tfnas.data.default_data_config`); here,
  that it fits the space (input size, channels, classes).
- ``supernet``: `tfnas.supernet.validate_config`.
- ``train``: `tfnas.trainer.validate_config`; its ``train.monitor``:
  `tfnas.monitor.validate_config`.
- ``evaluate`` (with ``evaluate.recalibration``): `tfnas.evaluation.validate_config`.
- ``standalone``: `tfnas.standalone.validate_config`.
- ``rank``: `tfnas.ranking.validate_config`.
- ``export``: `tfnas.export.validate_config`.
- ``search``: `tfnas.search.validate_config`.
- ``proxies``: `tfnas.proxies.validate_config`.

The defaults of every field are in `base_config`; every field exists in every config, so
library and stage code read ``config.section.field`` without fallbacks.

This module imports neither TensorFlow nor the search space at import time: `validate_config`
imports the modules that own the sections when it runs.
"""

from __future__ import annotations

import importlib
from typing import Any

import ml_collections

__all__ = [
    "FIELDS",
    "SPACE_DATASETS",
    "VARIANTS",
    "base_config",
    "finish",
    "make_tiny",
    "validate_config",
]

# The names each registry accepts (SCHEMES, ...), still importable from here for existing
# callers. They are the owning modules' own names, read when first asked for: those modules
# import TensorFlow, and this one must not at import time (so they are not in __all__).
_REGISTRIES = {
    "SCHEMES": ("tfnas.schemes", "SCHEMES"),
    "STRATEGIES": ("tfnas.distribute", "STRATEGIES"),
    "ROUTINGS": ("tfnas.supernet", "ROUTINGS"),
    "RECALIBRATION_MODES": ("tfnas.evaluation", "RECALIBRATION_MODES"),
    "SPLITS": ("tfnas.data", "SPLITS"),
}


def __getattr__(name: str) -> Any:
    if name in _REGISTRIES:
        module, attribute = _REGISTRIES[name]
        return tuple(getattr(importlib.import_module(module), attribute))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Config variants every configs/<name>.py accepts.
VARIANTS = (None, "tiny")

# The dataset each search-space variant is trained on by default.
SPACE_DATASETS = {
    "fmnist": "fashion_mnist",
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "imagenet": "imagenet2012",
}


def _data_config(dataset: str) -> ml_collections.ConfigDict:
    """`tfnas.data.default_data_config`, imported here so that configs load without TF."""
    from tfnas import data as data_lib  # imports TensorFlow

    return data_lib.default_data_config(dataset)


def base_config(
    name: str = "fmnist", space: str = "fmnist", dataset: str | None = None
) -> ml_collections.ConfigDict:
    """The shared defaults: every field of the schema, sized for Fashion-MNIST.

    What each field means is documented by its section's validator (see the module
    docstring).

    Args:
      name: the experiment's name (names exports and reports).
      space: search-space variant.
      dataset: the `data.dataset`; by default the one of `SPACE_DATASETS` for ``space``.

    Returns:
      A new, unlocked ConfigDict; the config files change what their experiment needs.
    """
    dataset = dataset or SPACE_DATASETS.get(space, "fashion_mnist")
    config = ml_collections.ConfigDict()
    config.name = name
    config.seed = 0
    config.space = space
    config.data = _data_config(dataset)

    config.supernet = ml_collections.ConfigDict(
        dict(
            num_copies=1,
            routing="shared",
            num_kernels=1,
            simplex_hidden=64,
            simplex_channel_branch=True,
            # Keras convention (1 - torch momentum): 1.0 = running statistics stay as they
            # are during supernet training; evaluation recalibrates them per subnet.
            bn_momentum=1.0,
            bn_epsilon=1e-5,
            # BigNAS §3.2: each residual block starts as its shortcut, which keeps the
            # sandwich's big and small subnets stable early in training.
            zero_init_residual=True,
            dropout=0.0,
            # Routing as data (tfnas.supernet.location_table): "" = the routing's own table,
            # SSE's buckets for depth34_table; the stem keeps one copy unless split_stem.
            split_stem=False,
            depth34_buckets="",
            routing_table="",
            # tfnas.transfer.init_from: a .keras supernet (or a monitor dir) to start from
            # when the run has no checkpoint; init_parent "" = derived parent map.
            init_from="",
            init_parent="",
        )
    )
    config.train = ml_collections.ConfigDict(
        dict(
            scheme="sandwich",
            batch_size=128,
            epochs=5,
            steps_per_epoch=0,
            learning_rate=0.1,
            momentum=0.9,
            nesterov=False,
            weight_decay=5e-5,
            warmup_epochs=1.0,
            label_smoothing=0.0,
            num_random_subnets=2,
            # tfnas.search_space.BOUNDS_PRESETS: the space the scheme samples.
            bounds="full",
            strategy="default",
            log_every_steps=50,
            checkpoint_every_epochs=1,
            verbose=2,
            # tfnas.distribute.configure_determinism: bitwise-reproducible reruns, slower.
            deterministic=False,
            # tfnas.optimizers.LazySGD: copies no member touched stay as they are.
            lazy_updates=True,
            # tfnas.precision.POLICIES: float32, mixed_bfloat16, mixed_float16 (loss-scaled),
            # float64 (reference runs).
            precision="float32",
            # tfnas.schedules: phase boundaries (optimizer steps; () = one phase), one peak per
            # phase (x learning_rate; the cosine restarts at each boundary), per-phase warm-ups
            # (() = train.warmup_epochs before phase 0 only), momentum reset at boundaries.
            # Per-phase sampled spaces (progressive shrinking): () = train.bounds throughout.
            phases=dict(boundaries=(), peaks=(1.0,), warmup_steps=(), reset_momentum=False,
                        width_hi=(), depth_lo=()),
            # tfnas.monitor.RankingMonitor: the ground truth selects a checkpoint and is
            # logged; it never enters a loss.
            monitor=dict(enabled=False, ground_truth="", every_epochs=1, max_archs=0),
        )
    )
    # The scheme sections' defaults live with their validators (imported now: TF).
    from tfnas import grappler
    from tfnas.schemes import cpt
    from tfnas.schemes import kshot
    from tfnas.schemes import rdnas
    from tfnas.schemes import sse

    # tfnas.schemes.rdnas: the pairwise ranking term of train.scheme="rdnas".
    config.train.rdnas = dict(rdnas.DEFAULTS)
    # tfnas.schemes.kshot: warm-up, alternation, r_c and the simplex-net's optimizer.
    config.train.kshot = dict(kshot.DEFAULTS)
    # tfnas.schemes.multipath: sampled subnets per step (APS).
    config.train.num_paths = 4
    # tfnas.schemes.cpt / sse: constraint pools and loss weights (seed paper 001).
    config.train.cpt = dict(cpt.DEFAULTS)
    config.train.sse = dict(sse.DEFAULTS)
    # tfnas.teacher: the frozen teacher of external_teacher targets ("" = none).
    config.train.teacher = ""
    # Off by default: drawing the trained archs from a code file is transductive when the
    # file holds the codes that will be scored (SCHEMES.md §3.8).
    config.train.codes_file = ""
    # tfnas.grappler: graph optimization options of the process (option -> bool).
    # None is TensorFlow's default: a typed placeholder, so the command line can set it.
    config.train.grappler = {
        name: ml_collections.config_dict.placeholder(bool) if value is None else value
        for name, value in grappler.DEFAULTS.items()
    }
    config.evaluate = ml_collections.ConfigDict(
        dict(
            codes="",
            supernet="",
            split="holdout",
            batch_size=500,
            num_batches=0,
            log_every=10,
            recalibration=dict(
                split="train",
                batch_size=128,
                num_batches=20,
                augment=False,
                mode="cumulative",
                ema_momentum=0.9,
            ),
        )
    )
    config.standalone = ml_collections.ConfigDict(
        dict(
            seed=0,
            train_subset=0,
            split="test",
            batch_size=128,
            eval_batch_size=500,
            epochs=5,
            warmup_epochs=1.0,
            learning_rate=0.1,
            momentum=0.9,
            nesterov=False,
            weight_decay=5e-5,
            dropout=0.0,
            zero_init_residual=False,
        )
    )
    config.export = ml_collections.ConfigDict(
        dict(
            root="saved_models",
            run="",
            overwrite=False,
            supernet="",
            allow_untrained=False,
            codes="",
            top_k=5,
            recalibrate=True,
        )
    )
    # The rank stage's report (tfnas.stages.rank): top-k specs (ints absolute, floats in
    # (0, 1) fractions), bootstrap resamples per CI and their seed, and whether scored codes
    # without ground truth are ignored (else an error).
    config.rank = ml_collections.ConfigDict(
        dict(ks=(5, 10, 0.1, 0.25, 0.5), bootstrap=1000, seed=0, drop_unmatched_pred=False)
    )
    # The search stage (tfnas.search.validate_config): NSGA-II, seed paper 004 §3's 50 x 20.
    config.search = ml_collections.ConfigDict(
        dict(
            supernet="",
            population=50,
            generations=20,
            selection="nsga2",
            num_parents=20,
            crossover_prob=0.9,
            mutation_prob=0.1,
            objective="flops",
            budget=0.0,
            bounds="",
            seed=0,
        )
    )
    # Few-shot by group split (tfnas.stages.fewshot; tfnas.schemes.fewshot.validate_config):
    # G = 2..max_copies in turn, each from the previous G's best-tau (or final) supernet,
    # epochs and base learning rate per G as the authors' code (SCHEMES.md §2.4), no warm-up.
    config.fewshot = ml_collections.ConfigDict(
        dict(
            max_copies=7,
            epochs=(20,),
            learning_rate=(0.001, 0.002, 0.001, 0.001, 0.001, 0.001),
            lr_mode="code",
            init_from="",
            select=0,
        )
    )
    # Zero-cost proxies of the proxies stage (tfnas.proxies.validate_config).
    config.proxies = ml_collections.ConfigDict(
        dict(
            names=("flops", "params", "grad_norm", "snip", "grasp", "synflow", "naswot", "zen"),
            batch_size=64,
            split="train",
            seed=0,
            zen_repeats=4,
            zen_gamma=0.01,
            log_every=10,
        )
    )
    return config


def make_tiny(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Turns ``config`` into its ``tiny`` variant, in place: tests and smoke runs.

    Synthetic data with the shape and classes of the config's dataset (so the same space
    applies, and nothing is read from disk), batches of 16, one epoch of two steps, small
    evaluation and recalibration sets, a short from-scratch recipe.
    """
    data = config.data
    size = int(data.image_size)
    channels, num_classes = _dataset_channels_classes(data.dataset)
    tiny = _data_config("synthetic")
    tiny.image_size = size
    tiny.holdout_size = 32
    tiny.synthetic.image_shape = (size, size, channels)
    tiny.synthetic.num_classes = num_classes
    tiny.synthetic.num_train = 96
    tiny.synthetic.num_test = 32
    config.data = tiny

    config.name = f"{config.name}_tiny"
    config.train.batch_size = 16
    config.train.epochs = 1
    config.train.steps_per_epoch = 2
    config.train.warmup_epochs = 0.0
    phases = config.train.phases
    if len(phases.boundaries):
        # Keep every phase, one step each: the same trace and tables, on a 2+ step run.
        count = len(phases.boundaries)
        config.train.steps_per_epoch = count + 1
        phases.boundaries = tuple(range(1, count + 1))
        phases.warmup_steps = ()
    config.train.log_every_steps = 1
    config.train.verbose = 0
    config.evaluate.batch_size = 16
    config.evaluate.num_batches = 2
    config.evaluate.log_every = 1
    config.evaluate.recalibration.batch_size = 16
    config.evaluate.recalibration.num_batches = 2
    config.standalone.train_subset = 32
    config.standalone.batch_size = 16
    config.standalone.eval_batch_size = 16
    config.standalone.epochs = 1
    config.standalone.warmup_epochs = 0.0
    return config


def finish(
    config: ml_collections.ConfigDict, variant: str | None, own: tuple[str, ...] = ()
) -> ml_collections.ConfigDict:
    """Applies ``variant`` (None or ``"tiny"``) to a config file's config and returns it.

    ``own``: the variants the config file defines and has applied itself (e.g. APS's
    ``"v1"``, ``--config=configs/fmnist_aps.py:v1``); they are accepted here.
    """
    if variant not in VARIANTS + tuple(own):
        raise ValueError(
            f"unknown config variant {variant!r} of config {config.name!r}: expected one of "
            f"{', '.join(repr(v) for v in VARIANTS + tuple(own))}; pass e.g. "
            "--config=configs/fmnist.py:tiny or no ':variant' for the full config"
        )
    if variant == "tiny":
        make_tiny(config)
    return config


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

# The top level of the schema: three fields and the sections.
FIELDS = (
    "name",
    "seed",
    "space",
    "data",
    "supernet",
    "train",
    "evaluate",
    "standalone",
    "rank",
    "export",
    "search",
    "proxies",
    "fewshot",
)


def _dataset_channels_classes(dataset: str) -> tuple[int, int]:
    """(image channels, classes) of a dataset, from `tfnas.data.DATASETS`."""
    from tfnas import data as data_lib  # imports TensorFlow

    spec = data_lib.DATASETS[dataset.split("/", 1)[0]]
    return spec.source_shape[2], spec.num_classes


def _check_space(fields) -> Any:
    """The `SearchSpace` of ``config.space``."""
    from tfnas import search_space as ss

    name = fields["space"]
    if not isinstance(name, str) or name not in ss.SPACES:
        raise fields.fail(
            "space",
            name,
            f"one of the search-space variants {', '.join(sorted(ss.SPACES))}",
            "set --config.space=NAME (and the matching data.dataset and data.image_size)",
        )
    return ss.get_space(name)


def _check_data(data: Any, space: Any) -> None:
    """``data`` is a valid data section (`tfnas.data.dataset_info`) that fits ``space``."""
    from tfnas import config_checks
    from tfnas import data as data_lib  # imports TensorFlow

    try:
        info = data_lib.dataset_info(data)
    except ValueError as err:
        raise ValueError(f"invalid config.data section: {err}") from None
    image_size = data["image_size"]
    if image_size not in space.resolutions:
        sizes = ", ".join(str(r) for r in space.resolutions)
        raise config_checks.fail(
            "data.image_size",
            image_size,
            f"one of the input resolutions of the {space.name!r} space ({sizes})",
            f"set --config.data.image_size={space.resolutions[0]}, or pick a --config.space "
            f"whose resolutions include {image_size}",
        )
    channels = info["image_shape"][2]
    if channels != space.in_channels or info["num_classes"] != space.num_classes:
        fitting = [
            name
            for name, spec in data_lib.DATASETS.items()
            if name != "synthetic"
            and spec.source_shape[2] == space.in_channels
            and spec.num_classes == space.num_classes
        ]
        if fitting:
            fix = f"set --config.data.dataset to {' or '.join(fitting)}"
        else:
            fix = "pick another --config.space"
        raise config_checks.fail(
            "data.dataset",
            data["dataset"],
            f"a dataset with {space.in_channels}-channel images and {space.num_classes} "
            f"classes for the {space.name!r} space (this one has {channels} and "
            f"{info['num_classes']})",
            f"{fix} (with synthetic data, set --config.data.synthetic.image_shape and "
            "num_classes), or use the configs/ file of that dataset",
        )


def validate_config(config: Any) -> Any:
    """Checks every field of ``config``; returns ``config``.

    Checks the top level here and each section with the validator of the module that owns
    it (see the module docstring), passing what a section is cross-checked against
    explicitly (e.g. ``data.holdout_size`` for the splits).

    Raises:
      ValueError: the first problem found, naming the field (``config.train.batch_size``),
        the value received, what is expected and how to fix it.
    """
    # The owners of the sections; they import TensorFlow, so only now.
    from tfnas import config_checks
    from tfnas import evaluation
    from tfnas import export
    from tfnas import monitor
    from tfnas import proxies
    from tfnas import ranking
    from tfnas import search
    from tfnas import standalone
    from tfnas import supernet
    from tfnas import trainer
    from tfnas.schemes import fewshot

    fields = config_checks.Section(config, "", FIELDS, owner="tfnas.config_lib")
    fields.string("name", allow_empty=False)
    fields.integer("seed", 0)
    space = _check_space(fields)
    _check_data(config["data"], space)
    holdout_size = int(config["data"]["holdout_size"])

    supernet.validate_config(config["supernet"])
    trainer.validate_config(config["train"])
    monitor.validate_config(config["train"]["monitor"])
    evaluation.validate_config(config["evaluate"], holdout_size=holdout_size)
    standalone.validate_config(config["standalone"], holdout_size=holdout_size)
    ranking.validate_config(config["rank"])
    export.validate_config(config["export"])
    search.validate_config(config["search"])
    proxies.validate_config(config["proxies"], holdout_size=holdout_size)
    fewshot.validate_config(config["fewshot"])
    return config

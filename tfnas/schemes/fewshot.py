"""Few-shot by group split (seed paper 000 §2.2): the sandwich rule with per-group LRs.

Each step is the sandwich of Algorithm 1 (`SandwichScheme`): every member is routed to its
group by the supernet (``supernet.routing="stage_width_nested"``, ``num_copies`` = G). What
this scheme adds are per-group learning rates that follow how often the scheme's sampler
draws each group ("different network modules are assigned different learning rates
according to their probability of being sampled", seed paper 000 §3.1), as multipliers of
each weight copy's gradient (`tfnas.schemes.Scheme.lr_multipliers`; with SGD this is a
per-group learning rate).

The frequency of copy j of a location is the probability that the random member's routing
key (the location's out width digit, uniform on 1..``digit_hi``) routes to j, computed in
NumPy from the supernet's routing table (`sampling_frequencies`). Like the authors' code
(SCHEMES.md §2.4), the two deterministic visits of the sandwich (largest, smallest) are not
counted. Unlike it, the ratio is the sampling frequency, not the number of distinct channel
values (stage 2 at G=3 on ``imagenet``: the rest group is 5 of 7 digits, so 5:1, not 4:1).

``lr_mode`` picks the direction (SCHEMES.md §2.4, the paper and the code disagree):

- ``code`` (default): the authors' code divides the multi-valued rest group; here every copy
  gets ``f_min / f_j``: the rarest copies of a location keep the base learning rate, a copy
  drawn n times as often gets 1/n of it. Default because (1) the code produced the numbers
  of seed paper 000 Table 3, and SCHEMES.md §2.8 says to trust it; (2) no multiplier
  exceeds 1, so no copy ever trains with a learning rate above the configured one, which
  the fine-tuning rates (0.001/0.002) were tuned for;
- ``paper``: Table 2's larger learning rate for the rarely-sampled singletons: ``f_max /
  f_j``: the most-drawn copy keeps the base rate, a copy drawn n times less gets n times it
  (Table 2's G=2 row: 2x, 5x, 6x);
- ``none``: every multiplier 1 (the ablation).

The two directions have the same ratio between copies of a location; they differ in which
copy keeps the base rate. A copy the sampler never draws (a bounded space) keeps 1.
"""

from __future__ import annotations

import numpy as np

from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas.schemes.sandwich import SandwichScheme

LR_MODES = ("code", "paper", "none")


def key_digit_bounds(bounds: ss.Bounds | None) -> tuple[int, ...]:
    """The largest routing-key digit the sampler draws at each location (stem, stages 1-4,
    classifier): the stem and stage 1 read the stem digit (``digit_hi[0]``), stages 2-4
    their out digit (``digit_hi[s]``, `tfnas.sampling`), the classifier stage 4's."""
    hi = (ss.BOUNDS_PRESETS["full"] if bounds is None else bounds).digit_hi
    return (hi[0], hi[0], hi[2], hi[3], hi[4], hi[4])


def sampling_frequencies(table, bounds: ss.Bounds | None = None) -> list[np.ndarray]:
    """Per location, the probability that a uniformly sampled arch routes to each copy.

    Args:
      table: the supernet's width-keyed routing table, int [6, 7] (`Supernet.location_table`).
      bounds: the sampler's bounds (None: the full space).

    Returns:
      6 float64 arrays, one per location, of one probability per copy (summing to 1).
    """
    table = np.asarray(table)
    if table.shape[1] != supernet_lib.NUM_KEYS["width"]:
        raise ValueError(
            f"per-group learning rates need a routing keyed by the out width digit "
            f"(stage_width_nested), received a table with {table.shape[1]} keys per location; "
            "set --config.supernet.routing=stage_width_nested or "
            "--config.fewshot.lr_mode=none"
        )
    out = []
    for row, hi in zip(table, key_digit_bounds(bounds)):
        drawn = row[:hi]  # digits 1..hi, each with probability 1/hi
        out.append(np.bincount(drawn, minlength=int(row.max()) + 1) / float(hi))
    return out


def multipliers_from_frequencies(frequencies, mode: str) -> list[list[float]]:
    """The per-copy learning-rate multipliers of ``mode`` (`LR_MODES`) for per-location
    sampling frequencies (see the module docstring)."""
    if mode not in LR_MODES:
        raise ValueError(
            f"lr_mode must be one of {', '.join(LR_MODES)}, received {mode!r}; set "
            "--config.fewshot.lr_mode"
        )
    out = []
    for f in frequencies:
        f = np.asarray(f, np.float64)
        drawn = f > 0
        m = np.ones_like(f)
        if mode != "none" and drawn.any():
            ref = f[drawn].min() if mode == "code" else f[drawn].max()
            m[drawn] = ref / f[drawn]
        out.append([float(x) for x in m])
    return out


class FewShotScheme(SandwichScheme):
    """The sandwich rule with learning rates per weight copy that follow sampling frequency.

    Args:
      space, seed, num_random, dropout, bounds: see `SandwichScheme`.
      lr_mode: ``code`` (default), ``paper`` or ``none`` (module docstring).
    """

    scheme_name = "fewshot"

    def __init__(
        self, space, seed=0, num_random=2, dropout=0.0, bounds=None, lr_mode="code", **kwargs
    ):
        # Layer.get_config records trainable=False, which Scheme.__init__ sets itself (as in
        # tfnas.schemes.rdnas): drop it so that from_config(get_config()) round-trips.
        kwargs.pop("trainable", None)
        super().__init__(space, seed, num_random, dropout, bounds=bounds, **kwargs)
        multipliers_from_frequencies([], lr_mode)  # checks the mode
        self.lr_mode = lr_mode

    def lr_multipliers(self, supernet):
        if all(c == 1 for c in supernet.copy_counts) or self.lr_mode == "none":
            return None
        freq = sampling_frequencies(supernet.location_table, self.bounds)
        return multipliers_from_frequencies(freq, self.lr_mode)

    def get_config(self):
        config = super().get_config()
        config.update(lr_mode=self.lr_mode)
        return config


# -------------------------------------------------------------------- the config section

CONFIG_FIELDS = ("max_copies", "epochs", "learning_rate", "lr_mode", "init_from", "select")


def per_step(values, max_copies: int) -> list:
    """``values`` (one for every G, or one per G = 2..max_copies) as one value per G."""
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    return values * (max_copies - 1) if len(values) == 1 else values


def validate_config(section) -> None:
    """Checks the ``fewshot`` section (the ``fewshot`` stage, `tfnas.stages.fewshot`).

    Fields:

    - ``max_copies``: G_max, the last group count (int in 2..7); the stage trains G = 2, 3,
      ..., G_max in turn (seed paper 000 §2.2).
    - ``epochs``: epochs of each G: one int (every G) or one per G = 2..G_max (paper: 20).
    - ``learning_rate``: the base (peak) learning rate of each G, cosine to 0 without
      warm-up: one number or one per G (the authors' code: 0.001, 0.002 at G=3;
      SCHEMES.md §2.4).
    - ``lr_mode``: per-group learning rates, `LR_MODES` (`FewShotScheme`).
    - ``init_from``: "" (the workdir's ``oneshot`` stage: ``monitor/best_tau.keras`` when
      its monitor ran, else its ``supernet.keras``) or a ``.keras`` one-shot supernet.
    - ``select``: the G whose supernet later stages (evaluate, search, export) use: 0 picks
      the G with the best Kendall tau of the ranking monitor, or G_max without it.

    Raises:
      ValueError: naming ``config.fewshot.<field>``, the value, what is expected and how to
        fix it; also for a missing or unknown field.
    """
    from tfnas import config_checks

    fields = config_checks.Section(
        section, "fewshot", CONFIG_FIELDS, owner="tfnas.schemes.fewshot.validate_config"
    )
    g_max = fields.integer("max_copies", 2, supernet_lib.NUM_KEYS["width"])
    for name, kind in (("epochs", int), ("learning_rate", (int, float))):
        values = fields[name]
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        ok = len(values) in (1, g_max - 1) and all(
            isinstance(v, kind) and not isinstance(v, bool) and v > 0 for v in values
        )
        if not ok:
            raise fields.fail(
                name,
                fields[name],
                f"one positive {'int' if kind is int else 'number'} for every G, or one per "
                f"G = 2..{g_max} ({g_max - 1} values)",
                f"set --config.fewshot.{name}",
            )
    fields.choice("lr_mode", LR_MODES)
    fields.string("init_from")
    select = fields.integer("select", 0, g_max)
    if select == 1:
        raise fields.fail(
            "select", select, f"0 (automatic) or a G in 2..{g_max}", "set --config.fewshot.select"
        )

"""Training phases: the phase of a step, per-phase tables, and a restarted cosine schedule.

A run is cut into phases by ``boundaries``, optimizer steps in increasing order: phase 0
runs steps ``0 .. boundaries[0] - 1``, phase ``p`` starts at step ``boundaries[p - 1]``,
and the last phase ends with the run. Everything a phase changes is a tensor function of
the step, so one trace of the train step serves every phase (SCHEMES.md §7.1 E)::

    boundaries = (500, 1500)                                    # 3 phases
    phase = schedules.phase_of(optimizer.iterations, boundaries)     # int32 scalar
    depth_lo = schedules.phase_table([(4, 4, 6, 2), (3, 3, 4, 2), (2, 2, 2, 2)], boundaries)
    lo = tf.gather(depth_lo, phase)        # or schedules.phase_value(step, boundaries, table)

    lr = schedules.PhaseCosine(peaks=(0.008, 0.016, 0.032), total_steps=3000,
                               boundaries=boundaries)          # cosine restarted per phase
    optimizer = keras.optimizers.SGD(learning_rate=lr, momentum=0.9)

The 2nd-place CVPR22 supernet (APS, SCHEMES.md §3.4) is the model: six phases with their
own sampling bounds and peak learning rate, a cosine decay restarted at every phase, no
warm-up, and a new optimizer (zero momentum) per phase -- for that last part see
`tfnas.callbacks.MomentumReset`, which zeroes the momentum at the boundaries eagerly (an
in-graph reset would be a ``tf.cond`` around mirrored-variable assignments, which fails
under MirroredStrategy: TF_NOTES.md).

Config (``train.phases``, checked by `validate_config`; `learning_rate_from_config` maps it
and the rest of ``train`` to a `PhaseCosine`):

- ``boundaries``: optimizer steps where a new phase starts (strictly increasing ints >= 1,
  each before the last step of the run); ``()``: one phase, the whole run.
- ``peaks``: one peak learning rate per phase, as a multiple of ``train.learning_rate``
  (exactly ``len(boundaries) + 1`` of them, each > 0).
- ``warmup_steps``: ``()``: phase 0 warms up for ``train.warmup_epochs``, later phases not;
  or one int >= 0 per phase (then ``train.warmup_epochs`` must be 0), a linear warm-up from
  0 to the phase's peak, shorter than its phase.
- ``reset_momentum``: zero the optimizers' momentum at every boundary (R2 builds a new
  optimizer per phase, `tfnas.callbacks.MomentumReset`).
- ``width_hi`` / ``depth_lo``: ``()`` (every phase samples ``train.bounds``) or one row per
  phase of the largest width digit / smallest depth of stages 1-4: the sampled space of
  each phase, progressive shrinking (`phase_bounds`; the last phase must be ``train.bounds``).

With no boundaries, ``peaks=(1.0,)`` and no ``warmup_steps``, the schedule equals
`tfnas.optimizers.warmup_cosine` of the same ``train`` section.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import tensorflow as tf

from tfnas import config_checks
from tfnas import search_space as ss

__all__ = [
    "CONFIG_FIELDS",
    "PhaseCosine",
    "check_boundaries",
    "learning_rate_from_config",
    "phase_of",
    "phase_table",
    "phase_value",
    "validate_config",
]


def check_boundaries(boundaries, what: str = "boundaries") -> tuple[int, ...]:
    """``boundaries`` as a tuple of ints, or a ValueError: strictly increasing ints >= 1.

    Args:
      boundaries: a sequence of optimizer steps (empty: one phase).
      what: how to name them in the error (e.g. ``"config.train.phases.boundaries"``).
    """
    if isinstance(boundaries, str | bytes) or not isinstance(boundaries, Sequence):
        raise ValueError(
            f"{what}={boundaries!r} is invalid: expected a tuple of optimizer steps (ints "
            ">= 1, strictly increasing), e.g. (500, 1500) for 3 phases, or () for one phase"
        )
    values = tuple(boundaries)
    ok = all(config_checks.is_int(b) and b >= 1 for b in values)
    ok = ok and all(a < b for a, b in zip(values, values[1:]))
    if not ok:
        raise ValueError(
            f"{what}={boundaries!r} is invalid: expected optimizer steps that are ints >= 1 "
            "and strictly increasing (phase p starts at boundaries[p - 1]); sort them, drop "
            "duplicates and 0 (phase 0 always starts at step 0)"
        )
    return tuple(int(b) for b in values)


def phase_of(step, boundaries: Sequence[int]) -> tf.Tensor:
    """int32 scalar: the phase of optimizer step ``step`` (a tensor or int).

    ``tf.searchsorted(boundaries, step, side="right")``: step ``boundaries[p - 1]`` is the
    first step of phase ``p``. ``boundaries`` is a Python sequence from the config (a
    constant of the graph), so the phase changes without retracing.
    """
    boundaries = check_boundaries(boundaries)
    step = tf.cast(tf.convert_to_tensor(step), tf.int64)
    if not boundaries:
        return tf.zeros([], tf.int32)
    sorted_steps = tf.constant(boundaries, tf.int64)
    return tf.searchsorted(sorted_steps, step[None], side="right", out_type=tf.int32)[0]


def phase_table(values, boundaries: Sequence[int], dtype=None) -> tf.Tensor:
    """A constant tensor with one row per phase: ``values[p]`` is phase ``p``'s value.

    Args:
      values: ``len(boundaries) + 1`` scalars, or equal-shaped rows (e.g. per-stage depth
        bounds ``(d1, d2, d3, d4)`` per phase).
      boundaries: the phase boundaries (`phase_of`); only their count is used here.
      dtype: the tensor's dtype (default: inferred, int32 for ints, float32 for floats).

    Raises:
      ValueError: the number of rows is not the number of phases.
    """
    boundaries = check_boundaries(boundaries)
    rows = list(values)
    if len(rows) != len(boundaries) + 1:
        raise ValueError(
            f"a per-phase table needs one row per phase, len(boundaries) + 1 = "
            f"{len(boundaries) + 1} for boundaries {boundaries}; received {len(rows)} rows "
            f"({values!r}); give one value per phase"
        )
    return tf.constant(rows, dtype=dtype)


def phase_value(step, boundaries: Sequence[int], table) -> tf.Tensor:
    """``table[phase_of(step, boundaries)]``: the value of a per-phase table at a step."""
    return tf.gather(tf.convert_to_tensor(table), phase_of(step, boundaries))


@keras.saving.register_keras_serializable(package="tfnas")
class PhaseCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Cosine decay restarted at every phase, with a peak and a linear warm-up per phase.

    Phase ``p`` runs from step ``start_p`` (0, then ``boundaries[p - 1]``) to ``end_p``
    (``boundaries[p]``, or ``total_steps`` for the last), ``L_p = end_p - start_p`` steps.
    At local step ``s = step - start_p`` the learning rate is

    - ``peaks[p] * s / W_p`` while ``s < W_p = warmup_steps[p]`` (linear warm-up from 0);
    - else ``peaks[p] * (alpha + (1 - alpha) * (1 + cos(pi * (s - W_p) / (L_p - W_p))) / 2)``,

    so each phase ends at ``alpha * peaks[p]`` (0 by default). Past ``total_steps`` it stays
    at the last phase's end value. One phase with a warm-up is `tfnas.optimizers.warmup_cosine`
    (Keras's ``CosineDecay`` with ``warmup_target``). The per-phase restart and peaks are
    those of the 2nd-place CVPR22 APS phases (SCHEMES.md §3.4: restarted cosine, flag LRs
    0.001/0.002/0.004 per phase, no warm-up); their per-epoch stepping is not copied (this
    decays per step and reaches ``alpha * peak``).

    Args:
      peaks: one peak learning rate per phase (floats > 0).
      total_steps: the step where the last phase ends (> the last boundary).
      boundaries: the optimizer steps where phases 1, 2, ... start (`phase_of`).
      warmup_steps: one warm-up length per phase (ints >= 0, shorter than the phase);
        default none.
      alpha: the fraction of its peak each phase decays to, in [0, 1].
      name: name scope of the ops.
    """

    def __init__(
        self,
        peaks,
        total_steps,
        boundaries=(),
        warmup_steps=None,
        alpha=0.0,
        name="PhaseCosine",
    ):
        super().__init__()
        boundaries = check_boundaries(boundaries, "PhaseCosine boundaries")
        num_phases = len(boundaries) + 1
        peaks = tuple(peaks)
        if len(peaks) != num_phases or not all(
            config_checks.is_number(p) and p > 0 for p in peaks
        ):
            raise ValueError(
                f"PhaseCosine peaks={peaks!r} is invalid: expected {num_phases} learning "
                f"rates > 0, one per phase of boundaries={boundaries}"
            )
        if not config_checks.is_int(total_steps) or total_steps <= (
            boundaries[-1] if boundaries else 0
        ):
            raise ValueError(
                f"PhaseCosine total_steps={total_steps!r} is invalid: expected an int greater "
                f"than the last boundary ({boundaries[-1] if boundaries else 0}); every phase "
                "needs at least one step"
            )
        warmup_steps = tuple(warmup_steps) if warmup_steps is not None else (0,) * num_phases
        starts = (0, *boundaries)
        ends = (*boundaries, int(total_steps))
        lengths = tuple(e - s for s, e in zip(starts, ends))
        if len(warmup_steps) != num_phases or not all(
            config_checks.is_int(w) and 0 <= w < n for w, n in zip(warmup_steps, lengths)
        ):
            raise ValueError(
                f"PhaseCosine warmup_steps={warmup_steps!r} is invalid: expected {num_phases} "
                f"ints >= 0, each shorter than its phase (phase lengths {lengths})"
            )
        if not config_checks.is_number(alpha) or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"PhaseCosine alpha={alpha!r} is invalid: expected a number in [0, 1]")
        self.peaks = tuple(float(p) for p in peaks)
        self.total_steps = int(total_steps)
        self.boundaries = boundaries
        self.warmup_steps = tuple(int(w) for w in warmup_steps)
        self.alpha = float(alpha)
        self.name = name
        self._starts = starts
        self._lengths = lengths

    @property
    def num_phases(self) -> int:
        return len(self.boundaries) + 1

    def __call__(self, step):
        with tf.name_scope(self.name):
            phase = phase_of(step, self.boundaries)
            dtype = tf.float32

            def at(values):
                return tf.gather(tf.constant(values, dtype), phase)

            peak, start, length, warmup = (
                at(self.peaks),
                at(self._starts),
                at(self._lengths),
                at(self.warmup_steps),
            )
            # Local step, clamped at the phase's end (only the last phase gets past it).
            s = tf.minimum(tf.cast(step, dtype) - start, length)

            # The same operations, in the same order and under the same tf.cond, as Keras's
            # CosineDecay, so that one phase reproduces `tfnas.optimizers.warmup_cosine` to
            # the last bit in a graph too (a tf.where, or other orders, let grappler
            # rewrite the arithmetic: 1-ulp differences). The cond holds no variable
            # assignment, so it is safe under MirroredStrategy.
            def warm():
                return peak * (s / warmup)

            def decay():
                fraction = (s - warmup) / (length - warmup)
                cosine = 0.5 * (1.0 + tf.cos(tf.constant(math.pi, dtype) * fraction))
                return peak * ((1.0 - self.alpha) * cosine + self.alpha)

            if not any(self.warmup_steps):
                return decay()  # Keras has no cond without a warm-up either
            return tf.cond(s < warmup, warm, decay)

    def get_config(self):
        return {
            "peaks": list(self.peaks),
            "total_steps": self.total_steps,
            "boundaries": list(self.boundaries),
            "warmup_steps": list(self.warmup_steps),
            "alpha": self.alpha,
            "name": self.name,
        }


# -------------------------------------------------------------------- the config section

CONFIG_FIELDS = ("boundaries", "peaks", "warmup_steps", "reset_momentum", "width_hi", "depth_lo")


def validate_config(section, *, warmup_epochs=None, bounds=None) -> None:
    """Checks the ``train.phases`` section of an experiment config (`tfnas.config_lib`).

    The fields are documented in the module docstring. Checks what the section alone
    decides (types, lengths, order); `learning_rate_from_config` checks the boundaries and
    warm-ups against the run's length, which is known only with the data
    (``train.steps_per_epoch=0``: one pass over the training split).

    Args:
      section: ``config.train.phases`` (a ConfigDict or dict).
      warmup_epochs: ``config.train.warmup_epochs``, when given: per-phase ``warmup_steps``
        and a ``train.warmup_epochs`` warm-up are exclusive.

    Raises:
      ValueError: naming ``config.train.phases.<field>``, the value, what is expected and
        how to fix it; also for a missing or unknown field.
    """
    fields = config_checks.Section(
        section, "train.phases", CONFIG_FIELDS, owner="tfnas.schedules.validate_config"
    )
    name = fields.name("boundaries")
    try:
        boundaries = check_boundaries(fields["boundaries"], name)
    except ValueError as err:
        raise ValueError(f"{err}; set --config.train.phases.boundaries=(STEP, ...)") from None
    num_phases = len(boundaries) + 1
    peaks = fields["peaks"]
    if (
        isinstance(peaks, str)
        or not isinstance(peaks, Sequence)
        or len(peaks) != num_phases
        or not all(config_checks.is_number(p) and p > 0 for p in peaks)
    ):
        raise fields.fail(
            "peaks",
            peaks,
            f"{num_phases} numbers > 0 (len(train.phases.boundaries) + 1 = {num_phases}: one "
            "peak learning rate per phase, as a multiple of train.learning_rate)",
            "set --config.train.phases.peaks=(1.0, ...) with one entry per phase",
        )
    warmups = fields["warmup_steps"]
    if (
        isinstance(warmups, str)
        or not isinstance(warmups, Sequence)
        or len(warmups) not in (0, num_phases)
        or not all(config_checks.is_int(w) and w >= 0 for w in warmups)
    ):
        raise fields.fail(
            "warmup_steps",
            warmups,
            f"() (phase 0 warms up for train.warmup_epochs) or {num_phases} ints >= 0 (one "
            "warm-up length in steps per phase)",
            "set --config.train.phases.warmup_steps=() or one int per phase",
        )
    if len(warmups) and warmup_epochs:
        raise fields.fail(
            "warmup_steps",
            warmups,
            f"() while config.train.warmup_epochs={warmup_epochs!r} also sets a warm-up (the "
            "two are exclusive)",
            "set --config.train.warmup_epochs=0 to use per-phase warm-ups, or "
            "--config.train.phases.warmup_steps=() to keep the warm-up of train.warmup_epochs",
        )
    phase_bounds(section, bounds)
    reset = fields.boolean("reset_momentum")
    if reset and not boundaries:
        raise fields.fail(
            "reset_momentum",
            reset,
            "False when train.phases.boundaries is empty (one phase: no boundary to reset "
            "the momentum at)",
            "set --config.train.phases.boundaries=(STEP, ...) or "
            "--config.train.phases.reset_momentum=False",
        )


def phase_bounds(section, bounds=None):
    """``(boundaries, rows)``: the sampled space of each phase (`tfnas.search_space.Bounds`
    per phase), or None when ``width_hi`` and ``depth_lo`` are both empty (every phase
    samples ``train.bounds``). What `tfnas.schemes.Scheme` takes as ``phase_bounds``.

    Progressive shrinking (seed paper 001 §2.2, §3.2; SCHEMES.md §3.4) grows the sampled space
    phase by phase: ``width_hi`` has one row per phase of the largest width digit of stages
    1-4 (the stem shares stage 1's), ``depth_lo`` one row of the smallest depth per stage;
    an empty one keeps ``bounds``'s for every phase.

    Args:
      section: ``config.train.phases``.
      bounds: the name of ``train.bounds`` (`tfnas.search_space.BOUNDS_PRESETS`), the space
        that is evaluated: the last phase must be it, or the supernet would end its training
        on another space than the one it ranks. None: not checked.

    Raises:
      ValueError: naming ``config.train.phases.<field>`` and what is expected.
    """
    boundaries = tuple(int(b) for b in section["boundaries"])
    num_phases = len(boundaries) + 1
    final = ss.BOUNDS_PRESETS.get(bounds, ss.FULL_BOUNDS) if bounds else None
    base = final or ss.FULL_BOUNDS
    tables = {}
    examples = {"width_hi": "((1, 1, 1, 1), (3, 3, 5, 7))",
                "depth_lo": "((4, 4, 6, 2), (2, 2, 2, 2))"}
    for field, size in (("width_hi", 4), ("depth_lo", 4)):
        rows = section[field]
        ok = not isinstance(rows, str) and isinstance(rows, Sequence)
        ok = ok and (len(rows) == 0 or len(rows) == num_phases)
        ok = ok and all(
            not isinstance(r, str) and isinstance(r, Sequence) and len(r) == size
            and all(config_checks.is_int(v) for v in r)
            for r in rows
        )
        if not ok:
            raise config_checks.fail(
                f"train.phases.{field}",
                rows,
                f"() or {num_phases} rows (one per phase) of {size} ints (stages 1-4)",
                f"set --config.train.phases.{field} to one row per phase, e.g. "
                f"{examples[field]} for two phases",
            )
        tables[field] = tuple(tuple(int(v) for v in r) for r in rows)
    if not tables["width_hi"] and not tables["depth_lo"]:
        return None
    rows = []
    for p in range(num_phases):
        w = tables["width_hi"][p] if tables["width_hi"] else base.digit_hi[1:]
        d = tables["depth_lo"][p] if tables["depth_lo"] else base.depth_lo
        try:
            rows.append(ss.Bounds((w[0], *w), d))
        except ValueError as err:
            raise config_checks.fail(
                "train.phases", f"phase {p}: width_hi {w}, depth_lo {d}",
                f"bounds of the space ({err})", "fix the phase's row",
            ) from None
    if final is not None and rows[-1] != final:
        raise config_checks.fail(
            "train.phases",
            f"last phase width_hi {rows[-1].digit_hi[1:]}, depth_lo {rows[-1].depth_lo}",
            f"the evaluated space, train.bounds={bounds!r}: width_hi {final.digit_hi[1:]}, "
            f"depth_lo {final.depth_lo} (the supernet must end its training on the space it "
            "ranks; seed paper 001 §3.2)",
            "make the last rows of train.phases.width_hi/depth_lo that space, or change "
            "--config.train.bounds",
        )
    return boundaries, tuple(rows)


def learning_rate_from_config(train, steps_per_epoch: int) -> PhaseCosine:
    """The `PhaseCosine` of a ``train`` section (with its ``phases``) for a run.

    Reads ``learning_rate``, ``epochs``, ``warmup_epochs`` and ``phases``. The run has
    ``max(1, int(epochs * steps_per_epoch))`` steps; the phase-0 warm-up from
    ``warmup_epochs`` is ``min(steps - 1, int(warmup_epochs * steps_per_epoch))`` steps,
    as in `tfnas.optimizers.warmup_cosine`, which this equals without phases.

    Raises:
      ValueError: a boundary at or past the run's last step, or a warm-up as long as its
        phase, naming the config field and the run's length.
    """
    phases = train.phases
    validate_config(phases, warmup_epochs=train.warmup_epochs)
    total = max(1, int(train.epochs * steps_per_epoch))
    boundaries = tuple(int(b) for b in phases.boundaries)
    if boundaries and boundaries[-1] >= total:
        raise config_checks.fail(
            "train.phases.boundaries",
            tuple(phases.boundaries),
            f"steps before the run's last step: this run has {total} steps (train.epochs="
            f"{train.epochs} x {steps_per_epoch} steps per epoch)",
            "lower the boundaries or raise --config.train.epochs (a :tiny variant keeps "
            "the config's boundaries but runs only a few steps)",
        )
    peaks = tuple(float(train.learning_rate) * float(p) for p in phases.peaks)
    lengths = [e - s for s, e in zip((0, *boundaries), (*boundaries, total))]
    if len(phases.warmup_steps):
        warmups = tuple(int(w) for w in phases.warmup_steps)
        long = [p for p, (w, n) in enumerate(zip(warmups, lengths)) if w >= n]
        if long:
            raise config_checks.fail(
                "train.phases.warmup_steps",
                tuple(phases.warmup_steps),
                f"warm-ups shorter than their phases (phase lengths {tuple(lengths)} steps; "
                f"phase {long[0]} is not longer than its warm-up)",
                "shorten the warm-ups or move the boundaries",
            )
    else:
        warmup = min(total - 1, int(train.warmup_epochs * steps_per_epoch))
        if warmup >= lengths[0]:
            raise config_checks.fail(
                "train.warmup_epochs",
                train.warmup_epochs,
                f"a warm-up shorter than phase 0 ({lengths[0]} steps, up to "
                f"train.phases.boundaries[0]; the warm-up is {warmup} steps)",
                "lower --config.train.warmup_epochs or move the first boundary later",
            )
        warmups = (warmup,) + (0,) * len(boundaries)
    return PhaseCosine(peaks, total, boundaries, warmups)

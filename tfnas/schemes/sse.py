"""Sub-supernet Enhancing: sub-supernets keyed by the depths of stages 3 and 4, trained one
after another with distillation and their own constraint pools (seed paper 001 §2.3, §3.4;
SCHEMES.md §3.1 steps 8-11, §3.2, §7.3).

Usage: a supernet with ``supernet.routing="depth34_table"`` (the buckets in
``supernet.depth34_buckets``, default `tfnas.supernet.SSE_BUCKETS`: 4 buckets plus a copy for
the other pairs, ``split_stem=True`` so each copy is a whole supernet), started from a CPT
run with ``supernet.init_from`` (every copy starts as the CPT supernet: the broadcast of
`tfnas.transfer`), ``train.scheme="sse"``, one phase per trained bucket
(``train.phases.boundaries``, ``reset_momentum``: a fresh optimizer per bucket, the cosine
restarted per phase) and a frozen teacher (``train.teacher``). ``configs/fmnist_sse.py`` is
ready, with the paper's 3-bucket SSE4 as a variant.

Phase p trains bucket ``buckets[p]``: the sampled arch and the pool are drawn from the
bucket's (d3, d4) pairs (`tfnas.sampling.bucket_arch`), so every member routes to that
bucket's copy and the other copies get no gradient -- with `tfnas.optimizers.LazySGD` and
the routed L2 they stay bitwise as they were. The loss (SCHEMES.md §3.2):

    ce_weight * CE(a) + distill_weight * KL(teacher || a) + pool_weight / S * sum_c CE(c)

(0.4, 0.4, 0.2 with S = 7; KL differs from the authors' soft cross-entropy by the teacher's
entropy, a constant, so the gradients are equal). The pool and the ring restart at every
bucket switch: each bucket has its own pool, as the authors' per-bucket managers.

**Bucket 4 (the other pairs) is not trained by default**, as in the authors' code (the paper
says sub-supernets 0-3 get "more training steps than 4"; in the code 4 gets none): its copy
keeps the CPT weights, which were trained on every depth, and the SSE budget goes to the
edge buckets the paper finds underestimated. ``train.sse.buckets=(0, 1, 2, 3, 4)`` trains it
too (one more phase).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfnas import config_checks
from tfnas import sampling
from tfnas import schedules
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas.schemes import cpt
from tfnas.schemes.base import Member
from tfnas.schemes.base import Scheme
from tfnas.schemes.base import Untracked

# The defaults of ``config.train.sse`` (SCHEMES.md §3.1 steps 9-11: buckets 0-3 in turn,
# Arch_Nsas_Manager(knn_num=6, select_num=7, recent_num=80), loss 0.4 + 0.4 + 0.2).
DEFAULTS = dict(
    buckets=(0, 1, 2, 3),
    ce_weight=0.4,
    distill_weight=0.4,
    pool_weight=0.2,
    pool_size=7,
    recent_size=80,
    knn=6,
    redraw_every=500,
)


def bucket_pairs(depth34_buckets=None) -> list[list[tuple[int, int]]]:
    """The (d3, d4) pairs of each copy of a ``depth34_table`` supernet: the listed buckets
    (`tfnas.supernet.parse_depth34_buckets`), then the other pairs if any are left."""
    keys = supernet_lib.parse_depth34_buckets(
        supernet_lib.SSE_BUCKETS if depth34_buckets in (None, "") else depth34_buckets
    )
    span = ss.MAX_DEPTHS[3] - ss.MIN_DEPTHS[3] + 1
    every = [
        (d3, d4)
        for d3 in range(ss.MIN_DEPTHS[2], ss.MAX_DEPTHS[2] + 1)
        for d4 in range(ss.MIN_DEPTHS[3], ss.MAX_DEPTHS[3] + 1)
    ]

    def pair(key):
        d3, d4 = divmod(int(key), span)
        return d3 + ss.MIN_DEPTHS[2], d4 + ss.MIN_DEPTHS[3]

    buckets = [[pair(k) for k in row] for row in keys]
    listed = {p for row in buckets for p in row}
    rest = [p for p in every if p not in listed]
    return buckets + ([rest] if rest else [])


class SSEScheme(cpt.CPTScheme):
    """One sub-supernet per phase: its sampled arch with distillation, and its pool.

    Args:
      space, seed, bounds, codes_file: see `Scheme` (with a code file, each bucket draws from
        the file's codes of its pairs).
      depth34_buckets: the supernet's ``depth34_buckets`` (None or "": `SSE_BUCKETS`).
      buckets: the bucket trained in each phase (indices into `bucket_pairs`).
      boundaries: the phase boundaries (``train.phases.boundaries``): bucket switches.
      ce_weight, distill_weight, pool_weight: the loss weights (0.4, 0.4, 0.2); with
        ``distill_weight > 0`` the trainer needs a ``teacher_model``.
      pool_size, recent_size, knn, redraw_every: the pool's (`tfnas.schemes.cpt.CPTScheme`).
      dropout: dropout rate of the sampled arch.
    """

    scheme_name = "sse"

    def __init__(
        self,
        space,
        seed=0,
        bounds=None,
        depth34_buckets=None,
        buckets=DEFAULTS["buckets"],
        boundaries=(),
        ce_weight=DEFAULTS["ce_weight"],
        distill_weight=DEFAULTS["distill_weight"],
        pool_weight=DEFAULTS["pool_weight"],
        pool_size=DEFAULTS["pool_size"],
        recent_size=DEFAULTS["recent_size"],
        knn=DEFAULTS["knn"],
        redraw_every=DEFAULTS["redraw_every"],
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(
            space, seed, bounds, pool_size, recent_size, knn, redraw_every,
            sampled_weight=ce_weight + distill_weight, pool_weight=pool_weight,
            dropout=dropout, restarts=boundaries, **kwargs,
        )
        self.depth34_buckets = depth34_buckets or None
        self.pairs = bucket_pairs(self.depth34_buckets)
        self.buckets = tuple(int(b) for b in buckets)
        if len(self.buckets) != len(self.restarts) + 1 or not all(
            0 <= b < len(self.pairs) for b in self.buckets
        ):
            raise ValueError(
                f"SSEScheme: buckets={tuple(buckets)!r} for {len(self.restarts) + 1} phases "
                f"(boundaries {self.restarts}) and {len(self.pairs)} sub-supernets; expected "
                "one bucket index in "
                f"0..{len(self.pairs) - 1} per phase. Set --config.train.sse.buckets and "
                "--config.train.phases.boundaries together."
            )
        self.ce_weight = float(ce_weight)
        self.distill_weight = float(distill_weight)
        width = max(len(p) for p in self.pairs)
        self._pair_table = np.array(
            [p + [p[0]] * (width - len(p)) for p in self.pairs], np.int32
        )
        self._pair_counts = np.array([len(p) for p in self.pairs], np.int32)
        self._bucket_codes = Untracked(None)

    def bucket_at(self, step) -> tf.Tensor:
        """int32: the bucket trained at ``step``."""
        phase = schedules.phase_of(step, self.restarts)
        return tf.gather(tf.constant(self.buckets, tf.int32), phase)

    def _codes_by_bucket(self):
        """(codes sorted by bucket int32 [N, 52], first row of each bucket, count of each)."""
        if self._bucket_codes.value is None:
            table = self.code_table()
            index = {p: b for b, pairs in enumerate(self.pairs) for p in pairs}
            bucket = np.array([index[(int(c[3]), int(c[4]))] for c in table])
            counts = np.bincount(bucket, minlength=len(self.pairs))
            empty = [b for b in set(self.buckets) if counts[b] == 0]
            if empty:
                raise ValueError(
                    f"codes_file {self.codes_file!r} has no code of the sub-supernets {empty} "
                    "that SSE trains (train.sse.buckets); give a file with codes of every "
                    "trained bucket or unset --config.train.codes_file."
                )
            order = np.argsort(bucket, kind="stable")
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            self._bucket_codes.value = (
                table[order], starts.astype(np.int32), counts.astype(np.int32)
            )
        return self._bucket_codes.value

    def draw(self, step, member: int) -> tf.Tensor:
        bucket = self.bucket_at(step)
        seed = sampling.member_seed(self.seed, step, member)
        if self.codes_file:
            table, starts, counts = self._codes_by_bucket()
            sub = tf.slice(tf.constant(table), [tf.gather(starts, bucket), 0],
                           [tf.gather(counts, bucket), ss.CODE_LENGTH])
            if member == 0:
                # Counted from the bucket's first step: each bucket starts a fresh pass
                # over its codes (the authors' per-bucket shuffled loader).
                return sampling.list_arch(self.seed, self._restart(step)[1], sub)
            return sampling.choice_arch(seed, sub)
        pairs = tf.gather(tf.constant(self._pair_table), bucket)[: tf.gather(
            tf.constant(self._pair_counts), bucket)]
        return sampling.bucket_arch(seed, self.space, pairs, *self.bounds_at(step))

    def sampled_member(self, step, arch) -> Member:
        if self.distill_weight > 0:
            total = self.ce_weight + self.distill_weight
            return Member("sampled", arch, "labels+external_teacher", False, self.dropout,
                          True, total, teacher_alpha=self.distill_weight / total, l2_weight=1.0)
        # Weight decay at full strength whatever the loss weights (as CPT's).
        return Member("sampled", arch, "labels", False, self.dropout, True, self.ce_weight,
                      l2_weight=1.0)

    def get_config(self):
        config = Scheme.get_config(self)
        config.update(
            depth34_buckets=self.depth34_buckets,
            buckets=list(self.buckets),
            boundaries=list(self.restarts),
            ce_weight=self.ce_weight,
            distill_weight=self.distill_weight,
            pool_weight=self.pool_weight,
            pool_size=self.pool_size,
            recent_size=self.recent_size,
            knn=self.knn,
            redraw_every=self.redraw_every,
            dropout=self.dropout,
        )
        return config


def validate_config(section, num_phases=None) -> None:
    """Checks ``config.train.sse`` (defaults: `DEFAULTS`; the module docstring explains each):

    - ``buckets``: the bucket trained in each phase (ints >= 0; one per phase of
      ``train.phases`` when the scheme is ``sse``);
    - ``ce_weight``, ``distill_weight``, ``pool_weight`` (>= 0): the loss weights;
    - ``pool_size``, ``recent_size``, ``knn``, ``redraw_every``: the pool's
      (`tfnas.schemes.cpt.validate_config`).

    Args:
      section: ``config.train.sse``.
      num_phases: ``len(train.phases.boundaries) + 1`` for the cross-field check (None:
        skipped).
    """
    cpt.validate_config(section, "train.sse", DEFAULTS)
    fields = config_checks.Section(section, "train.sse", tuple(DEFAULTS),
                                   owner="tfnas.schemes.sse.validate_config")
    buckets = fields["buckets"]
    ok = not isinstance(buckets, str) and hasattr(buckets, "__len__") and len(buckets) > 0
    ok = ok and all(config_checks.is_int(b) and b >= 0 for b in buckets)
    if not ok or (num_phases is not None and len(buckets) != num_phases):
        raise fields.fail(
            "buckets", buckets,
            "one sub-supernet index per phase"
            + (f" ({num_phases} phases: len(train.phases.boundaries) + 1)" if num_phases else ""),
            "set --config.train.sse.buckets and --config.train.phases.boundaries together",
        )
    for name in ("ce_weight", "distill_weight", "pool_weight"):
        fields.number(name, 0.0)


def scheme_from_config(config, space, dropout, bounds, **common) -> SSEScheme:
    """The `SSEScheme` of an experiment config (`tfnas.schemes.build_scheme` calls it).

    Raises:
      ValueError: the supernet is not routed by the SSE buckets, or the buckets do not match
        the phases.
    """
    if config.supernet.routing != "depth34_table":
        raise config_checks.fail(
            "supernet.routing", config.supernet.routing,
            "'depth34_table' with train.scheme='sse' (one weight copy per sub-supernet)",
            "set --config.supernet.routing=depth34_table (configs/fmnist_sse.py has the rest)",
        )
    section = config.train.sse
    validate_config(section, num_phases=len(config.train.phases.boundaries) + 1)
    return SSEScheme(
        space,
        config.seed,
        bounds,
        depth34_buckets=config.supernet.depth34_buckets,
        buckets=tuple(section.buckets),
        boundaries=tuple(config.train.phases.boundaries),
        ce_weight=section.ce_weight,
        distill_weight=section.distill_weight,
        pool_weight=section.pool_weight,
        **cpt.pool_arguments(section),
        dropout=dropout,
        **common,
    )

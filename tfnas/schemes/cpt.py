"""Candidate Plasticity Training: a sampled subnet plus a pool of diverse constraint subnets
(seed paper 001 §2.4, §3.3; SCHEMES.md §3.1 steps 4-7, §3.2, §7.3).

Usage (``bin/train --stage=oneshot`` with ``--config.train.scheme=cpt``, fields in
``config.train.cpt``, see `validate_config`; ``configs/fmnist_cpt.py`` is a ready config,
started from an APS run with ``supernet.init_from``)::

    scheme = schemes.build_scheme(config)          # CPTScheme
    trainer = SupernetTrainer(supernet, scheme, ...)

Each step trains the sampled arch ``a`` with weight ``sampled_weight`` (0.5) and every arch
of a *constraint pool* C of ``pool_size`` (10) archs with ``pool_weight / pool_size``
(0.05 each): the pool regularizes the supernet against forgetting the archs it trained
before (multi-model forgetting). The pool is kept diverse by the rule of the authors' code
(`update_pool`, SCHEMES.md §3.2 "Pool update"), which reads a ring R of the ``recent_size``
(100) most recent sampled archs:

1. every ``redraw_every`` (500) steps of a phase -- and at its first step -- C is drawn
   afresh (``pool_size`` independent draws of the sampler). Counted in steps from the
   phase's start, as the paper says; the authors' code tests the batch index within the
   epoch, so it also redraws at every epoch start (SCHEMES.md §3.1 step 7b);
2. ``a`` enters R (first in, first out);
3. the constraint ``c_n`` nearest to ``a`` (Eq. 2 distance, `arch_distance`) is replaced by
   the code among ``c_n`` and R (scanned in that order, oldest first) with the largest mean
   distance to its ``knn`` nearest other constraints -- the first one on a tie, so ``c_n``
   stays unless a code beats it strictly.

The pool and the ring are scheme state: tracked variables, so checkpoints hold them and a
resumed run continues with the same pool; every replica computes the same update from the
same stateless draws and writes one value (one global pool; the authors' per-GPU pools were
an accident of an unseeded RNG, SCHEMES.md §3.3). TensorBoard gets the pool's mean pairwise
distance (``pool_distance``, Eq. 2 units) and the count of rule replacements
(``pool_replacements``; its slope is how often the pool changes between re-draws).
"""

from __future__ import annotations

import tensorflow as tf

from tfnas import config_checks
from tfnas import schedules
from tfnas import search_space as ss
from tfnas.schemes.base import Member
from tfnas.schemes.base import Scheme
from tfnas.schemes.base import Untracked

# Pool draws take member seeds from here on: the sampled arch is member 0.
POOL_SEED_OFFSET = 512
# The width digits Eq. 2 reads: code positions 5..51 (stem, then each slot's mid and out).
NUM_WIDTH_DIGITS = ss.CODE_LENGTH - ss.STEM_POS

# The defaults of ``config.train.cpt`` (SCHEMES.md §3.1 steps 6-7: Arch_Nsas_Manager(knn_num=9,
# select_num=10, recent_num=100), pool re-drawn every 500 steps, loss 0.5 + 0.5).
DEFAULTS = dict(
    pool_size=10,
    recent_size=100,
    knn=9,
    redraw_every=500,
    sampled_weight=0.5,
    pool_weight=0.5,
)


# ------------------------------------------------------------------------- the pool math

def _phi(codes) -> tf.Tensor:
    w = tf.cast(codes, tf.int32)[..., ss.STEM_POS :]
    return tf.where(tf.equal(w, 0), 9, w)


def pairwise_distance(a, b) -> tf.Tensor:
    """int32 [n, m]: seed paper 001 Eq. 2 (without its constant 1/47) between the codes of
    ``a`` (int [n, 52]) and ``b`` (int [m, 52]): the L1 distance of the width digits with an
    inactive slot's 0 read as 9 (`tfnas.sampling.arch_distance` for one pair)."""
    return tf.reduce_sum(tf.abs(_phi(a)[:, None, :] - _phi(b)[None, :, :]), axis=-1)


def _first(mask) -> tf.Tensor:
    """The first index where ``mask`` [n] holds (tf.argmax leaves ties unspecified)."""
    n = tf.shape(mask)[0]
    return tf.reduce_min(tf.where(mask, tf.range(n), n))


def update_pool(pool, candidates, valid, arch, knn: int):
    """The pool after the authors' replacement rule (SCHEMES.md §3.2, `R2:arch_nsas.py:35-103`).

    Args:
      pool: int32 [S, 52], the constraints C.
      candidates: int32 [R, 52], the ring of recent archs in scan order (oldest first).
      valid: bool [R], which rows of ``candidates`` hold an arch.
      arch: int32 [52], the newly sampled arch a.
      knn: s(x) averages the ``knn`` smallest distances from x to C without c_n
        (``knn <= S - 1``; with S - 1 it is the mean distance to all the others).

    Returns:
      (new pool int32 [S, 52], n int32: the replaced row, changed bool: the row's code moved).
    """
    pool = tf.convert_to_tensor(pool, tf.int32)
    size = tf.shape(pool)[0]
    to_a = pairwise_distance(tf.reshape(arch, [1, -1]), pool)[0]
    n = _first(tf.equal(to_a, tf.reduce_min(to_a)))
    scan = tf.concat([pool[n][None], tf.convert_to_tensor(candidates, tf.int32)], axis=0)
    ok = tf.concat([[True], tf.convert_to_tensor(valid, tf.bool)], axis=0)
    dist = pairwise_distance(scan, pool)
    # c_n is not one of "the other constraints": push its column past every distance.
    dist = tf.where(tf.equal(tf.range(size), n)[None, :], tf.int32.max // 4, dist)
    # Sums of the knn smallest (integers: ties compare exactly; the mean's 1/knn is common).
    score = -tf.reduce_sum(tf.math.top_k(-dist, k=knn).values, axis=-1)
    score = tf.where(ok, score, -1)
    winner = _first(tf.equal(score, tf.reduce_max(score)))
    new_pool = tf.tensor_scatter_nd_update(pool, [[n]], scan[winner][None])
    changed = tf.reduce_any(tf.not_equal(new_pool[n], pool[n]))
    return new_pool, n, changed


def mean_pairwise_distance(pool) -> tf.Tensor:
    """float32: the mean Eq. 2 distance (with its 1/47) over the pool's distinct pairs."""
    d = tf.cast(pairwise_distance(pool, pool), tf.float32) / NUM_WIDTH_DIGITS
    size = tf.cast(tf.shape(pool)[0], tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(d), size * (size - 1.0))


# ---------------------------------------------------------------------------- the scheme

class CPTScheme(Scheme):
    """The sampled arch and a pool of constraint archs, each on the labels (see the module).

    Args:
      space, seed, bounds, phase_bounds, codes_file: see `Scheme` (the sampler of the
        sampled arch and of the pool's re-draws).
      pool_size: S, constraints per step (the paper: 10).
      recent_size: R, the ring of recent sampled archs (100).
      knn: neighbours averaged in a candidate's score (9: all the other constraints).
      redraw_every: the pool is drawn afresh every this many steps of a phase (500).
      sampled_weight, pool_weight: the loss weights of the sampled arch and of the pool (the
        pool's is shared by its S members): 0.5 and 0.5.
      dropout: dropout rate of the sampled arch.
      restarts: optimizer steps where the pool and the ring start afresh (SSE's sub-supernet
        switches); the run's start always is one.
    """

    scheme_name = "cpt"

    def __init__(
        self,
        space,
        seed=0,
        bounds=None,
        pool_size=DEFAULTS["pool_size"],
        recent_size=DEFAULTS["recent_size"],
        knn=DEFAULTS["knn"],
        redraw_every=DEFAULTS["redraw_every"],
        sampled_weight=DEFAULTS["sampled_weight"],
        pool_weight=DEFAULTS["pool_weight"],
        dropout=0.0,
        restarts=(),
        **kwargs,
    ):
        super().__init__(space, seed, bounds, **kwargs)
        checks = dict(pool_size=(pool_size, 2), recent_size=(recent_size, 1),
                      knn=(knn, 1), redraw_every=(redraw_every, 1))
        for name, (value, low) in checks.items():
            if not config_checks.is_int(value) or value < low:
                raise ValueError(
                    f"{type(self).__name__}: {name}={value!r}; expected an int >= {low}. Set "
                    f"--config.train.{self.scheme_name}.{name}."
                )
        if knn > pool_size - 1:
            raise ValueError(
                f"{type(self).__name__}: knn={knn} > pool_size - 1 = {pool_size - 1} (a "
                "candidate's score averages its distances to the other constraints). Lower "
                f"--config.train.{self.scheme_name}.knn."
            )
        self.pool_size = int(pool_size)
        self.recent_size = int(recent_size)
        self.knn = int(knn)
        self.redraw_every = int(redraw_every)
        self.sampled_weight = float(sampled_weight)
        self.pool_weight = float(pool_weight)
        self.dropout = float(dropout)
        self.restarts = schedules.check_boundaries(tuple(restarts), "restarts")
        # (step, transition) of the step being traced (untracked: tensors, not state).
        self._pending = Untracked(None)

    # -- state ---------------------------------------------------------------------------

    def build(self, input_shape=None):
        self.pool = self.add_state("pool", [self.pool_size, ss.CODE_LENGTH])
        self.recent = self.add_state("recent", [self.recent_size, ss.CODE_LENGTH])
        # The ring: how many rows hold an arch, and the row the next arch goes to.
        self.recent_filled = self.add_state("recent_filled", [])
        self.recent_head = self.add_state("recent_head", [])
        self.replacements = self.add_state("replacements", [])
        self.built = True

    # -- the sampler (SSE draws from its sub-supernet's bucket) -----------------------------

    def draw(self, step, member: int) -> tf.Tensor:
        """The sampled arch (member 0) or a pool draw (members from `POOL_SEED_OFFSET`)."""
        return self.sample(step, member)

    def _restart(self, step) -> tuple[tf.Tensor, tf.Tensor]:
        """(at a restart, steps since the last restart): int64 scalars' test and count."""
        step = tf.cast(step, tf.int64)
        starts = tf.constant((0, *self.restarts), tf.int64)
        start = tf.gather(starts, schedules.phase_of(step, self.restarts))
        return tf.equal(step, start), step - start

    def transition(self, step) -> dict:
        """The step's sampled arch and the scheme state after it, as tensors (no assignment):
        ``arch``, ``pool``, ``recent``, ``filled``, ``head``, ``changed``."""
        if not self.built:
            self.build()
        arch = self.draw(step, 0)
        restart, local = self._restart(step)
        redraw = tf.equal(tf.math.floormod(local, self.redraw_every), 0)
        fresh = tf.stack([self.draw(step, POOL_SEED_OFFSET + i) for i in range(self.pool_size)])
        pool = tf.where(redraw, fresh, self.pool.value)
        filled = tf.where(restart, 0, self.recent_filled.value)
        head = tf.where(restart, 0, self.recent_head.value)
        recent = tf.tensor_scatter_nd_update(self.recent.value, [[head]], arch[None])
        filled = tf.minimum(filled + 1, self.recent_size)
        head = tf.math.floormod(head + 1, self.recent_size)
        # Oldest first: row (head - filled + i) mod R for i < filled.
        order = tf.math.floormod(head - filled + tf.range(self.recent_size), self.recent_size)
        valid = tf.range(self.recent_size) < filled
        new_pool, _, changed = update_pool(
            pool, tf.gather(recent, order), valid, arch, self.knn
        )
        return dict(arch=arch, pool=new_pool, recent=recent, filled=filled, head=head,
                    changed=changed)

    def _state_of(self, step) -> dict:
        # The members' transition, computed once per step: update() runs after the optimizer
        # has advanced the step counter, so it must not read the step again.
        pending = self._pending.value
        if pending is not None and pending[0] is step:
            return pending[1]
        state = self.transition(step)
        self._pending.value = (step, state)
        return state

    # -- the scheme contract -------------------------------------------------------------

    def sampled_member(self, step, arch) -> Member:
        # Weight decay once per step at full strength, not scaled by the 0.5 (Paddle's L2
        # acts in the optimizer, SCHEMES.md §3.2).
        return Member("sampled", arch, "labels", False, self.dropout, True, self.sampled_weight,
                      l2_weight=1.0)

    def members(self, step):
        state = self._state_of(step)
        weight = self.pool_weight / self.pool_size
        return [self.sampled_member(step, state["arch"])] + [
            Member(f"constraint{i + 1}", state["pool"][i], "labels", weight=weight)
            for i in range(self.pool_size)
        ]

    def update(self, step, context):
        del context
        state = self._state_of(step)
        self._pending.value = None
        self.pool.assign(state["pool"])
        self.recent.assign(state["recent"])
        self.recent_filled.assign(state["filled"])
        self.recent_head.assign(state["head"])
        self.replacements.assign_add(tf.cast(state["changed"], tf.int32))

    def logs(self):
        return {
            "pool_distance": mean_pairwise_distance(self.pool.value),
            "pool_replacements": self.replacements.value,
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            pool_size=self.pool_size,
            recent_size=self.recent_size,
            knn=self.knn,
            redraw_every=self.redraw_every,
            sampled_weight=self.sampled_weight,
            pool_weight=self.pool_weight,
            dropout=self.dropout,
            restarts=list(self.restarts),
        )
        return config


def validate_config(section, path: str = "train.cpt", defaults=None) -> None:
    """Checks ``config.train.cpt`` (defaults: `DEFAULTS`; the module docstring explains each):

    - ``pool_size`` (int >= 2), ``recent_size`` (int >= 1), ``knn`` (int in 1..pool_size-1),
      ``redraw_every`` (int >= 1, steps);
    - ``sampled_weight``, ``pool_weight`` (>= 0): the loss weights.

    Raises:
      ValueError: naming ``config.<path>.<field>``, the value, what is expected and how to
        fix it; also for a missing or unknown field.
    """
    defaults = DEFAULTS if defaults is None else defaults
    fields = config_checks.Section(section, path, tuple(defaults),
                                   owner="tfnas.schemes.cpt.validate_config")
    size = fields.integer("pool_size", 2)
    fields.integer("recent_size", 1)
    fields.integer("knn", 1, size - 1)
    fields.integer("redraw_every", 1)
    for name in ("sampled_weight", "pool_weight"):
        if name in defaults:
            fields.number(name, 0.0)


def pool_arguments(section) -> dict:
    """The `CPTScheme` arguments of a ``train.cpt``-like section's pool fields."""
    return {k: section[k] for k in ("pool_size", "recent_size", "knn", "redraw_every")}


"""In-graph arch sampling, stateless: an arch is a pure function of (seed, step, member).

Used inside compiled train steps. The seed of member ``k`` at step ``t`` is
``[seed, t * MAX_MEMBERS + k]``, so every replica (and a resumed run) draws the same archs;
a stateful RNG would give each replica its own subnet (see `tfnas.distribute`).

The distribution is docs/SEARCH_SPACE.md's "uniform": each depth uniform in its range, then each
free digit (stem, the ``out`` of stages 2-4, each active block's ``mid``) uniform in 1..7.
`tfnas.search_space.SearchSpace.sample` is the NumPy twin used outside graphs.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfnas import search_space as ss

# Members per step that get distinct seeds; sandwich uses 2 + num_random_subnets.
MAX_MEMBERS = 1024

_SLOT_STAGE = np.concatenate([[s] * d for s, d in enumerate(ss.MAX_DEPTHS)]).astype(np.int32)
_SLOT_POS = np.concatenate([np.arange(d) for d in ss.MAX_DEPTHS]).astype(np.int32)


def member_seed(seed, step, member) -> tf.Tensor:
    """The stateless seed (int64 [2]) of sandwich member ``member`` at ``step``."""
    step = tf.cast(step, tf.int64)
    return tf.stack([tf.cast(seed, tf.int64), step * MAX_MEMBERS + tf.cast(member, tf.int64)])


def uniform_arch(seed, space: ss.SearchSpace) -> tf.Tensor:
    """A uniformly sampled arch (int32 [52] digits) for a stateless ``seed`` (int [2])."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=5)

    def randint(i, shape, low, high):
        return tf.random.stateless_uniform(
            shape, seed=seeds[i], minval=low, maxval=high, dtype=tf.int32
        )

    low = tf.constant(ss.MIN_DEPTHS, tf.float32)
    span = tf.constant(ss.MAX_DEPTHS, tf.float32) - low + 1.0
    u = tf.random.stateless_uniform([4], seed=seeds[0])
    # floor(u * span) is uniform on 0..span-1 (u < 1 strictly).
    depths = tf.cast(low + tf.floor(u * span), tf.int32)
    resolution = randint(1, [], 1, len(space.resolutions) + 1)
    stem = randint(2, [], 1, 8)
    outs = tf.concat([[stem], randint(3, [3], 1, 8)], axis=0)
    mids = randint(4, [len(_SLOT_STAGE)], 1, 8)
    return _assemble(resolution, depths, stem, outs, mids)


def _assemble(resolution, depths, stem, outs, mids) -> tf.Tensor:
    active = tf.constant(_SLOT_POS) < tf.gather(depths, _SLOT_STAGE)
    zeros = tf.zeros_like(mids)
    slot_mids = tf.where(active, mids, zeros)
    slot_outs = tf.where(active, tf.gather(outs, _SLOT_STAGE), zeros)
    pairs = tf.reshape(tf.stack([slot_mids, slot_outs], axis=1), [-1])
    return tf.concat([[resolution], depths, [stem], pairs], axis=0)


def constant_arch(arch: ss.Arch) -> tf.Tensor:
    """A fixed arch as an int32 [52] constant (the largest and smallest sandwich members)."""
    return tf.constant(arch.digits(), dtype=tf.int32)


# --------------------------------------------------------------------------------------------
# Bounded, list, bucket and rejection sampling (what phases, constraint pools, sub-supernets
# and ranking-distillation pairs need; SCHEMES.md §7.1 F). Bounds are tensors, so a phase
# schedule can change them inside one trace.
# --------------------------------------------------------------------------------------------

def bounds_tensors(bounds: ss.Bounds) -> tuple[tf.Tensor, tf.Tensor]:
    """(digit_hi int32 [5], depth_lo int32 [4]) of a `search_space.Bounds`."""
    return (
        tf.constant(bounds.digit_hi, tf.int32),
        tf.constant(bounds.depth_lo, tf.int32),
    )


def _uniform_int(u: tf.Tensor, low, high) -> tf.Tensor:
    """floor(u * (high - low + 1)) + low: uniform on low..high for u uniform in [0, 1)."""
    low = tf.cast(low, tf.float32)
    span = tf.cast(high, tf.float32) - low + 1.0
    return tf.cast(low + tf.floor(u * span), tf.int32)


def _bounded_parts(seed, space: ss.SearchSpace, digit_hi, depth_lo):
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=4)
    digit_hi = tf.cast(digit_hi, tf.int32)
    depth_lo = tf.cast(depth_lo, tf.int32)
    depths = _uniform_int(
        tf.random.stateless_uniform([4], seed=seeds[0]), depth_lo, tf.constant(ss.MAX_DEPTHS)
    )
    resolution = _uniform_int(
        tf.random.stateless_uniform([], seed=seeds[1]), 1, len(space.resolutions)
    )
    # Stem, then the outs of stages 2-4: their bounds are digit_hi[0] and digit_hi[2:5].
    head_hi = tf.concat([digit_hi[:1], digit_hi[2:]], axis=0)
    head = _uniform_int(tf.random.stateless_uniform([4], seed=seeds[2]), 1, head_hi)
    stem = head[0]
    outs = tf.concat([[stem], head[1:]], axis=0)
    mid_hi = tf.gather(digit_hi[1:], tf.constant(_SLOT_STAGE))
    mids = _uniform_int(
        tf.random.stateless_uniform([len(_SLOT_STAGE)], seed=seeds[3]), 1, mid_hi
    )
    return resolution, depths, stem, outs, mids


def bounded_arch(seed, space: ss.SearchSpace, digit_hi, depth_lo) -> tf.Tensor:
    """A uniform arch (int32 [52]) of the bounded space ``(digit_hi, depth_lo)``.

    ``digit_hi`` (int [5], stem and stage 1 equal) and ``depth_lo`` (int [4]) may be tensors
    that change with the step (progressive-shrinking phases): nothing retraces. The draws
    of `uniform_arch` (the unbounded sampler) are not these; both are uniform.
    """
    return _assemble(*_bounded_parts(seed, space, digit_hi, depth_lo))


def bucket_arch(seed, space: ss.SearchSpace, pairs, digit_hi, depth_lo) -> tf.Tensor:
    """A bounded arch whose (depth 3, depth 4) is drawn uniformly from ``pairs`` (int [P, 2]).

    Sub-supernets keyed by the depths of stages 3 and 4 (seed paper 001 §2.3) train one
    bucket of (d3, d4) pairs at a time; the rest of the arch is drawn as `bounded_arch`.
    """
    resolution, depths, stem, outs, mids = _bounded_parts(seed, space, digit_hi, depth_lo)
    pairs = tf.cast(pairs, tf.int32)
    pick_seed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 7)
    u = tf.random.stateless_uniform([], seed=pick_seed)
    index = _uniform_int(u, 0, tf.shape(pairs)[0] - 1)
    depths = tf.concat([depths[:2], pairs[index]], axis=0)
    return _assemble(resolution, depths, stem, outs, mids)


def list_arch(seed, index, table) -> tf.Tensor:
    """The ``index``-th draw from a code table (int32 [N, 52]), without replacement per pass.

    Draw ``i`` is item ``i mod N`` of a random permutation of the table that depends only on
    ``(seed, i // N)``: every N consecutive draws cover the table once, every replica draws
    the same codes, and a resumed run continues the same sequence. ``index`` is the global
    draw number, e.g. ``step * members + member``.
    """
    table = tf.convert_to_tensor(table, tf.int32)
    n = tf.cast(tf.shape(table)[0], tf.int64)
    index = tf.cast(index, tf.int64)
    epoch = index // n
    perm_seed = tf.stack([tf.cast(seed, tf.int64), epoch])
    order = tf.argsort(tf.random.stateless_uniform([n], seed=perm_seed))
    return tf.gather(table, tf.gather(order, index % n))


def choice_arch(seed, table) -> tf.Tensor:
    """A uniform draw, with replacement, from a code table (int32 [N, 52]) for a stateless
    ``seed``: a constraint pool re-drawn from a code file (SCHEMES.md §3.1 step 7b)."""
    table = tf.convert_to_tensor(table, tf.int32)
    u = tf.random.stateless_uniform([], seed=tf.cast(seed, tf.int64))
    return tf.gather(table, _uniform_int(u, 0, tf.shape(table)[0] - 1))


def arch_distance(a, b) -> tf.Tensor:
    """Seed paper 001 Eq. 2: the L1 distance of two codes' width digits, a 0 read as 9.

    The width digits are positions 5..51 (stem, then each slot's mid and out); an inactive
    slot's 0 counts as 9, narrower than any width, so a missing block is far from any
    present one. `search_space.arch_distance` is the NumPy twin.
    """
    def widths(code):
        w = tf.cast(code, tf.int32)[..., 5:]
        return tf.where(w == 0, 9, w)

    return tf.reduce_sum(tf.abs(widths(a) - widths(b)), axis=-1)


def rejection_arch(seed, draw, accept, max_tries: int):
    """Draws ``draw(try_seed)`` until ``accept(arch)`` holds, at most ``max_tries`` times.

    Each try has its own stateless seed (``fold_in(seed, try)``), so every replica makes the
    same tries. Bounded: when no try is accepted the last draw is returned, and
    ``exhausted`` says so (count it in a metric).

    Returns:
      (arch int32 [52], tries int32, exhausted bool).
    """
    seed = tf.cast(seed, tf.int64)

    def body(t, _arch, _ok):
        arch = draw(tf.random.experimental.stateless_fold_in(seed, tf.cast(t, tf.int64)))
        return t + 1, arch, tf.cast(accept(arch), tf.bool)

    first = draw(tf.random.experimental.stateless_fold_in(seed, tf.constant(0, tf.int64)))
    t, arch, ok = tf.while_loop(
        lambda t, _a, ok: tf.logical_and(tf.logical_not(ok), t < max_tries),
        body,
        (tf.constant(1), first, tf.cast(accept(first), tf.bool)),
    )
    return arch, t, tf.logical_not(ok)

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

"""Candidate Plasticity Training (tfnas.schemes.cpt): the pool rule against a literal NumPy
reading of the authors' code (SCHEMES.md §3.2), the ring and re-draws over a run, the
members' loss weights, and the pool's survival across a checkpoint."""

import numpy as np
import pytest
import tensorflow as tf

from tfnas import optimizers
from tfnas import sampling
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas import trainer as trainer_lib
from tfnas.schemes import cpt

SPACE = ss.get_space("fmnist")


# --------------------------------------------------------------- the reference (NumPy)

def phi(digit):
    return 9 if digit == 0 else digit


def eq2(x, y):
    """Seed paper 001 Eq. 2 over code positions 5..51, times 47 (an int)."""
    return sum(abs(phi(int(u)) - phi(int(v))) for u, v in zip(x[5:], y[5:]))


def reference_update(pool, recent, arch, knn):
    """R2 `Arch_Nsas_Manager` as SCHEMES.md §3.2 reads it, with Python lists."""
    pool = [list(c) for c in pool]
    distances = [eq2(arch, c) for c in pool]
    n = distances.index(min(distances))  # the first nearest
    others = [pool[j] for j in range(len(pool)) if j != n]

    def score(x):
        return float(np.mean(sorted(eq2(x, o) for o in others)[:knn]))

    best, best_score = pool[n], score(pool[n])
    for x in recent:  # oldest first; a later code must beat the best strictly
        s = score(x)
        if s > best_score:
            best, best_score = list(x), s
    pool[n] = best
    return pool


def codes(n, seed):
    return np.stack([a.digits() for a in SPACE.sample_many(n, seed)]).astype(np.int32)


def test_distance_is_eq2_with_zero_read_as_nine():
    a, b = codes(2, 3)
    assert int(cpt.pairwise_distance(a[None], b[None])[0, 0]) == eq2(a, b)
    assert int(cpt.pairwise_distance(a[None], b[None])[0, 0]) == ss.arch_distance(
        SPACE.parse("".join(map(str, a))), SPACE.parse("".join(map(str, b)))
    )
    # An inactive slot (0) against the narrowest width (7) is 2 apart, against 1 it is 8.
    x = a.copy()
    x[5:] = 0
    y = a.copy()
    y[5:] = 7
    assert eq2(x, y) == 2 * 47
    pool = codes(4, 5)
    d = np.array([[eq2(p, q) for q in pool] for p in pool]) / 47.0
    np.testing.assert_allclose(float(cpt.mean_pairwise_distance(pool)), d.sum() / 12, rtol=1e-6)


@pytest.mark.parametrize("case", range(6))
def test_pool_update_equals_the_numpy_reference(case):
    rng = np.random.default_rng(case)
    size, ring = (10, 100) if case < 3 else (7, 80)
    knn = size - 1 if case % 2 == 0 else 3
    pool = codes(size, 100 + case)
    recent = codes(ring, 200 + case)
    filled = ring if case in (0, 3) else int(rng.integers(1, ring))
    if case == 5:
        # Ties: every ring code is the nearest constraint's copy or a duplicate of a pool row.
        recent[:] = pool[rng.integers(0, size, ring)]
    arch = recent[filled - 1]
    valid = np.arange(ring) < filled
    new_pool, n, changed = cpt.update_pool(pool, recent, valid, arch, knn)
    expected = reference_update(pool, recent[:filled], arch, knn)
    np.testing.assert_array_equal(new_pool.numpy(), np.array(expected))
    assert bool(changed) == (not np.array_equal(new_pool.numpy(), pool))
    assert np.array_equal(np.delete(new_pool.numpy(), int(n), 0), np.delete(pool, int(n), 0))


def test_a_run_of_transitions_follows_the_protocol():
    """Re-draw every k steps, ring of the R most recent sampled archs (oldest first), rule."""
    scheme = cpt.CPTScheme(SPACE, seed=4, pool_size=4, recent_size=5, knn=2, redraw_every=3)
    scheme.build()
    pool, recent = None, []
    for t in range(8):
        step = tf.constant(t, tf.int64)
        state = scheme.transition(step)
        arch = scheme.draw(step, 0).numpy()
        np.testing.assert_array_equal(state["arch"].numpy(), arch)
        if t % 3 == 0:
            pool = [scheme.draw(step, cpt.POOL_SEED_OFFSET + i).numpy() for i in range(4)]
        recent = (recent + [arch])[-5:]
        pool = reference_update(pool, recent, arch, 2)
        np.testing.assert_array_equal(state["pool"].numpy(), np.array(pool), err_msg=f"step {t}")
        # The members train the sampled arch and the updated pool.
        members = scheme.members(step)
        assert [m.name for m in members] == ["sampled"] + [f"constraint{i}" for i in range(1, 5)]
        np.testing.assert_array_equal(
            np.stack([m.arch.numpy() for m in members[1:]]), np.array(pool)
        )
        scheme.update(step, {})
        assert int(scheme.recent_filled.numpy()) == len(recent)


def test_member_weights_are_half_and_half():
    scheme = cpt.CPTScheme(SPACE, seed=1)
    members = scheme.members(tf.constant(0, tf.int64))
    assert len(members) == 11
    assert members[0].weight == 0.5 and members[0].regularize and members[0].l2_weight == 1.0
    assert all(m.weight == pytest.approx(0.05) and not m.regularize for m in members[1:])
    assert all(m.target == "labels" for m in members)


def test_validation_names_the_field():
    section = dict(cpt.DEFAULTS)
    cpt.validate_config(section)
    for field, value in (("knn", 10), ("pool_size", 1), ("sampled_weight", -1.0)):
        bad = dict(section, **{field: value})
        with pytest.raises(ValueError, match=f"config.train.cpt.{field}"):
            cpt.validate_config(bad)
    with pytest.raises(ValueError, match="knn"):
        cpt.CPTScheme(SPACE, pool_size=4, knn=4)


def test_get_config_round_trips():
    scheme = cpt.CPTScheme(SPACE, seed=2, pool_size=5, recent_size=7, knn=3, redraw_every=9,
                           sampled_weight=0.4, pool_weight=0.6, dropout=0.1, restarts=(4,))
    config = scheme.get_config()
    clone = cpt.CPTScheme.from_config(config)
    assert clone.get_config() == config


# ------------------------------------------------------------------ in the trainer

def make_trainer(seed=0):
    net = supernet_lib.Supernet("fmnist")
    net.build()
    scheme = cpt.CPTScheme(SPACE, seed=seed, pool_size=3, recent_size=4, knn=2, redraw_every=3)
    trainer = trainer_lib.SupernetTrainer(net, scheme, weight_decay=1e-4)
    trainer.compile(optimizer=optimizers.LazySGD(0.01, momentum=0.9), jit_compile=False)
    return trainer


def batch():
    rng = np.random.default_rng(0)
    return (tf.constant(rng.normal(size=(8, 28, 28, 1)), tf.float32),
            tf.constant(rng.integers(0, 10, 8), tf.int32))


def test_checkpoint_holds_the_pool_and_the_run_continues_with_it(tmp_path):
    images, labels = batch()
    trainer = make_trainer()
    for _ in range(4):
        logs = trainer.train_on_batch(images, labels, return_dict=True)
    assert {"pool_distance", "pool_replacements"} <= set(logs)
    state = {v.path: v.numpy().copy() for v in trainer.scheme.weights}
    trainer.save_weights(tmp_path / "ckpt.weights.h5")
    trainer.train_on_batch(images, labels)
    after = {v.path: v.numpy().copy() for v in trainer.scheme.weights}

    resumed = make_trainer()
    resumed.build_optimizers()
    resumed.load_weights(tmp_path / "ckpt.weights.h5")
    for v in resumed.scheme.weights:
        np.testing.assert_array_equal(v.numpy(), state[v.path])
    assert int(resumed.optimizer.iterations.numpy()) == 4
    resumed.train_on_batch(images, labels)
    for v in resumed.scheme.weights:
        np.testing.assert_array_equal(v.numpy(), after[v.path], err_msg=v.path)
    # The pool rows are codes of the space.
    for row in resumed.scheme.pool.numpy():
        SPACE.parse("".join(map(str, row)))


def test_the_sampled_arch_is_a_stateless_draw():
    scheme = cpt.CPTScheme(SPACE, seed=9)
    a = sampling.member_seed(9, tf.constant(3, tf.int64), 0)
    np.testing.assert_array_equal(
        scheme.draw(tf.constant(3, tf.int64), 0).numpy(),
        sampling.uniform_arch(a, SPACE).numpy(),
    )

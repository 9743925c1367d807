"""`tfnas.optimizers`: LazySGD against Keras's SGD and a hand computation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas import optimizers

LR = 0.25  # a power of 2: products with it are exact, so equalities below can be exact


def _run(opt, variable, grads):
    for g in grads:
        opt.apply([tf.constant(g, variable.dtype)], [variable])
    return variable.numpy()


@pytest.mark.parametrize("nesterov", [False, True])
def test_lazy_sgd_is_sgd_when_every_copy_has_a_gradient(nesterov):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(2, 3))
    grads = [rng.normal(size=(2, 3)) for _ in range(4)]
    a = keras.Variable(w0, dtype="float64", name="kernel")
    b = keras.Variable(w0, dtype="float64", name="kernel")
    lazy = optimizers.LazySGD(LR, momentum=0.5, nesterov=nesterov)
    lazy.build([a])
    lazy.mark_copy_axis([a])
    got = _run(lazy, a, grads)
    want = _run(keras.optimizers.SGD(LR, momentum=0.5, nesterov=nesterov), b, grads)
    np.testing.assert_array_equal(got, want)
    # By hand (Keras's convention: the learning rate is folded into the velocity).
    w, m = w0.copy(), np.zeros_like(w0)
    for g in grads:
        m = 0.5 * m - LR * g
        w = w + (0.5 * m - LR * g if nesterov else m)
    np.testing.assert_allclose(got, w, rtol=0, atol=1e-15)


def test_a_copy_without_gradient_keeps_its_weights_and_momentum_bitwise():
    """Copy 1 gets a gradient at step 0 only; afterwards Keras's SGD keeps moving it with
    its momentum, LazySGD leaves it (and its momentum) exactly as they were."""
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(2, 4)).astype("float32")
    first = rng.normal(size=(2, 4)).astype("float32")
    later = [np.stack([rng.normal(size=4), np.zeros(4)]).astype("float32") for _ in range(3)]
    lazy_var = keras.Variable(w0, name="kernel")
    sgd_var = keras.Variable(w0, name="kernel")
    lazy = optimizers.LazySGD(LR, momentum=0.9)
    lazy.build([lazy_var])
    lazy.mark_copy_axis([lazy_var])
    sgd = keras.optimizers.SGD(LR, momentum=0.9)
    _run(lazy, lazy_var, [first])
    _run(sgd, sgd_var, [first])
    after_first = lazy_var.numpy().copy()
    momentum_after_first = lazy.momentums[0].numpy().copy()
    got = _run(lazy, lazy_var, later)
    drifted = _run(sgd, sgd_var, later)
    np.testing.assert_array_equal(got[1], after_first[1])
    np.testing.assert_array_equal(lazy.momentums[0].numpy()[1], momentum_after_first[1])
    assert np.abs(drifted[1] - after_first[1]).max() > 1e-3  # the drift LazySGD avoids
    np.testing.assert_array_equal(got[0], drifted[0])  # copy 0: plain SGD


def test_unmarked_variables_are_skipped_only_as_a_whole():
    v = keras.Variable(np.ones((2, 2), "float32"), name="bias")
    opt = optimizers.LazySGD(LR, momentum=0.9)
    opt.build([v])
    _run(opt, v, [np.array([[1.0, 1.0], [0.0, 0.0]], "float32")])
    # Not a copy axis: row 1 has a zero gradient but is part of a used variable.
    np.testing.assert_array_equal(v.numpy(), [[0.75, 0.75], [1.0, 1.0]])
    before = v.numpy().copy()
    _run(opt, v, [np.zeros((2, 2), "float32")])
    np.testing.assert_array_equal(v.numpy(), before)  # all zero: skipped, momentum kept
    _run(opt, v, [np.array([[0.0, 0.0], [0.0, 1.0]], "float32")])
    # Used again: the kept momentum (-0.25 on row 0) moves row 0 as plain SGD would.
    np.testing.assert_allclose(v.numpy()[0], before[0] + 0.9 * -0.25, rtol=1e-6)


def test_lazy_sgd_round_trips_its_config():
    opt = optimizers.LazySGD(0.1, momentum=0.9, nesterov=True)
    again = optimizers.LazySGD.from_config(opt.get_config())
    assert again.get_config() == opt.get_config()
    assert isinstance(keras.optimizers.deserialize(keras.optimizers.serialize(opt)),
                      optimizers.LazySGD)


def test_warmup_cosine_end_points():
    schedule = optimizers.warmup_cosine(0.4, epochs=10, warmup_epochs=2, steps_per_epoch=5)
    values = {s: float(schedule(s)) for s in (0, 5, 10, 30, 50)}
    assert values[0] == pytest.approx(0.0)
    assert values[5] == pytest.approx(0.2)  # half-way through the 10 warm-up steps
    assert values[10] == pytest.approx(0.4)  # the peak at the end of the warm-up
    assert values[30] == pytest.approx(0.2)  # the cosine's midpoint: (1 + cos(pi/2)) / 2
    assert values[50] == pytest.approx(0.0, abs=1e-9)
    flat = optimizers.warmup_cosine(0.4, epochs=10, warmup_epochs=0, steps_per_epoch=5)
    assert float(flat(0)) == pytest.approx(0.4)
    assert float(flat(25)) == pytest.approx(0.2)

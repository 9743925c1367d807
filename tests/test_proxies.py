"""Zero-cost proxies against hand computations, and the in-graph FLOPs/params priors.

The hand cases (s = e / (1 + e) below is softmax([1, 2])[1]):

- grad-norm and SNIP of a 2-input, 2-class linear model with kernel I, x = [1, 2], label 0:
  dL/dK = x^T (p - onehot) = [[-s, s], [-2s, 2s]], so grad_norm = s sqrt(10), SNIP = 3s.
- GraSP of the same model: H g = x^T H_z (x g) with H_z = diag(p) - p p^T = s(1-s)[[1,-1],
  [-1,1]] and x g = 5 [-s, s], so H g = 10 s^2 (1-s) [[-1, 1], [-2, 2]] and GraSP = -10 s^2 (1-s).
- SynFlow of a two-layer linear net: every layer of a positively homogeneous net carries
  sum(W dR/dW) = R, so SynFlow = 2 R with R = 1^T |K1| |K2| 1.
- NASWOT of x -> ReLU(x I) -> ReLU(sum) on [1,-1], [1,1], [-1,-1]: patterns (10|1), (11|1),
  (00|0); agreements [[3,2,1],[2,3,0],[1,0,3]], determinant 12.
- Zen of a linear map: f(x) - f(x + g e) = -g e K, so Delta = g mean_n sum |e K|.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas import proxies
from tfnas import search_space as ss
from tfnas import static

S = math.e / (1.0 + math.e)


def _set(model, name, *weights):
    model.get_layer(name).set_weights([np.asarray(w, np.float32) for w in weights])


def _linear_model(bias=False):
    inputs = keras.Input((2,))
    outputs = keras.layers.Dense(2, use_bias=bias, name="dense")(inputs)
    model = keras.Model(inputs, outputs)
    _set(model, "dense", np.eye(2), *([np.zeros(2)] if bias else []))
    return model


def _batch(x, y):
    return tf.constant(x, tf.float32), tf.constant(y, tf.int32)


# ------------------------------------------------------------------------- in-graph priors


@pytest.mark.parametrize("name", sorted(ss.SPACES))
def test_flops_and_params_tensors_equal_the_space_on_random_codes(name):
    space = ss.get_space(name)
    rng = np.random.default_rng(1)
    archs = space.sample_many(300, seed=7)
    archs += [space.sample(rng, ss.COMPETITION_BOUNDS) for _ in range(100)]
    archs += [space.largest(), space.smallest()]
    digits = tf.constant(np.stack([a.digits() for a in archs]), tf.int32)
    flops = proxies.flops_tensor(space, digits).numpy()
    params = proxies.params_tensor(space, digits).numpy()
    assert flops.dtype == np.int64 and flops.shape == (len(archs),)
    np.testing.assert_array_equal(flops, [space.flops(a) for a in archs])
    np.testing.assert_array_equal(params, [space.params(a) for a in archs])


def test_priors_in_a_tf_function_of_one_arch():
    space = ss.get_space("imagenet")

    @tf.function(input_signature=[tf.TensorSpec([52], tf.int32)])
    def cost(digits):
        return proxies.flops_tensor(space, digits), proxies.params_tensor(space, digits)

    arch = space.largest()
    flops, params = cost(tf.constant(arch.digits()))
    # Larger than int32: the imagenet space's largest arch has ~4.1 GMACs.
    assert int(flops) == space.flops(arch) > 2**31
    assert int(params) == space.params(arch)


def test_priors_reject_a_bad_digit_tensor():
    with pytest.raises(ValueError, match=r"int32 tensor \[\.\.\., 52\].*float32 of shape \(52,\)"):
        proxies.flops_tensor("fmnist", tf.zeros([52]))
    with pytest.raises(ValueError, match=r"shape \(3, 51\)"):
        proxies.params_tensor("fmnist", tf.zeros([3, 51], tf.int32))


# ------------------------------------------------------------------ gradient-based proxies


def test_grad_norm_and_snip_of_a_linear_model():
    model = _linear_model()
    batch = _batch([[1.0, 2.0]], [0])
    assert proxies.grad_norm(model, batch) == pytest.approx(S * math.sqrt(10.0), rel=1e-5)
    assert proxies.snip(model, batch) == pytest.approx(3.0 * S, rel=1e-5)


def test_grad_norm_and_snip_score_kernels_not_biases():
    # The same model with a (zero) bias: its gradient p - onehot is not scored.
    model = _linear_model(bias=True)
    batch = _batch([[1.0, 2.0]], [0])
    assert proxies.grad_norm(model, batch) == pytest.approx(S * math.sqrt(10.0), rel=1e-5)
    assert proxies.snip(model, batch) == pytest.approx(3.0 * S, rel=1e-5)


def test_grasp_of_a_linear_model():
    model = _linear_model()
    batch = _batch([[1.0, 2.0]], [0])
    assert proxies.grasp(model, batch) == pytest.approx(-10.0 * S**2 * (1.0 - S), rel=1e-4)


def test_grasp_hessian_product_matches_finite_differences_through_bn_and_relu():
    # float64 layers: H g = (grad L(W + e g) - grad L(W - e g)) / 2e to ~1e-9.
    inputs = keras.Input((3,))
    x = keras.layers.Dense(4, use_bias=False, dtype="float64", name="d1")(inputs)
    x = keras.layers.BatchNormalization(dtype="float64", name="bn")(x)
    x = keras.layers.ReLU(dtype="float64", name="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, dtype="float64", name="d2")(x))
    rng = np.random.default_rng(5)
    batch = _batch(rng.normal(size=(6, 3)), [0, 1, 1, 0, 1, 0])
    images, labels = tf.cast(batch[0], tf.float64), batch[1]
    kernels = [model.get_layer("d1").kernel, model.get_layer("d2").kernel]

    def grads():
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            )
        return [g.numpy() for g in tape.gradient(loss, kernels)]

    w0, g0, eps = [k.numpy() for k in kernels], grads(), 1e-5
    for k, w, g in zip(kernels, w0, g0):
        k.assign(w + eps * g)
    plus = grads()
    for k, w, g in zip(kernels, w0, g0):
        k.assign(w - eps * g)
    minus = grads()
    for k, w in zip(kernels, w0):
        k.assign(w)
    expected = -sum(float((w * (p - m) / (2 * eps)).sum()) for w, p, m in zip(w0, plus, minus))
    assert proxies.grasp(model, batch) == pytest.approx(expected, rel=1e-6)


def test_gradient_proxies_use_the_labels():
    model = _linear_model()
    # Label 1: p - onehot = [1 - s, s - 1] = [1 - s](1, -1): everything scales by (1 - s) / s.
    batch = _batch([[1.0, 2.0]], [1])
    assert proxies.snip(model, batch) == pytest.approx(3.0 * (1.0 - S), rel=1e-5)


# ----------------------------------------------------------------------------- SynFlow


def _two_layer_net(with_batch_norm):
    inputs = keras.Input((3,))
    x = keras.layers.Dense(4, use_bias=False, name="d1")(inputs)
    if with_batch_norm:
        x = keras.layers.BatchNormalization(name="bn")(x)
    outputs = keras.layers.Dense(2, use_bias=False, name="d2")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    # Rounded to float32 as the model stores them; SynFlow then computes in float64.
    k1, k2 = (rng.normal(size=s).astype(np.float32).astype(float) for s in ((3, 4), (4, 2)))
    _set(model, "d1", k1)
    _set(model, "d2", k2)
    if with_batch_norm:
        _set(model, "bn", rng.normal(size=4), rng.normal(size=4), rng.normal(size=4), [3.0] * 4)
    return model, k1, k2


def test_synflow_of_a_two_layer_linear_net():
    model, k1, k2 = _two_layer_net(False)
    expected = 2.0 * np.ones(3) @ np.abs(k1) @ np.abs(k2) @ np.ones(2)
    batch = _batch(np.ones((4, 3)), [0, 1, 0, 1])
    assert proxies.synflow(model, batch) == pytest.approx(expected, rel=1e-12)


def test_synflow_removes_batch_norm_ignores_data_and_signs_and_keeps_the_model():
    model, k1, k2 = _two_layer_net(True)
    expected = 2.0 * np.ones(3) @ np.abs(k1) @ np.abs(k2) @ np.ones(2)
    rng = np.random.default_rng(3)
    a = proxies.synflow(model, _batch(rng.normal(size=(8, 3)), np.zeros(8)))
    b = proxies.synflow(model, _batch(100 * rng.normal(size=(2, 3)), [1, 0]))
    assert a == b == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(model.get_layer("d1").get_weights()[0], k1.astype(np.float32))
    _set(model, "d1", -k1)  # flipping signs changes nothing: |W| is scored
    assert proxies.synflow(model, None) == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------------------ NASWOT


def _relu_net():
    inputs = keras.Input((2,))
    x = keras.layers.Dense(2, use_bias=False, name="d1")(inputs)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Dense(1, use_bias=False, name="d2")(x)
    outputs = keras.layers.ReLU(name="relu2")(x)
    model = keras.Model(inputs, outputs)
    _set(model, "d1", np.eye(2))
    _set(model, "d2", [[1.0], [1.0]])
    return model


def test_naswot_kernel_of_known_activation_patterns():
    model = _relu_net()
    x = [[1.0, -1.0], [1.0, 1.0], [-1.0, -1.0]]
    assert np.linalg.det([[3, 2, 1], [2, 3, 0], [1, 0, 3]]) == pytest.approx(12.0)
    assert proxies.naswot(model, _batch(x, [0, 0, 0])) == pytest.approx(math.log(12.0))
    # Labels are not used; the order of the images is irrelevant (a permuted kernel).
    assert proxies.naswot(model, _batch(x[::-1], [5, 1, 2])) == pytest.approx(math.log(12.0))


def test_naswot_of_identical_patterns_is_minus_infinity_and_needs_two_images():
    model = _relu_net()
    assert proxies.naswot(model, _batch([[1.0, 2.0], [3.0, 4.0]], [0, 0])) == -math.inf
    with pytest.raises(ValueError, match="at least 2 images, received 1"):
        proxies.naswot(model, _batch([[1.0, 2.0]], [0]))


# --------------------------------------------------------------------------------- Zen

ZEN_K = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 1.0]])
ZEN_NOISE = np.array([[1.0, 0.0], [0.0, 1.0]])  # rows of e K: [1, 2, 3], [-1, 0, 1]


def test_zen_of_a_linear_map():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(3, use_bias=False, name="d")(inputs))
    _set(model, "d", ZEN_K)
    x = np.array([[0.3, -2.0], [5.0, 1.0]])
    # Delta = 0.01 * mean(|1| + |2| + |3|, |-1| + 0 + |1|) = 0.01 * 4; no BN term.
    assert proxies.zen_once(model, x, ZEN_NOISE, 0.01) == pytest.approx(math.log(0.04), abs=1e-5)


def test_zen_removes_the_shortcut_and_the_head():
    inputs = keras.Input((1, 1, 2))
    branch = keras.layers.Conv2D(3, 1, use_bias=False, name="branch")(inputs)
    shortcut = keras.layers.Conv2D(3, 1, use_bias=False, name="shortcut")(inputs)
    x = keras.layers.Add(name="add")([branch, shortcut])
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(5, name="classifier")(x))
    _set(model, "branch", ZEN_K[None, None])
    _set(model, "shortcut", 7.0 * np.ones((1, 1, 2, 3)))
    x = np.random.default_rng(0).normal(size=(2, 1, 1, 2))
    noise = ZEN_NOISE[:, None, None, :]
    assert proxies.zen_once(model, x, noise, 0.01) == pytest.approx(math.log(0.04), abs=1e-5)


def test_zen_bn_term_is_the_batch_variance_of_the_mixup_forward():
    inputs = keras.Input((2,))
    x = keras.layers.Dense(2, use_bias=False, name="d")(inputs)
    model = keras.Model(inputs, keras.layers.BatchNormalization(epsilon=1e-5, name="bn")(x))
    _set(model, "d", np.eye(2))
    x = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]])
    noise = np.array([[1.0, 0.0], [-1.0, 1.0], [0.0, 2.0]])
    mixed = x + 0.1 * noise

    def batch_norm(v):  # training mode: batch mean and biased batch variance per channel
        return (v - v.mean(axis=0)) / np.sqrt(v.var(axis=0) + 1e-5)

    delta = np.abs(batch_norm(x) - batch_norm(mixed)).sum(axis=1).mean()
    expected = math.log(delta) + 0.5 * math.log(mixed.var(axis=0).mean())
    assert proxies.zen_once(model, x, noise, 0.1) == pytest.approx(expected, abs=1e-4)
    # Not the variance of the clean forward (nor a running variance, initially 1).
    assert abs(expected - math.log(delta) - 0.5 * math.log(x.var(axis=0).mean())) > 1e-2


def test_zen_depends_on_the_arch_and_seed_only():
    space = ss.get_space("fmnist")
    code = space.sample_many(1, seed=2)[0].code
    keras.utils.set_random_seed(0)
    model = static.build_static_model(space, code)
    kernel = model.get_layer("stem_conv").get_weights()[0]
    rng = np.random.default_rng(0)
    batch = _batch(rng.normal(size=(4, 28, 28, 1)), [0, 1, 2, 3])
    a = proxies.zen(model, batch, repeats=2, seed=0)
    # The model's own weights are neither used nor changed; the data's values are not used.
    np.testing.assert_array_equal(model.get_layer("stem_conv").get_weights()[0], kernel)
    model.get_layer("stem_conv").set_weights([5.0 * kernel])
    b = proxies.zen(model, _batch(np.zeros((4, 28, 28, 1)), [0, 0, 0, 0]), repeats=2, seed=0)
    assert a == pytest.approx(b, abs=1e-9) and math.isfinite(a)
    assert proxies.zen(model, batch, repeats=2, seed=1) != pytest.approx(a, abs=1e-6)


# ----------------------------------------------------------------------- score_arch


def test_score_arch_is_independent_of_the_order_of_archs():
    space = ss.get_space("fmnist")
    # Two small archs (all depths 2), to keep the test fast.
    a = space.smallest()
    b = ss.Arch(1, (2, 2, 2, 2), 4, ((4, 1), (3, 5), (2, 2), (1, 7)), (4, 5, 2, 7))
    rng = np.random.default_rng(0)
    batch = _batch(rng.normal(size=(4, 28, 28, 1)), rng.integers(0, 10, 4))
    names = ("flops", "params", "grad_norm", "snip", "grasp", "synflow", "naswot", "zen")
    first, seconds = proxies.score_arch(space, a, batch, names, zen_repeats=1)
    proxies.score_arch(space, b, batch, names, zen_repeats=1)
    again, _ = proxies.score_arch(space, a.code, batch, names, zen_repeats=1)
    assert first == again
    assert first["flops"] == space.flops(a) and first["params"] == space.params(a)
    assert all(math.isfinite(v) for v in first.values())
    assert set(seconds) == {"build", *names}
    assert first["synflow"] > 1e10  # a product of |W| over the layers


def test_score_arch_rejects_unknown_proxies():
    with pytest.raises(ValueError, match=r"unknown proxies \['jacob'\]"):
        proxies.score_arch("fmnist", ss.get_space("fmnist").largest(), None, ("jacob",))


# --------------------------------------------------------------------------- config


def test_validate_config():
    from configs import fmnist

    config = fmnist.get_config()
    proxies.validate_config(config.proxies, holdout_size=1000)
    for field, value, message in [
        ("names", ("snip", "snip"), "distinct proxy names"),
        ("names", (), "non-empty tuple"),
        ("names", ("jacob_cov",), "from flops, params"),
        ("batch_size", 1, "an integer >= 2"),
        ("zen_gamma", 0.0, r"a number in \(0.0, inf\]"),
        ("split", "holdout", "'train' or 'test' when data.holdout_size is 0"),
    ]:
        section = config.proxies.to_dict()
        section[field] = value
        with pytest.raises(ValueError, match=rf"config\.proxies\.{field}=.*{message}"):
            proxies.validate_config(section, holdout_size=0)

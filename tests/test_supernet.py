"""The supernet: one trace for every arch, exact extraction, serialization, weight sources."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas import sampling
from tfnas import search_space as ss
from tfnas import static
from tfnas import supernet as supernet_lib

# imagenet is tested at a small resolution: the network is fully convolutional.
TEST_SIZE = {"fmnist": 28, "imagenet": 32, "cifar10": 32, "cifar100": 32}


def _images(space, batch=2, seed=0):
    size = TEST_SIZE[space.name]
    rng = np.random.default_rng(seed)
    return tf.constant(rng.normal(size=(batch, size, size, space.in_channels)), tf.float32)


def _randomize_bn(net, seed=0):
    """Gives BN non-trivial parameters and statistics so that parity tests can fail."""
    rng = np.random.default_rng(seed)
    for v in net.non_trainable_variables + net.trainable_variables:
        if v.path.endswith(("moving_variance", "gamma")):
            v.assign(rng.uniform(0.5, 1.5, size=v.shape).astype(np.float32))
        elif v.path.endswith(("moving_mean", "beta")):
            v.assign(rng.normal(0.0, 0.1, size=v.shape).astype(np.float32))


@pytest.fixture(scope="module", params=["fmnist", "imagenet"])
def net(request):
    keras.utils.set_random_seed(0)
    model = supernet_lib.Supernet(space=request.param, name="supernet")
    model.build()
    _randomize_bn(model)
    return model


def _inference_fn(net):
    size = TEST_SIZE[net.space.name]
    spec = tf.TensorSpec([None, size, size, net.space.in_channels], tf.float32)

    @tf.function(input_signature=[spec, tf.TensorSpec([ss.CODE_LENGTH], tf.int32)])
    def infer(images, arch):
        return net(images, arch=arch, training=False)

    return infer


def _archs(space, n, seed=0):
    return [space.largest(), space.smallest(), *space.sample_many(n, seed)]


def test_one_trace_serves_every_arch(net):
    infer = _inference_fn(net)
    images = _images(net.space)
    for arch in _archs(net.space, 50, seed=1):
        infer(images, supernet_lib.arch_tensor(arch))
    assert infer.experimental_get_tracing_count() == 1


@pytest.mark.slow
def test_one_trace_for_training_calls_of_every_arch(net):
    if net.space.name != "fmnist":
        pytest.skip("the training trace is the same code; one space keeps the suite fast")
    size = TEST_SIZE[net.space.name]
    spec = tf.TensorSpec([None, size, size, 1], tf.float32)

    @tf.function(input_signature=[spec, tf.TensorSpec([52], tf.int32)])
    def train_logits(images, arch):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(net(images, arch=arch, training=True) ** 2)
        return tape.gradient(loss, net.trainable_variables)

    for arch in _archs(net.space, 50, seed=2):
        train_logits(_images(net.space), supernet_lib.arch_tensor(arch))
    assert train_logits.experimental_get_tracing_count() == 1


def test_extracted_subnet_matches_the_supernet(net):
    infer = _inference_fn(net)
    images = _images(net.space, seed=3)
    for arch in _archs(net.space, 20, seed=4):
        model = static.extract_subnet(net, arch, image_size=TEST_SIZE[net.space.name])
        expected = infer(images, supernet_lib.arch_tensor(arch)).numpy()
        got = model(images, training=False).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0, err_msg=arch.code)
        assert model.count_params() == net.space.params(arch), arch.code
        for layer in model.layers:
            assert not type(layer).__module__.startswith("tfnas"), layer


def test_extraction_and_parity_with_weight_copies_and_k_shot():
    """Routing and K-shot go through the same code: extraction still matches."""
    keras.utils.set_random_seed(5)
    net = supernet_lib.Supernet("fmnist", num_copies=3, routing="stage_width", num_kernels=2)
    net.build()
    _randomize_bn(net, seed=5)
    # Make the simplex-net non-uniform so the merge matters.
    for v in net.simplex_net.trainable_variables:
        v.assign(np.random.default_rng(6).normal(0, 0.5, size=v.shape).astype(np.float32))
    infer = _inference_fn(net)
    images = _images(net.space, seed=7)
    for arch in _archs(net.space, 5, seed=8):
        model = static.extract_subnet(net, arch)
        expected = infer(images, supernet_lib.arch_tensor(arch)).numpy()
        # Random BN statistics and simplex weights give logits of ~1e2, so float32
        # round-off is relative to the largest logit, not to each one.
        np.testing.assert_allclose(
            model(images, training=False).numpy(),
            expected,
            atol=1e-6 * np.abs(expected).max(),
            rtol=1e-5,
        )


def test_routing_tables():
    np.testing.assert_array_equal(supernet_lib.routing_table("shared", 1), [0])
    np.testing.assert_array_equal(
        supernet_lib.routing_table("stage_width", 3), [0, 0, 0, 1, 1, 2, 2]
    )
    assert set(supernet_lib.routing_table("depth34", 4)) == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="routing='shared' uses one weight copy"):
        supernet_lib.routing_table("shared", 2)
    with pytest.raises(ValueError, match="num_copies must be in 1..7; received 8"):
        supernet_lib.routing_table("stage_width", 8)
    with pytest.raises(ValueError, match="Unknown routing 'groups'"):
        supernet_lib.routing_table("groups", 1)


def test_copies_follow_the_arch():
    net = supernet_lib.Supernet("fmnist", num_copies=7, routing="stage_width")
    arch = ss.get_space("fmnist").parse("1252233313000000223212122253130000000000006515000000")
    copies = net.copies(supernet_lib.arch_tensor(arch)).numpy()
    # stem digit 3 (stem and stage 1), stage outs 2, 3, 5 (and the classifier follows stage 4).
    np.testing.assert_array_equal(copies, [2, 2, 1, 2, 4, 4])


def test_in_graph_sampler_draws_valid_uniform_archs():
    space = ss.get_space("fmnist")
    sample = tf.function(
        lambda step: sampling.uniform_arch(sampling.member_seed(7, step, 0), space)
    )
    codes = ["".join(map(str, sample(tf.constant(t, tf.int64)).numpy())) for t in range(300)]
    archs = [space.parse(code) for code in codes]  # raises on any invalid code
    assert len(set(codes)) == 300
    depths3 = np.array([a.depths[2] for a in archs])
    assert set(depths3) == set(range(2, 9))
    again = "".join(map(str, sample(tf.constant(5, tf.int64)).numpy()))
    assert again == codes[5]


def test_supernet_round_trips_through_config_and_keras_file(tmp_path):
    keras.utils.set_random_seed(9)
    net = supernet_lib.Supernet("fmnist", num_copies=2, routing="depth34", num_kernels=2)
    images = _images(net.space)
    arch = supernet_lib.arch_tensor(net.space.sample_many(1, 3)[0])
    expected = net(images, arch=arch).numpy()
    clone = supernet_lib.Supernet.from_config(net.get_config())
    assert clone.get_config() == net.get_config()
    path = tmp_path / "supernet.keras"
    net.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, supernet_lib.Supernet)
    np.testing.assert_array_equal(loaded(images, arch=arch).numpy(), expected)


def test_arch_tensor_rejects_bad_input():
    with pytest.raises(ValueError):
        supernet_lib.arch_tensor("12345")
    with pytest.raises(ValueError, match="of shape"):
        supernet_lib.arch_tensor(np.zeros(10, np.int32))


def test_zero_init_residual_starts_every_block_as_its_shortcut():
    """BigNAS §3.2: at initialization only the stem, the shortcuts and the widths of the
    stage outputs matter -- depths and mid widths do not change the logits."""
    keras.utils.set_random_seed(0)
    net = supernet_lib.Supernet(space="fmnist", zero_init_residual=True)
    net.build()
    space = net.space
    deep = space.largest()
    shallow = ss.Arch(1, ss.MIN_DEPTHS, 1, tuple((7,) * d for d in ss.MIN_DEPTHS), (1, 1, 1, 1))
    images = _images(space, batch=4)
    a = net(images, arch=supernet_lib.arch_tensor(deep), training=False)
    b = net(images, arch=supernet_lib.arch_tensor(shallow), training=False)
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    assert float(tf.reduce_max(tf.abs(a))) > 0.0
    gammas = [v for v in net.trainable_variables if v.path.endswith("bn2/gamma")]
    assert gammas and all(not np.any(v.numpy()) for v in gammas)
    clone = supernet_lib.Supernet.from_config(net.get_config())
    assert clone.zero_init_residual
    # Off (the layer default), the same two archs differ.
    plain = supernet_lib.Supernet(space="fmnist")
    plain.build()
    c = plain(images, arch=supernet_lib.arch_tensor(deep), training=False)
    d = plain(images, arch=supernet_lib.arch_tensor(shallow), training=False)
    assert np.max(np.abs(c.numpy() - d.numpy())) > 1e-3

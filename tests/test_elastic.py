"""Elastic layers: slicing, K-shot merging, weight copies, BN statistics, serialization."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas import elastic


def _built(layer):
    layer.build()
    return layer


def test_conv_uses_first_channels_of_the_kernel():
    keras.utils.set_random_seed(0)
    conv = _built(elastic.ElasticConv2D(6, 8, 3, strides=2, name="c"))
    x = tf.random.normal([2, 9, 9, 4])
    y = conv(x, filters=tf.constant(5))
    expected = tf.nn.conv2d(x, conv.kernel[0, 0, :, :, :4, :5], 2, "SAME")
    assert y.shape == (2, 5, 5, 5)
    np.testing.assert_array_equal(y.numpy(), expected.numpy())


def test_k_shot_merge_is_what_the_convolution_sees():
    """K=2 with a fixed simplex code: the conv sees lambda_0 W_0 + lambda_1 W_1."""
    keras.utils.set_random_seed(1)
    conv = _built(elastic.ElasticConv2D(4, 6, 3, num_kernels=2, name="c"))
    x = tf.random.normal([2, 5, 5, 3])
    mix = tf.constant([0.3, 0.7])
    y = conv(x, filters=4, mix=mix)
    w = conv.kernel.numpy()[0]
    merged = 0.3 * w[0, :, :, :3, :4] + 0.7 * w[1, :, :, :3, :4]
    expected = tf.nn.conv2d(x, merged, 1, "SAME")
    np.testing.assert_allclose(y.numpy(), expected.numpy(), atol=1e-6)
    # And the dictionaries differ, so the test would see a wrong merge.
    assert not np.allclose(w[0], w[1])


def test_k_greater_than_one_needs_a_mix():
    conv = _built(elastic.ElasticConv2D(4, 6, 3, num_kernels=2, name="c"))
    with pytest.raises(ValueError, match="num_kernels=2 weight dictionaries but no `mix`"):
        conv(tf.zeros([1, 4, 4, 4]))


def test_copy_selects_an_independent_weight_copy():
    keras.utils.set_random_seed(2)
    conv = _built(elastic.ElasticConv2D(4, 4, 1, num_copies=3, name="c"))
    x = tf.random.normal([1, 3, 3, 4])
    outs = [conv(x, copy=tf.constant(c)).numpy() for c in range(3)]
    for c in range(3):
        np.testing.assert_allclose(
            outs[c], tf.nn.conv2d(x, conv.kernel[c, 0], 1, "SAME").numpy(), atol=1e-6
        )
    assert not np.allclose(outs[0], outs[1])


def test_initializer_uses_the_fan_in_of_one_kernel():
    keras.utils.set_random_seed(3)
    conv = _built(elastic.ElasticConv2D(64, 64, 3, num_copies=4, num_kernels=2, name="c"))
    std = conv.kernel.numpy().std()
    # he_normal: std = sqrt(2 / fan_in) with fan_in = 3 * 3 * 64 (truncated normal).
    assert std == pytest.approx(np.sqrt(2.0 / (9 * 64)), rel=0.1)


def test_batch_norm_training_updates_only_active_channels():
    bn = _built(elastic.ElasticBatchNorm(6, momentum=0.5, name="bn"))
    x = tf.random.normal([8, 3, 3, 4]) * 2.0 + 1.0
    y = bn(x, training=True)
    mean, var = tf.nn.moments(x, [0, 1, 2])
    np.testing.assert_allclose(
        y.numpy(), ((x - mean) / tf.sqrt(var + 1e-5)).numpy(), atol=1e-5
    )
    moving_mean = bn.moving_mean.numpy()[0]
    np.testing.assert_allclose(moving_mean[:4], 0.5 * mean.numpy(), atol=1e-6)
    np.testing.assert_array_equal(moving_mean[4:], 0.0)
    np.testing.assert_array_equal(bn.moving_variance.numpy()[0, 4:], 1.0)


def test_batch_norm_momentum_one_keeps_statistics():
    bn = _built(elastic.ElasticBatchNorm(4, momentum=1.0, name="bn"))
    bn(tf.random.normal([4, 2, 2, 4]) + 3.0, training=True)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), 0.0)


def test_batch_norm_cumulative_average_with_call_momentum():
    bn = _built(elastic.ElasticBatchNorm(3, name="bn"))
    batches = [tf.random.normal([4, 2, 2, 3]) + i for i in range(3)]
    for n, x in enumerate(batches):
        bn(x, training=True, momentum=n / (n + 1))
    means = np.mean([tf.reduce_mean(x, [0, 1, 2]).numpy() for x in batches], axis=0)
    np.testing.assert_allclose(bn.moving_mean.numpy()[0], means, atol=1e-5)


def test_batch_norm_inference_uses_moving_statistics_of_the_copy():
    bn = _built(elastic.ElasticBatchNorm(3, num_copies=2, name="bn"))
    bn.moving_mean.assign(np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]], np.float32))
    y = bn(tf.ones([1, 1, 1, 2]) * 5.0, copy=1, training=False)
    np.testing.assert_allclose(y.numpy()[0, 0, 0], [4.0, 3.0], rtol=1e-4)


def test_dense_uses_first_input_features():
    keras.utils.set_random_seed(4)
    dense = _built(elastic.ElasticDense(8, 3, name="d"))
    x = tf.random.normal([2, 5])
    np.testing.assert_allclose(
        dense(x).numpy(), (x @ dense.kernel[0, :5] + dense.bias[0]).numpy(), atol=1e-6
    )


def test_identity_block_rejects_shape_change():
    with pytest.raises(ValueError, match="identity shortcut needs strides=1"):
        elastic.ElasticResidualBlock(8, 8, 16, strides=1, projection=False)


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="`filters` must be a positive int, received 0"):
        elastic.ElasticConv2D(4, 0, 3)
    with pytest.raises(ValueError, match="momentum must be in"):
        elastic.ElasticBatchNorm(4, momentum=1.5)


LAYERS = [
    lambda: elastic.ElasticConv2D(4, 6, 3, strides=2, num_copies=2, num_kernels=2, name="c"),
    lambda: elastic.ElasticBatchNorm(6, num_copies=2, momentum=0.9, epsilon=1e-3, name="bn"),
    lambda: elastic.ElasticDense(6, 3, num_copies=2, name="d"),
    lambda: elastic.ElasticResidualBlock(4, 6, 8, 2, True, 2, 1, 0.9, 1e-5, name="b"),
    lambda: elastic.ElasticStage(4, 6, 8, 2, 3, strides=2, name="s"),
    lambda: elastic.SimplexNet(3, hidden=8, name="simplex"),
]


@pytest.mark.parametrize("make", LAYERS, ids=lambda f: type(f()).__name__)
def test_get_config_round_trips(make):
    layer = make()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    # Registered, so generic deserialization finds the class too.
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is type(layer)
    assert revived.get_config() == config


@pytest.mark.parametrize("begin, size", [([0, 0, 0, 0, 0, 0], [1, 1, 3, 3, 5, 7]),
                                         ([1, 0, 0, 0, 0, 0], [1, 2, 3, 3, 2, 1]),
                                         ([2, 1, 0, 0, 0, 0], [1, 1, 3, 3, 6, 8])])
def test_active_slice_has_the_values_and_gradient_of_slicing(begin, size):
    weights = tf.random.stateless_normal([3, 2, 3, 3, 6, 8], seed=[1, 2])
    upstream = tf.random.stateless_normal(size, seed=[3, 4])
    begin_t, size_t = tf.constant(begin), tf.constant(size)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(weights)
        ours = elastic.active_slice(weights, begin_t, size_t)
        reference = tf.slice(weights, begin_t, size_t)
        loss_ours = tf.reduce_sum(ours * upstream)
        loss_ref = tf.reduce_sum(reference * upstream)
    np.testing.assert_array_equal(ours.numpy(), reference.numpy())
    np.testing.assert_array_equal(
        tape.gradient(loss_ours, weights).numpy(), tape.gradient(loss_ref, weights).numpy()
    )

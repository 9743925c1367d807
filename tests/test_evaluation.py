"""tfnas.evaluation: BN recalibration against the true batch statistics, EMA mode,
determinism, trainable weights untouched.

The reference statistics come from the *plain* Keras model of the arch (`extract_subnet`)
run in training mode on the same batch: a probe model exposes the input of every
BatchNormalization layer (the output of the layer feeding it), and the mean and biased
variance of that input over (batch, height, width) is what the recalibrated moving
statistics must be. Only the active channels of the arch are checked (inactive channels
and other archs' statistics are not part of the contract).
"""

import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas import elastic
from tfnas import evaluation
from tfnas import search_space as ss
from tfnas import static
from tfnas import supernet as supernet_lib

SEED = 0
BATCH = 24
NUM_RECAL = 3
EVAL_SIZES = (24, 13)  # a short last batch, as a split that does not divide evenly
NUM_EVAL_IMAGES = sum(EVAL_SIZES)
TOL = dict(rtol=1e-5, atol=1e-5)


def _build_supernet():
    """A fresh fmnist supernet with random BN affine parameters and garbage moving stats.

    gamma/beta away from (1, 0) make every BN's input depend on the previous BN's affine
    transform; moving statistics far from any batch's show that the first recalibration
    batch overwrites whatever was there.
    """
    keras.utils.set_random_seed(SEED)
    net = supernet_lib.Supernet(space="fmnist")
    net.build()
    rng = np.random.default_rng(SEED)
    for layer in _bn_layers(net):
        shape = tuple(layer.gamma.shape)
        layer.gamma.assign(rng.uniform(0.5, 1.5, shape).astype(np.float32))
        layer.beta.assign(rng.normal(0.0, 0.3, shape).astype(np.float32))
        layer.moving_mean.assign(rng.normal(5.0, 1.0, shape).astype(np.float32))
        layer.moving_variance.assign(rng.uniform(20.0, 30.0, shape).astype(np.float32))
    return net


def _bn_layers(net):
    return [x for x in net._flatten_layers() if isinstance(x, elastic.ElasticBatchNorm)]


def _batches(sizes, seed):
    rng = np.random.default_rng(seed)
    return [
        (
            rng.normal(0.5, 0.3, (size, 28, 28, 1)).astype(np.float32),
            rng.integers(0, 10, size).astype(np.int32),
        )
        for size in sizes
    ]


@pytest.fixture(scope="module")
def space():
    return ss.get_space("fmnist")


@pytest.fixture(scope="module")
def archs(space):
    return {
        "largest": space.largest(),
        "smallest": space.smallest(),
        "random": space.sample_many(1, seed=7)[0],
    }


@pytest.fixture(scope="module")
def data():
    return _batches([BATCH] * NUM_RECAL, seed=1), _batches(EVAL_SIZES, seed=2)


@pytest.fixture(scope="module")
def net():
    return _build_supernet()


@pytest.fixture(scope="module")
def evaluator(net, data):
    recal, evals = data
    return evaluation.SubnetEvaluator(net, recal, evals, mode="cumulative")


@contextlib.contextmanager
def _recal_batches(evaluator, batches):
    """Recalibrate with ``batches`` (same traced function: the batch dim is None)."""
    saved = evaluator.recal_batches
    evaluator.recal_batches = list(batches)
    try:
        yield
    finally:
        evaluator.recal_batches = saved


def _moving_stats(model):
    """{bn name: (moving_mean, moving_variance)} of a plain model (copies)."""
    return {
        layer.name: (layer.moving_mean.numpy(), layer.moving_variance.numpy())
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }


def _batch_stats(model, images):
    """{bn name: (mean, biased var)} of each BN layer's input, model in training mode.

    Runs a probe model (same layers) whose outputs are the BN inputs. Training mode updates
    the plain model's moving statistics: read them (`_moving_stats`) before.
    """
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    probe = keras.Model(model.input, [layer.input for layer in bns])
    outputs = probe(images, training=True)
    stats = {}
    for layer, x in zip(bns, outputs):
        x = np.asarray(x, np.float64)
        mean = x.mean(axis=(0, 1, 2))
        stats[layer.name] = (mean, ((x - mean) ** 2).mean(axis=(0, 1, 2)))
    return stats


def _assert_stats_equal(moving, expected, code):
    assert set(moving) == set(expected)
    # The stem BN and the deepest BN of the arch at least: here every BN layer.
    assert "stem_bn" in moving and any(name.startswith("stage4_") for name in moving)
    for name, (mean, var) in expected.items():
        got_mean, got_var = moving[name]
        assert got_mean.shape == mean.shape, name
        np.testing.assert_allclose(got_mean, mean, **TOL, err_msg=f"{code} {name} mean")
        np.testing.assert_allclose(got_var, var, **TOL, err_msg=f"{code} {name} variance")


def _average(per_batch):
    names = per_batch[0].keys()
    return {
        n: tuple(np.mean([s[n][i] for s in per_batch], axis=0) for i in range(2)) for n in names
    }


@pytest.mark.parametrize("which", ["largest", "smallest", "random"])
def test_one_batch_gives_the_true_batch_statistics(net, evaluator, data, archs, which):
    arch = archs[which]
    images = data[0][0][0]
    with _recal_batches(evaluator, data[0][:1]):
        evaluator.recalibrate(arch)
    model = static.extract_subnet(net, arch)
    moving = _moving_stats(model)
    _assert_stats_equal(moving, _batch_stats(model, images), which)


@pytest.mark.parametrize("which", ["largest", "random"])
def test_cumulative_mode_averages_the_per_batch_statistics(net, evaluator, data, archs, which):
    arch = archs[which]
    evaluator.recalibrate(arch)  # all NUM_RECAL batches
    model = static.extract_subnet(net, arch)
    moving = _moving_stats(model)
    per_batch = [_batch_stats(model, images) for images, _ in data[0]]
    _assert_stats_equal(moving, _average(per_batch), which)
    # Not the statistics of the first or last batch alone.
    assert not np.allclose(moving["stem_bn"][1], per_batch[0]["stem_bn"][1], **TOL)
    assert not np.allclose(moving["stem_bn"][1], per_batch[-1]["stem_bn"][1], **TOL)


def test_ema_mode_follows_the_keras_momentum_formula(net, data, archs):
    momentum = 0.7
    ema = evaluation.SubnetEvaluator(net, data[0], data[1], mode="ema", ema_momentum=momentum)
    arch = archs["random"]
    ema.recalibrate(arch)
    model = static.extract_subnet(net, arch)
    moving = _moving_stats(model)
    per_batch = [_batch_stats(model, images) for images, _ in data[0]]
    expected = {}
    for name in per_batch[0]:
        mean, var = per_batch[0][name]  # the first batch resets (momentum 0)
        for stats in per_batch[1:]:
            mean = momentum * mean + (1.0 - momentum) * stats[name][0]
            var = momentum * var + (1.0 - momentum) * stats[name][1]
        expected[name] = (mean, var)
    _assert_stats_equal(moving, expected, "ema")
    assert not np.allclose(moving["stem_bn"][1], _average(per_batch)["stem_bn"][1], **TOL)


def test_batch_momentum_schedule():
    assert [evaluation.batch_momentum(i, "cumulative", 0.9) for i in range(4)] == [
        0.0,
        0.5,
        2 / 3,
        0.75,
    ]
    assert [evaluation.batch_momentum(i, "ema", 0.8) for i in range(3)] == [0.0, 0.8, 0.8]
    with pytest.raises(ValueError, match="Unknown BN recalibration mode 'median'"):
        evaluation.batch_momentum(0, "median", 0.9)


def test_recalibration_leaves_trainable_weights_unchanged(net, evaluator, archs):
    before = [v.numpy().copy() for v in net.trainable_weights]
    stats_before = [layer.moving_mean.numpy().copy() for layer in _bn_layers(net)]
    for arch in archs.values():
        evaluator.recalibrate(arch)
    after = [v.numpy().copy() for v in net.trainable_weights]
    assert len(before) == len(after) > 0
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)
    # ... while the moving statistics did change.
    stats_after = [layer.moving_mean.numpy().copy() for layer in _bn_layers(net)]
    assert any(not np.array_equal(b, a) for b, a in zip(stats_before, stats_after))


def test_accuracy_is_deterministic_and_order_independent(net, evaluator, data, archs):
    codes = [a.code for a in archs.values()]
    first = {code: evaluator.accuracy(code) for code in codes}
    # A second, identically built supernet and evaluator; the archs in reverse order.
    other = evaluation.SubnetEvaluator(_build_supernet(), data[0], data[1])
    second = {code: other.accuracy(code) for code in reversed(codes)}
    assert second == first
    # Scoring the first arch again after the others changes nothing.
    assert evaluator.accuracy(codes[0]) == first[codes[0]]
    for acc in first.values():
        assert 0.0 <= acc <= 1.0
        assert (acc * NUM_EVAL_IMAGES) == pytest.approx(round(acc * NUM_EVAL_IMAGES))


def test_accuracy_agrees_with_the_extracted_model(net, evaluator, data, archs):
    arch = archs["random"]
    acc = evaluator.accuracy(arch)  # recalibrates, then scores in inference mode
    model = static.extract_subnet(net, arch)
    hits = total = 0
    for images, labels in data[1]:
        logits = np.asarray(model(images, training=False))
        hits += int(np.sum(logits.argmax(-1) == labels))
        total += len(labels)
    # Bit-level differences of the two graphs may flip a near-tied argmax, at most once.
    assert abs(acc - hits / total) <= 1.0 / total


# ------------------------------------------------- the per-batch reference path (issue 17)


@pytest.fixture(scope="module")
def reference(net, data):
    """Scores the way `tfnas.evaluation` did before scoring became one graph call per arch:
    one traced call per recalibration batch (momentum n / (n + 1) from Python), one per
    evaluation batch, hits summed in Python. Returns ``arch -> accuracy``."""
    recal, evals = data
    image_spec = tf.TensorSpec([None, 28, 28, 1], tf.float32)
    arch_spec = tf.TensorSpec([52], tf.int32)

    @tf.function(input_signature=[image_spec, arch_spec, tf.TensorSpec([], tf.float32)])
    def recal_step(images, arch, momentum):
        net(images, arch=arch, training=True, bn_momentum=momentum)
        return tf.constant(0)

    @tf.function(input_signature=[image_spec, tf.TensorSpec([None], tf.int32), arch_spec])
    def correct(images, labels, arch):
        logits = net(images, arch=arch, training=False)
        hits = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
        return tf.reduce_sum(tf.cast(hits, tf.int32))

    def accuracy(arch):
        arch = supernet_lib.arch_tensor(arch)
        for n, (images, _) in enumerate(recal):
            recal_step(images, arch, tf.constant(n / (n + 1.0), tf.float32))  # 0, 1/2, 2/3
        hits = sum(int(correct(images, labels, arch)) for images, labels in evals)
        return hits / NUM_EVAL_IMAGES

    return accuracy


def _all_moving_stats(net):
    return [v.numpy().copy() for layer in _bn_layers(net)
            for v in (layer.moving_mean, layer.moving_variance)]


def _restore_moving_stats(net, values):
    variables = [v for layer in _bn_layers(net) for v in (layer.moving_mean, layer.moving_variance)]
    for var, value in zip(variables, values):
        var.assign(value)


def test_scores_and_statistics_equal_the_per_batch_reference(net, evaluator, archs, reference):
    """One graph call per arch gives bit for bit the per-batch path's statistics and score:
    the same ops on the same batches in the same order (a graph loop instead of Python)."""
    for which, arch in archs.items():
        start = _all_moving_stats(net)
        expected_acc = reference(arch)
        expected_stats = _all_moving_stats(net)
        _restore_moving_stats(net, start)
        assert evaluator.accuracy(arch) == expected_acc, which
        for got, expected in zip(_all_moving_stats(net), expected_stats):
            np.testing.assert_array_equal(got, expected, err_msg=which)


def test_several_archs_per_call_score_as_one_per_call_with_one_trace(evaluator, archs, reference):
    codes = [a.code for a in archs.values()]
    expected = [reference(code) for code in codes]
    # Some archs twice and in another order: nothing leaks from one arch to the next.
    assert evaluator.accuracies(codes) == expected
    assert evaluator.accuracies(codes[::-1] + codes[:1]) == expected[::-1] + expected[:1]
    assert [evaluator.accuracy(code) for code in codes] == expected
    assert evaluator.score_many(codes, archs_per_call=2) == dict(zip(codes, expected))
    assert evaluator.accuracies([]) == []
    # 1, 2, 3 and 4 archs per call, 8 archs in all: one trace of the scoring function.
    assert evaluator.trace_counts["score"] == 1
    assert evaluator.num_eval_examples == NUM_EVAL_IMAGES


def test_a_streamed_evaluation_dataset_scores_as_the_cached_batches(evaluator, data, archs,
                                                                     reference):
    evals = data[1]
    arch = archs["random"]
    dataset = tf.data.Dataset.from_tensor_slices(
        (np.concatenate([b[0] for b in evals]), np.concatenate([b[1] for b in evals]))
    ).batch(EVAL_SIZES[0])  # the same batches, read batch by batch
    expected = reference(arch)
    try:
        evaluator.eval_batches = dataset  # as from_datasets(..., cache_eval=False)
        assert evaluator.num_eval_examples is None
        assert evaluator.accuracy(arch) == expected
        evaluator.eval_batches = []
        with pytest.raises(ValueError, match="The evaluation data is empty"):
            evaluator.accuracy(arch)
    finally:
        evaluator.eval_batches = evals
    assert evaluator.accuracy(arch) == expected


# ---------------------------------------------------------------- fingerprint of a score


def _fingerprint_config():
    from configs import fmnist

    return fmnist.get_config("tiny")


def test_fingerprint_changes_with_every_input_of_the_evaluator(tmp_path):
    """The supernet's bytes, the data, the recalibration batches (and the seed that draws
    them) and the evaluation split each change the fingerprint; logging fields do not."""
    supernet = tmp_path / "supernet.keras"
    supernet.write_bytes(b"weights A")
    base = evaluation.fingerprint(_fingerprint_config(), supernet)
    assert len(base) == 16

    other = tmp_path / "other.keras"
    other.write_bytes(b"weights B")
    assert evaluation.fingerprint(_fingerprint_config(), other) != base

    changes = {
        "seed": lambda c: setattr(c, "seed", 7),
        "data": lambda c: setattr(c.data, "holdout_size", 16),
        "recalibration batches": lambda c: setattr(c.evaluate.recalibration, "num_batches", 3),
        "recalibration augment": lambda c: setattr(c.evaluate.recalibration, "augment", True),
        "evaluation split": lambda c: setattr(c.evaluate, "split", "test"),
        "evaluation batches": lambda c: setattr(c.evaluate, "num_batches", 1),
    }
    for name, change in changes.items():
        config = _fingerprint_config()
        change(config)
        assert evaluation.fingerprint(config, supernet) != base, name
    for same in (lambda c: setattr(c.evaluate, "log_every", 99),
                 lambda c: setattr(c.evaluate, "codes", "x.txt")):
        config = _fingerprint_config()
        same(config)
        assert evaluation.fingerprint(config, supernet) == base


def test_evaluator_spec_names_the_recalibration_seed():
    config = _fingerprint_config()
    config.seed = 4
    spec = evaluation.evaluator_spec(config)
    assert spec["recalibration"]["seed"] == 5
    assert spec["evaluation"]["split"] == config.evaluate.split
    assert evaluation.evaluator_spec(config, eval_batches=1)["evaluation"]["num_batches"] == 1

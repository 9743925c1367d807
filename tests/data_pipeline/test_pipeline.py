"""Tests of tfnas.data.pipeline: batching, determinism, cardinality, starting at a batch."""

import numpy as np
import pytest
import tensorflow as tf

from tfnas import data

from .helpers import ALL_AUGMENT
from .helpers import NO_AUGMENT
from .helpers import all_images
from .helpers import synthetic
from .helpers import take


def test_batch_size_not_divisible_by_replicas():
    with pytest.raises(ValueError) as info:
        data.build_dataset(synthetic(), "train", 100, training=True, num_replicas=3)
    assert str(info.value) == (
        "global batch_size 100 is not divisible by num_replicas 3: each replica must get the "
        "same number of images. Use a multiple of 3, e.g. 99 or 102 "
        "(--config.train.batch_size).")
    with pytest.raises(ValueError, match="e.g. 4 \\(--config"):
        data.build_dataset(synthetic(), "train", 2, training=True, num_replicas=4)
    ds = data.build_dataset(synthetic(), "train", 12, training=True, num_replicas=4)
    assert ds.element_spec[0].shape.as_list() == [12, 28, 28, 1]


def test_same_seed_same_batches_other_seed_differs():
    cfg = synthetic(augment=ALL_AUGMENT)
    first = take(data.build_dataset(cfg, "train", 16, training=True, seed=3), 8)  # > 1 epoch
    second = take(data.build_dataset(cfg, "train", 16, training=True, seed=3), 8)
    for (x1, y1), (x2, y2) in zip(first, second):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    other = take(data.build_dataset(cfg, "train", 16, training=True, seed=4), 8)
    assert not np.array_equal(first[0][0], other[0][0])
    assert not np.array_equal(first[0][1], other[0][1])  # another order too


def test_eval_is_unaugmented_and_ordered():
    cfg = synthetic(augment=ALL_AUGMENT)
    a = all_images(data.build_dataset(cfg, "test", 5, training=False, seed=0))
    b = all_images(data.build_dataset(synthetic(augment=NO_AUGMENT), "test", 7, training=False,
                                      seed=9))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (24, 28, 28, 1)
    # Normalised by the config's mean/std: the synthetic images have mean ~0.5, std ~0.25.
    assert abs(a.mean()) < 0.2 and 0.7 < a.std() < 1.3


def test_training_batches_are_static_eval_keeps_remainder():
    cfg = synthetic()
    train = data.build_dataset(cfg, "train", 16, training=True)
    assert train.element_spec[0].shape.as_list() == [16, 28, 28, 1]
    assert train.element_spec[1].shape.as_list() == [16]
    test = list(data.build_dataset(cfg, "test", 10, training=False))
    assert [len(y) for _, y in test] == [10, 10, 4]


@pytest.mark.parametrize("split, count", [("train", 80), ("holdout", 16), ("test", 24)])
def test_cardinality_is_known(split, count):
    cfg = synthetic(holdout_size=16)
    one_pass = data.build_dataset(cfg, split, 10, training=False)
    assert int(one_pass.cardinality()) == -(-count // 10) == sum(1 for _ in one_pass)
    two = data.build_dataset(cfg, split, 10, training=True, repeat=2)
    assert int(two.cardinality()) == 2 * count // 10 == sum(1 for _ in two)
    forever = data.build_dataset(cfg, split, 10, training=True)
    assert int(forever.cardinality()) == int(tf.data.INFINITE_CARDINALITY)


# ---------------------------------------------------------------------------------------------
# start_batch: the same stream, from a given batch


def _assert_same_batches(got, expected):
    assert len(got) == len(expected)
    for (x1, y1), (x2, y2) in zip(got, expected):
        assert x1.shape == x2.shape and x1.tobytes() == x2.tobytes()  # bit for bit
        np.testing.assert_array_equal(y1, y2)


def _dataset_ops(ds) -> set:
    """The op names of a dataset's graph, including those in its functions (flat_map's)."""
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(ds._as_serialized_graph().numpy())
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops.update(node.op for node in function.node_def)
    return ops


# 80 training images: with 16 an epoch is 5 batches; with 24 batches straddle epochs.
@pytest.mark.parametrize("batch_size, starts", [(16, (1, 5, 7, 13)), (24, (1, 3, 4, 10))])
def test_start_batch_equals_skip_training(batch_size, starts):
    cfg = synthetic(augment=ALL_AUGMENT)
    reference = take(data.build_dataset(cfg, "train", batch_size, training=True, seed=3),
                     max(starts) + 4)
    for start in starts:
        ds = data.build_dataset(cfg, "train", batch_size, training=True, seed=3,
                                start_batch=start)
        assert int(ds.cardinality()) == int(tf.data.INFINITE_CARDINALITY)
        _assert_same_batches(take(ds, 4), reference[start:start + 4])


@pytest.mark.parametrize("start", [0, 2, 3, 9, 10, 11, 30])
def test_start_batch_equals_skip_finite_shuffled(start):
    # BN-recalibration-like: shuffled, unaugmented; 3 epochs of 80 in batches of 23 are 10
    # full batches and one of 10, which straddle the epochs.
    cfg = synthetic()
    kwargs = dict(training=False, shuffle=True, seed=1, repeat=3)
    skipped = data.build_dataset(cfg, "train", 23, **kwargs).skip(start)
    ds = data.build_dataset(cfg, "train", 23, start_batch=start, **kwargs)
    expected = take(skipped, 100)
    assert len(expected) == max(0, 11 - start)
    assert int(ds.cardinality()) == len(expected)
    _assert_same_batches(take(ds, 100), expected)


def test_start_batch_huge_is_computed_not_iterated():
    cfg = synthetic(augment=ALL_AUGMENT)
    start = 10**9 + 3  # 24 * 10**9 + 72 examples: epoch 3 * 10**8, example 72 of 80
    huge = data.build_dataset(cfg, "train", 24, training=True, seed=3, start_batch=start)
    # Nothing in the pipeline drops examples: the start is computed, not reached.
    assert "SkipDataset" in _dataset_ops(huge.skip(2))  # (the check sees a skip)
    assert not _dataset_ops(huge) & {"SkipDataset", "FilterDataset", "TakeDataset"}
    later = data.build_dataset(cfg, "train", 24, training=True, seed=3, start_batch=start + 2)
    _assert_same_batches(take(later, 2), take(huge.skip(2), 2))
    x, y = take(huge, 1)[0]
    assert x.shape == (24, 28, 28, 1) and np.all(np.isfinite(x)) and y.dtype == np.int32
    # Without shuffle and augmentation, batch n holds examples (n * B + j) mod 80, in order.
    plain = data.build_dataset(cfg, "train", 80, training=False)
    plain_x, plain_y = take(plain, 1)[0]
    start = 10**9 + 7  # example 24 * 10**9 + 168: example 8 of epoch 3 * 10**8 + 2
    ordered = data.build_dataset(cfg, "train", 24, training=False, shuffle=False, repeat=True,
                                 start_batch=start)
    got = take(ordered, 4)  # 96 examples: 8..79 of one epoch, 0..23 of the next
    rows = (start * 24 + np.arange(96)) % 80
    assert rows[0] == 8 and rows[-1] == 23
    np.testing.assert_array_equal(np.concatenate([x for x, _ in got]), plain_x[rows])
    np.testing.assert_array_equal(np.concatenate([y for _, y in got]), plain_y[rows])


def test_start_batch_errors():
    with pytest.raises(ValueError, match="start_batch must be an integer >= 0, got -1"):
        data.build_dataset(synthetic(), "train", 8, training=True, start_batch=-1)
    with pytest.raises(ValueError, match="start_batch must be an integer >= 0, got 2.0"):
        data.build_dataset(synthetic(), "train", 8, training=True, start_batch=2.0)

"""Tests of tfnas.data.sources: IDX directories, TFDS (mocked), and failing fast offline."""

import os
import time

import numpy as np
import pytest
import tensorflow as tf

from tfnas import data
from tfnas.data import sources

from .helpers import all_images
from .helpers import fingerprints
from .helpers import hashes
from .helpers import take
from .helpers import write_fmnist_dir


def test_fashion_mnist_from_data_dir(tmp_path):
    write_fmnist_dir(tmp_path)
    cfg = data.default_data_config("fashion_mnist")
    cfg.data_dir = str(tmp_path)
    cfg.holdout_size = 4
    info = data.dataset_info(cfg)  # counts from the IDX headers
    assert (info["num_train"], info["num_holdout"], info["num_test"]) == (8, 4, 5)
    assert len(all_images(data.build_dataset(cfg, "train", 3, training=False))) == 8
    assert len(all_images(data.build_dataset(cfg, "holdout", 3, training=False))) == 4
    assert len(all_images(data.build_dataset(cfg, "test", 3, training=False))) == 5


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path):
    cfg = data.default_data_config("fashion_mnist")
    cfg.data_dir = str(tmp_path / "idx")
    cfg.tfds_data_dir = str(tmp_path / "tfds")
    os.makedirs(cfg.data_dir)
    start = time.monotonic()
    with pytest.raises(data.DatasetUnavailableError) as info:
        data.build_dataset(cfg, "train", 8, training=True)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "apt-get install dataset-fashion-mnist" in message
    assert f"appear in {data.DEFAULT_FASHION_MNIST_DIR}" in message
    assert "--config.data.data_dir=DIR" in message
    assert "tfds build fashion_mnist" in message and "download=True" in message
    assert "missing Fashion-MNIST IDX files" in message and cfg.data_dir in message
    assert cfg.tfds_data_dir in message


def test_offline_cifar10_fails_fast_with_instructions(tmp_path):
    cfg = data.default_data_config("cifar10")
    cfg.tfds_data_dir = str(tmp_path)
    start = time.monotonic()
    with pytest.raises(data.DatasetUnavailableError) as info:
        data.build_dataset(cfg, "train", 8, training=True)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert message.startswith(
        f"dataset 'cifar10' (split 'train') is not available in the TFDS data dir {tmp_path} "
        f"with download=False: AssertionError: Dataset cifar10: could not find data in "
        f"{tmp_path}.")
    assert (f"To fix: prepare it on a machine with internet: `tfds build cifar10 "
            f"--data_dir={tmp_path}`") in message
    assert "--config.data.download=True" in message


def test_offline_imagenet_says_where_the_tars_go(tmp_path):
    cfg = data.default_data_config("imagenet2012")
    cfg.tfds_data_dir = str(tmp_path)
    with pytest.raises(data.DatasetUnavailableError) as info:
        data.build_dataset(cfg, "test", 8, training=False)
    message = str(info.value)
    manual = os.path.join(str(tmp_path), "downloads", "manual")
    assert "dataset 'imagenet2012' (split 'validation')" in message
    assert (f"put both tars (not extracted) in {manual} (set --config.data.manual_dir=DIR"
            in message)
    assert "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar" in message
    assert f"tfds build imagenet2012 --data_dir={tmp_path} --manual_dir={manual}" in message


def test_imagenette_streamed_with_tfds_mock(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    # tfds' mock has 40 examples per split but no split sizes: tell the holdout so.
    monkeypatch.setattr(sources, "_tfds_num_examples", lambda cfg, split: 40)
    cfg = data.default_data_config("imagenette")
    cfg.tfds_data_dir = str(tmp_path)
    cfg.image_size = 32
    cfg.holdout_size = 8
    cfg.augment.color_jitter_prob = 0.5
    with tfds.testing.mock_data(num_examples=40):
        train = all_images(data.build_dataset(cfg, "train", 8, training=False))
        holdout = all_images(data.build_dataset(cfg, "holdout", 8, training=False))
        assert train.shape == (32, 32, 32, 3) and holdout.shape == (8, 32, 32, 3)
        assert not hashes(train) & hashes(holdout)
        a = take(data.build_dataset(cfg, "train", 8, training=True, seed=1), 5)
        b = take(data.build_dataset(cfg, "train", 8, training=True, seed=1), 5)
        for (x1, y1), (x2, y2) in zip(a, b):
            assert x1.shape == (8, 32, 32, 3) and y2.dtype == np.int32
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)
        test_images, test_labels = next(iter(data.build_dataset(cfg, "test", 8,
                                                                training=False)))
        assert test_images.shape == (8, 32, 32, 3) and test_labels.dtype == tf.int32


def test_streamed_start_batch_equals_skip(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(sources, "_tfds_num_examples", lambda cfg, split: 40)
    cfg = data.default_data_config("imagenette")
    cfg.tfds_data_dir = str(tmp_path)
    cfg.image_size = 32
    cfg.holdout_size = 8  # 32 training images: 4 batches of 8 an epoch
    cfg.augment.color_jitter_prob = 0.5
    with tfds.testing.mock_data(num_examples=40):
        reference = take(data.build_dataset(cfg, "train", 8, training=True, seed=1), 7)
        for start in (2, 5):
            ds = data.build_dataset(cfg, "train", 8, training=True, seed=1, start_batch=start)
            got = take(ds, 7 - start)
            assert len(got) == 7 - start
            for (x1, y1), (x2, y2) in zip(got, reference[start:]):
                assert x1.tobytes() == x2.tobytes()
                np.testing.assert_array_equal(y1, y2)


def test_cifar10_in_memory_with_tfds_mock(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    cfg = data.default_data_config("cifar10")
    cfg.tfds_data_dir = str(tmp_path)
    cfg.holdout_size = 10
    with tfds.testing.mock_data(num_examples=40):
        train = fingerprints(data.build_dataset(cfg, "train", 8, training=False))
        holdout = fingerprints(data.build_dataset(cfg, "holdout", 8, training=False))
        images, labels = next(iter(data.build_dataset(cfg, "train", 8, training=True)))
    assert len(train) + len(holdout) == 40 and not train & holdout
    assert images.shape == (8, 32, 32, 3) and labels.dtype == tf.int32

"""Tests of tfnas.data.idx: IDX parsing and the Fashion-MNIST files.

The files are tiny and written by the tests, except in one test of the real Debian
Fashion-MNIST files, skipped when they are not installed.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfnas import data

from .helpers import idx_bytes
from .helpers import write
from .helpers import write_fmnist_dir

REAL_FMNIST = data.DEFAULT_FASHION_MNIST_DIR


def test_load_fashion_mnist_idx_gz_and_plain(tmp_path):
    arrays = write_fmnist_dir(tmp_path)
    loaded = data.load_fashion_mnist_idx(tmp_path)
    x, y = loaded["train"]
    assert x.dtype == np.uint8 and x.shape == (12, 28, 28)
    np.testing.assert_array_equal(x, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(y, arrays["train-labels-idx1-ubyte"])
    xt, yt = loaded["test"]
    assert xt.shape == (5, 28, 28) and yt.shape == (5,)
    np.testing.assert_array_equal(xt, arrays["t10k-images-idx3-ubyte"])


def test_read_idx_plain_equals_gz(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    plain = data.read_idx(write(tmp_path / "a-idx3-ubyte", idx_bytes(array)))
    zipped = data.read_idx(write(tmp_path / "a-idx3-ubyte.gz", idx_bytes(array)))
    np.testing.assert_array_equal(plain, array)
    np.testing.assert_array_equal(zipped, array)


def test_read_idx_bad_magic_names_file(tmp_path):
    payload = bytearray(idx_bytes(np.zeros((2, 28, 28))))
    payload[0] = 0x12  # the magic must start with two zero bytes
    path = write(tmp_path / "train-images-idx3-ubyte.gz", bytes(payload))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: bad IDX magic number "
                                         r"0x12000803"):
        data.read_idx(path)
    payload[0], payload[2] = 0, 0x42  # unknown type code
    path = write(tmp_path / "x-idx3-ubyte", bytes(payload))
    with pytest.raises(ValueError, match=r"x-idx3-ubyte: bad IDX magic number 0x00004203"):
        data.read_idx(path)


def test_read_idx_truncated_and_trailing(tmp_path):
    payload = idx_bytes(np.zeros((3, 4, 4)))
    path = write(tmp_path / "t-idx3-ubyte", payload[:-5])
    with pytest.raises(ValueError, match=r"t-idx3-ubyte: truncated: header shape \(3, 4, 4\) "
                                         r"of uint8 needs 48 data bytes, found 43"):
        data.read_idx(path)
    path = write(tmp_path / "u-idx3-ubyte", payload + b"xx")
    with pytest.raises(ValueError, match="u-idx3-ubyte: trailing bytes"):
        data.read_idx(path)


def test_read_idx_bad_gzip(tmp_path):
    path = tmp_path / "z-idx1-ubyte.gz"
    path.write_bytes(b"not gzip data")
    with pytest.raises(ValueError, match=r"z-idx1-ubyte\.gz: cannot read"):
        data.read_idx(path)


def test_load_fashion_mnist_idx_count_mismatch_and_missing(tmp_path):
    write_fmnist_dir(tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    write(labels, idx_bytes(np.zeros(4)))  # 5 test images, 4 labels
    with pytest.raises(ValueError, match=r"has 5 images but .*t10k-labels-idx1-ubyte has 4 "
                                         r"labels"):
        data.load_fashion_mnist_idx(tmp_path)
    labels.unlink()
    with pytest.raises(FileNotFoundError, match=r"missing Fashion-MNIST IDX files: "
                                                r"t10k-labels-idx1-ubyte\[\.gz\]"):
        data.load_fashion_mnist_idx(tmp_path)


@pytest.mark.skipif(not os.path.isdir(REAL_FMNIST),
                    reason=f"{REAL_FMNIST} missing: apt-get install dataset-fashion-mnist")


def test_real_debian_fashion_mnist():
    loaded = data.load_fashion_mnist_idx(REAL_FMNIST)
    x, y = loaded["train"]
    xt, yt = loaded["test"]
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8
    assert xt.shape == (10000, 28, 28)
    assert y.shape == (60000,) and yt.shape == (10000,)
    assert y.min() == 0 and y.max() == 9 and yt.min() == 0 and yt.max() == 9
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 6000))
    # The hard-coded normalisation constants are the train set's.
    assert abs(x.mean() / 255 - 0.28604) < 1e-4
    info = data.dataset_info(data.default_data_config("fashion_mnist"))
    assert (info["num_train"], info["num_holdout"], info["num_test"]) == (55000, 5000, 10000)
    images, labels = next(iter(data.build_dataset(
        data.default_data_config("fashion_mnist"), "train", 32, training=True)))
    assert images.shape == (32, 28, 28, 1) and labels.dtype == tf.int32

"""Tests of tfnas.data: IDX parsing, splits, determinism, augmentation, error messages.

All data is tiny (written by the tests or synthetic), except one test of the real Debian
Fashion-MNIST files, skipped when they are not installed.
"""

import gzip
import hashlib
import os
import struct
import time

import numpy as np
import pytest
import tensorflow as tf

from tfnas import data

REAL_FMNIST = data.DEFAULT_FASHION_MNIST_DIR


# ---------------------------------------------------------------------------------------------
# helpers


def _idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write(path, payload: bytes) -> str:
    path = str(path)
    if path.endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        with open(path, "wb") as f:
            f.write(payload)
    return path


def _write_fmnist_dir(directory, n_train=12, n_test=5, gz=(True, False, True, False)):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, (n_train,)),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, (n_test,)),
    }
    for (stem, array), zipped in zip(arrays.items(), gz):
        _write(os.path.join(directory, stem + (".gz" if zipped else "")), _idx_bytes(array))
    return arrays


def _synthetic(**overrides):
    cfg = data.default_data_config("synthetic")
    cfg.synthetic.num_train = 96
    cfg.synthetic.num_test = 24
    cfg.holdout_size = 16
    for key, value in overrides.items():
        if key == "augment":
            cfg.augment.update(value)
        elif key == "synthetic":
            cfg.synthetic.update(value)
        else:
            cfg[key] = value
    return cfg


ALL_AUGMENT = {"pad_crop": 2, "flip": True, "color_jitter_prob": 0.5, "rotation_degrees": 15.0}
NO_AUGMENT = {"pad_crop": 0, "flip": False, "random_resized_crop": False,
              "color_jitter_prob": 0.0, "rotation_degrees": 0.0}


def _images(ds) -> np.ndarray:
    return np.concatenate([x.numpy() for x, _ in ds])


def _hashes(images: np.ndarray) -> set:
    return {hashlib.sha1(x.tobytes()).hexdigest() for x in images}


def _fingerprints(ds) -> set:
    return _hashes(_images(ds))


def _take(ds, n):
    return [(x.numpy(), y.numpy()) for x, y in ds.take(n)]


# ---------------------------------------------------------------------------------------------
# IDX files


def test_load_fashion_mnist_idx_gz_and_plain(tmp_path):
    arrays = _write_fmnist_dir(tmp_path)
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
    plain = data.read_idx(_write(tmp_path / "a-idx3-ubyte", _idx_bytes(array)))
    zipped = data.read_idx(_write(tmp_path / "a-idx3-ubyte.gz", _idx_bytes(array)))
    np.testing.assert_array_equal(plain, array)
    np.testing.assert_array_equal(zipped, array)


def test_read_idx_bad_magic_names_file(tmp_path):
    payload = bytearray(_idx_bytes(np.zeros((2, 28, 28))))
    payload[0] = 0x12  # the magic must start with two zero bytes
    path = _write(tmp_path / "train-images-idx3-ubyte.gz", bytes(payload))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: bad IDX magic number "
                                         r"0x12000803"):
        data.read_idx(path)
    payload[0], payload[2] = 0, 0x42  # unknown type code
    path = _write(tmp_path / "x-idx3-ubyte", bytes(payload))
    with pytest.raises(ValueError, match=r"x-idx3-ubyte: bad IDX magic number 0x00004203"):
        data.read_idx(path)


def test_read_idx_truncated_and_trailing(tmp_path):
    payload = _idx_bytes(np.zeros((3, 4, 4)))
    path = _write(tmp_path / "t-idx3-ubyte", payload[:-5])
    with pytest.raises(ValueError, match=r"t-idx3-ubyte: truncated: header shape \(3, 4, 4\) "
                                         r"of uint8 needs 48 data bytes, found 43"):
        data.read_idx(path)
    path = _write(tmp_path / "u-idx3-ubyte", payload + b"xx")
    with pytest.raises(ValueError, match="u-idx3-ubyte: trailing bytes"):
        data.read_idx(path)


def test_read_idx_bad_gzip(tmp_path):
    path = tmp_path / "z-idx1-ubyte.gz"
    path.write_bytes(b"not gzip data")
    with pytest.raises(ValueError, match=r"z-idx1-ubyte\.gz: cannot read"):
        data.read_idx(path)


def test_load_fashion_mnist_idx_count_mismatch_and_missing(tmp_path):
    _write_fmnist_dir(tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    _write(labels, _idx_bytes(np.zeros(4)))  # 5 test images, 4 labels
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


def test_fashion_mnist_from_data_dir(tmp_path):
    _write_fmnist_dir(tmp_path)
    cfg = data.default_data_config("fashion_mnist")
    cfg.data_dir = str(tmp_path)
    cfg.holdout_size = 4
    info = data.dataset_info(cfg)  # counts from the IDX headers
    assert (info["num_train"], info["num_holdout"], info["num_test"]) == (8, 4, 5)
    assert len(_images(data.build_dataset(cfg, "train", 3, training=False))) == 8
    assert len(_images(data.build_dataset(cfg, "holdout", 3, training=False))) == 4
    assert len(_images(data.build_dataset(cfg, "test", 3, training=False))) == 5


# ---------------------------------------------------------------------------------------------
# unavailable data: fail fast with what to do


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


# ---------------------------------------------------------------------------------------------
# splits


def test_holdout_disjoint_from_train_and_fixed():
    cfg = _synthetic()
    train = _fingerprints(data.build_dataset(cfg, "train", 10, training=False))
    holdout = _fingerprints(data.build_dataset(cfg, "holdout", 10, training=False))
    everything = _fingerprints(data.build_dataset(_synthetic(holdout_size=0), "train", 10,
                                                  training=False))
    assert len(everything) == 96  # synthetic images are distinct
    assert len(train) == 80 and len(holdout) == 16
    assert not train & holdout and train | holdout == everything
    # Fixed: the pipeline seed and train_subset do not move the holdout.
    again = _fingerprints(data.build_dataset(cfg, "holdout", 7, training=False, seed=5))
    assert again == holdout
    subset_cfg = _synthetic(train_subset=30)
    subset = _fingerprints(data.build_dataset(subset_cfg, "train", 10, training=False))
    assert len(subset) == 30 and subset < train
    assert _fingerprints(data.build_dataset(subset_cfg, "holdout", 10, training=False)) == holdout
    # data.split_seed picks another holdout.
    other = _fingerprints(data.build_dataset(_synthetic(split_seed=1), "holdout", 10,
                                             training=False))
    assert other != holdout and len(other) == 16
    info = data.dataset_info(subset_cfg)
    assert (info["num_train"], info["num_holdout"], info["num_test"]) == (30, 16, 24)


def test_split_errors():
    with pytest.raises(ValueError, match="split must be one of train, holdout, test, got 'val'"):
        data.build_dataset(_synthetic(), "val", 8, training=False)
    with pytest.raises(ValueError, match="the holdout split is empty: set data.holdout_size > 0"):
        data.build_dataset(_synthetic(holdout_size=0), "holdout", 8, training=False)
    with pytest.raises(ValueError, match="data.holdout_size=96 leaves no training images"):
        data.dataset_info(_synthetic(holdout_size=96))
    with pytest.raises(ValueError, match="data.train_subset=81 is more than the 80 training"):
        data.build_dataset(_synthetic(train_subset=81), "train", 8, training=False)


def test_batch_size_not_divisible_by_replicas():
    with pytest.raises(ValueError) as info:
        data.build_dataset(_synthetic(), "train", 100, training=True, num_replicas=3)
    assert str(info.value) == (
        "global batch_size 100 is not divisible by num_replicas 3: each replica must get the "
        "same number of images. Use a multiple of 3, e.g. 99 or 102 "
        "(--config.train.batch_size).")
    with pytest.raises(ValueError, match="e.g. 4 \\(--config"):
        data.build_dataset(_synthetic(), "train", 2, training=True, num_replicas=4)
    ds = data.build_dataset(_synthetic(), "train", 12, training=True, num_replicas=4)
    assert ds.element_spec[0].shape.as_list() == [12, 28, 28, 1]


# ---------------------------------------------------------------------------------------------
# determinism and augmentation


def test_same_seed_same_batches_other_seed_differs():
    cfg = _synthetic(augment=ALL_AUGMENT)
    first = _take(data.build_dataset(cfg, "train", 16, training=True, seed=3), 8)  # > 1 epoch
    second = _take(data.build_dataset(cfg, "train", 16, training=True, seed=3), 8)
    for (x1, y1), (x2, y2) in zip(first, second):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    other = _take(data.build_dataset(cfg, "train", 16, training=True, seed=4), 8)
    assert not np.array_equal(first[0][0], other[0][0])
    assert not np.array_equal(first[0][1], other[0][1])  # another order too


def test_augmentation_differs_per_epoch_not_per_order():
    cfg = _synthetic(augment=ALL_AUGMENT)
    ds = data.build_dataset(cfg, "train", 80, training=True, seed=0, shuffle=False, repeat=2)
    epoch1, epoch2 = [x for x, _ in _take(ds, 2)]
    assert not np.array_equal(epoch1, epoch2)  # fresh augmentation in the second epoch
    # An example's augmentation depends on (seed, index, epoch), not on its batch.
    small = data.build_dataset(cfg, "train", 8, training=True, seed=0, shuffle=False, repeat=1)
    np.testing.assert_array_equal(_images(small), epoch1)


def test_eval_is_unaugmented_and_ordered():
    cfg = _synthetic(augment=ALL_AUGMENT)
    a = _images(data.build_dataset(cfg, "test", 5, training=False, seed=0))
    b = _images(data.build_dataset(_synthetic(augment=NO_AUGMENT), "test", 7, training=False,
                                   seed=9))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (24, 28, 28, 1)
    # Normalised by the config's mean/std: the synthetic images have mean ~0.5, std ~0.25.
    assert abs(a.mean()) < 0.2 and 0.7 < a.std() < 1.3


def test_flip_only_mirrors_or_keeps_each_image():
    plain = _images(data.build_dataset(_synthetic(augment=NO_AUGMENT), "train", 80,
                                       training=False))
    cfg = _synthetic(augment={**NO_AUGMENT, "flip": True})
    flipped = _images(data.build_dataset(cfg, "train", 80, training=True, shuffle=False,
                                         repeat=1))
    same = np.all(flipped == plain, axis=(1, 2, 3))
    mirrored = np.all(flipped == plain[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored)
    assert 20 < mirrored.sum() < 60


def test_pad_crop_is_a_zero_filled_shift():
    cfg = _synthetic(augment={**NO_AUGMENT, "pad_crop": 3})
    plain = _images(data.build_dataset(cfg, "train", 80, training=False))
    shifted = _images(data.build_dataset(cfg, "train", 80, training=True, shuffle=False,
                                         repeat=1))
    fill = (0.0 - 0.5) / 0.25  # a zero pixel, normalised
    seen = set()
    for original, out in zip(plain, shifted):
        matches = []
        for dy in range(-3, 4):
            for dx in range(-3, 4):
                padded = np.pad(original, [(3, 3), (3, 3), (0, 0)], constant_values=fill)
                crop = padded[3 + dy:3 + dy + 28, 3 + dx:3 + dx + 28]
                if np.allclose(crop, out, atol=1e-5):
                    matches.append((dy, dx))
        assert matches, "augmented image is not a shift of its original by <= 3 px"
        seen.update(matches)
    assert len(seen) > 10


def test_rotation_and_jitter_change_images_mildly():
    plain = _images(data.build_dataset(_synthetic(augment=NO_AUGMENT), "train", 80,
                                       training=False))
    for augment in ({**NO_AUGMENT, "rotation_degrees": 15.0},
                    {**NO_AUGMENT, "color_jitter_prob": 1.0}):
        out = _images(data.build_dataset(_synthetic(augment=augment), "train", 80,
                                         training=True, shuffle=False, repeat=1))
        assert out.shape == plain.shape and np.all(np.isfinite(out))
        changed = ~np.all(np.isclose(out, plain, atol=1e-4), axis=(1, 2, 3))
        assert changed.mean() > 0.9
        corr = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(out, plain)]
        assert np.median(corr) > 0.5  # still the same picture
    # With probability 0.5 about half the images are jittered.
    half = _synthetic(augment={**NO_AUGMENT, "color_jitter_prob": 0.5})
    out = _images(data.build_dataset(half, "train", 80, training=True, shuffle=False,
                                     repeat=1))
    changed = ~np.all(out == plain, axis=(1, 2, 3))
    assert 20 < changed.sum() < 60


@pytest.mark.parametrize("shape, image_size, augment", [
    ((28, 28, 1), 28, ALL_AUGMENT),                                   # Fashion-MNIST-like
    ((32, 32, 3), 32, {"pad_crop": 4, "flip": True}),                 # CIFAR-like
    ((20, 20, 1), 24, ALL_AUGMENT),                                   # small, resized
    ((48, 40, 3), 32, {"random_resized_crop": True, "flip": True,     # ImageNet-style
                       "color_jitter_prob": 0.5}),
])
def test_augmentation_shapes_and_dtypes(shape, image_size, augment):
    cfg = _synthetic(synthetic={"image_shape": shape}, image_size=image_size,
                     augment=augment)
    channels = shape[2]
    info = data.dataset_info(cfg)
    assert info["image_shape"] == (image_size, image_size, channels)
    for split, training in (("train", True), ("holdout", False), ("test", False)):
        ds = data.build_dataset(cfg, split, 8, training=training)
        images, labels = next(iter(ds))
        assert images.shape == (8, image_size, image_size, channels)
        assert images.dtype == tf.float32 and labels.dtype == tf.int32
        assert labels.shape == (8,)
        assert np.all(np.isfinite(images.numpy()))
        assert set(labels.numpy()) <= set(range(10))


def test_training_batches_are_static_eval_keeps_remainder():
    cfg = _synthetic()
    train = data.build_dataset(cfg, "train", 16, training=True)
    assert train.element_spec[0].shape.as_list() == [16, 28, 28, 1]
    assert train.element_spec[1].shape.as_list() == [16]
    test = list(data.build_dataset(cfg, "test", 10, training=False))
    assert [len(y) for _, y in test] == [10, 10, 4]


def test_imagenette_streamed_with_tfds_mock(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    # tfds' mock has 40 examples per split but no split sizes: tell the holdout so.
    monkeypatch.setattr(data, "_tfds_num_examples", lambda cfg, split: 40)
    cfg = data.default_data_config("imagenette")
    cfg.tfds_data_dir = str(tmp_path)
    cfg.image_size = 32
    cfg.holdout_size = 8
    cfg.augment.color_jitter_prob = 0.5
    with tfds.testing.mock_data(num_examples=40):
        train = _images(data.build_dataset(cfg, "train", 8, training=False))
        holdout = _images(data.build_dataset(cfg, "holdout", 8, training=False))
        assert train.shape == (32, 32, 32, 3) and holdout.shape == (8, 32, 32, 3)
        assert not _hashes(train) & _hashes(holdout)
        a = _take(data.build_dataset(cfg, "train", 8, training=True, seed=1), 5)
        b = _take(data.build_dataset(cfg, "train", 8, training=True, seed=1), 5)
        for (x1, y1), (x2, y2) in zip(a, b):
            assert x1.shape == (8, 32, 32, 3) and y2.dtype == np.int32
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)
        test_images, test_labels = next(iter(data.build_dataset(cfg, "test", 8,
                                                                training=False)))
        assert test_images.shape == (8, 32, 32, 3) and test_labels.dtype == tf.int32


def test_cifar10_in_memory_with_tfds_mock(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    cfg = data.default_data_config("cifar10")
    cfg.tfds_data_dir = str(tmp_path)
    cfg.holdout_size = 10
    with tfds.testing.mock_data(num_examples=40):
        train = _fingerprints(data.build_dataset(cfg, "train", 8, training=False))
        holdout = _fingerprints(data.build_dataset(cfg, "holdout", 8, training=False))
        images, labels = next(iter(data.build_dataset(cfg, "train", 8, training=True)))
    assert len(train) + len(holdout) == 40 and not train & holdout
    assert images.shape == (8, 32, 32, 3) and labels.dtype == tf.int32


# ---------------------------------------------------------------------------------------------
# config


def test_default_config_fields():
    cfg = data.default_data_config("fashion_mnist")
    assert set(cfg.keys()) == {
        "dataset", "data_dir", "tfds_data_dir", "manual_dir", "download", "image_size",
        "holdout_size", "train_subset", "split_seed", "mean", "std", "shuffle_buffer",
        "augment", "synthetic"}
    assert set(cfg.augment.keys()) == {"pad_crop", "flip", "random_resized_crop",
                                       "color_jitter_prob", "rotation_degrees"}
    assert set(cfg.synthetic.keys()) == {"num_train", "num_test", "image_shape", "num_classes"}
    assert cfg.data_dir == "/usr/share/datasets/fashion-mnist" and cfg.download is False
    assert cfg.augment.color_jitter_prob == 0.5 and cfg.augment.rotation_degrees == 15.0
    for name in data.DATASETS:
        section = data.default_data_config(name)
        info = data.dataset_info(section)
        assert info["num_classes"] == data.DATASETS[name].num_classes
        assert len(section.mean) in (1, info["image_shape"][2])
    assert data.default_data_config("imagenet2012").augment.random_resized_crop
    assert data.default_data_config("imagenette/160px-v2").image_size == 160


def test_config_errors():
    with pytest.raises(ValueError, match="unknown data.dataset 'mnist': use one of cifar10, "
                                         "cifar100, fashion_mnist, imagenet2012, imagenette, "
                                         "synthetic"):
        data.default_data_config("mnist")
    with pytest.raises(ValueError, match=r"unknown field\(s\) data.augment.cutout"):
        data.dataset_info({"dataset": "synthetic", "augment": {"cutout": 8}})
    with pytest.raises(ValueError, match="data.mean has 2 values but synthetic images have 1 "
                                         "channel"):
        data.dataset_info({"dataset": "synthetic", "mean": (0.5, 0.5)})
    with pytest.raises(ValueError, match="data.augment.color_jitter_prob must be a number in"):
        data.dataset_info({"dataset": "synthetic", "augment": {"color_jitter_prob": 2}})


def test_plain_dict_config_takes_defaults():
    ds = data.build_dataset({"dataset": "synthetic", "synthetic": {"num_train": 40},
                             "holdout_size": 8}, "train", 4, training=False)
    assert len(_images(ds)) == 32


@pytest.mark.parametrize("split, count", [("train", 80), ("holdout", 16), ("test", 24)])
def test_cardinality_is_known(split, count):
    cfg = _synthetic(holdout_size=16)
    one_pass = data.build_dataset(cfg, split, 10, training=False)
    assert int(one_pass.cardinality()) == -(-count // 10) == sum(1 for _ in one_pass)
    two = data.build_dataset(cfg, split, 10, training=True, repeat=2)
    assert int(two.cardinality()) == 2 * count // 10 == sum(1 for _ in two)
    forever = data.build_dataset(cfg, split, 10, training=True)
    assert int(forever.cardinality()) == int(tf.data.INFINITE_CARDINALITY)

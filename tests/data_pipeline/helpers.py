"""Shared helpers of the `tfnas.data` tests: tiny IDX files and synthetic configs."""

import gzip
import hashlib
import os
import struct

import numpy as np

from tfnas import data

ALL_AUGMENT = {"pad_crop": 2, "flip": True, "color_jitter_prob": 0.5, "rotation_degrees": 15.0}
NO_AUGMENT = {"pad_crop": 0, "flip": False, "random_resized_crop": False,
              "color_jitter_prob": 0.0, "rotation_degrees": 0.0}


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """An IDX file's bytes, written by hand (header then uint8 data)."""
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write(path, payload: bytes) -> str:
    """Writes `payload` to `path`, gzipped when the name ends in .gz."""
    path = str(path)
    if path.endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        with open(path, "wb") as f:
            f.write(payload)
    return path


def write_fmnist_dir(directory, n_train=12, n_test=5, gz=(True, False, True, False)):
    """Four random Fashion-MNIST-format IDX files in `directory`; returns their arrays."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, (n_train,)),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, (n_test,)),
    }
    for (stem, array), zipped in zip(arrays.items(), gz):
        write(os.path.join(directory, stem + (".gz" if zipped else "")), idx_bytes(array))
    return arrays


def synthetic(**overrides):
    """A small synthetic config: 96 train (16 holdout, 80 train) and 24 test images."""
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


def all_images(ds) -> np.ndarray:
    """All the images of a finite dataset, concatenated."""
    return np.concatenate([x.numpy() for x, _ in ds])


def hashes(batch: np.ndarray) -> set:
    return {hashlib.sha1(x.tobytes()).hexdigest() for x in batch}


def fingerprints(ds) -> set:
    return hashes(all_images(ds))


def take(ds, n):
    """The first `n` batches as numpy pairs."""
    return [(x.numpy(), y.numpy()) for x, y in ds.take(n)]

"""tf.data input pipelines for tfnas: Fashion-MNIST (IDX files), TFDS datasets, synthetic data.

Every pipeline is described by the `data` section of an experiment config (see
`docs/DESIGN.md`); `default_data_config(dataset)` gives that section with per-dataset defaults.
Library code never reads flags: pass the config section (a `ml_collections.ConfigDict` or a
plain nested dict; missing fields take the dataset's defaults) and plain arguments.

Typical use::

    from tfnas import data

    cfg = data.default_data_config("fashion_mnist")
    train = data.build_dataset(cfg, "train", 256, training=True, seed=0)   # repeats forever
    holdout = data.build_dataset(cfg, "holdout", 500, training=False)      # one pass
    info = data.dataset_info(cfg)   # image_shape, num_classes, num_train, ...
    model.fit(train, steps_per_epoch=info["num_train"] // 256, ...)

Splits:

- ``train``: the official training split minus the holdout; with ``train_subset > 0`` a fixed
  subset of that many images of it.
- ``holdout``: ``holdout_size`` images of the official training split, fixed by
  ``data.split_seed`` (not by the pipeline's ``seed``, so that every stage and every training
  seed scores subnets on the same images). It is disjoint from ``train`` whatever
  ``train_subset`` is: the training split is permuted once with ``split_seed``, the first
  ``holdout_size`` positions are the holdout, the next ``train_subset`` (or all the rest) are
  ``train``.
- ``test``: the official test split (``validation`` for ImageNet and Imagenette).

Batches are ``(images float32 [B, S, S, C] normalised as (x / 255 - mean) / std,
labels int32 [B])`` with ``S = data.image_size``. Augmentation (only with ``training=True``)
uses stateless random ops seeded by ``(seed, example index, epoch)``, and the shuffle order
by ``(seed, epoch)``: two pipelines built with the same arguments yield identical batches,
different seeds differ. In-memory sources (Fashion-MNIST, CIFAR, synthetic) are fully
permuted every epoch by a stateless op, independent of the global TF seed; streamed sources
(Imagenette, ImageNet) use a seeded ``tf.data`` shuffle buffer of ``data.shuffle_buffer``
encoded images, whose order also depends on the global seed (`keras.utils.set_random_seed`).
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import logging
import math
import os
from collections.abc import Mapping
from typing import Any

import ml_collections
import numpy as np
import tensorflow as tf

__all__ = [
    "DATASETS",
    "DEFAULT_FASHION_MNIST_DIR",
    "SPLITS",
    "DatasetUnavailableError",
    "build_dataset",
    "dataset_info",
    "default_data_config",
    "load_fashion_mnist_idx",
    "read_idx",
]

_LOG = logging.getLogger(__name__)

DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
SPLITS = ("train", "holdout", "test")

# Fashion-MNIST IDX file names, as published and as the Debian package ships them.
_FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# Colour jitter strengths (on the [0, 1] pixel scale) used when `augment.color_jitter_prob` fires.
COLOR_JITTER_BRIGHTNESS = 0.2
COLOR_JITTER_CONTRAST = (0.8, 1.2)
# Random-resized-crop ranges (as torchvision) and the ImageNet-style eval crop: the central
# 0.875 of the shorter side (224 of 256), resized to S, whatever S is.
RRC_AREA_RANGE = (0.08, 1.0)
RRC_ASPECT_RANGE = (3.0 / 4.0, 4.0 / 3.0)
EVAL_CROP_FRACTION = 0.875

# Tags mixed into the seeds so that the shuffle and the augmentation streams never coincide.
_SHUFFLE_TAG = 0x5348
_AUGMENT_TAG = 0x4155
# Fixed seed of the synthetic class templates: train and test must share them to be learnable.
_SYNTHETIC_TEMPLATE_SEED = 20240611


class DatasetUnavailableError(ValueError):
    """The dataset's files are not on this machine; the message says how to get them."""


@dataclasses.dataclass(frozen=True)
class _Spec:
    """Static facts about a dataset, so that `dataset_info` needs no data."""

    source_shape: tuple[int | None, int | None, int]  # None: images vary in size
    num_classes: int
    num_train: int
    num_test: int
    test_split: str  # the TFDS split used as `test`
    streamed: bool  # False: loaded into memory as numpy; True: streamed from TFDS files


DATASETS: dict[str, _Spec] = {
    "fashion_mnist": _Spec((28, 28, 1), 10, 60000, 10000, "test", False),
    "cifar10": _Spec((32, 32, 3), 10, 50000, 10000, "test", False),
    "cifar100": _Spec((32, 32, 3), 100, 50000, 10000, "test", False),
    "imagenette": _Spec((None, None, 3), 10, 9469, 3925, "validation", True),
    "imagenet2012": _Spec((None, None, 3), 1000, 1281167, 50000, "validation", True),
    "synthetic": _Spec((28, 28, 1), 10, 512, 128, "test", False),  # sizes come from the config
}

_TFDS_ONLY = ("cifar10", "cifar100", "imagenette", "imagenet2012")

# Per-dataset defaults of `default_data_config`.
# Fashion-MNIST mean/std: over all 60000 * 784 training pixels scaled to [0, 1] (population
# std), computed once from the Debian IDX files with numpy:
#   x = IDX train images / 255; x.mean() = 0.28604, x.std() = 0.35302.
# CIFAR: the same over the 50000 training images, per channel. ImageNet: the usual RGB values
# (also used for Imagenette, which is an ImageNet subset).
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_DEFAULTS: dict[str, dict[str, Any]] = {
    "fashion_mnist": {
        "data_dir": DEFAULT_FASHION_MNIST_DIR, "image_size": 28, "holdout_size": 5000,
        "mean": (0.28604,), "std": (0.35302,), "shuffle_buffer": 60000,
        # Pad-crop and flip, plus the seed paper's colour jitter and rotation.
        "augment": {"pad_crop": 2, "flip": True, "color_jitter_prob": 0.5,
                    "rotation_degrees": 15.0},
        "synthetic": {"image_shape": (28, 28, 1), "num_classes": 10},
    },
    "cifar10": {
        "image_size": 32, "holdout_size": 5000, "shuffle_buffer": 50000,
        "mean": (0.4914, 0.4822, 0.4465), "std": (0.2470, 0.2435, 0.2616),
        "augment": {"pad_crop": 4, "flip": True},
        "synthetic": {"image_shape": (32, 32, 3), "num_classes": 10},
    },
    "cifar100": {
        "image_size": 32, "holdout_size": 5000, "shuffle_buffer": 50000,
        "mean": (0.5071, 0.4865, 0.4409), "std": (0.2673, 0.2564, 0.2762),
        "augment": {"pad_crop": 4, "flip": True},
        "synthetic": {"image_shape": (32, 32, 3), "num_classes": 100},
    },
    "imagenette": {
        "image_size": 160, "holdout_size": 1000, "mean": _IMAGENET_MEAN, "std": _IMAGENET_STD,
        "shuffle_buffer": 10000, "augment": {"flip": True, "random_resized_crop": True},
        "synthetic": {"image_shape": (64, 64, 3), "num_classes": 10},
    },
    "imagenet2012": {
        "image_size": 224, "holdout_size": 10000, "mean": _IMAGENET_MEAN, "std": _IMAGENET_STD,
        "shuffle_buffer": 10000, "augment": {"flip": True, "random_resized_crop": True},
        "synthetic": {"image_shape": (64, 64, 3), "num_classes": 1000},
    },
    "synthetic": {
        "image_size": 28, "holdout_size": 64, "shuffle_buffer": 1024,
        "mean": (0.5,), "std": (0.25,),  # the synthetic images' mean and std, roughly
        # Augmentation off: tests that want it turn it on, and models fit the data quickly.
        "augment": {"flip": False},
        "synthetic": {"image_shape": (28, 28, 1), "num_classes": 10},
    },
}


def default_data_config(dataset: str = "fashion_mnist") -> ml_collections.ConfigDict:
    """Returns the `data` config section for `dataset` with its defaults.

    Fields (`docs/DESIGN.md`, plus `download` and `split_seed`):

    - ``dataset``: one of `DATASETS` (TFDS builder configs such as ``"imagenette/160px-v2"``
      are accepted for the TFDS datasets).
    - ``data_dir``: directory of the Fashion-MNIST IDX files (``.gz`` or plain); empty for
      other datasets.
    - ``tfds_data_dir``: TFDS data dir; empty means TFDS's default (``$TFDS_DATA_DIR`` or
      ``~/tensorflow_datasets``).
    - ``manual_dir``: where the ImageNet tars are (empty: ``<tfds_data_dir>/downloads/manual``).
    - ``download``: let TFDS download and prepare a missing dataset (needs internet).
    - ``image_size``: side of the square model input.
    - ``holdout_size``, ``train_subset``, ``split_seed``: see the module docstring.
    - ``mean``, ``std``: per channel (or one value), on the [0, 1] pixel scale.
    - ``shuffle_buffer``: shuffle buffer of streamed sources (in-memory sources are fully
      permuted every epoch).
    - ``augment``: ``pad_crop`` (pixels, 0 = off), ``flip`` (horizontal),
      ``random_resized_crop``, ``color_jitter_prob`` (brightness and contrast jitter applied
      to an image with this probability), ``rotation_degrees`` (uniform in +-degrees, 0 = off).
    - ``synthetic``: ``num_train``, ``num_test``, ``image_shape`` (H, W, C), ``num_classes``
      of the synthetic dataset; the non-synthetic defaults mirror the dataset's shape and
      classes so that ``--config.data.dataset=synthetic`` is a drop-in stand-in.

    Args:
      dataset: dataset name.

    Returns:
      A new, unlocked ConfigDict.

    Raises:
      ValueError: `dataset` is unknown.
    """
    base = _base_name(dataset)
    defaults = _DEFAULTS[base]
    augment = {"pad_crop": 0, "flip": False, "random_resized_crop": False,
               "color_jitter_prob": 0.0, "rotation_degrees": 0.0}
    augment.update(defaults["augment"])
    synthetic = {"num_train": 512, "num_test": 128}
    synthetic.update(defaults["synthetic"])
    return ml_collections.ConfigDict({
        "dataset": dataset,
        "data_dir": defaults.get("data_dir", ""),
        "tfds_data_dir": "",
        "manual_dir": "",
        "download": False,
        "image_size": defaults["image_size"],
        "holdout_size": defaults["holdout_size"],
        "train_subset": 0,
        "split_seed": 0,
        "mean": tuple(defaults["mean"]),
        "std": tuple(defaults["std"]),
        "shuffle_buffer": defaults["shuffle_buffer"],
        "augment": augment,
        "synthetic": dict(synthetic, image_shape=tuple(synthetic["image_shape"])),
    })


# --------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads one IDX file (gzipped when its name ends in ``.gz``) into a numpy array.

    Args:
      path: the file.

    Returns:
      The array, with the dtype (in native byte order) and shape of the file's header.

    Raises:
      FileNotFoundError: no such file.
      ValueError: the file is not a valid IDX file (bad magic number, unknown type code,
        truncated, trailing bytes, bad gzip data); the message names the file.
    """
    path = os.fspath(path)
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except (OSError, EOFError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(f"{path}: cannot read: {err}") from err
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    zero0, zero1, type_code, ndim = raw[:4]
    if zero0 != 0 or zero1 != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()}: expected 0x0000TTNN with type "
            f"TT in {{08, 09, 0b, 0c, 0d, 0e}} and NN >= 1 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated header: {ndim} dimensions need {header} bytes, "
                         f"found {len(raw)}")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        problem = "truncated" if found < expected else "trailing bytes"
        raise ValueError(f"{path}: {problem}: header shape {shape} of {dtype} needs "
                         f"{expected} data bytes, found {found}")
    array = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _find_idx_file(data_dir: str, stem: str) -> str | None:
    for name in (stem, stem + ".gz"):  # plain first: no decompression
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    return None


def load_fashion_mnist_idx(data_dir: str | os.PathLike = DEFAULT_FASHION_MNIST_DIR) -> dict:
    """Loads Fashion-MNIST (or any MNIST-format data) from its four IDX files.

    Looks for ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` in `data_dir`, each plain or
    with ``.gz``.

    Args:
      data_dir: the directory (default: where Debian's ``dataset-fashion-mnist`` puts them).

    Returns:
      ``dict(train=(x, y), test=(x, y))`` with ``x`` uint8 ``[N, H, W]`` and ``y`` uint8
      ``[N]`` (read-only arrays).

    Raises:
      FileNotFoundError: some files are missing (the message lists them).
      ValueError: a file is malformed, or images and labels do not match.
    """
    data_dir = os.fspath(data_dir)
    found, missing = {}, []
    for stems in _FMNIST_FILES.values():
        for stem in stems:
            path = _find_idx_file(data_dir, stem)
            if path is None:
                missing.append(stem + "[.gz]")
            found[stem] = path
    if missing:
        raise FileNotFoundError(f"{data_dir}: missing Fashion-MNIST IDX files: "
                                f"{', '.join(missing)}")
    return {split: _load_idx_pair(found[images], found[labels])
            for split, (images, labels) in _FMNIST_FILES.items()}


@functools.lru_cache(maxsize=4)
def _load_idx_pair_cached(images_path: str, labels_path: str, _stamp: tuple) -> tuple:
    x = read_idx(images_path)
    y = read_idx(labels_path)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images [N, H, W], found {x.dtype} "
                         f"{list(x.shape)}")
    if y.ndim != 1 or y.dtype != np.uint8:
        raise ValueError(f"{labels_path}: expected uint8 labels [N], found {y.dtype} "
                         f"{list(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{images_path} has {x.shape[0]} images but {labels_path} has "
                         f"{y.shape[0]} labels")
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _load_idx_pair(images_path: str, labels_path: str) -> tuple[np.ndarray, np.ndarray]:
    # Cached (several pipelines of one run read the same files) and keyed by mtime and size
    # so that a rewritten file is read again.
    stamp = tuple((os.stat(p).st_mtime_ns, os.stat(p).st_size)
                  for p in (images_path, labels_path))
    return _load_idx_pair_cached(os.path.abspath(images_path), os.path.abspath(labels_path),
                                 stamp)


def _idx_count(data_dir: str, stem: str) -> int | None:
    """Number of items in an IDX file from its header alone, or None when unreadable."""
    path = _find_idx_file(data_dir, stem)
    if path is None:
        return None
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            head = f.read(8)
    except (OSError, EOFError):
        return None
    if len(head) < 8 or head[:2] != b"\0\0":
        return None
    return int.from_bytes(head[4:8], "big")


# --------------------------------------------------------------------------------------------
# Config resolution
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Augment:
    pad_crop: int
    flip: bool
    random_resized_crop: bool
    color_jitter_prob: float
    rotation_degrees: float


@dataclasses.dataclass(frozen=True)
class _Config:
    dataset: str
    data_dir: str
    tfds_data_dir: str
    manual_dir: str
    download: bool
    image_size: int
    holdout_size: int
    train_subset: int
    split_seed: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    shuffle_buffer: int
    augment: _Augment
    synthetic_num_train: int
    synthetic_num_test: int
    synthetic_image_shape: tuple[int, int, int]
    synthetic_num_classes: int

    @property
    def base(self) -> str:
        return _base_name(self.dataset)

    @property
    def spec(self) -> _Spec:
        spec = DATASETS[self.base]
        if self.base == "synthetic":
            spec = dataclasses.replace(
                spec, source_shape=self.synthetic_image_shape,
                num_classes=self.synthetic_num_classes,
                num_train=self.synthetic_num_train, num_test=self.synthetic_num_test)
        return spec


def _base_name(dataset: Any) -> str:
    base = dataset.split("/", 1)[0] if isinstance(dataset, str) else None
    # TFDS builder configs ("imagenette/320px-v2") only for datasets that come from TFDS.
    if base not in DATASETS or (base != dataset and base not in _TFDS_ONLY):
        raise ValueError(f"unknown data.dataset {dataset!r}: use one of "
                         f"{', '.join(sorted(DATASETS))}")
    return base


def _to_dict(section: Any, where: str) -> dict:
    if hasattr(section, "to_dict"):  # ConfigDict, FrozenConfigDict
        return section.to_dict()
    if isinstance(section, Mapping):
        return {k: (_to_dict(v, f"{where}.{k}") if isinstance(v, Mapping) else v)
                for k, v in section.items()}
    raise ValueError(f"{where} must be a ConfigDict or a mapping, got {type(section).__name__}")


def _merge(defaults: dict, given: dict, where: str) -> dict:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(where + '.' + k for k in unknown)}; "
                         f"known: {', '.join(sorted(defaults))}")
    merged = dict(defaults)
    for key, value in given.items():
        if isinstance(defaults[key], dict):
            merged[key] = _merge(defaults[key], _to_dict(value, f"{where}.{key}"),
                                 f"{where}.{key}")
        else:
            merged[key] = value
    return merged


def _int(value: Any, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _float(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (
            low <= value <= high):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def _floats(value: Any, name: str) -> tuple[float, ...]:
    values = value if isinstance(value, (list, tuple, np.ndarray)) else (value,)
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a number or a sequence of numbers, got "
                         f"{value!r}") from err


def _resolve(data_config: Any) -> _Config:
    """Validates `data_config` and fills missing fields with the dataset's defaults."""
    given = _to_dict(data_config, "data")
    dataset = given.get("dataset", "fashion_mnist")
    merged = _merge(default_data_config(dataset).to_dict(), given, "data")
    aug, syn = merged["augment"], merged["synthetic"]
    shape = tuple(syn["image_shape"])
    if len(shape) != 3 or any(isinstance(d, bool) or not isinstance(d, int) or d < 1
                              for d in shape):
        raise ValueError(f"data.synthetic.image_shape must be (H, W, C) positive ints, got "
                         f"{syn['image_shape']!r}")
    cfg = _Config(
        dataset=dataset,
        data_dir=str(merged["data_dir"] or ""),
        tfds_data_dir=str(merged["tfds_data_dir"] or ""),
        manual_dir=str(merged["manual_dir"] or ""),
        download=bool(merged["download"]),
        image_size=_int(merged["image_size"], "data.image_size", 1),
        holdout_size=_int(merged["holdout_size"], "data.holdout_size"),
        train_subset=_int(merged["train_subset"], "data.train_subset"),
        split_seed=_int(merged["split_seed"], "data.split_seed"),
        mean=_floats(merged["mean"], "data.mean"),
        std=_floats(merged["std"], "data.std"),
        shuffle_buffer=_int(merged["shuffle_buffer"], "data.shuffle_buffer", 1),
        augment=_Augment(
            pad_crop=_int(aug["pad_crop"], "data.augment.pad_crop"),
            flip=bool(aug["flip"]),
            random_resized_crop=bool(aug["random_resized_crop"]),
            color_jitter_prob=_float(aug["color_jitter_prob"], "data.augment.color_jitter_prob",
                                     0.0, 1.0),
            rotation_degrees=_float(aug["rotation_degrees"], "data.augment.rotation_degrees",
                                    0.0, 180.0)),
        synthetic_num_train=_int(syn["num_train"], "data.synthetic.num_train", 1),
        synthetic_num_test=_int(syn["num_test"], "data.synthetic.num_test", 1),
        synthetic_image_shape=shape,
        synthetic_num_classes=_int(syn["num_classes"], "data.synthetic.num_classes", 1),
    )
    channels = cfg.spec.source_shape[2]
    for name, values in (("mean", cfg.mean), ("std", cfg.std)):
        if len(values) not in (1, channels):
            raise ValueError(f"data.{name} has {len(values)} values but {cfg.dataset} images "
                             f"have {channels} channel(s): give 1 or {channels} values")
    if min(cfg.std) <= 0:
        raise ValueError(f"data.std must be positive, got {cfg.std}")
    return cfg


# --------------------------------------------------------------------------------------------
# Split indices
# --------------------------------------------------------------------------------------------


def _split_positions(cfg: _Config, num_train_total: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into the official training split) of `train` and `holdout`, sorted.

    One permutation of the training split by `split_seed`: its first `holdout_size` entries
    are the holdout, the next `train_subset` (0: all the rest) are `train`. The holdout does
    not depend on `train_subset`, and the two never overlap.
    """
    if cfg.holdout_size >= num_train_total:
        raise ValueError(f"data.holdout_size={cfg.holdout_size} leaves no training images: "
                         f"{cfg.dataset} has {num_train_total} in its training split")
    rest = num_train_total - cfg.holdout_size
    if cfg.train_subset > rest:
        raise ValueError(f"data.train_subset={cfg.train_subset} is more than the "
                         f"{rest} training images left after data.holdout_size="
                         f"{cfg.holdout_size}: lower one of them (0 = all)")
    perm = np.random.default_rng([cfg.split_seed, 0x484F]).permutation(num_train_total)
    holdout = np.sort(perm[:cfg.holdout_size])
    end = cfg.holdout_size + (cfg.train_subset or rest)
    train = np.sort(perm[cfg.holdout_size:end])
    return train, holdout


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _InMemory:
    images: np.ndarray  # uint8 [N, H, W, C], the whole official split
    labels: np.ndarray  # [N]
    positions: np.ndarray  # int64, which of them this split uses (the example indices)


@dataclasses.dataclass(frozen=True)
class _Streamed:
    # (index int64, encoded image string, label) in a fixed order. Images stay encoded until
    # after the shuffle buffer, which then holds ~100 KB per ImageNet image instead of ~600 KB.
    dataset: tf.data.Dataset


def _tfds_dir_for_message(cfg: _Config) -> str:
    return cfg.tfds_data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser(
        "~/tensorflow_datasets")


def _prepare_hint(cfg: _Config) -> str:
    tfds_dir = _tfds_dir_for_message(cfg)
    if cfg.base == "imagenet2012":
        manual = cfg.manual_dir or os.path.join(tfds_dir, "downloads", "manual")
        return (f"ImageNet cannot be downloaded by TFDS: get ILSVRC2012_img_train.tar and "
                f"ILSVRC2012_img_val.tar from image-net.org, put both tars (not extracted) in "
                f"{manual} (set --config.data.manual_dir=DIR to use another directory), then "
                f"run `tfds build imagenet2012 --data_dir={tfds_dir} --manual_dir={manual}` "
                f"(or set --config.data.download=True to prepare it on first use)")
    return (f"prepare it on a machine with internet: `tfds build {cfg.dataset} "
            f"--data_dir={tfds_dir}` (or python -c \"import tensorflow_datasets as tfds; "
            f"tfds.load('{cfg.dataset}', data_dir='{tfds_dir}', download=True)\") and copy "
            f"{tfds_dir}/{cfg.base} here, or set --config.data.download=True to download it "
            f"on first use (needs internet), or --config.data.tfds_data_dir=DIR to use "
            f"another prepared TFDS data dir")


def _tfds_load(cfg: _Config, split: str, **kwargs) -> Any:
    """`tfds.load` that fails fast offline: download=False unless the config says otherwise."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise DatasetUnavailableError(
            f"dataset {cfg.dataset!r} needs tensorflow-datasets, which cannot be imported "
            f"({err}); `pip install tensorflow-datasets importlib_resources`") from err
    load_kwargs = dict(split=split, data_dir=cfg.tfds_data_dir or None, download=cfg.download,
                       as_supervised=True, shuffle_files=False, **kwargs)
    if cfg.download and cfg.base == "imagenet2012" and cfg.manual_dir:
        load_kwargs["download_and_prepare_kwargs"] = {
            "download_config": tfds.download.DownloadConfig(manual_dir=cfg.manual_dir)}
    try:
        return tfds.load(cfg.dataset, **load_kwargs)
    except Exception as err:  # tfds raises AssertionError, OSError, DatasetNotFoundError...
        raise DatasetUnavailableError(
            f"dataset {cfg.dataset!r} (split {split!r}) is not available in the TFDS data dir "
            f"{_tfds_dir_for_message(cfg)} with download={cfg.download}: "
            f"{type(err).__name__}: {_first_line(err)}. To fix: {_prepare_hint(cfg)}.") from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "(no message)"


_TFDS_ARRAYS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _tfds_numpy(cfg: _Config, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A whole small TFDS split as numpy, cached: train and holdout read the same split."""
    key = (cfg.dataset, cfg.tfds_data_dir, cfg.manual_dir, split)
    if key not in _TFDS_ARRAYS:
        import tensorflow_datasets as tfds

        # Batches of 10000 concatenated, rather than batch_size=-1, which needs a known
        # cardinality (tfds' mock data has none and crashes).
        chunks = list(tfds.as_numpy(_tfds_load(cfg, split).batch(10000)))
        if not chunks:
            raise DatasetUnavailableError(f"TFDS split {cfg.dataset}/{split} is empty")
        images = np.concatenate([x for x, _ in chunks]).astype(np.uint8, copy=False)
        labels = np.concatenate([y for _, y in chunks])
        images.setflags(write=False)
        labels.setflags(write=False)
        while len(_TFDS_ARRAYS) >= 4:  # bound the memory: drop the oldest
            _TFDS_ARRAYS.pop(next(iter(_TFDS_ARRAYS)))
        _TFDS_ARRAYS[key] = images, labels
    return _TFDS_ARRAYS[key]


def _fashion_mnist_arrays(cfg: _Config, official: str) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST `official` split ('train' or 'test') as uint8 [N, 28, 28, 1] and labels.

    Reads the IDX files at `data.data_dir`; when they are missing, falls back to a prepared
    TFDS `fashion_mnist` (download=False unless `data.download`).
    """
    data_dir = cfg.data_dir or DEFAULT_FASHION_MNIST_DIR
    try:
        images, labels = load_fashion_mnist_idx(data_dir)[official]
        return images[..., None], labels
    except FileNotFoundError as idx_err:
        try:
            return _tfds_numpy(cfg, official)
        except DatasetUnavailableError as tfds_err:
            raise DatasetUnavailableError(
                f"Fashion-MNIST is not available: {idx_err}, and TFDS has no prepared "
                f"'fashion_mnist' in {_tfds_dir_for_message(cfg)} "
                f"({_first_line(tfds_err.__cause__ or tfds_err)}). To fix, do one of: "
                f"(1) `apt-get install dataset-fashion-mnist` (the IDX files then appear in "
                f"{DEFAULT_FASHION_MNIST_DIR}, the default data.data_dir); "
                f"(2) set --config.data.data_dir=DIR to a directory holding "
                f"train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte "
                f"and t10k-labels-idx1-ubyte (each may be .gz); "
                f"(3) online, run `tfds build fashion_mnist` or tfds.load('fashion_mnist', "
                f"download=True) (or set --config.data.download=True), "
                f"with --config.data.tfds_data_dir=DIR if not the default.") from tfds_err


@functools.lru_cache(maxsize=4)
def _synthetic_arrays(num: int, shape: tuple[int, int, int], num_classes: int,
                      split_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic class-dependent images: a blocky per-class template plus noise.

    The templates depend only on (shape, num_classes), so train and test share them and a
    model can learn them; labels are balanced and the noise differs per split.
    """
    h, w, c = shape
    template_rng = np.random.default_rng([_SYNTHETIC_TEMPLATE_SEED, h, w, c, num_classes])
    grid = template_rng.uniform(-1.0, 1.0, size=(num_classes, 4, 4, c))
    # Nearest-neighbour upsampling of the 4x4 grid: blocks large enough to survive a few
    # pixels of crop, flip-asymmetric so that the class is not trivially flip invariant.
    rows = np.minimum(np.arange(h) * 4 // h, 3)
    cols = np.minimum(np.arange(w) * 4 // w, 3)
    templates = grid[:, rows][:, :, cols]  # [K, H, W, C]
    rng = np.random.default_rng([_SYNTHETIC_TEMPLATE_SEED, split_id])
    labels = rng.permutation(np.arange(num) % num_classes).astype(np.int32)
    noise = rng.normal(0.0, 0.15, size=(num, h, w, c))
    images = np.clip(0.5 + 0.3 * templates[labels] + noise, 0.0, 1.0)
    images = np.round(images * 255.0).astype(np.uint8)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _in_memory_arrays(cfg: _Config, official: str) -> tuple[np.ndarray, np.ndarray]:
    if cfg.base == "fashion_mnist":
        return _fashion_mnist_arrays(cfg, official)
    if cfg.base == "synthetic":
        num = cfg.synthetic_num_train if official == "train" else cfg.synthetic_num_test
        return _synthetic_arrays(num, cfg.synthetic_image_shape, cfg.synthetic_num_classes,
                                 0 if official == "train" else 1)
    return _tfds_numpy(cfg, official)


def _tfds_num_examples(cfg: _Config, split: str) -> int:
    """Size of a TFDS split from the prepared dataset's info, else from `DATASETS`."""
    try:
        import tensorflow_datasets as tfds

        builder = tfds.builder(cfg.dataset, data_dir=cfg.tfds_data_dir or None)
        count = builder.info.splits[split].num_examples
        if count:
            return int(count)
    except (ImportError, KeyError, ValueError, OSError) as err:
        # Not prepared (or tfds missing): the table is the fallback.
        _LOG.debug("no TFDS split info for %s/%s: %s", cfg.dataset, split, err)
    spec = cfg.spec
    return spec.num_train if split == "train" else spec.num_test


def _make_source(cfg: _Config, split: str) -> _InMemory | _Streamed:
    spec = cfg.spec
    official = spec.test_split if split == "test" else "train"
    if not spec.streamed:
        images, labels = _in_memory_arrays(cfg, "test" if split == "test" else "train")
        if split == "test":
            positions = np.arange(len(images))
        else:
            train, holdout = _split_positions(cfg, len(images))
            positions = train if split == "train" else holdout
        return _InMemory(images, labels, positions.astype(np.int64))

    import tensorflow_datasets as tfds

    dataset = _tfds_load(cfg, official,
                         decoders={"image": tfds.decode.SkipDecoding()}).enumerate()
    if split == "test" or (cfg.holdout_size == 0 and cfg.train_subset == 0):
        return _Streamed(dataset.map(lambda i, ex: (i, ex[0], ex[1])))
    total = _tfds_num_examples(cfg, "train")
    train, holdout = _split_positions(cfg, total)
    keep = np.zeros(total, bool)
    keep[train if split == "train" else holdout] = True
    keep_t = tf.constant(keep)

    def is_kept(index, example):
        del example
        # Guard: the actual split may be larger than the recorded size (then extra examples
        # are in neither split).
        return tf.logical_and(index < total,
                              tf.gather(keep_t, tf.minimum(index, total - 1)))

    # Filtering reads (but does not augment) the skipped examples too: for ImageNet the
    # holdout costs a pass over the training files.
    return _Streamed(dataset.filter(is_kept).map(lambda i, ex: (i, ex[0], ex[1])))


# --------------------------------------------------------------------------------------------
# Augmentation and preprocessing
# --------------------------------------------------------------------------------------------

# Columns of the per-example uniform random numbers `u` in [0, 1) that drive augmentation.
_U_ANGLE, _U_SHIFT_X, _U_SHIFT_Y, _U_FLIP, _U_JITTER, _U_BRIGHTNESS, _U_CONTRAST = range(7)
_U_CROP_Y, _U_CROP_X = 7, 8
_RRC_ATTEMPTS = 10
_U_AREA = 9  # _RRC_ATTEMPTS columns of crop areas, then as many of log aspect ratios
_U_RATIO = _U_AREA + _RRC_ATTEMPTS
_NUM_UNIFORMS = _U_RATIO + _RRC_ATTEMPTS


def _rrc_boxes(u: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Random-resized-crop boxes: torchvision's sampler, vectorised over a batch.

    Up to `_RRC_ATTEMPTS` draws of (area in `RRC_AREA_RANGE` of the image, log-uniform aspect
    ratio in `RRC_ASPECT_RANGE`); the first that fits is used, else a central crop of the
    whole image clamped to the aspect range.

    Args:
      u: float32 [B, _NUM_UNIFORMS] uniforms.
      height, width: image sizes, scalars or [B].

    Returns:
      float32 [B, 4] boxes (y1, x1, y2, x2) for `tf.image.crop_and_resize`.
    """
    batch = tf.shape(u)[:1]
    h = tf.broadcast_to(tf.cast(height, tf.float32), batch)
    w = tf.broadcast_to(tf.cast(width, tf.float32), batch)
    lo, hi = RRC_AREA_RANGE
    r_lo, r_hi = math.log(RRC_ASPECT_RANGE[0]), math.log(RRC_ASPECT_RANGE[1])
    target = (h * w)[:, None] * (lo + (hi - lo) * u[:, _U_AREA:_U_AREA + _RRC_ATTEMPTS])
    ratio = tf.exp(r_lo + (r_hi - r_lo) * u[:, _U_RATIO:_U_RATIO + _RRC_ATTEMPTS])
    crop_w = tf.round(tf.sqrt(target * ratio))
    crop_h = tf.round(tf.sqrt(target / ratio))
    fits = ((crop_w >= 1) & (crop_w <= w[:, None]) & (crop_h >= 1) & (crop_h <= h[:, None]))
    first = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)
    found = tf.reduce_any(fits, axis=1)
    # Fallback: the whole image, cut centrally to the nearest allowed aspect ratio.
    aspect = w / h
    fallback_w = tf.where(aspect > RRC_ASPECT_RANGE[1], tf.round(h * RRC_ASPECT_RANGE[1]), w)
    fallback_h = tf.where(aspect < RRC_ASPECT_RANGE[0], tf.round(w / RRC_ASPECT_RANGE[0]), h)
    crop_w = tf.where(found, tf.gather(crop_w, first, batch_dims=1), fallback_w)
    crop_h = tf.where(found, tf.gather(crop_h, first, batch_dims=1), fallback_h)
    top = tf.where(found, tf.floor(u[:, _U_CROP_Y] * (h - crop_h + 1)),
                   tf.floor((h - crop_h) / 2))
    left = tf.where(found, tf.floor(u[:, _U_CROP_X] * (w - crop_w + 1)),
                    tf.floor((w - crop_w) / 2))
    # crop_and_resize maps box coordinate y to pixel y * (h - 1).
    h_span, w_span = tf.maximum(h - 1, 1), tf.maximum(w - 1, 1)
    return tf.stack([top / h_span, left / w_span,
                     (top + crop_h - 1) / h_span, (left + crop_w - 1) / w_span], axis=1)


def _affine_transforms(u: tf.Tensor, size: int, max_angle: float, pad: int,
                       flip: bool) -> tf.Tensor:
    """Per-image [B, 8] projective transforms doing rotation, then pad-crop, then flip.

    Composing the three into one output->input pixel map lets one batched
    `ImageProjectiveTransformV3` do them all. Pad-crop (pad `pad` pixels, random crop back) is
    a zero-filled integer shift of -pad..pad pixels per axis; the rotation is
    `keras.layers.RandomRotation`'s (about the centre, zero fill).
    """
    batch = tf.shape(u)[0]
    zeros = tf.zeros([batch])
    ones = tf.ones([batch])
    extent = float(size - 1)
    if max_angle > 0:
        angle = (2.0 * u[:, _U_ANGLE] - 1.0) * max_angle
        cos, sin = tf.cos(angle), tf.sin(angle)
    else:
        cos, sin = ones, zeros
    # Rotation (output -> input): x' = cos x - sin y + x0, y' = sin x + cos y + y0.
    x0 = (extent - (cos * extent - sin * extent)) / 2.0
    y0 = (extent - (sin * extent + cos * extent)) / 2.0
    if pad > 0:
        shift_x = tf.floor(u[:, _U_SHIFT_X] * (2 * pad + 1)) - pad
        shift_y = tf.floor(u[:, _U_SHIFT_Y] * (2 * pad + 1)) - pad
    else:
        shift_x = shift_y = zeros
    if flip:
        flipped = u[:, _U_FLIP] < 0.5
        sign = tf.where(flipped, -ones, ones)
        flip_offset = tf.where(flipped, extent * ones, zeros)
    else:
        sign, flip_offset = ones, zeros
    # Output pixel p -> flip -> shift -> rotation -> input pixel.
    x1 = flip_offset + shift_x
    return tf.stack([cos * sign, -sin, cos * x1 - sin * shift_y + x0,
                     sin * sign, cos, sin * x1 + cos * shift_y + y0, zeros, zeros], axis=1)


def _center_crop_resize(image: tf.Tensor, size: int) -> tf.Tensor:
    """The central `EVAL_CROP_FRACTION` of the shorter side, resized to `size`.

    Works on [H, W, C] or [B, H, W, C] images (one crop for the whole batch).
    """
    shape = tf.shape(image)
    h, w = shape[-3], shape[-2]
    side = tf.cast(tf.cast(tf.minimum(h, w), tf.float32) * EVAL_CROP_FRACTION, tf.int32)
    side = tf.maximum(side, 1)
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[..., top:top + side, left:left + side, :]
    return tf.image.resize(crop, (size, size), method="bilinear")


def _make_example_fn(cfg: _Config, training: bool, seed: int):
    """fn(epoch, index, encoded, label) -> (float32 [S, S, C] in [0, 1], u, label).

    For streamed sources, whose images differ in size: decode, then random-resized-crop (when
    training with `augment.random_resized_crop`) or centre-crop to S, so that they batch.
    """
    size = cfg.image_size
    channels = cfg.spec.source_shape[2]
    rrc = training and cfg.augment.random_resized_crop
    aug_seed = tf.constant([seed, _AUGMENT_TAG], tf.int64)

    def example_fn(epoch, index, encoded, label):
        image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
        image.set_shape([None, None, channels])
        u = tf.zeros([_NUM_UNIFORMS])
        if training:
            example_seed = tf.random.experimental.stateless_fold_in(aug_seed, index)
            example_seed = tf.random.experimental.stateless_fold_in(example_seed, epoch)
            u = tf.random.stateless_uniform([_NUM_UNIFORMS], example_seed)
        if rrc:
            shape = tf.shape(image)
            boxes = _rrc_boxes(u[None], shape[0], shape[1])
            image = tf.image.crop_and_resize(image[None], boxes, [0], (size, size))[0]
        else:
            image = _center_crop_resize(tf.image.convert_image_dtype(image, tf.float32), size)
        image = tf.ensure_shape(image / 255.0 if rrc else image, [size, size, channels])
        return image, u, label

    return example_fn


def _make_batch_fn(cfg: _Config, training: bool, sized: bool):
    """fn(images [B, h, w, C] uint8 or float in [0, 1], u [B, K] or None, labels) -> batch.

    Args:
      cfg: the resolved config.
      training: apply the augmentation of `cfg.augment`.
      sized: the images are already S x S (streamed sources, cropped per example).
    """
    size = cfg.image_size
    src_h, src_w, channels = cfg.spec.source_shape
    aug = cfg.augment
    needs_resize = not sized and (src_h, src_w) != (size, size)
    max_angle = math.radians(aug.rotation_degrees)
    any_affine = max_angle > 0 or aug.pad_crop > 0 or aug.flip
    mean = tf.constant(cfg.mean, tf.float32)
    std = tf.constant(cfg.std, tf.float32)

    def batch_fn(images, u, labels):
        images = tf.image.convert_image_dtype(images, tf.float32)  # uint8 -> [0, 1]
        if needs_resize:
            if training and aug.random_resized_crop:
                boxes = _rrc_boxes(u, src_h, src_w)
                images = tf.image.crop_and_resize(
                    images, boxes, tf.range(tf.shape(images)[0]), (size, size))
            elif aug.random_resized_crop:  # ImageNet-style evaluation
                images = _center_crop_resize(images, size)
            else:  # small images of another size: plain resize, train and eval alike
                images = tf.image.resize(images, (size, size), method="bilinear")
        if training and any_affine:
            images = tf.raw_ops.ImageProjectiveTransformV3(
                images=images,
                transforms=_affine_transforms(u, size, max_angle, aug.pad_crop, aug.flip),
                output_shape=tf.constant([size, size]), fill_value=tf.constant(0.0),
                interpolation="BILINEAR", fill_mode="CONSTANT")
        if training and aug.color_jitter_prob > 0:
            # Brightness then contrast (as tf.image.adjust_contrast: around each image's
            # per-channel mean), on the images whose draw says so.
            brightness = (2.0 * u[:, _U_BRIGHTNESS] - 1.0) * COLOR_JITTER_BRIGHTNESS
            c_lo, c_hi = COLOR_JITTER_CONTRAST
            contrast = c_lo + (c_hi - c_lo) * u[:, _U_CONTRAST]
            jittered = images + brightness[:, None, None, None]
            centre = tf.reduce_mean(jittered, axis=[1, 2], keepdims=True)
            jittered = (jittered - centre) * contrast[:, None, None, None] + centre
            jittered = tf.clip_by_value(jittered, 0.0, 1.0)
            apply = u[:, _U_JITTER] < aug.color_jitter_prob
            images = tf.where(apply[:, None, None, None], jittered, images)
        images = tf.ensure_shape((images - mean) / std, [None, size, size, channels])
        return images, tf.cast(labels, tf.int32)

    return batch_fn


# --------------------------------------------------------------------------------------------
# Public pipeline API
# --------------------------------------------------------------------------------------------


def _check_batching(batch_size: Any, num_replicas: Any) -> None:
    num_replicas = _int(num_replicas, "num_replicas", 1)
    batch_size = _int(batch_size, "batch_size", 1)
    if batch_size % num_replicas:
        lower = batch_size // num_replicas * num_replicas
        upper = lower + num_replicas
        options = f"{lower} or {upper}" if lower else f"{upper}"
        raise ValueError(
            f"global batch_size {batch_size} is not divisible by num_replicas {num_replicas}: "
            f"each replica must get the same number of images. Use a multiple of "
            f"{num_replicas}, e.g. {options} (--config.train.batch_size).")


def build_dataset(data_config: Any, split: str, batch_size: int, *, training: bool,
                  seed: int = 0, num_replicas: int = 1, repeat: bool | int | None = None,
                  drop_remainder: bool | None = None,
                  shuffle: bool | None = None) -> tf.data.Dataset:
    """Builds the batched input pipeline of one split.

    Example::

        cfg = default_data_config("cifar10")
        ds = build_dataset(cfg, "train", 128, training=True, seed=1,
                           num_replicas=strategy.num_replicas_in_sync)
        dist_ds = strategy.experimental_distribute_dataset(ds)

    Augmentation (``training=True``, as `data.augment` says), in order: random-resized crop
    to ``image_size`` (``random_resized_crop``); rotation by up to ``rotation_degrees``;
    pad-crop (a zero-filled shift by up to ``pad_crop`` pixels); horizontal flip (``flip``,
    probability 1/2); brightness (+-`COLOR_JITTER_BRIGHTNESS`) and contrast
    (`COLOR_JITTER_CONTRAST`) jitter with probability ``color_jitter_prob``. Rotation,
    shift and flip are one bilinear projective transform per image.

    Args:
      data_config: the `data` config section (ConfigDict or nested dict; missing fields take
        `default_data_config(dataset)`'s values).
      split: ``"train"``, ``"holdout"`` or ``"test"`` (see the module docstring).
      batch_size: the global batch size (all replicas together).
      training: augment and shuffle. Evaluation pipelines use ``training=False``: no
        augmentation; ImageNet-style data (variable-size images, or
        ``augment.random_resized_crop``) is centre-cropped and resized to ``image_size``,
        small images are only resized when their size differs; a fixed order.
      seed: seeds shuffling and augmentation (not the holdout choice, see `data.split_seed`).
      num_replicas: replicas the global batch is split over; `batch_size` must be divisible.
      repeat: None: forever when training, one pass otherwise; True: forever; False: one
        pass; an int n > 0: n passes (epochs), each shuffled and augmented afresh.
      drop_remainder: None: True when training (static batch shapes), False otherwise.
      shuffle: None: the same as `training`. Set True e.g. for BN recalibration batches
        without augmentation.

    Returns:
      A `tf.data.Dataset` of ``(images float32 [B, S, S, C], labels int32 [B])``, prefetched.

    Raises:
      ValueError: bad split, batch size or config (the message says what to change).
      DatasetUnavailableError: the dataset is not on this machine (the message says how to
        get it).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    _check_batching(batch_size, num_replicas)
    cfg = _resolve(data_config)
    if split == "holdout" and cfg.holdout_size == 0:
        raise ValueError("the holdout split is empty: set data.holdout_size > 0")
    seed = _int(seed, "seed")
    if repeat is None or repeat is True:
        epochs = -1 if (repeat or training) else 1
    elif repeat is False:
        epochs = 1
    else:
        epochs = _int(repeat, "repeat", 1)
    if drop_remainder is None:
        drop_remainder = training
    if shuffle is None:
        shuffle = training

    source = _make_source(cfg, split)
    shuffle_seed = tf.constant([seed, _SHUFFLE_TAG], tf.int64)
    aug_seed = tf.constant([seed, _AUGMENT_TAG], tf.int64)
    epoch_ds = tf.data.Dataset.range(epochs) if epochs > 0 else tf.data.Dataset.counter()
    if isinstance(source, _InMemory):
        images = tf.constant(source.images)
        labels = tf.constant(source.labels)
        positions = tf.constant(source.positions)
        num_images = len(source.images)

        def one_epoch(epoch):
            # In memory the index list is permuted whole every epoch (a perfect shuffle) by a
            # stateless op: the order depends only on (seed, epoch).
            order = positions
            if shuffle:
                order = tf.random.experimental.stateless_shuffle(
                    positions, tf.random.experimental.stateless_fold_in(shuffle_seed, epoch))
            if not training:
                return tf.data.Dataset.from_tensor_slices(order)
            # One row of uniforms per image of the split, from (seed, epoch), picked by the
            # image's index: its augmentation depends on (seed, index, epoch) only, not on
            # the order or the batch it lands in; and there is no per-example work.
            table = tf.random.stateless_uniform(
                [num_images, _NUM_UNIFORMS],
                tf.random.experimental.stateless_fold_in(aug_seed, epoch))
            return tf.data.Dataset.from_tensor_slices((order, tf.gather(table, order)))

        batch_fn = _make_batch_fn(cfg, training, sized=False)

        def load_batch(index, u=None):
            return batch_fn(tf.gather(images, index), u, tf.gather(labels, index))

        dataset = epoch_ds.flat_map(one_epoch).batch(batch_size, drop_remainder=drop_remainder)
        dataset = dataset.map(load_batch, num_parallel_calls=tf.data.AUTOTUNE)
        if epochs > 0:
            # flat_map hides the size; state it, so that Keras shows a full progress bar and
            # `evaluate` does not warn that a finite pass "ran out of data".
            # Batches run across epoch boundaries (like repeat().batch()).
            total = epochs * len(source.positions)
            batches = total // batch_size if drop_remainder else -(-total // batch_size)
            dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    else:
        base = source.dataset

        def one_epoch(epoch):
            epoch_data = base
            if shuffle:
                # `shuffle` takes a Python int seed (the epoch is a tensor here): with
                # reshuffle_each_iteration, each epoch's iterator gets the next order of one
                # seeded sequence, so the epochs differ and a rebuilt pipeline repeats them.
                epoch_data = epoch_data.shuffle(
                    cfg.shuffle_buffer, seed=seed * 1000003 + _SHUFFLE_TAG,
                    reshuffle_each_iteration=True)
            return epoch_data.map(lambda i, x, y: (epoch, i, x, y))

        dataset = epoch_ds.flat_map(one_epoch).map(
            _make_example_fn(cfg, training, seed), num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        dataset = dataset.map(_make_batch_fn(cfg, training, sized=True),
                              num_parallel_calls=tf.data.AUTOTUNE)

    if epochs < 0:
        dataset = dataset.apply(
            tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY))
    options = tf.data.Options()
    options.deterministic = True
    # Sources are in memory or one TFDS read: shard by data under multi-worker.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def dataset_info(data_config: Any) -> dict:
    """Describes the dataset of a config without loading it (only IDX headers are read).

    Args:
      data_config: the `data` config section.

    Returns:
      ``dict(dataset, image_shape=(S, S, C) of the batches, source_shape=(H, W, C) with None
      for variable sizes, num_classes, num_train (images in the `train` split),
      num_holdout, num_test, mean, std)``.

    Raises:
      ValueError: the config is invalid (e.g. the holdout leaves no training images).
    """
    cfg = _resolve(data_config)
    spec = cfg.spec
    num_train_total, num_test = spec.num_train, spec.num_test
    if cfg.base == "fashion_mnist":
        # The IDX headers give the real counts (data_dir may hold another MNIST-format set).
        data_dir = cfg.data_dir or DEFAULT_FASHION_MNIST_DIR
        num_train_total = _idx_count(data_dir, _FMNIST_FILES["train"][1]) or num_train_total
        num_test = _idx_count(data_dir, _FMNIST_FILES["test"][1]) or num_test
    train, holdout = _split_positions(cfg, num_train_total)
    return {
        "dataset": cfg.dataset,
        "image_shape": (cfg.image_size, cfg.image_size, spec.source_shape[2]),
        "source_shape": spec.source_shape,
        "num_classes": spec.num_classes,
        "num_train": len(train),
        "num_holdout": len(holdout),
        "num_test": num_test,
        "mean": cfg.mean,
        "std": cfg.std,
    }

"""The datasets tfnas knows: their static facts (`DATASETS`) and config defaults.

`default_data_config(dataset)` gives the `data` config section of a dataset with its
defaults. Its JSON is hashed into ground-truth files (`config.data.to_json_best_effort()`),
so its fields, values and order are part of the file formats: change them only on purpose.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
SPLITS = ("train", "holdout", "test")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Static facts about a dataset, so that `dataset_info` needs no data."""

    source_shape: tuple[int | None, int | None, int]  # None: images vary in size
    num_classes: int
    num_train: int
    num_test: int
    test_split: str  # the TFDS split used as `test`
    streamed: bool  # False: loaded into memory as numpy; True: streamed from TFDS files


DATASETS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec((28, 28, 1), 10, 60000, 10000, "test", False),
    "cifar10": DatasetSpec((32, 32, 3), 10, 50000, 10000, "test", False),
    "cifar100": DatasetSpec((32, 32, 3), 100, 50000, 10000, "test", False),
    "imagenette": DatasetSpec((None, None, 3), 10, 9469, 3925, "validation", True),
    "imagenet2012": DatasetSpec((None, None, 3), 1000, 1281167, 50000, "validation", True),
    "synthetic": DatasetSpec((28, 28, 1), 10, 512, 128, "test", False),  # sizes: the config's
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


def base_name(dataset: Any) -> str:
    """The `DATASETS` key of a `data.dataset` value: ``"imagenette/160px-v2"`` -> ``"imagenette"``.

    Raises:
      ValueError: unknown dataset, or a TFDS builder config of a dataset not read from TFDS.
    """
    base = dataset.split("/", 1)[0] if isinstance(dataset, str) else None
    # TFDS builder configs ("imagenette/320px-v2") only for datasets that come from TFDS.
    if base not in DATASETS or (base != dataset and base not in _TFDS_ONLY):
        raise ValueError(f"unknown data.dataset {dataset!r}: use one of "
                         f"{', '.join(sorted(DATASETS))}")
    return base


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
    - ``holdout_size``, ``train_subset``, ``split_seed``: see `tfnas.data` (splits).
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
    defaults = _DEFAULTS[base_name(dataset)]
    augment = {"pad_crop": 0, "flip": False, "random_resized_crop": False,
               "color_jitter_prob": 0.0, "rotation_degrees": 0.0}
    augment.update(defaults["augment"])
    synthetic = {"num_train": 512, "num_test": 128}
    synthetic.update(defaults["synthetic"])
    # The field order is the JSON's order, which ground-truth files hash: keep it.
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

"""Validation of the `data` config section into a typed, immutable `DataConfig`.

`resolve(section)` accepts a ConfigDict or a plain nested dict; missing fields take
`default_data_config(dataset)`'s values, unknown fields and bad values raise ValueError
naming the field, what was received and what is expected.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from tfnas.data import specs


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """The validated ``data.augment`` section."""

    pad_crop: int
    flip: bool
    random_resized_crop: bool
    color_jitter_prob: float
    rotation_degrees: float


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The validated ``data`` section (``synthetic.*`` flattened to ``synthetic_*``)."""

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
    augment: AugmentConfig
    synthetic_num_train: int
    synthetic_num_test: int
    synthetic_image_shape: tuple[int, int, int]
    synthetic_num_classes: int

    @property
    def base(self) -> str:
        """The `specs.DATASETS` key of `dataset`."""
        return specs.base_name(self.dataset)

    @property
    def spec(self) -> specs.DatasetSpec:
        """The dataset's facts; for ``synthetic``, with the config's shape and sizes."""
        spec = specs.DATASETS[self.base]
        if self.base == "synthetic":
            spec = dataclasses.replace(
                spec, source_shape=self.synthetic_image_shape,
                num_classes=self.synthetic_num_classes,
                num_train=self.synthetic_num_train, num_test=self.synthetic_num_test)
        return spec


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


def checked_int(value: Any, name: str, minimum: int = 0) -> int:
    """`value` as an int; ValueError naming `name` unless it is an integer >= `minimum`."""
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


def resolve(data_config: Any) -> DataConfig:
    """Validates `data_config` and fills missing fields with the dataset's defaults.

    Args:
      data_config: the `data` section, a ConfigDict or a nested mapping.

    Returns:
      The `DataConfig`.

    Raises:
      ValueError: unknown dataset or field, or a bad value (the message names the field).
    """
    given = _to_dict(data_config, "data")
    dataset = given.get("dataset", "fashion_mnist")
    merged = _merge(specs.default_data_config(dataset).to_dict(), given, "data")
    aug, syn = merged["augment"], merged["synthetic"]
    shape = tuple(syn["image_shape"])
    if len(shape) != 3 or any(isinstance(d, bool) or not isinstance(d, int) or d < 1
                              for d in shape):
        raise ValueError(f"data.synthetic.image_shape must be (H, W, C) positive ints, got "
                         f"{syn['image_shape']!r}")
    cfg = DataConfig(
        dataset=dataset,
        data_dir=str(merged["data_dir"] or ""),
        tfds_data_dir=str(merged["tfds_data_dir"] or ""),
        manual_dir=str(merged["manual_dir"] or ""),
        download=bool(merged["download"]),
        image_size=checked_int(merged["image_size"], "data.image_size", 1),
        holdout_size=checked_int(merged["holdout_size"], "data.holdout_size"),
        train_subset=checked_int(merged["train_subset"], "data.train_subset"),
        split_seed=checked_int(merged["split_seed"], "data.split_seed"),
        mean=_floats(merged["mean"], "data.mean"),
        std=_floats(merged["std"], "data.std"),
        shuffle_buffer=checked_int(merged["shuffle_buffer"], "data.shuffle_buffer", 1),
        augment=AugmentConfig(
            pad_crop=checked_int(aug["pad_crop"], "data.augment.pad_crop"),
            flip=bool(aug["flip"]),
            random_resized_crop=bool(aug["random_resized_crop"]),
            color_jitter_prob=_float(aug["color_jitter_prob"], "data.augment.color_jitter_prob",
                                     0.0, 1.0),
            rotation_degrees=_float(aug["rotation_degrees"], "data.augment.rotation_degrees",
                                    0.0, 180.0)),
        synthetic_num_train=checked_int(syn["num_train"], "data.synthetic.num_train", 1),
        synthetic_num_test=checked_int(syn["num_test"], "data.synthetic.num_test", 1),
        synthetic_image_shape=shape,
        synthetic_num_classes=checked_int(syn["num_classes"], "data.synthetic.num_classes", 1),
    )
    channels = cfg.spec.source_shape[2]
    for name, values in (("mean", cfg.mean), ("std", cfg.std)):
        if len(values) not in (1, channels):
            raise ValueError(f"data.{name} has {len(values)} values but {cfg.dataset} images "
                             f"have {channels} channel(s): give 1 or {channels} values")
    if min(cfg.std) <= 0:
        raise ValueError(f"data.std must be positive, got {cfg.std}")
    return cfg

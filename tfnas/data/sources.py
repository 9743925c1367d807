"""Where a split's images come from: numpy arrays in memory, or a TFDS stream.

`make_source(cfg, split)` gives an `InMemory` source (Fashion-MNIST IDX files, CIFAR from
TFDS, synthetic) or a `Streamed` one (Imagenette, ImageNet from TFDS files). Missing data
raises `DatasetUnavailableError` at once (TFDS never retries a download unless
``data.download``), with a message saying how to get the data.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from typing import Any

import numpy as np
import tensorflow as tf

from tfnas.data.config import DataConfig
from tfnas.data.idx import load_fashion_mnist_idx
from tfnas.data.specs import DEFAULT_FASHION_MNIST_DIR
from tfnas.data.splits import split_positions

_LOG = logging.getLogger(__name__)

# Fixed seed of the synthetic class templates: train and test must share them to be learnable.
_SYNTHETIC_TEMPLATE_SEED = 20240611


class DatasetUnavailableError(ValueError):
    """The dataset's files are not on this machine; the message says how to get them."""


@dataclasses.dataclass(frozen=True)
class InMemory:
    """A split held as numpy arrays; the pipeline permutes `positions` every epoch."""

    images: np.ndarray  # uint8 [N, H, W, C], the whole official split
    labels: np.ndarray  # [N]
    positions: np.ndarray  # int64, which of them this split uses (the example indices)


@dataclasses.dataclass(frozen=True)
class Streamed:
    """A split read from TFDS files, in a fixed order; the pipeline shuffles with a buffer."""

    # (index int64, encoded image string, label) in a fixed order. Images stay encoded until
    # after the shuffle buffer, which then holds ~100 KB per ImageNet image instead of ~600 KB.
    dataset: tf.data.Dataset


def _tfds_dir_for_message(cfg: DataConfig) -> str:
    return cfg.tfds_data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser(
        "~/tensorflow_datasets")


def _prepare_hint(cfg: DataConfig) -> str:
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


def _tfds_load(cfg: DataConfig, split: str, **kwargs) -> Any:
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


def _tfds_numpy(cfg: DataConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
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


def _fashion_mnist_arrays(cfg: DataConfig, official: str) -> tuple[np.ndarray, np.ndarray]:
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


def _in_memory_arrays(cfg: DataConfig, official: str) -> tuple[np.ndarray, np.ndarray]:
    if cfg.base == "fashion_mnist":
        return _fashion_mnist_arrays(cfg, official)
    if cfg.base == "synthetic":
        num = cfg.synthetic_num_train if official == "train" else cfg.synthetic_num_test
        return _synthetic_arrays(num, cfg.synthetic_image_shape, cfg.synthetic_num_classes,
                                 0 if official == "train" else 1)
    return _tfds_numpy(cfg, official)


def _tfds_num_examples(cfg: DataConfig, split: str) -> int:
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


def make_source(cfg: DataConfig, split: str) -> InMemory | Streamed:
    """The source of `split` (``"train"``, ``"holdout"`` or ``"test"``) of the config's dataset.

    Raises:
      DatasetUnavailableError: the data is not on this machine.
      ValueError: the split sizes do not fit the dataset.
    """
    spec = cfg.spec
    official = spec.test_split if split == "test" else "train"
    if not spec.streamed:
        images, labels = _in_memory_arrays(cfg, "test" if split == "test" else "train")
        if split == "test":
            positions = np.arange(len(images))
        else:
            train, holdout = split_positions(cfg, len(images))
            positions = train if split == "train" else holdout
        return InMemory(images, labels, positions.astype(np.int64))

    import tensorflow_datasets as tfds

    dataset = _tfds_load(cfg, official,
                         decoders={"image": tfds.decode.SkipDecoding()}).enumerate()
    if split == "test" or (cfg.holdout_size == 0 and cfg.train_subset == 0):
        return Streamed(dataset.map(lambda i, ex: (i, ex[0], ex[1])))
    total = _tfds_num_examples(cfg, "train")
    train, holdout = split_positions(cfg, total)
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
    return Streamed(dataset.filter(is_kept).map(lambda i, ex: (i, ex[0], ex[1])))


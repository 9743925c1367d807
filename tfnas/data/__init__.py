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

A training pipeline can start at any batch, e.g. to resume:
``build_dataset(..., start_batch=n)`` yields the batches ``n, n + 1, ...`` of the same
stream without making the earlier ones (for in-memory sources).

One concept per module; the public names (``__all__``) are re-exported here, import the
others from their module:

- `tfnas.data.specs`: the dataset table `DATASETS` and `default_data_config`.
- `tfnas.data.config`: validation of the `data` section into a `DataConfig`.
- `tfnas.data.idx`: IDX files, `read_idx`, `load_fashion_mnist_idx`.
- `tfnas.data.splits`: the train/holdout split of the official training images.
- `tfnas.data.sources`: in-memory and streamed (TFDS) sources, `DatasetUnavailableError`.
- `tfnas.data.augment`: augmentation and preprocessing of batches.
- `tfnas.data.pipeline`: `build_dataset` and `dataset_info`.
"""

from tfnas.data.augment import COLOR_JITTER_BRIGHTNESS
from tfnas.data.augment import COLOR_JITTER_CONTRAST
from tfnas.data.augment import EVAL_CROP_FRACTION
from tfnas.data.augment import RRC_AREA_RANGE
from tfnas.data.augment import RRC_ASPECT_RANGE
from tfnas.data.idx import load_fashion_mnist_idx
from tfnas.data.idx import read_idx
from tfnas.data.pipeline import build_dataset
from tfnas.data.pipeline import dataset_info
from tfnas.data.sources import DatasetUnavailableError
from tfnas.data.specs import DATASETS
from tfnas.data.specs import DEFAULT_FASHION_MNIST_DIR
from tfnas.data.specs import SPLITS
from tfnas.data.specs import default_data_config

__all__ = [
    "COLOR_JITTER_BRIGHTNESS",
    "COLOR_JITTER_CONTRAST",
    "DATASETS",
    "DEFAULT_FASHION_MNIST_DIR",
    "EVAL_CROP_FRACTION",
    "RRC_AREA_RANGE",
    "RRC_ASPECT_RANGE",
    "SPLITS",
    "DatasetUnavailableError",
    "build_dataset",
    "dataset_info",
    "default_data_config",
    "load_fashion_mnist_idx",
    "read_idx",
]

"""The batched tf.data pipelines (`build_dataset`) and what they yield (`dataset_info`).

A pipeline is a stream of epochs; each epoch is the split's examples in the order of
``(seed, epoch)``, augmented by ``(seed, example index, epoch)``; batches run across epoch
boundaries (like ``repeat().batch()``). Because nothing depends on what came before, a
pipeline can start at any batch (``start_batch``) without producing the earlier ones.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfnas.data import augment
from tfnas.data.config import checked_int
from tfnas.data.config import resolve
from tfnas.data.idx import FMNIST_FILES
from tfnas.data.idx import idx_count
from tfnas.data.sources import InMemory
from tfnas.data.sources import make_source
from tfnas.data.specs import DEFAULT_FASHION_MNIST_DIR
from tfnas.data.specs import SPLITS
from tfnas.data.splits import split_positions

# Tag mixed into the shuffle seed so that it never coincides with the augmentation's
# (`augment.AUGMENT_TAG`).
_SHUFFLE_TAG = 0x5348


def _check_batching(batch_size: Any, num_replicas: Any) -> None:
    num_replicas = checked_int(num_replicas, "num_replicas", 1)
    batch_size = checked_int(batch_size, "batch_size", 1)
    if batch_size % num_replicas:
        lower = batch_size // num_replicas * num_replicas
        upper = lower + num_replicas
        options = f"{lower} or {upper}" if lower else f"{upper}"
        raise ValueError(
            f"global batch_size {batch_size} is not divisible by num_replicas {num_replicas}: "
            f"each replica must get the same number of images. Use a multiple of "
            f"{num_replicas}, e.g. {options} (--config.train.batch_size).")


def _epochs(first: int, epochs: int) -> tf.data.Dataset:
    """Epoch numbers ``first, first + 1, ...``: up to `epochs` (excluded), or forever if < 0."""
    if epochs < 0:
        return tf.data.Dataset.counter(start=first)
    return tf.data.Dataset.range(first, epochs)


def build_dataset(data_config: Any, split: str, batch_size: int, *, training: bool,
                  seed: int = 0, num_replicas: int = 1, repeat: bool | int | None = None,
                  drop_remainder: bool | None = None, shuffle: bool | None = None,
                  start_batch: int = 0) -> tf.data.Dataset:
    """Builds the batched input pipeline of one split.

    Example::

        cfg = default_data_config("cifar10")
        ds = build_dataset(cfg, "train", 128, training=True, seed=1,
                           num_replicas=strategy.num_replicas_in_sync)
        dist_ds = strategy.experimental_distribute_dataset(ds)
        # Resuming after `done` steps: the same stream, from where it stopped.
        ds = build_dataset(cfg, "train", 128, training=True, seed=1, start_batch=done)

    Augmentation (``training=True``, as `data.augment` says), in order: random-resized crop
    to ``image_size`` (``random_resized_crop``); rotation by up to ``rotation_degrees``;
    pad-crop (a zero-filled shift by up to ``pad_crop`` pixels); horizontal flip (``flip``,
    probability 1/2); brightness (+-`COLOR_JITTER_BRIGHTNESS`) and contrast
    (`COLOR_JITTER_CONTRAST`) jitter with probability ``color_jitter_prob``. Rotation,
    shift and flip are one bilinear projective transform per image.

    Args:
      data_config: the `data` config section (ConfigDict or nested dict; missing fields take
        `default_data_config(dataset)`'s values).
      split: ``"train"``, ``"holdout"`` or ``"test"`` (see `tfnas.data`).
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
      start_batch: the first batch to yield: the pipeline is
        ``build_dataset(...).skip(start_batch)`` of the same arguments, batch for batch and
        bit for bit. For in-memory sources (Fashion-MNIST, CIFAR, synthetic) the cost does
        not grow with `start_batch`: the pipeline starts at the epoch holding that batch and
        cuts that epoch's order, earlier epochs are never made. Streamed sources (Imagenette,
        ImageNet) still read the skipped examples (their shuffle buffer's order of an epoch
        depends on the epochs before), but do not decode or augment them. Use it to resume
        training after ``start_batch`` steps.

    Returns:
      A `tf.data.Dataset` of ``(images float32 [B, S, S, C], labels int32 [B])``, prefetched.

    Raises:
      ValueError: bad split, batch size, start_batch or config (the message says what to
        change).
      DatasetUnavailableError: the dataset is not on this machine (the message says how to
        get it).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    _check_batching(batch_size, num_replicas)
    cfg = resolve(data_config)
    if split == "holdout" and cfg.holdout_size == 0:
        raise ValueError("the holdout split is empty: set data.holdout_size > 0")
    seed = checked_int(seed, "seed")
    start_batch = checked_int(start_batch, "start_batch")
    if repeat is None or repeat is True:
        epochs = -1 if (repeat or training) else 1
    elif repeat is False:
        epochs = 1
    else:
        epochs = checked_int(repeat, "repeat", 1)
    if drop_remainder is None:
        drop_remainder = training
    if shuffle is None:
        shuffle = training
    # Batches run across epoch boundaries: batch n starts at example n * batch_size of the
    # concatenated epochs.
    start_example = start_batch * int(batch_size)

    source = make_source(cfg, split)
    shuffle_seed = tf.constant([seed, _SHUFFLE_TAG], tf.int64)
    aug_seed = tf.constant([seed, augment.AUGMENT_TAG], tf.int64)
    if isinstance(source, InMemory):
        images = tf.constant(source.images)
        labels = tf.constant(source.labels)
        positions = tf.constant(source.positions)
        num_images = len(source.images)
        per_epoch = len(source.positions)
        first_epoch, first_offset = divmod(start_example, per_epoch)

        def one_epoch(epoch):
            # In memory the index list is permuted whole every epoch (a perfect shuffle) by a
            # stateless op: the order depends only on (seed, epoch).
            order = positions
            if shuffle:
                order = tf.random.experimental.stateless_shuffle(
                    positions, tf.random.experimental.stateless_fold_in(shuffle_seed, epoch))
            # Where this epoch starts: at `start_batch`'s example in the first one, else 0.
            start = tf.where(epoch == first_epoch, tf.constant(first_offset, tf.int64),
                             tf.constant(0, tf.int64))
            if not training:
                return tf.data.Dataset.from_tensor_slices(order[start:])
            # One row of uniforms per image of the split, from (seed, epoch), picked by the
            # image's index: its augmentation depends on (seed, index, epoch) only, not on
            # the order or the batch it lands in; and there is no per-example work.
            table = tf.random.stateless_uniform(
                [num_images, augment.NUM_UNIFORMS],
                tf.random.experimental.stateless_fold_in(aug_seed, epoch))
            order = order[start:]
            return tf.data.Dataset.from_tensor_slices((order, tf.gather(table, order)))

        batch_fn = augment.make_batch_fn(cfg, training, sized=False)

        def load_batch(index, u=None):
            return batch_fn(tf.gather(images, index), u, tf.gather(labels, index))

        dataset = _epochs(first_epoch, epochs).flat_map(one_epoch)
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        dataset = dataset.map(load_batch, num_parallel_calls=tf.data.AUTOTUNE)
        if epochs > 0:
            # flat_map hides the size; state it, so that Keras shows a full progress bar and
            # `evaluate` does not warn that a finite pass "ran out of data".
            total = max(0, epochs * per_epoch - start_example)
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

        # Every epoch is made (its shuffle order follows from the previous epochs'), but the
        # examples before `start_batch` are dropped while still encoded: read, not decoded
        # nor augmented. Dropping them before the per-example map changes nothing else, as
        # that map depends on (seed, epoch, index) only.
        dataset = _epochs(0, epochs).flat_map(one_epoch)
        if start_example:
            dataset = dataset.skip(start_example)
        dataset = dataset.map(augment.make_example_fn(cfg, training, seed),
                              num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        dataset = dataset.map(augment.make_batch_fn(cfg, training, sized=True),
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
    cfg = resolve(data_config)
    spec = cfg.spec
    num_train_total, num_test = spec.num_train, spec.num_test
    if cfg.base == "fashion_mnist":
        # The IDX headers give the real counts (data_dir may hold another MNIST-format set).
        data_dir = cfg.data_dir or DEFAULT_FASHION_MNIST_DIR
        num_train_total = idx_count(data_dir, FMNIST_FILES["train"][1]) or num_train_total
        num_test = idx_count(data_dir, FMNIST_FILES["test"][1]) or num_test
    train, holdout = split_positions(cfg, num_train_total)
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

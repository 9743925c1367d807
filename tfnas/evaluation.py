"""Scoring subnets with inherited weights: BN recalibration, then accuracy.

Usage::

    evaluator = SubnetEvaluator.from_datasets(supernet, recal_ds, eval_ds, num_batches=20)
    acc = evaluator.accuracy("1252233313...")      # recalibrates BN for the arch first

A supernet trained without running statistics (``bn_momentum=1.0``, as the CVPR22 Track-1
teams did) has no usable BN statistics for any subnet: before a subnet is scored, its BN
statistics are recomputed from a fixed set of training batches (BN recalibration; OFA, Cai
et al. 2020, §3.3; "BN calibration" in the CVPR22 reports). Every arch is recalibrated on
the *same* cached batches, and the first batch overwrites the previous arch's statistics
(momentum 0), so a score does not depend on which arch was scored before.

Two averaging modes: ``cumulative`` (exact mean of the per-batch means and biased variances,
momentum ``n / (n + 1)`` at batch ``n``) and ``ema`` (Keras-convention momentum after the
first batch). Trainable weights are never touched: the recalibration pass computes no
gradients and BN updates only its non-trainable statistics.
"""

from __future__ import annotations

import json
import time

import numpy as np
import tensorflow as tf

from tfnas import supernet as supernet_lib

RECALIBRATION_MODES = ("cumulative", "ema")


def take_batches(dataset: tf.data.Dataset, num_batches: int) -> list[tuple[tf.Tensor, ...]]:
    """The first ``num_batches`` batches of ``dataset`` as tensors (cached for reuse)."""
    batches = [tuple(b) for b in dataset.take(num_batches)]
    if len(batches) < num_batches:
        raise ValueError(
            f"BN recalibration asked for {num_batches} batches but the dataset yields only "
            f"{len(batches)}. Lower --config.evaluate.recalibration.num_batches or the batch "
            "size, or use more data."
        )
    return batches


def batch_momentum(index: int, mode: str, ema_momentum: float) -> float:
    """Momentum of the ``index``-th recalibration batch (0 for the first: a reset)."""
    if mode not in RECALIBRATION_MODES:
        raise ValueError(
            f"Unknown BN recalibration mode {mode!r}; expected one of "
            f"{', '.join(RECALIBRATION_MODES)}."
        )
    if index == 0:
        return 0.0
    return index / (index + 1.0) if mode == "cumulative" else float(ema_momentum)


class SubnetEvaluator:
    """Recalibrates BN and measures top-1 accuracy of subnets of one supernet.

    Args:
        supernet: a built `tfnas.supernet.Supernet`.
        recal_batches: list of ``(images, labels)`` batches for BN recalibration.
        eval_batches: list of ``(images, labels)`` batches (or a re-iterable dataset) to
            score on.
        mode: ``cumulative`` or ``ema``.
        ema_momentum: the momentum of ``ema`` mode.
    """

    def __init__(self, supernet, recal_batches, eval_batches, mode="cumulative", ema_momentum=0.9):
        batch_momentum(0, mode, ema_momentum)  # validates the mode
        self.supernet = supernet
        self.recal_batches = list(recal_batches)
        self.eval_batches = eval_batches
        self.mode = mode
        self.ema_momentum = ema_momentum
        shape = [None, *self.recal_batches[0][0].shape[1:]] if self.recal_batches else None
        image_spec = tf.TensorSpec(shape, tf.float32)
        arch_spec = tf.TensorSpec([52], tf.int32)

        @tf.function(input_signature=[image_spec, arch_spec, tf.TensorSpec([], tf.float32)])
        def recal_step(images, arch, momentum):
            self.supernet(images, arch=arch, training=True, bn_momentum=momentum)
            return tf.constant(0)

        @tf.function(
            input_signature=[image_spec, tf.TensorSpec([None], tf.int32), arch_spec]
        )
        def correct(images, labels, arch):
            logits = self.supernet(images, arch=arch, training=False)
            hits = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
            return tf.reduce_sum(tf.cast(hits, tf.int32)), tf.size(labels)

        self._recal_step = recal_step
        self._correct = correct

    @classmethod
    def from_datasets(cls, supernet, recal_dataset, eval_dataset, num_batches, cache_eval=True,
                      **kwargs):
        """Takes ``num_batches`` recalibration batches; caches the eval set when asked."""
        recal = take_batches(recal_dataset, num_batches)
        evals = [tuple(b) for b in eval_dataset] if cache_eval else eval_dataset
        return cls(supernet, recal, evals, **kwargs)

    def recalibrate(self, arch) -> None:
        """Recomputes the BN statistics of ``arch``'s active channels."""
        arch = supernet_lib.arch_tensor(arch, self.supernet.space)
        for i, (images, *_) in enumerate(self.recal_batches):
            momentum = batch_momentum(i, self.mode, self.ema_momentum)
            self._recal_step(images, arch, tf.constant(momentum, tf.float32))

    def accuracy(self, arch, recalibrate: bool = True) -> float:
        """Top-1 accuracy of ``arch`` on the eval batches (after BN recalibration)."""
        if recalibrate:
            self.recalibrate(arch)
        arch = supernet_lib.arch_tensor(arch, self.supernet.space)
        hits = total = 0
        for images, labels in self.eval_batches:
            h, n = self._correct(images, tf.cast(labels, tf.int32), arch)
            hits += int(h)
            total += int(n)
        if total == 0:
            raise ValueError("The evaluation data is empty; check --config.evaluate.split.")
        return hits / total

    def score_many(self, codes, on_result=None) -> dict[str, float]:
        """Accuracies of many codes; ``on_result(code, acc, seconds)`` after each one."""
        results = {}
        for code in codes:
            start = time.perf_counter()
            results[code] = self.accuracy(code)
            if on_result is not None:
                on_result(code, results[code], time.perf_counter() - start)
        return results


def recal_num_examples(evaluator: SubnetEvaluator) -> int:
    """Images used for one recalibration (for reports)."""
    return int(np.sum([int(b[0].shape[0]) for b in evaluator.recal_batches]))


# ------------------------------------------------------------------ from an experiment config


def evaluator_spec(config, *, eval_batches: int | None = None) -> dict:
    """Everything that decides an evaluator's scores besides the supernet, as plain JSON.

    One place lists the evaluator's inputs, so that `build_evaluator` builds from it and
    `fingerprint` hashes exactly it: the data section, the recalibration batches (split,
    batch size, number, augmentation, averaging, and the seed that draws them) and the
    evaluation batches (split, batch size, number).

    Args:
      config: an experiment config (``data``, ``seed``, ``evaluate`` sections).
      eval_batches: overrides ``evaluate.num_batches`` (0: the whole split).
    """
    ev = config.evaluate
    recal = ev.recalibration
    return {
        "data": json.loads(config.data.to_json_best_effort()),
        "recalibration": {
            "split": recal.split,
            "batch_size": int(recal.batch_size),
            "num_batches": int(recal.num_batches),
            "augment": bool(recal.augment),
            "mode": recal.mode,
            "ema_momentum": float(recal.ema_momentum),
            # The recalibration batches are a fixed random draw of this seed.
            "seed": int(config.seed) + 1,
        },
        "evaluation": {
            "split": ev.split,
            "batch_size": int(ev.batch_size),
            "num_batches": int(ev.num_batches if eval_batches is None else eval_batches),
        },
    }


def build_evaluator(config, supernet, *, eval_batches: int | None = None) -> SubnetEvaluator:
    """The `SubnetEvaluator` of ``config`` (`evaluator_spec`) around ``supernet``.

    Usage (what the ``evaluate`` stage does)::

        evaluator = evaluation.build_evaluator(config, keras.saving.load_model(path))
        acc = evaluator.accuracy(code)
    """
    from tfnas import data as data_lib  # the data pipelines; heavy, so imported on use

    spec = evaluator_spec(config, eval_batches=eval_batches)
    recal, ev = spec["recalibration"], spec["evaluation"]
    recal_ds = data_lib.build_dataset(
        config.data,
        recal["split"],
        recal["batch_size"],
        training=recal["augment"],
        seed=recal["seed"],
        repeat=True,
        shuffle=True,  # a random, but fixed, set of training batches
    )
    eval_ds = data_lib.build_dataset(
        config.data, ev["split"], ev["batch_size"], training=False, seed=int(config.seed)
    )
    if ev["num_batches"]:
        eval_ds = eval_ds.take(ev["num_batches"])
    return SubnetEvaluator.from_datasets(
        supernet,
        recal_ds,
        eval_ds,
        recal["num_batches"],
        mode=recal["mode"],
        ema_momentum=recal["ema_momentum"],
    )


def fingerprint(config, supernet_file) -> str:
    """16 hex digits of SHA-256 over the supernet file's bytes and `evaluator_spec`.

    Two scores with the same fingerprint came from the same supernet and the same
    recalibration and evaluation data; resuming or merging scores checks it.
    """
    from tfnas import export  # file_sha256; export imports the static models

    setup = json.dumps(evaluator_spec(config), sort_keys=True).encode()
    return export.file_sha256(supernet_file, suffix=setup)[:16]


# ------------------------------------------------------------------------ the config section

CONFIG_FIELDS = (
    "codes",
    "supernet",
    "split",
    "batch_size",
    "num_batches",
    "log_every",
    "recalibration",
)
RECALIBRATION_FIELDS = ("split", "batch_size", "num_batches", "augment", "mode", "ema_momentum")


def check_split(fields, field: str, holdout_size: int) -> str:
    """Checks that ``field`` of a section (a `tfnas.config_checks.Section`) names a split of
    `tfnas.data.SPLITS` that exists: ``holdout`` needs ``data.holdout_size`` > 0."""
    from tfnas import data as data_lib  # the data pipelines; heavy, so imported on use

    split = fields.choice(field, data_lib.SPLITS)
    if split == "holdout" and holdout_size == 0:
        raise fields.fail(
            field,
            split,
            "'train' or 'test' when data.holdout_size is 0 (there is no holdout split)",
            "set --config.data.holdout_size to a positive size or "
            f"--config.{fields.path}.{field}=test",
        )
    return split


def validate_config(section, *, holdout_size: int) -> None:
    """Checks the ``evaluate`` section of an experiment config (`tfnas.config_lib`).

    Fields (the ``evaluate`` stage; `evaluator_spec` says which decide a score):

    - ``codes``: the default of ``--codes`` (a file or ``CODE,CODE``; empty: none).
    - ``supernet``: the ``supernet.keras`` to score (empty: the ``oneshot`` stage's
      manifest in the same workdir).
    - ``split``: the split scored, one of `tfnas.data.SPLITS` (``holdout`` needs
      ``data.holdout_size`` > 0).
    - ``batch_size`` (int >= 1), ``num_batches`` (int >= 0; 0: the whole split).
    - ``log_every`` (int >= 1): print progress every so many archs.
    - ``recalibration``: BN recalibration before each arch is scored (also used by the
      ``export`` stage and the ranking monitor):

      - ``split``: where its batches come from (usually ``train``);
      - ``batch_size``, ``num_batches`` (ints >= 1): a fixed random draw of batches (seed
        ``config.seed + 1``), the same for every arch;
      - ``augment`` (bool): draw them with training augmentation;
      - ``mode``: ``cumulative`` (exact average over the batches) or ``ema``
        (`RECALIBRATION_MODES`);
      - ``ema_momentum`` in [0, 1]: the momentum of ``ema``.

    Args:
      section: ``config.evaluate``.
      holdout_size: ``config.data.holdout_size``, to check the splits.

    Raises:
      ValueError: naming ``config.evaluate.<field>``, the value, what is expected and how to
        fix it; also for a missing or unknown field.
    """
    from tfnas import config_checks

    fields = config_checks.Section(
        section, "evaluate", CONFIG_FIELDS, owner="tfnas.evaluation.validate_config"
    )
    fields.string("codes")
    fields.string("supernet")
    check_split(fields, "split", holdout_size)
    fields.integer("batch_size", 1)
    fields.integer("num_batches", 0)
    fields.integer("log_every", 1)
    recal = config_checks.Section(
        section["recalibration"],
        "evaluate.recalibration",
        RECALIBRATION_FIELDS,
        owner="tfnas.evaluation.validate_config",
    )
    check_split(recal, "split", holdout_size)
    recal.integer("batch_size", 1)
    recal.integer("num_batches", 1)
    recal.boolean("augment")
    recal.choice("mode", RECALIBRATION_MODES)
    recal.number("ema_momentum", 0.0, 1.0)

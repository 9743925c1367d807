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

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

Speed: the batches are cached once as device tensors, and scoring an arch (recalibration,
then the hits of every evaluation batch) is one graph call with the arch as a tensor; several
archs can share a call (`SubnetEvaluator.accuracies`). One trace serves every arch. The
scores are bit for bit those of one call per batch (``tests/test_evaluation.py``,
``benchmarks/scoring_speed.py``). On CPU the time of a score is almost all convolution and
BN arithmetic inside the graph (a profile of the Fashion-MNIST supernet: convolutions ~70%,
BN multiplies and adds ~25% of inference), so removing Python round trips gains little; the
cost is set by the recalibration and evaluation set sizes.
"""

from __future__ import annotations

import json
import time

import numpy as np
import tensorflow as tf

from tfnas import search_space as ss
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


def _stack_batches(batches, what: str):
    """(images [N, ...], labels [N] int32 or None, bounds int32 [K + 1]) of K batches.

    The batches are concatenated into one device tensor, and ``bounds`` keeps where each
    batch starts: a graph loop slices batch ``k`` back as ``images[bounds[k]:bounds[k+1]]``,
    so every batch keeps its size (and a recalibration batch its statistics).
    """
    batches = [tuple(b) for b in batches]
    if not batches:
        raise ValueError(
            f"The {what} batches are empty; check --config.evaluate (split, num_batches)."
        )
    sizes = [int(b[0].shape[0]) for b in batches]
    images = tf.concat([tf.convert_to_tensor(b[0], tf.float32) for b in batches], axis=0)
    labels = None
    if len(batches[0]) > 1:
        labels = tf.concat([tf.cast(b[1], tf.int32) for b in batches], axis=0)
    bounds = tf.constant(np.concatenate([[0], np.cumsum(sizes)]), tf.int32)
    return images, labels, bounds


class SubnetEvaluator:
    """Recalibrates BN and measures top-1 accuracy of subnets of one supernet.

    Scoring one arch is one graph call (`accuracy`), several archs one call too
    (`accuracies`): the recalibration and evaluation batches are concatenated once into
    device tensors, and a graph loop runs the recalibration batches in order (a BN update
    per batch, exactly as one call per batch would), then counts the hits of every eval
    batch. The arch is a tensor argument: one trace serves every arch.

    Args:
        supernet: a built `tfnas.supernet.Supernet`.
        recal_batches: list of ``(images, labels)`` (or ``(images,)``) batches for BN
            recalibration.
        eval_batches: list of ``(images, labels)`` batches to score on, or a re-iterable
            dataset of them (streamed batch by batch when it is too large to cache).
        mode: ``cumulative`` or ``ema``.
        ema_momentum: the momentum of ``ema`` mode.
    """

    def __init__(self, supernet, recal_batches, eval_batches, mode="cumulative", ema_momentum=0.9):
        batch_momentum(0, mode, ema_momentum)  # validates the mode
        self.supernet = supernet
        self.mode = mode
        self.ema_momentum = ema_momentum
        self.recal_batches = recal_batches  # cached as device tensors (the setter)
        self.eval_batches = eval_batches
        shape = tuple(self._recal[0].shape[1:])
        image_spec = tf.TensorSpec([None, *shape], tf.float32)
        arch_spec = tf.TensorSpec([ss.CODE_LENGTH], tf.int32)
        bounds_spec = tf.TensorSpec([None], tf.int32)
        recal_specs = [image_spec, bounds_spec, tf.TensorSpec([None], tf.float32)]
        eval_specs = [image_spec, tf.TensorSpec([None], tf.int32), bounds_spec]

        @tf.function(input_signature=[arch_spec, *recal_specs])
        def recalibrate(arch, images, bounds, momenta):
            return self._recalibrate_graph(arch, images, bounds, momenta)

        @tf.function(input_signature=[arch_spec, *eval_specs])
        def count(arch, images, labels, bounds):
            return self._count_graph(arch, images, labels, bounds)

        @tf.function(
            input_signature=[tf.TensorSpec([None, ss.CODE_LENGTH], tf.int32)]
            + recal_specs
            + eval_specs
        )
        def score(archs, recal_images, recal_bounds, momenta, images, labels, bounds):
            def one_arch(k, hits):
                done = self._recalibrate_graph(archs[k], recal_images, recal_bounds, momenta)
                # The eval batches read the statistics the recalibration just wrote.
                with tf.control_dependencies([done]):
                    count = self._count_graph(archs[k], images, labels, bounds)
                return k + 1, hits.write(k, count)

            n = tf.shape(archs)[0]
            hits = tf.TensorArray(tf.int32, size=n)
            # One arch at a time: every arch rewrites the same BN statistics.
            _, hits = tf.while_loop(
                lambda k, _: k < n, one_arch, (tf.constant(0), hits), parallel_iterations=1
            )
            return hits.stack()

        self._recalibrate_fn = recalibrate
        self._count_fn = count
        self._score_fn = score

    @classmethod
    def from_datasets(cls, supernet, recal_dataset, eval_dataset, num_batches, cache_eval=True,
                      **kwargs):
        """Takes ``num_batches`` recalibration batches; caches the eval set when asked."""
        recal = take_batches(recal_dataset, num_batches)
        evals = [tuple(b) for b in eval_dataset] if cache_eval else eval_dataset
        return cls(supernet, recal, evals, **kwargs)

    # -- the cached batches -----------------------------------------------------------

    @property
    def recal_batches(self) -> list:
        """The recalibration batches; assigning new ones re-caches them."""
        return self._recal_batches

    @recal_batches.setter
    def recal_batches(self, batches) -> None:
        self._recal_batches = list(batches)
        images, _, bounds = _stack_batches(self._recal_batches, "BN recalibration")
        momenta = [
            batch_momentum(i, self.mode, self.ema_momentum)
            for i in range(len(self._recal_batches))
        ]
        self._recal = (images, bounds, tf.constant(momenta, tf.float32))

    @property
    def eval_batches(self):
        """The evaluation batches (a list, or a dataset streamed per call)."""
        return self._eval_batches

    @eval_batches.setter
    def eval_batches(self, batches) -> None:
        self._eval_batches = batches
        self._eval = None  # a dataset: streamed, one call per batch
        if isinstance(batches, (list, tuple)) and batches:
            self._eval = _stack_batches(batches, "evaluation")

    @property
    def num_eval_examples(self) -> int | None:
        """Images each score is measured on (None for a streamed dataset): the ``n`` of a
        score's binomial standard error sqrt(p (1 - p) / n) (`tfnas.ranking.score_noise`)."""
        if self._eval is not None:
            return int(self._eval[1].shape[0])
        return 0 if isinstance(self._eval_batches, (list, tuple)) else None

    @property
    def trace_counts(self) -> dict[str, int]:
        """Traces so far of the graph functions ``score`` (`accuracy`, `accuracies`),
        ``recalibrate`` and ``count`` (``accuracy(recalibrate=False)``): one each serves
        every arch and every number of archs per call."""
        fns = {"score": self._score_fn, "recalibrate": self._recalibrate_fn,
               "count": self._count_fn}
        return {name: fn.experimental_get_tracing_count() for name, fn in fns.items()}

    # -- graph pieces -----------------------------------------------------------------

    def _recalibrate_graph(self, arch, images, bounds, momenta):
        """Runs the recalibration batches in order; returns their count when done."""

        def step(i):
            batch = images[bounds[i] : bounds[i + 1]]
            self.supernet(batch, arch=arch, training=True, bn_momentum=momenta[i])
            return (i + 1,)

        # parallel_iterations=1: batch i + 1 starts after batch i's BN update (each update
        # reads the statistics the previous one wrote).
        (done,) = tf.while_loop(
            lambda i: i < tf.size(momenta), step, (tf.constant(0),), parallel_iterations=1
        )
        return done

    def _count_graph(self, arch, images, labels, bounds):
        """Top-1 hits of ``arch`` over the batches (inference mode: statistics are read)."""

        def step(i, hits):
            begin, end = bounds[i], bounds[i + 1]
            logits = self.supernet(images[begin:end], arch=arch, training=False)
            right = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels[begin:end])
            return i + 1, hits + tf.reduce_sum(tf.cast(right, tf.int32))

        # Batches only read the weights: two in flight overlap one's tail with the next.
        _, hits = tf.while_loop(
            lambda i, _: i < tf.size(bounds) - 1,
            step,
            (tf.constant(0), tf.constant(0)),
            parallel_iterations=2,
        )
        return hits

    # -- scoring ----------------------------------------------------------------------

    def recalibrate(self, arch) -> None:
        """Recomputes the BN statistics of ``arch``'s active channels."""
        arch = supernet_lib.arch_tensor(arch, self.supernet.space)
        self._recalibrate_fn(arch, *self._recal)

    def accuracy(self, arch, recalibrate: bool = True) -> float:
        """Top-1 accuracy of ``arch`` on the eval batches (after BN recalibration).

        One graph call (`accuracies`); ``recalibrate=False`` scores the statistics in place.
        """
        if recalibrate and self._eval is not None:
            return self.accuracies([arch])[0]
        if recalibrate:
            self.recalibrate(arch)
        arch = supernet_lib.arch_tensor(arch, self.supernet.space)
        if self._eval is not None:
            return int(self._count_fn(arch, *self._eval)) / self.num_eval_examples
        hits = total = 0
        for batch in self._eval_batches:  # a list that is empty, or a dataset
            images, labels, bounds = _stack_batches([batch], "evaluation")
            hits += int(self._count_fn(arch, images, labels, bounds))
            total += int(labels.shape[0])
        if total == 0:
            raise ValueError("The evaluation data is empty; check --config.evaluate.split.")
        return hits / total

    def accuracies(self, archs) -> list[float]:
        """Top-1 accuracies of several archs, each BN-recalibrated first, in one graph call.

        The same numbers as ``[accuracy(a) for a in archs]``, whatever the number of archs
        per call: inside the graph the archs are scored one after the other, each
        recalibrated on the same batches.
        """
        archs = list(archs)
        if not archs:
            return []
        if self._eval is None:
            return [self.accuracy(a) for a in archs]
        tensor = supernet_lib.arch_tensors(archs, self.supernet.space)
        hits = self._score_fn(tensor, *self._recal, *self._eval).numpy()
        return [int(h) / self.num_eval_examples for h in hits]

    def score_many(self, codes, on_result=None, archs_per_call: int = 1) -> dict[str, float]:
        """Accuracies of many codes; ``on_result(code, acc, seconds)`` after each one.

        ``archs_per_call`` archs share one graph call (``seconds`` is then the call's time
        divided among them); the accuracies do not depend on it.
        """
        codes = list(codes)
        results = {}
        for first in range(0, len(codes), max(1, int(archs_per_call))):
            chunk = codes[first : first + max(1, int(archs_per_call))]
            start = time.perf_counter()
            accs = self.accuracies(chunk)
            seconds = (time.perf_counter() - start) / len(chunk)
            for code, acc in zip(chunk, accs):
                results[code] = acc
                if on_result is not None:
                    on_result(code, acc, seconds)
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

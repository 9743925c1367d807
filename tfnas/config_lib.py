"""Shared defaults and validation of experiment configs (`configs/<name>.py`).

Every config file builds on `base_config`, changes what its experiment needs and returns the
ConfigDict; ``variant="tiny"`` goes through `make_tiny` (synthetic data of the dataset's shape,
a few steps) for tests and smoke runs::

    def get_config(variant=None):
        config = config_lib.base_config("fmnist", space="fmnist", dataset="fashion_mnist")
        config.train.epochs = 5
        return config_lib.finish(config, variant)

`validate_config` checks a (possibly command-line overridden) config before a stage runs:
each problem is a ValueError naming the field, the value received, what is expected and how
to fix it. The schema is in docs/DESIGN.md; the fields are:

- ``name``, ``seed``, ``space`` (a `tfnas.search_space.SPACES` variant).
- ``data``: `tfnas.data.default_data_config` of the dataset (see `tfnas.data`).
- ``supernet``: ``groups`` (weight copies), ``routing`` (which subnets use which copy, see
  `tfnas.supernet.routing_table`), ``kernels``, ``simplex_hidden``, ``bn_momentum`` (1.0: BN
  running statistics are not updated during supernet training, they are recalibrated
  before evaluation, as the CVPR22 teams did), ``bn_epsilon``, ``zero_init_residual`` (the
  last BN of every residual branch starts with scale 0, BigNAS §3.2), ``dropout`` (before
  the classifier of the largest subnet only, see `tfnas.schemes`).
- ``train``: ``scheme``, ``batch_size`` (global), ``epochs``, ``steps_per_epoch`` (0: one pass
  over the training split), ``learning_rate`` (peak, after the linear warm-up; cosine decay to
  0), ``momentum``, ``nesterov``, ``weight_decay`` (largest subnet only), ``warmup_epochs``,
  ``label_smoothing``, ``num_random_subnets`` (sandwich), ``strategy``, ``log_every_steps``,
  ``checkpoint_every_epochs``, ``verbose`` (Keras fit verbosity), ``monitor``
  {``enabled``, ``ground_truth`` (competition or results JSON with ``acc``), ``every_epochs``,
  ``max_archs`` (0: all)}: Kendall tau etc. of the supernet against stand-alone accuracies
  during training, logged and used to keep the best-tau checkpoint only (`tfnas.monitor`).
- ``evaluate``: ``codes`` (default of ``--codes``), ``supernet`` (empty: the ``oneshot``
  stage's manifest), ``split``, ``batch_size``, ``num_batches`` (0: the whole split),
  ``log_every``, ``recalibration`` {``split``, ``batch_size``, ``num_batches``, ``augment``,
  ``mode``, ``ema_momentum``} (BN recalibration, see `tfnas.evaluation`).
- ``standalone``: the from-scratch recipe of the ground-truth stage (``seed``,
  ``train_subset``, ``split``, ``batch_size``, ``eval_batch_size``, ``epochs``,
  ``warmup_epochs``, ``learning_rate``, ``momentum``, ``nesterov``, ``weight_decay``,
  ``dropout``, ``zero_init_residual``).
- ``rank``: ``ks``, ``bootstrap``, ``seed``, ``drop_unmatched_pred`` (see
  `tfnas.stages.rank`).
- ``export``: ``root`` (directory of exports, relative to the current directory), ``run``
  (sub-directory; empty: ``name``; each arch goes to ``<root>/<run>/<code>/``),
  ``overwrite``, ``supernet`` (empty: the ``oneshot`` stage's manifest, else a freshly
  initialized supernet), ``codes`` (default of ``--codes``; both empty: the ``top_k``
  best archs of the ``evaluate`` stage's results), ``top_k``, ``recalibrate`` (BN
  recalibration of each arch before it is exported, as ``evaluate.recalibration`` says).

This module imports neither TensorFlow nor the search space at import time: `validate_config`
imports `tfnas.search_space` and `tfnas.data` when it runs.
"""

from __future__ import annotations

import numbers
from typing import Any

import ml_collections

__all__ = [
    "RECALIBRATION_MODES",
    "ROUTINGS",
    "SCHEMES",
    "SPACE_DATASETS",
    "SPLITS",
    "STRATEGIES",
    "VARIANTS",
    "base_config",
    "finish",
    "make_tiny",
    "validate_config",
]

# Names the config accepts. They mirror the registries of the modules that use them
# (tests/test_configs.py checks that they agree), so that validating a config needs neither
# TensorFlow nor Keras.
SCHEMES = ("sandwich", "uniform")  # tfnas.schemes.SCHEMES
STRATEGIES = ("default", "one_device", "mirrored", "multi_worker")  # tfnas.distribute
ROUTINGS = ("shared", "stage_width", "depth34")  # tfnas.supernet.ROUTINGS
RECALIBRATION_MODES = ("cumulative", "ema")  # tfnas.evaluation.RECALIBRATION_MODES
SPLITS = ("train", "holdout", "test")  # tfnas.data.SPLITS

# Config variants every configs/<name>.py accepts.
VARIANTS = (None, "tiny")

# The dataset each search-space variant is trained on by default.
SPACE_DATASETS = {
    "fmnist": "fashion_mnist",
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "imagenet": "imagenet2012",
}


def _data_config(dataset: str) -> ml_collections.ConfigDict:
    """`tfnas.data.default_data_config`, imported here so that configs load without TF."""
    from tfnas import data as data_lib  # imports TensorFlow

    return data_lib.default_data_config(dataset)


def base_config(
    name: str = "fmnist", space: str = "fmnist", dataset: str | None = None
) -> ml_collections.ConfigDict:
    """The shared defaults: every section of the schema, sized for Fashion-MNIST.

    Args:
      name: the experiment's name (names exports and reports).
      space: search-space variant.
      dataset: the `data.dataset`; by default the one of `SPACE_DATASETS` for ``space``.

    Returns:
      A new, unlocked ConfigDict; the config files change what their experiment needs.
    """
    dataset = dataset or SPACE_DATASETS.get(space, "fashion_mnist")
    config = ml_collections.ConfigDict()
    config.name = name
    config.seed = 0
    config.space = space
    config.data = _data_config(dataset)

    config.supernet = ml_collections.ConfigDict(
        dict(
            groups=1,
            routing="shared",
            kernels=1,
            simplex_hidden=64,
            # Keras convention (1 - torch momentum): 1.0 = running statistics stay as they
            # are during supernet training; evaluation recalibrates them per subnet.
            bn_momentum=1.0,
            bn_epsilon=1e-5,
            # BigNAS §3.2: each residual block starts as its shortcut, which keeps the
            # sandwich's big and small subnets stable early in training.
            zero_init_residual=True,
            dropout=0.0,
        )
    )
    config.train = ml_collections.ConfigDict(
        dict(
            scheme="sandwich",
            batch_size=128,
            epochs=5,
            steps_per_epoch=0,
            learning_rate=0.1,
            momentum=0.9,
            nesterov=False,
            weight_decay=5e-5,
            warmup_epochs=1.0,
            label_smoothing=0.0,
            num_random_subnets=2,
            strategy="default",
            log_every_steps=50,
            checkpoint_every_epochs=1,
            verbose=2,
            # tfnas.monitor.RankingMonitor: the ground truth selects a checkpoint and is
            # logged; it never enters a loss.
            monitor=dict(enabled=False, ground_truth="", every_epochs=1, max_archs=0),
        )
    )
    config.evaluate = ml_collections.ConfigDict(
        dict(
            codes="",
            supernet="",
            split="holdout",
            batch_size=500,
            num_batches=0,
            log_every=10,
            recalibration=dict(
                split="train",
                batch_size=128,
                num_batches=20,
                augment=False,
                mode="cumulative",
                ema_momentum=0.9,
            ),
        )
    )
    config.standalone = ml_collections.ConfigDict(
        dict(
            seed=0,
            train_subset=0,
            split="test",
            batch_size=128,
            eval_batch_size=500,
            epochs=5,
            warmup_epochs=1.0,
            learning_rate=0.1,
            momentum=0.9,
            nesterov=False,
            weight_decay=5e-5,
            dropout=0.0,
            zero_init_residual=False,
        )
    )
    config.export = ml_collections.ConfigDict(
        dict(
            root="saved_models",
            run="",
            overwrite=False,
            supernet="",
            codes="",
            top_k=5,
            recalibrate=True,
        )
    )
    # The rank stage's report (tfnas.stages.rank): top-k specs (ints absolute, floats in
    # (0, 1) fractions), bootstrap resamples per CI and their seed, and whether scored codes
    # without ground truth are ignored (else an error).
    config.rank = ml_collections.ConfigDict(
        dict(ks=(5, 10, 0.1, 0.25, 0.5), bootstrap=1000, seed=0, drop_unmatched_pred=False)
    )
    return config


def make_tiny(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Turns ``config`` into its ``tiny`` variant, in place: tests and smoke runs.

    Synthetic data with the shape and classes of the config's dataset (so the same space
    applies, and nothing is read from disk), batches of 16, one epoch of two steps, small
    evaluation and recalibration sets, a short from-scratch recipe.
    """
    data = config.data
    size = int(data.image_size)
    channels, num_classes = _dataset_channels_classes(data.dataset)
    tiny = _data_config("synthetic")
    tiny.image_size = size
    tiny.holdout_size = 32
    tiny.synthetic.image_shape = (size, size, channels)
    tiny.synthetic.num_classes = num_classes
    tiny.synthetic.num_train = 96
    tiny.synthetic.num_test = 32
    config.data = tiny

    config.name = f"{config.name}_tiny"
    config.train.batch_size = 16
    config.train.epochs = 1
    config.train.steps_per_epoch = 2
    config.train.warmup_epochs = 0.0
    config.train.log_every_steps = 1
    config.train.verbose = 0
    config.evaluate.batch_size = 16
    config.evaluate.num_batches = 2
    config.evaluate.log_every = 1
    config.evaluate.recalibration.batch_size = 16
    config.evaluate.recalibration.num_batches = 2
    config.standalone.train_subset = 32
    config.standalone.batch_size = 16
    config.standalone.eval_batch_size = 16
    config.standalone.epochs = 1
    config.standalone.warmup_epochs = 0.0
    return config


def finish(config: ml_collections.ConfigDict, variant: str | None) -> ml_collections.ConfigDict:
    """Applies ``variant`` (None or ``"tiny"``) to a config file's config and returns it."""
    if variant not in VARIANTS:
        raise ValueError(
            f"unknown config variant {variant!r} of config {config.name!r}: expected one of "
            f"{', '.join(repr(v) for v in VARIANTS)}; pass e.g. --config=configs/fmnist.py:tiny "
            "or no ':variant' for the full config"
        )
    if variant == "tiny":
        make_tiny(config)
    return config


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

_MISSING = object()


def _fail(field: str, value: Any, expected: str, fix: str | None = None) -> ValueError:
    fix = fix or f"fix it with --config.{field}=VALUE or in the config file"
    return ValueError(f"config.{field}={value!r} is invalid: expected {expected}; {fix}")


def _get(config: Any, field: str) -> Any:
    node = config
    for part in field.split("."):
        try:
            node = node[part]
        except (KeyError, TypeError, AttributeError):
            node = _MISSING
        if node is _MISSING:
            raise ValueError(
                f"config.{field} is missing: expected every field of the schema in "
                "docs/DESIGN.md; build configs with tfnas.config_lib.base_config() (the "
                "configs/ files do)"
            )
    return node


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_int(config, field: str, minimum: int) -> int:
    value = _get(config, field)
    if not _is_int(value) or value < minimum:
        raise _fail(field, value, f"an integer >= {minimum}")
    return int(value)


def _check_number(
    config, field: str, low: float, high: float, *, low_open=False, high_open=False
) -> float:
    value = _get(config, field)
    ok = _is_number(value) and (value > low if low_open else value >= low)
    ok = ok and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise _fail(field, value, f"a number in {interval}")
    return float(value)


def _check_choice(config, field: str, choices) -> str:
    value = _get(config, field)
    if value not in choices:
        raise _fail(field, value, f"one of {', '.join(repr(c) for c in choices)}")
    return value


def _check_bool(config, field: str) -> bool:
    value = _get(config, field)
    if not isinstance(value, bool):
        raise _fail(field, value, "True or False")
    return value


def _check_str(config, field: str, allow_empty: bool = True) -> str:
    value = _get(config, field)
    if not isinstance(value, str) or (not allow_empty and not value):
        raise _fail(field, value, "a string" if allow_empty else "a non-empty string")
    return value


def _dataset_channels_classes(dataset: str) -> tuple[int, int]:
    """(image channels, classes) of a dataset, from `tfnas.data.DATASETS`."""
    from tfnas import data as data_lib  # imports TensorFlow

    spec = data_lib.DATASETS[dataset.split("/", 1)[0]]
    return spec.source_shape[2], spec.num_classes


def validate_config(config: Any) -> Any:
    """Checks every field a stage relies on; returns ``config``.

    Raises:
      ValueError: the first problem found, naming the field (``config.train.batch_size``),
        the value received, what is expected and how to fix it.
    """
    from tfnas import data as data_lib  # imports TensorFlow
    from tfnas import search_space as ss

    _check_str(config, "name", allow_empty=False)
    _check_int(config, "seed", 0)

    space_name = _get(config, "space")
    if space_name not in ss.SPACES:
        raise _fail(
            "space",
            space_name,
            f"one of the search-space variants {', '.join(sorted(ss.SPACES))}",
            "set --config.space=NAME (and the matching data.dataset and data.image_size)",
        )
    space = ss.get_space(space_name)

    # data: tfnas.data checks its own section (known fields, types, splits)...
    data = _get(config, "data")
    dataset = _get(config, "data.dataset")
    try:
        info = data_lib.dataset_info(data)
    except ValueError as err:
        raise ValueError(f"invalid config.data section: {err}") from None
    # ... and here it must fit the space: input size, channels, classes.
    image_size = _get(config, "data.image_size")
    if image_size not in space.resolutions:
        sizes = ", ".join(str(r) for r in space.resolutions)
        raise _fail(
            "data.image_size",
            image_size,
            f"one of the input resolutions of the {space_name!r} space ({sizes})",
            f"set --config.data.image_size={space.resolutions[0]}, or pick a --config.space "
            f"whose resolutions include {image_size}",
        )
    channels = info["image_shape"][2]
    if channels != space.in_channels or info["num_classes"] != space.num_classes:
        fitting = [
            name
            for name, spec in data_lib.DATASETS.items()
            if name != "synthetic"
            and spec.source_shape[2] == space.in_channels
            and spec.num_classes == space.num_classes
        ]
        if fitting:
            fix = f"set --config.data.dataset to {' or '.join(fitting)}"
        else:
            fix = "pick another --config.space"
        raise _fail(
            "data.dataset",
            dataset,
            f"a dataset with {space.in_channels}-channel images and {space.num_classes} "
            f"classes for the {space_name!r} space (this one has {channels} and "
            f"{info['num_classes']})",
            f"{fix} (with synthetic data, set --config.data.synthetic.image_shape and "
            "num_classes), or use the configs/ file of that dataset",
        )

    # supernet
    groups = _check_int(config, "supernet.groups", 1)
    routing = _check_choice(config, "supernet.routing", ROUTINGS)
    if routing == "shared" and groups != 1:
        raise _fail(
            "supernet.groups",
            groups,
            "1 with supernet.routing='shared' (one weight copy)",
            "set --config.supernet.routing=stage_width (or depth34) for several weight "
            "copies, or --config.supernet.groups=1",
        )
    _check_int(config, "supernet.kernels", 1)
    _check_int(config, "supernet.simplex_hidden", 1)
    _check_number(config, "supernet.bn_momentum", 0.0, 1.0)
    _check_number(config, "supernet.bn_epsilon", 0.0, 1.0, low_open=True)
    _check_bool(config, "supernet.zero_init_residual")
    _check_number(config, "supernet.dropout", 0.0, 1.0, high_open=True)

    # train
    _check_choice(config, "train.scheme", SCHEMES)
    _check_int(config, "train.batch_size", 1)
    epochs = _check_int(config, "train.epochs", 1)
    _check_int(config, "train.steps_per_epoch", 0)
    _check_number(config, "train.learning_rate", 0.0, float("inf"), low_open=True)
    _check_number(config, "train.momentum", 0.0, 1.0, high_open=True)
    _check_bool(config, "train.nesterov")
    _check_number(config, "train.weight_decay", 0.0, float("inf"))
    warmup = _check_number(config, "train.warmup_epochs", 0.0, float("inf"))
    if warmup >= epochs and warmup > 0:
        raise _fail(
            "train.warmup_epochs",
            warmup,
            f"fewer than train.epochs={epochs} (the learning rate decays after the warm-up)",
            "lower --config.train.warmup_epochs or raise --config.train.epochs",
        )
    _check_number(config, "train.label_smoothing", 0.0, 1.0, high_open=True)
    _check_int(config, "train.num_random_subnets", 0)
    _check_choice(config, "train.strategy", STRATEGIES)
    _check_int(config, "train.log_every_steps", 1)
    _check_int(config, "train.checkpoint_every_epochs", 1)
    if _check_bool(config, "train.monitor.enabled"):
        _check_str(config, "train.monitor.ground_truth", allow_empty=False)
    _check_int(config, "train.monitor.every_epochs", 1)
    if _check_int(config, "train.monitor.max_archs", 0) in (1, 2):
        raise _fail(
            "train.monitor.max_archs",
            _get(config, "train.monitor.max_archs"),
            "0 (all archs) or at least 3 (a rank correlation needs 3)",
        )

    # evaluate
    _check_str(config, "evaluate.codes")
    _check_str(config, "evaluate.supernet")
    _check_choice(config, "evaluate.split", SPLITS)
    _check_int(config, "evaluate.batch_size", 1)
    _check_int(config, "evaluate.num_batches", 0)
    _check_int(config, "evaluate.log_every", 1)
    _check_choice(config, "evaluate.recalibration.split", SPLITS)
    _check_int(config, "evaluate.recalibration.batch_size", 1)
    _check_int(config, "evaluate.recalibration.num_batches", 1)
    _check_bool(config, "evaluate.recalibration.augment")
    _check_choice(config, "evaluate.recalibration.mode", RECALIBRATION_MODES)
    _check_number(config, "evaluate.recalibration.ema_momentum", 0.0, 1.0)
    holdout = int(_get(config, "data.holdout_size"))
    for field in ("evaluate.split", "evaluate.recalibration.split", "standalone.split"):
        if _get(config, field) == "holdout" and holdout == 0:
            raise _fail(
                field,
                "holdout",
                "'train' or 'test' when data.holdout_size is 0 (there is no holdout split)",
                f"set --config.data.holdout_size to a positive size or --config.{field}=test",
            )

    # standalone
    _check_int(config, "standalone.seed", 0)
    _check_int(config, "standalone.train_subset", 0)
    _check_choice(config, "standalone.split", SPLITS)
    _check_int(config, "standalone.batch_size", 1)
    _check_int(config, "standalone.eval_batch_size", 1)
    sa_epochs = _check_int(config, "standalone.epochs", 1)
    sa_warmup = _check_number(config, "standalone.warmup_epochs", 0.0, float("inf"))
    if sa_warmup >= sa_epochs and sa_warmup > 0:
        raise _fail(
            "standalone.warmup_epochs",
            sa_warmup,
            f"fewer than standalone.epochs={sa_epochs}",
            "lower --config.standalone.warmup_epochs or raise --config.standalone.epochs",
        )
    _check_number(config, "standalone.learning_rate", 0.0, float("inf"), low_open=True)
    _check_number(config, "standalone.momentum", 0.0, 1.0, high_open=True)
    _check_bool(config, "standalone.nesterov")
    _check_number(config, "standalone.weight_decay", 0.0, float("inf"))
    _check_number(config, "standalone.dropout", 0.0, 1.0, high_open=True)
    _check_bool(config, "standalone.zero_init_residual")

    # export
    _check_str(config, "export.root", allow_empty=False)
    _check_str(config, "export.run")
    _check_bool(config, "export.overwrite")
    _check_str(config, "export.supernet")
    _check_str(config, "export.codes")
    _check_int(config, "export.top_k", 1)
    _check_bool(config, "export.recalibrate")
    return config

"""Graph optimization options of a run (``train.grappler``): what grappler does to the step.

Usage (what the supernet-training stages, ``oneshot`` and ``fewshot``, do before they
build the step; `tfnas.stages.oneshot.train_supernet`)::

    grappler.apply(config.train.grappler)     # {"function_optimization": False, ...}

The keys are `tf.config.optimizer.set_experimental_options`'s; the values are booleans, or
None for TensorFlow's default (every option is a field of the config, so any of them can be
set from the command line, e.g. ``--config.train.grappler.remapping=False``). The options
are process-global, like the dtype policy, and stay set for the rest of the process: set
them once, before the first graph is optimized. Stages that train plain Keras models
(``standalone``) or score archs do not apply them: only the supernet step was measured.

Why a run sets them. TensorFlow optimizes a traced step once, when it first runs, and the
supernet's step is large: every member's forward and backward pass, each optional block
under a ``tf.cond`` of the depth tensor, and each cond's gradient a pair of branch
functions. ``benchmarks/startup.py`` timed the first sandwich step of Fashion-MNIST with
one grappler pass off at a time: grappler's *function optimizer* (which specializes and
inlines every function of the graph, the cond branches included) took about half of it
(the README's "Start-up and graph memory": 51-63 s with it, 33 s without, on two shared
cores; later steps within the load's noise). The default turns that one pass off.

On a GPU, grappler's layout optimizer and remapper (fused convolution + BN + ReLU) matter
for speed and stay on; if a profile shows the function optimizer helping a long GPU run
more than the start-up it costs, set
``--config.train.grappler.function_optimization=True``.
"""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf

from tfnas import config_checks

__all__ = ["DEFAULTS", "OPTIONS", "apply", "validate_config"]

# The boolean options of tf.config.optimizer.set_experimental_options.
OPTIONS = (
    "layout_optimizer",
    "constant_folding",
    "shape_optimization",
    "remapping",
    "arithmetic_optimization",
    "dependency_optimization",
    "loop_optimization",
    "function_optimization",
    "debug_stripper",
    "disable_model_pruning",
    "scoped_allocator_optimization",
    "pin_to_host_optimization",
    "implementation_selector",
    "auto_mixed_precision",
    "disable_meta_optimizer",
)

# What base_config holds: every option, None (TensorFlow's default) but this one.
DEFAULTS = {name: None for name in OPTIONS} | {"function_optimization": False}


def _check(options) -> dict[str, bool]:
    if hasattr(options, "to_dict"):
        options = options.to_dict()
    if not isinstance(options, Mapping):
        raise config_checks.fail(
            "train.grappler", options, "a mapping of grappler option -> bool",
            "set --config.train.grappler.function_optimization=False (for example)",
        )
    for key, value in options.items():
        if key not in OPTIONS:
            raise config_checks.fail(
                f"train.grappler.{key}", value, f"one of the options {', '.join(OPTIONS)}",
                "remove it, or fix its spelling (tf.config.optimizer.set_experimental_options)",
            )
        if value is not None and not isinstance(value, bool):
            raise config_checks.fail(
                f"train.grappler.{key}", value, "True, False or None (TensorFlow's default)",
                f"set --config.train.grappler.{key}=True or =False",
            )
    return dict(options)


def validate_config(train) -> dict[str, bool]:
    """Checks ``train.grappler``; returns it as a dict.

    Args:
      train: the ``train`` section (a ConfigDict or dict), or the
        `tfnas.config_checks.Section` wrapping it.

    Raises:
      ValueError: an unknown option or a non-boolean value, naming what was received.
    """
    return _check(train["grappler"])


def apply(options: Mapping[str, bool]) -> dict[str, bool]:
    """Sets grappler's options for this process (`tf.config.optimizer`); returns what
    TensorFlow reports afterwards for the options set (None values are left alone).

    Raises:
      ValueError: as `validate_config`.
    """
    options = {k: v for k, v in _check(options).items() if v is not None}
    tf.config.optimizer.set_experimental_options(options)
    current = tf.config.optimizer.get_experimental_options()
    return {key: current.get(key) for key in options}

"""Graph optimization options of a run (``train.grappler``): what grappler does to the step.

Usage (what `tfnas.stages.registry.run_stage` does before any stage builds a graph)::

    grappler.apply(config.train.grappler)     # {"function_optimization": False, ...}

The keys are `tf.config.optimizer.set_experimental_options`'s; the values are booleans.
The options are process-global, like the dtype policy: set them once, before the first
graph is optimized.

Why a run sets them. TensorFlow optimizes a traced step once, when it first runs, and the
supernet's step is large: every member's forward and backward pass, each optional block
under a ``tf.cond`` of the depth tensor, and each cond's gradient a pair of branch
functions. ``benchmarks/startup.py`` timed the first sandwich step of Fashion-MNIST with
one grappler pass off at a time: grappler's *function optimizer* (which specializes and
inlines every function of the graph, the cond branches included) took most of it, 77 s of
first step with it and 26 s without, at the same later-step time (CPU, two shared cores,
see the README's "Start-up"). The default turns that one pass off.

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

DEFAULTS = {"function_optimization": False}


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
        if not isinstance(value, bool):
            raise config_checks.fail(
                f"train.grappler.{key}", value, "True or False",
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
    TensorFlow reports afterwards for the options given.

    Raises:
      ValueError: as `validate_config`.
    """
    options = _check(options)
    tf.config.optimizer.set_experimental_options(options)
    current = tf.config.optimizer.get_experimental_options()
    return {key: current.get(key) for key in options}

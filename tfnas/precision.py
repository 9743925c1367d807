"""Training precision (``train.precision``): the Keras dtype policy and float16 loss scaling.

Usage (what the one-shot stage does, in this order)::

    precision.apply_policy(config.train.precision)     # before building the supernet
    net = supernet_lib.build_supernet(config.supernet, config.space)
    optimizer = precision.wrap_optimizer(make_optimizer(...), config.train.precision)

    # in train_step, per member:
    scaled = optimizer.scale_loss(loss)           # x loss scale (mixed_float16), else x 1
    grads = tape.gradient(scaled, variables)
    optimizer.apply(grads, variables)             # unscales; skips a non-finite step

Policies (`POLICIES`):

- ``float32``: everything in float32 (the default).
- ``mixed_bfloat16``: variables in float32, layer computations in bfloat16 (Keras mixed
  precision). bfloat16 has float32's exponent range, so no loss scaling; CPUs with
  AVX512_BF16 (and TPUs, recent GPUs) run its matmuls and convolutions natively.
- ``float64``: everything in float64: slow, for reference runs that compare training
  paths to round-off (the multi-worker test); a ``keras.json`` floatx does not reach the
  stages, which set the policy from this field.
- ``mixed_float16``: computations in float16, whose small range underflows small
  gradients: the optimizer is a `keras.optimizers.LossScaleOptimizer` (dynamic loss
  scaling: the loss is multiplied by a scale before the gradient, the gradients divided
  by it; a step with a non-finite gradient is skipped and the scale halved).

Keras's `LossScaleOptimizer` does not advance the inner optimizer's step counter on a
skipped step. tfnas samples subnets and reads its phases from that counter, so a skipped
step is retried with the same subnets, and the phases shift by the number of skipped steps
(few: after the first steps the scale settles).

The policy is global (`keras.config.set_dtype_policy`) and read by each layer when it is
constructed: set it before building a model, and use `policy_scope` where a model of
another precision is built in the same process (tests, benchmarks).
"""

from __future__ import annotations

import contextlib

import keras

from tfnas import config_checks

__all__ = [
    "POLICIES",
    "apply_policy",
    "policy_scope",
    "validate_config",
    "wrap_optimizer",
]

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16", "float64")


def _check(name, what: str = "precision") -> str:
    if not isinstance(name, str) or name not in POLICIES:
        raise ValueError(
            f"{what}={name!r} is invalid: expected one of "
            f"{', '.join(repr(p) for p in POLICIES)}; use float32 unless the hardware "
            "computes in bfloat16 (mixed_bfloat16) or float16 (mixed_float16)"
        )
    return name


def apply_policy(name: str) -> keras.DTypePolicy:
    """Sets the global Keras dtype policy to ``name`` (one of `POLICIES`); returns it.

    Call it before building the supernet (and any model trained with it): layers read the
    policy when constructed.
    """
    keras.config.set_dtype_policy(_check(name))
    return keras.config.dtype_policy()


@contextlib.contextmanager
def policy_scope(name: str):
    """`apply_policy` for a ``with`` block; the previous global policy comes back after it."""
    previous = keras.config.dtype_policy()
    apply_policy(name)
    try:
        yield keras.config.dtype_policy()
    finally:
        keras.config.set_dtype_policy(previous)


def wrap_optimizer(optimizer, name: str):
    """``optimizer`` with the loss scaling ``name`` needs.

    A `keras.optimizers.LossScaleOptimizer` around it for ``mixed_float16``; ``optimizer``
    itself otherwise (Keras optimizers' ``scale_loss`` is then the identity, so a train step
    can call ``optimizer.scale_loss(loss)`` whatever the precision). The wrapper's
    ``iterations`` and ``learning_rate`` are the inner optimizer's.
    """
    if _check(name) == "mixed_float16" and not isinstance(
        optimizer, keras.optimizers.LossScaleOptimizer
    ):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def validate_config(train) -> str:
    """Checks ``train.precision``; returns it.

    Args:
      train: the ``train`` section (a ConfigDict or dict), or the
        `tfnas.config_checks.Section` a validator wraps it in.

    Raises:
      ValueError: naming ``config.train.precision``, the value, what is expected and how to
        fix it.
    """
    if isinstance(train, config_checks.Section):
        return train.choice(
            "precision",
            POLICIES,
            "set --config.train.precision=float32 (or mixed_bfloat16 where the hardware "
            "computes in bfloat16)",
        )
    value = train["precision"]
    if not isinstance(value, str) or value not in POLICIES:
        raise config_checks.fail(
            "train.precision",
            value,
            f"one of {', '.join(repr(p) for p in POLICIES)}",
            "set --config.train.precision=float32 (or mixed_bfloat16 where the hardware "
            "computes in bfloat16)",
        )
    return value

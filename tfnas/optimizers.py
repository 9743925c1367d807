"""The optimizers of supernet and stand-alone training.

Usage::

    optimizer = make_optimizer(config.train, steps_per_epoch, lazy=True)

`LazySGD` is Keras's SGD (momentum, Nesterov) that leaves alone every weight copy whose
gradient is exactly zero in a step: neither the weights nor their momentum move. A
supernet keeps several copies of a weight in one variable (few-shot groups, sub-supernets:
axis 0 of every elastic kernel, BN parameter and classifier weight), and a step routes
its members to some of them. Keras's SGD would keep moving an unrouted copy with its
momentum (and, before the masked L2, decay it), so a copy drifts after its last visit
(SCHEMES.md §0.1 item 10, §7.1 H). Paddle (CVPR22 2nd place) and PyTorch >= 2.0
(``zero_grad(set_to_none=True)``: parameters outside the graph have no gradient and are
skipped) do not move them; `LazySGD` does the same per copy. A frozen variable group
(K-shot's alternation) is a group whose gradients are all zero, so it stays bitwise
unchanged without any ``tf.cond`` around the update.

A copy is "exactly zero" only when no member touched it: a routed copy's gradient has the
L2 term ``wd * w`` and the data term, which are zero only by coincidence. With one weight
copy (one-shot), the lazy update differs from Keras's SGD only for variables no member of
the step used at all (blocks deeper than every member's depth: SPOS's single path).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="tfnas")
class LazySGD(keras.optimizers.SGD):
    """SGD that skips the weight copies (slices along axis 0) with an all-zero gradient.

    The variables whose axis 0 indexes weight copies are marked with `mark_copy_axis`
    (the trainer marks the supernet's); each of their copies is skipped on its own. Every
    other variable is skipped only when its whole gradient is zero. Arguments are
    `keras.optimizers.SGD`'s.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._copy_axis_keys = set()

    def mark_copy_axis(self, variables) -> None:
        """Treats axis 0 of each of ``variables`` as the weight-copy axis."""
        self._copy_axis_keys.update(self._var_key(v) for v in variables)

    def _active(self, gradient, variable):
        """True where the copy (or the whole variable) has a non-zero gradient."""
        nonzero = ops.not_equal(gradient, 0)
        axes = list(range(1, len(variable.shape)))
        if axes and self._var_key(variable) in self._copy_axis_keys:
            return tf.reduce_any(nonzero, axis=axes, keepdims=True)
        return tf.reduce_any(nonzero)

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        active = self._active(gradient, variable)
        step = ops.multiply(gradient, learning_rate)
        if self.momentum == 0:
            self.assign_sub(variable, ops.where(active, step, ops.zeros_like(step)))
            return
        m = self.momentums[self._get_variable_index(variable)]
        momentum = ops.cast(self.momentum, variable.dtype)
        # Selects, not products with a 0/1 mask: a skipped copy stays bitwise as it was.
        new_m = ops.where(active, ops.subtract(ops.multiply(m, momentum), step), m)
        self.assign(m, new_m)
        if self.nesterov:
            delta = ops.subtract(ops.multiply(new_m, momentum), step)
        else:
            delta = new_m
        self.assign_add(variable, ops.where(active, delta, ops.zeros_like(delta)))


def warmup_cosine(learning_rate, epochs, warmup_epochs, steps_per_epoch):
    """Linear warm-up from 0 to ``learning_rate``, then cosine decay to 0 (per step)."""
    total = max(1, int(epochs * steps_per_epoch))
    warmup = min(total - 1, int(warmup_epochs * steps_per_epoch))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else learning_rate,
        decay_steps=total - warmup,
        alpha=0.0,
        warmup_target=learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def make_optimizer(recipe, steps_per_epoch: int, weight_decay=None, lazy=False, schedule=None):
    """SGD with momentum and `warmup_cosine` (seed paper 000 §3.1).

    Args:
      recipe: a config section with ``learning_rate``, ``epochs``, ``warmup_epochs``,
        ``momentum`` and ``nesterov`` (``train`` or ``standalone``).
      steps_per_epoch: for the schedule.
      weight_decay: Keras's decoupled decay of every variable (the stand-alone recipe);
        the supernet's weight decay is an L2 term in the loss of the regularized members
        instead (`tfnas.trainer.SupernetTrainer`), so that it covers the routed copies only.
      lazy: a `LazySGD` (supernets) instead of Keras's SGD.
      schedule: a learning-rate schedule in place of `warmup_cosine` (e.g. the phases'
        restarted cosine).
    """
    cls = LazySGD if lazy else keras.optimizers.SGD
    if schedule is None:
        schedule = warmup_cosine(
            recipe.learning_rate, recipe.epochs, recipe.warmup_epochs, steps_per_epoch
        )
    return cls(
        learning_rate=schedule,
        momentum=recipe.momentum,
        nesterov=bool(recipe.nesterov),
        weight_decay=weight_decay,
    )

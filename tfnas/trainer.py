"""The one `train_step` every weight-sharing scheme runs through.

Usage::

    trainer = SupernetTrainer(supernet, scheme, weight_decay=1e-5, label_smoothing=0.1)
    trainer.compile(optimizer=make_optimizer(config.train, steps_per_epoch))
    trainer.fit(train_ds, epochs=...)

Each step asks the scheme for its members (subnets sampled statelessly from the
optimizer's step counter, so every replica and a resumed run trains the same archs), runs
each in its own gradient tape -- so the activations of one member at a time are alive --
accumulates the gradients and makes one optimizer update. Loss scaling for replicas is
`tfnas.distribute.scale_loss`; nothing here knows how many replicas there are.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfnas import config_checks
from tfnas import distribute
from tfnas import sampling
from tfnas import schemes
from tfnas import search_space as ss
from tfnas.schemes import Scheme


def l2_penalty(variables) -> tf.Tensor:
    """0.5 * sum of squares of the kernels (conv and dense; not BN, bias or simplex-net).

    With SGD this equals torch/Paddle ``weight_decay`` (gradient ``+= wd * w``).
    """
    kernels = [v for v in variables if v.path.endswith("kernel") and "simplex_net" not in v.path]
    return 0.5 * tf.add_n([tf.reduce_sum(tf.square(v.value)) for v in kernels])


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


def make_optimizer(recipe, steps_per_epoch: int, weight_decay=None) -> keras.optimizers.SGD:
    """SGD with momentum and `warmup_cosine` (seed paper 000 §3.1).

    ``recipe`` is a config section with ``learning_rate``, ``epochs``, ``warmup_epochs``,
    ``momentum`` and ``nesterov`` (``train`` or ``standalone``). ``weight_decay`` here is
    Keras's decoupled decay of every variable (the stand-alone recipe); the supernet's
    weight decay is an L2 term on the largest subnet's loss instead (`SupernetTrainer`).
    """
    return keras.optimizers.SGD(
        learning_rate=warmup_cosine(
            recipe.learning_rate, recipe.epochs, recipe.warmup_epochs, steps_per_epoch
        ),
        momentum=recipe.momentum,
        nesterov=bool(recipe.nesterov),
        weight_decay=weight_decay,
    )


class SupernetTrainer(keras.Model):
    """Trains a `tfnas.supernet.Supernet` with a `tfnas.schemes.Scheme`.

    Args:
        supernet: the supernet (built).
        scheme: decides the members of each step.
        weight_decay: L2 coefficient, added to the loss of members with ``regularize``.
        label_smoothing: for the members trained on labels.
    """

    def __init__(self, supernet, scheme: Scheme, weight_decay=0.0, label_smoothing=0.0, **kw):
        super().__init__(**kw)
        self.supernet = supernet
        self.scheme = scheme
        self.weight_decay = float(weight_decay)
        self.label_smoothing = float(label_smoothing)
        self._member_names = [m.name for m in scheme.members(tf.constant(0, tf.int64))]
        self.loss_trackers = {
            name: keras.metrics.Mean(name=f"loss_{name}") for name in self._member_names
        }
        self.total_tracker = keras.metrics.Mean(name="loss")
        self.build()

    def build(self, input_shape=None):
        if not self.supernet.built:
            self.supernet.build()
        self.built = True

    @property
    def metrics(self):
        return [self.total_tracker, *self.loss_trackers.values()]

    def call(self, images, arch, training=False):
        return self.supernet(images, arch=arch, training=training)

    def _member_loss(self, member, labels, logits, teacher):
        num_classes = tf.shape(logits)[-1]
        if member.target == "labels":
            onehot = tf.one_hot(labels, num_classes, dtype=logits.dtype)
            if self.label_smoothing:
                k = tf.cast(num_classes, logits.dtype)
                onehot = onehot * (1.0 - self.label_smoothing) + self.label_smoothing / k
            loss = tf.nn.softmax_cross_entropy_with_logits(onehot, logits)
        elif member.target == "teacher":
            if teacher is None:
                raise ValueError(
                    f"Member {member.name!r} is distilled from the teacher, but no earlier "
                    "member of the scheme has is_teacher=True. Put the teacher first."
                )
            # KL(p_teacher || p_student) (BigNAS in-place distillation).
            log_p_teacher = tf.nn.log_softmax(teacher)
            loss = tf.reduce_sum(
                tf.exp(log_p_teacher) * (log_p_teacher - tf.nn.log_softmax(logits)), axis=-1
            )
        else:
            raise ValueError(
                f"Member {member.name!r} has target {member.target!r}; expected 'labels' or "
                "'teacher'."
            )
        loss = tf.reduce_mean(loss)
        if member.regularize and self.weight_decay:
            loss += self.weight_decay * tf.cast(
                l2_penalty(self.supernet.trainable_variables), loss.dtype
            )
        return loss

    def train_step(self, data):
        # (images, labels), as fit yields it, or with a sample weight, as train_on_batch
        # passes it (weights are not used: every member's loss is a plain mean).
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.supernet.trainable_variables
        step = self.optimizer.iterations
        grads = None
        teacher = None
        total = 0.0
        for member in self.scheme.members(step):
            with tf.GradientTape() as tape:
                logits = self.supernet(
                    images, arch=member.arch, training=True, dropout=member.dropout
                )
                loss = self._member_loss(member, labels, logits, teacher)
                scaled = distribute.scale_loss(loss)
            member_grads = tape.gradient(scaled, variables)
            member_grads = [
                tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                for g, v in zip(member_grads, variables)
            ]
            grads = member_grads if grads is None else [a + b for a, b in zip(grads, member_grads)]
            if member.is_teacher:
                teacher = tf.stop_gradient(logits)
            self.loss_trackers[member.name].update_state(loss)
            total += loss
        self.optimizer.apply(grads, variables)
        self.total_tracker.update_state(total)
        results = {m.name: m.result() for m in self.metrics}
        results["learning_rate"] = self.optimizer.learning_rate
        return results


# -------------------------------------------------------------------- the config section

CONFIG_FIELDS = (
    "scheme",
    "batch_size",
    "epochs",
    "steps_per_epoch",
    "learning_rate",
    "momentum",
    "nesterov",
    "weight_decay",
    "warmup_epochs",
    "label_smoothing",
    "num_random_subnets",
    "bounds",
    "strategy",
    "log_every_steps",
    "checkpoint_every_epochs",
    "verbose",
    "deterministic",
    "monitor",
)
# What keras.Model.fit accepts as its `verbose`.
VERBOSITIES = ("auto", 0, 1, 2)


def check_optimizer_recipe(fields: config_checks.Section) -> None:
    """Checks the fields `make_optimizer` reads from a recipe section (``train`` or
    ``standalone``): ``epochs`` (int >= 1), ``warmup_epochs`` (a number >= 0, fewer than
    ``epochs``: the learning rate decays after the warm-up), ``learning_rate`` (> 0, the
    peak), ``momentum`` in [0, 1), ``nesterov`` (bool).

    Args:
      fields: the section, wrapped by `tfnas.config_checks.Section`.
    """
    epochs = fields.integer("epochs", 1)
    warmup = fields.number("warmup_epochs", 0.0)
    if warmup >= epochs and warmup > 0:
        raise fields.fail(
            "warmup_epochs",
            warmup,
            f"fewer than {fields.path}.epochs={epochs} (the learning rate decays after the "
            "warm-up)",
            f"lower --config.{fields.path}.warmup_epochs or raise --config.{fields.path}.epochs",
        )
    fields.number("learning_rate", 0.0, low_open=True)
    fields.number("momentum", 0.0, 1.0, high_open=True)
    fields.boolean("nesterov")


def validate_config(section) -> None:
    """Checks the ``train`` section of an experiment config (`tfnas.config_lib`).

    Fields (the ``oneshot`` stage trains the supernet with them):

    - ``scheme``: which subnets a step trains, one of `tfnas.schemes.SCHEMES`
      (``sandwich``: the largest on the labels, the smallest and ``num_random_subnets``
      random ones distilled from it; ``uniform``: one random subnet on the labels).
    - ``batch_size``: the global batch (int >= 1), split between the replicas.
    - ``epochs`` (int >= 1) and ``steps_per_epoch`` (int >= 0; 0: one pass over the
      training split).
    - ``learning_rate``: the peak (> 0), reached after a linear warm-up of
      ``warmup_epochs`` (>= 0, fewer than ``epochs``), then cosine decay to 0
      (`warmup_cosine`).
    - ``momentum`` in [0, 1) and ``nesterov`` (bool): SGD's (`make_optimizer`).
    - ``weight_decay`` (>= 0): L2 coefficient on the loss of the largest subnet only (the
      members with ``regularize``, `SupernetTrainer`).
    - ``label_smoothing`` in [0, 1): for the members trained on the labels.
    - ``num_random_subnets``: random members of a sandwich step (int in
      0..`tfnas.sampling.MAX_MEMBERS` - 1).
    - ``bounds``: the (bounded) space the scheme samples from and takes its smallest subnet
      from, one of `tfnas.search_space.BOUNDS_PRESETS`: ``full`` (every digit 1..7), or
      ``competition`` (digits 1-3, 1-3, 1-3, 1-5, 1-7: the space of the 45,000 CVPR 2022
      codes, which the ``imagenet`` configs use).
    - ``strategy``: the tf.distribute strategy, one of `tfnas.distribute.STRATEGIES`.
    - ``log_every_steps`` (int >= 1): TensorBoard's update frequency, in steps.
    - ``checkpoint_every_epochs`` (int >= 1).
    - ``verbose``: Keras ``fit`` verbosity, one of `VERBOSITIES`.
    - ``deterministic`` (bool): seed everything from ``config.seed`` and turn on TensorFlow's
      op determinism, so that a rerun gives the same weights bit for bit (slower;
      `tfnas.distribute.configure_determinism`).
    - ``monitor``: the ranking monitor during training, its own section
      (`tfnas.monitor.validate_config`; `tfnas.config_lib.validate_config` checks it).

    Raises:
      ValueError: naming ``config.train.<field>``, the value, what is expected and how to
        fix it; also for a missing or unknown field.
    """
    fields = config_checks.Section(
        section, "train", CONFIG_FIELDS, owner="tfnas.trainer.validate_config"
    )
    fields.choice("scheme", schemes.SCHEMES)
    fields.integer("batch_size", 1)
    fields.integer("steps_per_epoch", 0)
    check_optimizer_recipe(fields)
    fields.number("weight_decay", 0.0)
    fields.number("label_smoothing", 0.0, 1.0, high_open=True)
    fields.integer("num_random_subnets", 0, sampling.MAX_MEMBERS - 1)
    fields.choice("bounds", tuple(ss.BOUNDS_PRESETS))
    fields.choice("strategy", distribute.STRATEGIES)
    fields.integer("log_every_steps", 1)
    fields.integer("checkpoint_every_epochs", 1)
    fields.choice("verbose", VERBOSITIES)
    fields.boolean("deterministic")

"""The train_step of tfnas before the engine of issue 10 (commit db9892d), kept verbatim
as the reference the new engine is pinned against (tests/test_trainer.py): for the sandwich
and uniform schemes on one weight copy, the new engine must give the same weights.

It reads only the member fields the old engine had (name, arch, target, is_teacher,
dropout, regularize), applies the L2 term to whole kernel variables and uses the single
optimizer it is compiled with.
"""

import keras
import tensorflow as tf

from tfnas import distribute


def l2_penalty(variables):
    kernels = [v for v in variables if v.path.endswith("kernel") and "simplex_net" not in v.path]
    return 0.5 * tf.add_n([tf.reduce_sum(tf.square(v.value)) for v in kernels])


class ReferenceTrainer(keras.Model):
    def __init__(self, supernet, scheme, weight_decay=0.0, label_smoothing=0.0, **kw):
        super().__init__(**kw)
        self.supernet = supernet
        self.scheme_ = scheme
        self.weight_decay = float(weight_decay)
        self.label_smoothing = float(label_smoothing)
        self.built = True

    def _member_loss(self, member, labels, logits, teacher):
        num_classes = tf.shape(logits)[-1]
        if member.target == "labels":
            onehot = tf.one_hot(labels, num_classes, dtype=logits.dtype)
            if self.label_smoothing:
                k = tf.cast(num_classes, logits.dtype)
                onehot = onehot * (1.0 - self.label_smoothing) + self.label_smoothing / k
            loss = tf.nn.softmax_cross_entropy_with_logits(onehot, logits)
        else:
            log_p_teacher = tf.nn.log_softmax(teacher)
            loss = tf.reduce_sum(
                tf.exp(log_p_teacher) * (log_p_teacher - tf.nn.log_softmax(logits)), axis=-1
            )
        loss = tf.reduce_mean(loss)
        if member.regularize and self.weight_decay:
            loss += self.weight_decay * tf.cast(
                l2_penalty(self.supernet.trainable_variables), loss.dtype
            )
        return loss

    def train_step(self, data):
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.supernet.trainable_variables
        step = self.optimizer.iterations
        grads = None
        teacher = None
        total = 0.0
        for member in self.scheme_.members(step):
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
            total += loss
        self.optimizer.apply(grads, variables)
        return {"loss": total}

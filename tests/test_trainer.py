"""The sandwich step of `tfnas.trainer.SupernetTrainer`, against a computation by hand."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas import schemes
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas import trainer as trainer_lib

ROOT = Path(__file__).resolve().parents[1]
SPACE = ss.get_space("fmnist")
LR = 0.1
WD = 0.01


def _setup(num_random=1, dropout=0.0, bounds=None):
    keras.utils.set_random_seed(0)
    net = supernet_lib.Supernet(space="fmnist", zero_init_residual=False)
    net.build()
    scheme = schemes.SandwichScheme(SPACE, seed=3, num_random=num_random, dropout=dropout,
                                    bounds=bounds)
    trainer = trainer_lib.SupernetTrainer(net, scheme, weight_decay=WD)
    # A constant learning rate: the first step's update is exactly -LR * gradient (the
    # momentum buffer starts at 0).
    trainer.compile(optimizer=keras.optimizers.SGD(LR, momentum=0.9), jit_compile=False)
    rng = np.random.default_rng(1)
    images = tf.constant(rng.normal(size=(8, 28, 28, 1)), keras.config.floatx())
    labels = tf.constant(rng.integers(0, 10, 8), tf.int32)
    return net, scheme, trainer, images, labels


def _ce(labels, logits):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))


def _kl(teacher, logits):
    p = tf.nn.softmax(teacher)
    return tf.reduce_mean(
        tf.reduce_sum(p * (tf.nn.log_softmax(teacher) - tf.nn.log_softmax(logits)), axis=-1)
    )


def _reference_gradients(net, archs, images, labels, stop_teacher=True):
    """One tape over CE(largest) + WD/2 |kernels|^2 + KL(teacher || each other member)."""
    variables = net.trainable_variables
    with tf.GradientTape() as tape:
        teacher = net(images, arch=archs[0], training=True)
        kernels = [v for v in variables if v.path.endswith("kernel")]
        loss = _ce(labels, teacher) + WD * 0.5 * tf.add_n(
            [tf.reduce_sum(tf.square(k)) for k in kernels]
        )
        target = tf.stop_gradient(teacher) if stop_teacher else teacher
        for arch in archs[1:]:
            loss += _kl(target, net(images, arch=arch, training=True))
    grads = tape.gradient(loss, variables)
    return [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
            for g, v in zip(grads, variables)]


# In float64, in a fresh process (floatx is process-global): a deep net with batch-8 BN
# amplifies float32 round-off to ~1e-3 of an update, which would hide a wrong gradient.
_STEP_CHECK = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import keras
    keras.config.set_floatx("float64")
    import numpy as np, tensorflow as tf
    sys.path.insert(0, os.path.join(os.environ["TFNAS_ROOT"], "tests"))
    import test_trainer as T

    net, scheme, trainer, images, labels = T._setup(num_random=1)
    images = tf.cast(images, tf.float64)
    archs = [m.arch for m in scheme.members(tf.constant(0, tf.int64))]
    before = [v.numpy().copy() for v in net.trainable_variables]
    grads = T._reference_gradients(net, archs, images, labels)
    wrong = T._reference_gradients(net, archs, images, labels, stop_teacher=False)
    trainer.train_on_batch(images, labels)
    errors, moved, differ = [], 0, 0
    for w0, g, b, v in zip(before, grads, wrong, net.trainable_variables):
        delta = v.numpy() - w0
        errors.append(float(np.abs(delta + T.LR * g.numpy()).max()))
        moved += int(np.any(delta != 0))
        differ += int(np.abs(g.numpy() - b.numpy()).max() > 1e-6)
    print(json.dumps({"max_error": max(errors), "moved": moved, "differ": differ}))
    """
)


def test_one_sandwich_step_is_the_hand_computed_sum_of_member_gradients():
    """The update of one step is -LR x the gradient of CE(largest) + WD/2 |kernels|^2 +
    KL(stop_gradient(largest) || each other member), all in one tape; and the teacher gets
    no gradient from the students' losses (without the stop-gradient the reference differs
    in many variables, and the step does not follow it)."""
    env = dict(os.environ, TFNAS_ROOT=str(ROOT), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", _STEP_CHECK], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["max_error"] < 1e-10, result
    assert result["moved"] > 10 and result["differ"] > 10, result


def test_members_are_largest_smallest_and_distinct_random_archs():
    for bounds in (None, ss.COMPETITION_BOUNDS):
        scheme = schemes.SandwichScheme(SPACE, seed=0, num_random=3, dropout=0.2, bounds=bounds)
        for step in range(5):
            members = scheme.members(tf.constant(step, tf.int64))
            assert [m.name for m in members] == ["largest", "smallest", "random1", "random2",
                                                 "random3"]
            codes = ["".join(map(str, m.arch.numpy())) for m in members]
            assert codes[0] == SPACE.largest().code
            assert codes[1] == SPACE.smallest(bounds).code
            assert len(set(codes[2:])) == 3
            space_bounds = bounds or ss.FULL_BOUNDS
            assert all(space_bounds.contains(SPACE.parse(c)) for c in codes)
            # Dropout and weight decay on the largest only; it alone learns from labels.
            assert [(m.target, m.is_teacher, m.dropout, m.regularize) for m in members] == [
                ("labels", True, 0.2, True)] + [("teacher", False, 0.0, False)] * 4


def test_label_smoothing_equals_keras():
    net, scheme, _, images, labels = _setup()
    trainer = trainer_lib.SupernetTrainer(net, scheme, label_smoothing=0.1)
    member = scheme.members(tf.constant(0, tf.int64))[0]
    logits = net(images, arch=member.arch, training=False)
    ours = trainer._member_loss(member, labels, logits, None)
    keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
        tf.one_hot(labels, 10), logits
    )
    assert float(ours) == pytest.approx(float(keras_loss), rel=1e-6)


def test_warmup_cosine_end_points():
    schedule = trainer_lib.warmup_cosine(0.4, epochs=10, warmup_epochs=2, steps_per_epoch=5)
    values = {s: float(schedule(s)) for s in (0, 5, 10, 30, 50)}
    assert values[0] == pytest.approx(0.0)
    assert values[5] == pytest.approx(0.2)  # half-way through the 10 warm-up steps
    assert values[10] == pytest.approx(0.4)  # the peak at the end of the warm-up
    assert values[30] == pytest.approx(0.2)  # the cosine's midpoint: (1 + cos(pi/2)) / 2
    assert values[50] == pytest.approx(0.0, abs=1e-9)
    flat = trainer_lib.warmup_cosine(0.4, epochs=10, warmup_epochs=0, steps_per_epoch=5)
    assert float(flat(0)) == pytest.approx(0.4)
    assert float(flat(25)) == pytest.approx(0.2)

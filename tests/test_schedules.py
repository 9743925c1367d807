"""tfnas.schedules (phases, per-phase tables, the restarted cosine) and the momentum reset
at phase boundaries (tfnas.callbacks.MomentumReset): values by hand, one trace, replicas."""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from tfnas import callbacks
from tfnas import config_lib
from tfnas import schedules
from tfnas import trainer

ROOT = Path(__file__).resolve().parents[1]


# -------------------------------------------------------------------- phases and tables


@pytest.mark.parametrize(
    "step, phase", [(0, 0), (2, 0), (3, 1), (6, 1), (7, 2), (100, 2)]
)
def test_phase_of_by_hand(step, phase):
    # Boundaries (3, 7): steps 0-2 phase 0, 3-6 phase 1, 7- phase 2.
    for value in (step, tf.constant(step, tf.int64), tf.constant(step, tf.int32)):
        got = schedules.phase_of(value, (3, 7))
        assert got.dtype == tf.int32 and int(got) == phase


def test_no_boundaries_is_one_phase():
    assert int(schedules.phase_of(10**6, ())) == 0
    assert float(schedules.phase_value(5, (), schedules.phase_table([0.25], ()))) == 0.25


def test_phase_value_gathers_rows():
    # APS depth lower bounds, phases D1, D2, D3 (SCHEMES.md §3.4).
    table = schedules.phase_table([(4, 4, 6, 2), (3, 3, 4, 2), (2, 2, 2, 2)], (5, 15))
    assert table.dtype == tf.int32 and table.shape == (3, 4)
    assert schedules.phase_value(4, (5, 15), table).numpy().tolist() == [4, 4, 6, 2]
    assert schedules.phase_value(5, (5, 15), table).numpy().tolist() == [3, 3, 4, 2]
    assert schedules.phase_value(15, (5, 15), table).numpy().tolist() == [2, 2, 2, 2]


def test_phase_table_needs_one_row_per_phase():
    with pytest.raises(ValueError, match=r"one row per phase, len\(boundaries\) \+ 1 = 3"):
        schedules.phase_table([1.0, 2.0], (5, 15))


@pytest.mark.parametrize("bad", [(5, 5), (0, 3), (7, 3), (1.5,), "10", 10, (True,)])
def test_boundaries_must_be_increasing_positive_ints(bad):
    with pytest.raises(ValueError, match="boundaries"):
        schedules.phase_of(0, bad)


# -------------------------------------------------------------------- the schedule


@pytest.mark.parametrize(
    "learning_rate, epochs, warmup_epochs, steps_per_epoch",
    [(0.1, 5, 1.0, 7), (0.4, 3, 0.0, 11), (0.05, 2, 1.5, 4), (1.0, 1, 0.0, 1), (0.1, 3, 2.9, 1),
     (0.1, 100, 5.0, 391)],
)
def test_one_phase_equals_warmup_cosine(learning_rate, epochs, warmup_epochs, steps_per_epoch):
    reference = trainer.warmup_cosine(learning_rate, epochs, warmup_epochs, steps_per_epoch)
    train = _train(learning_rate, epochs, warmup_epochs)
    schedule = schedules.learning_rate_from_config(train, steps_per_epoch)
    total = epochs * steps_per_epoch
    both = tf.function(lambda step: (reference(step), schedule(step)))
    for step in range(total + 5):  # past the end too: both stay at 0
        value = tf.constant(step, tf.int64)
        # Bit for bit, eagerly and in a graph (the same ops in the same order as Keras's).
        assert schedule(value).numpy() == reference(value).numpy(), step
        want, got = both(value)
        assert got.numpy() == want.numpy(), step


def test_restarted_cosine_by_hand():
    # Phase 0: steps 0-3, peak 1.0, 2 warm-up steps; phase 1: steps 4-9, peak 0.5, none.
    schedule = schedules.PhaseCosine((1.0, 0.5), 10, (4,), warmup_steps=(2, 0))
    want = {
        0: 0.0,
        1: 0.5,  # warm-up: 1.0 * 1/2
        2: 1.0,  # warm-up done: the peak
        3: 0.5,  # (1 + cos(pi * 1/2)) / 2
        4: 0.5,  # restart at the boundary: phase 1's peak
        7: 0.25,  # 0.5 * (1 + cos(pi * 3/6)) / 2
        9: 0.5 * (1 + math.cos(math.pi * 5 / 6)) / 2,
        10: 0.0,  # the end of the last phase
        50: 0.0,  # and after it
    }
    for step, lr in want.items():
        assert float(schedule(step)) == pytest.approx(lr, abs=1e-7), step
    floor = schedules.PhaseCosine((1.0, 0.5), 10, (4,), alpha=0.1)
    assert float(floor(4)) == pytest.approx(0.5)
    assert float(floor(10)) == pytest.approx(0.05)  # alpha * phase 1's peak
    # Just before the boundary, phase 0 is near alpha * its peak.
    assert float(floor(3)) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 3 / 4)) / 2)


def test_schedule_config_round_trip():
    schedule = schedules.PhaseCosine((0.008, 0.016, 0.032), 70, (5, 15), (0, 2, 0), alpha=0.01)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(restored, schedules.PhaseCosine)
    assert restored.get_config() == schedule.get_config()
    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=0.9)
    again = keras.optimizers.SGD.from_config(optimizer.get_config())
    assert isinstance(again._learning_rate, schedules.PhaseCosine)
    for step in (0, 4, 5, 6, 15, 16, 69):
        assert float(again._learning_rate(step)) == float(schedule(step))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(peaks=(0.1,), total_steps=10, boundaries=(4,)), "peaks=.*2 learning rates"),
        (dict(peaks=(0.1, 0.0), total_steps=10, boundaries=(4,)), "peaks"),
        (dict(peaks=(0.1, 0.1), total_steps=4, boundaries=(4,)), "total_steps=4"),
        (dict(peaks=(0.1,), total_steps=10, warmup_steps=(10,)), "warmup_steps=.*shorter"),
        (dict(peaks=(0.1,), total_steps=10, alpha=2.0), "alpha=2.0"),
    ],
)
def test_bad_schedule_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        schedules.PhaseCosine(**kwargs)


def test_one_trace_across_phase_boundaries():
    boundaries = (3, 6)
    depth_lo = schedules.phase_table([(4, 4, 6, 2), (3, 3, 4, 2), (2, 2, 2, 2)], boundaries)
    weights = schedules.phase_table([0.5, 0.4, 0.2], boundaries)
    schedule = schedules.PhaseCosine((0.1, 0.2, 0.4), 9, boundaries)
    traces = []

    @tf.function(input_signature=[tf.TensorSpec([], tf.int64)])
    def step_values(step):
        traces.append(1)  # a Python side effect: runs once per trace
        phase = schedules.phase_of(step, boundaries)
        lo = schedules.phase_value(step, boundaries, depth_lo)
        return phase, lo, tf.gather(weights, phase), schedule(step)

    rows = [step_values(tf.constant(s, tf.int64)) for s in range(10)]
    assert len(traces) == 1
    assert [int(r[0]) for r in rows] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert rows[3][1].numpy().tolist() == [3, 3, 4, 2]
    assert float(rows[6][2]) == pytest.approx(0.2)
    # Each phase starts at its own peak: the cosine restarts.
    assert [float(rows[s][3]) for s in (0, 3, 6)] == pytest.approx([0.1, 0.2, 0.4])


def test_keras_fit_traces_the_step_once_across_phases():
    """The optimizer reads the schedule at its own step counter, inside the one trace."""
    boundaries = (2, 4)
    schedule = schedules.PhaseCosine((0.1, 0.2, 0.05), 6, boundaries)
    bounds = schedules.phase_table([1.0, 2.0, 3.0], boundaries)

    class Model(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)
            self.traces = 0

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            self.traces += 1
            x, y = data
            scale = schedules.phase_value(self.optimizer.iterations, boundaries, bounds)
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(self(x) * scale - y))
            variables = self.trainable_variables
            self.optimizer.apply(tape.gradient(loss, variables), variables)
            return {"scale": scale, "learning_rate": self.optimizer.learning_rate}

    model = Model()
    model.compile(optimizer=keras.optimizers.SGD(schedule), jit_compile=False)
    # Variables made before fit, as the trainer does (build_optimizers): a tf.function that
    # creates variables on its first call traces a second time.
    model(np.ones((1, 2), "float32"))
    model.optimizer.build(model.trainable_variables)
    seen = []
    log = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: seen.append((float(logs["scale"]),
                                                        float(logs["learning_rate"])))
    )
    x = np.ones((12, 2), "float32")
    model.fit(x, np.zeros((12, 1), "float32"), batch_size=2, shuffle=False, verbose=0,
              callbacks=[log])
    assert model.traces == 1
    assert [s for s, _ in seen] == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    # The learning rate logged after step s is the schedule at the counter s + 1.
    assert [lr for _, lr in seen] == pytest.approx([float(schedule(s + 1)) for s in range(6)])


# -------------------------------------------------------------------- config


def _phases(**overrides):
    fields = config_lib.base_config().train.phases.to_dict()
    fields.update(overrides)
    return ml_collections.ConfigDict(fields)


def _train(learning_rate=0.1, epochs=5, warmup_epochs=1.0, **phases):
    return ml_collections.ConfigDict(
        dict(learning_rate=learning_rate, epochs=epochs, warmup_epochs=warmup_epochs,
             phases=_phases(**phases))
    )


def test_valid_phases_pass():
    schedules.validate_config(_phases())
    schedules.validate_config(
        _phases(boundaries=(5, 15), peaks=(1, 2, 4.0), warmup_steps=(0, 0, 3),
                reset_momentum=True),
        warmup_epochs=0.0,
    )


@pytest.mark.parametrize(
    "overrides, warmup_epochs, match",
    [
        (dict(boundaries=(5, 5), peaks=(1, 1, 1)), None,
         r"config\.train\.phases\.boundaries=\(5, 5\) is invalid: expected .*strictly "
         r"increasing.*--config\.train\.phases\.boundaries"),
        (dict(boundaries=(5,)), None,
         r"config\.train\.phases\.peaks=\(1\.0,\) is invalid: expected 2 numbers > 0.*fix|set"),
        (dict(peaks=(0.0,)), None, r"config\.train\.phases\.peaks=\(0\.0,\)"),
        (dict(warmup_steps=(1, 2)), None,
         r"config\.train\.phases\.warmup_steps=\(1, 2\) is invalid: expected \(\) .* or 1 ints"),
        (dict(warmup_steps=(3,)), 1.0,
         r"warmup_steps=\(3,\) is invalid: .*train\.warmup_epochs=1\.0.*--config\.train\."
         r"warmup_epochs=0"),
        (dict(reset_momentum=True), None,
         r"config\.train\.phases\.reset_momentum=True is invalid: expected False when"),
        (dict(reset_momentum="yes"), None, r"reset_momentum='yes' is invalid: expected True"),
    ],
)
def test_invalid_phases_name_the_field(overrides, warmup_epochs, match):
    with pytest.raises(ValueError, match=match):
        schedules.validate_config(_phases(**overrides), warmup_epochs=warmup_epochs)


def test_unknown_phase_field_is_refused():
    section = _phases()
    section.boundary = (3,)
    with pytest.raises(ValueError, match=r"config\.train\.phases\.boundary is not a field.*did "
                                         r"you mean config\.train\.phases\.boundaries"):
        schedules.validate_config(section)


def test_config_peaks_multiply_the_learning_rate():
    train = _train(0.1, epochs=2, warmup_epochs=0.0, boundaries=(10,), peaks=(1.0, 0.5))
    schedule = schedules.learning_rate_from_config(train, steps_per_epoch=10)
    assert schedule.peaks == pytest.approx((0.1, 0.05))
    assert schedule.total_steps == 20 and schedule.boundaries == (10,)
    assert float(schedule(10)) == pytest.approx(0.05)


def test_config_boundary_past_the_run_is_refused():
    train = _train(epochs=1, warmup_epochs=0.0, boundaries=(2,), peaks=(1.0, 1.0))
    with pytest.raises(ValueError, match=r"config\.train\.phases\.boundaries=\(2,\) is invalid: "
                                         r"expected steps before .*this run has 2 steps"):
        schedules.learning_rate_from_config(train, steps_per_epoch=2)


def test_config_warmup_longer_than_phase_zero_is_refused():
    train = _train(epochs=5, warmup_epochs=1.0, boundaries=(5,), peaks=(1.0, 1.0))
    with pytest.raises(ValueError, match=r"config\.train\.warmup_epochs=1\.0 is invalid: "
                                         r"expected a warm-up shorter than phase 0 \(5 steps"):
        schedules.learning_rate_from_config(train, steps_per_epoch=10)


# -------------------------------------------------------------------- momentum reset


def _linear_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])


def _data(n=24):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")


class _MomentumLog(keras.callbacks.Callback):
    """Max |momentum| of each optimizer when each step starts (after MomentumReset ran)."""

    def __init__(self, optimizers):
        super().__init__()
        self.optimizers = optimizers
        self.rows = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rows.append(
            [max((float(np.max(np.abs(m.numpy()))) for m in callbacks.momentum_slots(o)),
                 default=0.0) for o in self.optimizers]
        )


def test_momentum_reset_equals_a_new_optimizer_at_the_boundary():
    """R2 builds a new optimizer per phase (SCHEMES.md §3.1 step 2): the reference."""
    x, y = _data()

    def sgd():
        return keras.optimizers.SGD(0.05, momentum=0.9)

    # Reference: 3 steps, then a fresh optimizer (zero momentum) for 3 more (constant LR, so
    # its restarted step counter does not matter).
    reference = _linear_model()
    reference.compile(optimizer=sgd(), loss="mse")
    reference.fit(x[:12], y[:12], batch_size=4, shuffle=False, verbose=0)
    reference.compile(optimizer=sgd(), loss="mse")
    reference.fit(x[12:], y[12:], batch_size=4, shuffle=False, verbose=0)

    model = _linear_model()
    model.compile(optimizer=sgd(), loss="mse")
    reset = callbacks.MomentumReset((3,))
    log = _MomentumLog([model.optimizer])
    model.fit(x, y, batch_size=4, shuffle=False, verbose=0, callbacks=[reset, log])
    assert reset.resets == [3]
    assert [r[0] == 0.0 for r in log.rows] == [True, False, False, True, False, False]

    plain = _linear_model()
    plain.compile(optimizer=sgd(), loss="mse")
    plain.fit(x, y, batch_size=4, shuffle=False, verbose=0)

    for a, b, c in zip(reference.get_weights(), model.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-7)
        assert np.max(np.abs(c - a)) > 1e-4  # without the reset the weights differ


def test_momentum_reset_covers_every_optimizer():
    """Two variable groups, two optimizers (K-shot's supernet and simplex-net)."""

    class TwoGroups(keras.Model):
        def __init__(self):
            super().__init__()
            self.a = keras.layers.Dense(4)
            self.b = keras.layers.Dense(2)

        def call(self, x):
            return self.b(self.a(x))

        def compile(self, first, second):
            super().compile(optimizer=first, jit_compile=False)
            self.second = second

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(self(x) - y))
            groups = [self.a.trainable_variables, self.b.trainable_variables]
            grads = tape.gradient(loss, groups)
            self.optimizer.apply(grads[0], groups[0])
            self.second.apply(grads[1], groups[1])
            return {"loss": loss}

    keras.utils.set_random_seed(0)
    model = TwoGroups()
    first = keras.optimizers.SGD(0.05, momentum=0.9)
    second = keras.optimizers.SGD(0.01, momentum=0.5, nesterov=True)
    model.compile(first, second)
    x, y = _data()
    reset = callbacks.MomentumReset((2, 4), [first, second])
    log = _MomentumLog([first, second])
    model.fit(x, y, batch_size=4, shuffle=False, verbose=0, callbacks=[reset, log])
    assert reset.resets == [2, 4]
    assert [r == [0.0, 0.0] for r in log.rows] == [True, False, True, False, True, False]


def test_momentum_slots_look_through_loss_scaling():
    variables = [keras.Variable(np.ones((2, 2), "float32"))]
    sgd = keras.optimizers.SGD(0.1, momentum=0.9)
    scaled = keras.optimizers.LossScaleOptimizer(sgd)
    scaled.build(variables)
    assert callbacks.momentum_slots(scaled) == sgd.momentums and len(sgd.momentums) == 1
    sgd.momentums[0].assign(np.full((2, 2), 3.0, "float32"))
    assert callbacks.reset_momentum([scaled]) == 1
    assert not sgd.momentums[0].numpy().any()
    assert float(scaled.dynamic_scale.numpy()) == 2.0**15  # the loss scale stays


def test_momentum_reset_refuses_several_steps_per_call():
    model = _linear_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse",
                  steps_per_execution=2)
    x, y = _data(8)
    with pytest.raises(ValueError, match="steps_per_execution=2"):
        model.fit(x, y, batch_size=4, verbose=0, callbacks=[callbacks.MomentumReset((1,))])


# Runs in a fresh process: the CPU must be split into logical devices before TF starts.
MIRRORED = textwrap.dedent(
    """
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    from tfnas import distribute
    distribute.split_cpu(2)
    import keras, numpy as np, tensorflow as tf
    from tfnas import callbacks

    keras.config.set_floatx("float64")  # the comparison is about logic, not round-off
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(24, 3)), rng.normal(size=(24, 2))

    def replicas(variable):
        # Every replica's copy of a (Keras) variable: a reset must reach all of them.
        tf_variable = getattr(variable, "_value", variable)
        return [c.numpy() for c in getattr(tf_variable, "values", (tf_variable,))]

    def train(strategy, boundaries):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
            model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="mse",
                          jit_compile=False)
        reset = callbacks.MomentumReset(boundaries)
        seen = []

        def look(batch, logs):
            # Before the first step the optimizer has no slots yet (it builds in the step).
            slots = callbacks.momentum_slots(model.optimizer)
            seen.append([float(np.max(np.abs(c))) for c in replicas(slots[0])] if slots else None)

        probe = keras.callbacks.LambdaCallback(on_train_batch_begin=look)
        model.fit(x, y, batch_size=8, shuffle=False, verbose=0, callbacks=[reset, probe])
        weights = [c for w in model.weights for c in replicas(w)]
        return weights, reset.resets, seen

    mirrored = distribute.make_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    w2, resets2, seen2 = train(mirrored, (2,))
    w1, resets1, seen1 = train(distribute.make_strategy("default"), (2,))
    w0, _, _ = train(distribute.make_strategy("default"), ())
    # w2 holds each weight twice (one copy per replica); each must equal the 1-device one.
    w2 = list(zip(w2[0::2], w2[1::2]))
    diff = max(float(np.max(np.abs(a - b))) for a, pair in zip(w1, w2) for b in pair)
    effect = max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w0))
    print(json.dumps(dict(diff=diff, effect=effect, resets=[resets1, resets2],
                          seen=[seen1, seen2], copies=len(w2[0]))))
    """
)


@pytest.fixture(scope="module")
def mirrored_reset():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", MIRRORED], capture_output=True, text=True, env=env, cwd=ROOT,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_momentum_reset_two_replicas_match_one_device(mirrored_reset):
    assert mirrored_reset["resets"] == [[2], [2]]
    first, second = mirrored_reset["seen"]
    # 3 steps: no momentum yet at the start, then some, then zero at the boundary, on
    # every replica.
    assert first[0] in (None, [0.0]) and second[0] in (None, [0.0, 0.0])
    assert min(first[1]) > 0 and len(second[1]) == 2 and min(second[1]) > 0
    assert first[2] == [0.0] and second[2] == [0.0, 0.0]
    assert mirrored_reset["diff"] < 1e-12
    assert mirrored_reset["effect"] > 1e-4

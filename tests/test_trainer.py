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

from tfnas import sampling
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


def test_dropout_seed_is_stateless_per_member_step_and_replica():
    seeds = {
        (m, step, r): tuple(trainer_lib.dropout_seed(3, step, m, r).numpy())
        for m in range(4) for step in (0, 1) for r in (0, 1)
    }
    assert len(set(seeds.values())) == len(seeds)
    assert tuple(trainer_lib.dropout_seed(3, 1, 2, 1).numpy()) == seeds[(2, 1, 1)]
    assert tuple(trainer_lib.dropout_seed(4, 1, 2, 1).numpy()) != seeds[(2, 1, 1)]


def test_supernet_dropout_with_a_seed_is_stateless():
    net, scheme, _, images, _ = _setup()
    arch = scheme.members(tf.constant(0, tf.int64))[0].arch

    def logits(rate, seed):
        seed = None if seed is None else tf.constant(seed, tf.int64)
        return net(images, arch=arch, training=True, dropout=tf.constant(rate),
                   dropout_seed=seed).numpy()

    plain = net(images, arch=arch, training=True).numpy()
    np.testing.assert_array_equal(logits(0.5, [1, 2]), logits(0.5, [1, 2]))
    assert np.abs(logits(0.5, [1, 2]) - logits(0.5, [1, 3])).max() > 1e-3
    # Rate 0 keeps every unit and scales by 1: the logits without dropout, bit for bit.
    np.testing.assert_array_equal(logits(0.0, [1, 2]), plain)
    np.testing.assert_array_equal(logits(0.0, None), plain)


def test_label_smoothing_equals_keras():
    net, scheme, _, images, labels = _setup()
    trainer = trainer_lib.SupernetTrainer(net, scheme, label_smoothing=0.1)
    member = scheme.members(tf.constant(0, tf.int64))[0]
    logits = net(images, arch=member.arch, training=False)
    ours = trainer._cross_entropy(labels, logits)
    keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
        tf.one_hot(labels, 10), logits
    )
    assert float(ours) == pytest.approx(float(keras_loss), rel=1e-6)


# -- the engine's mechanisms, each against a reference written out by hand -----------------
# tests/engine_checks.py runs them in one float64 process (see its docstring); each test
# below reads its own check.


def _run_checks(tmp_path_factory, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    tmp = tmp_path_factory.mktemp("engine")
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "engine_checks.py"), str(tmp), *args],
        env=env, capture_output=True, text=True, timeout=1800,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    return _run_checks(tmp_path_factory)


TIGHT = 1e-10  # float64: a wrong term is off by ~1e-3 of an update, round-off by ~1e-15


def test_new_engine_gives_the_old_engines_weights(checks):
    result = checks["old_engine"]
    assert result["sandwich"] < TIGHT and result["uniform"] < TIGHT, result
    # The intended change: LazySGD does not move the blocks a single path skipped.
    assert result["uniform_lazy"] > 1e-6, result


def test_members_of_one_kind_share_one_trace(checks):
    result = checks["shared_traces"]
    # The four sandwich members (labels + L2 for the largest, KL for the others) are one
    # kind: one program, traced once in 3 steps; inlining each member gives the same weights.
    assert result["programs"] == 1 and result["traces"] == [1], result
    assert result["inlined_programs"] == 0, result
    assert result["diff"] < TIGHT, result


def test_loss_weight_is_a_function_of_the_step(checks):
    result = checks["weight_by_step"]
    assert result["error"] < TIGHT and result["moved"] > 10, result
    assert result["zero_weight_moved"] == 0, result


def test_a_member_can_weigh_its_l2_penalty_apart_from_its_loss(checks):
    """CPT's and SSE's sampled arch: loss weight 0.5 / 0.8, weight decay at full strength."""
    result = checks["l2_weight"]
    for case in ("own", "default"):
        assert result[case]["error"] < TIGHT and result[case]["moved"] > 10, result


def test_labels_plus_teacher(checks):
    result = checks["labels_plus_teacher"]
    assert result["error"] < TIGHT and result["moved"] > 10, result


def test_external_teacher_is_frozen_and_not_saved(checks):
    result = checks["external_teacher"]
    assert result["error"] < TIGHT and result["moved"] > 10, result
    assert result["teacher_moved"] == 0 and not result["teacher_in_trainer_weights"], result


def test_rank_hinge_reaches_only_the_second_member(checks):
    results = checks["rank_hinge"]
    assert sorted(r["active"] for r in results.values()) == [False, True], results
    for r in results.values():
        assert r["error"] < TIGHT, results
        assert r["moved"] > 10 if r["active"] else r["moved"] == 0, results
        # Without the stop-gradient on a's loss the reference differs: the check can fail.
        assert r["differ_without_stop"] > 10 or not r["active"], results


def test_rank_margin_has_both_losses_live(checks):
    result = checks["rank_margin"]
    assert result["loss"] > 0 and result["error"] < TIGHT and result["moved"] > 10, result


def test_forward_only_member_and_batch_slice(checks):
    result = checks["forward_only_and_slice"]
    assert result["error"] < TIGHT and result["moved"] > 10, result


@pytest.mark.parametrize("mix", ["uniform", "detached"])
def test_member_simplex_code(checks, mix):
    result = checks["mix"][mix]
    assert result["error"] < TIGHT and result["moved"] > 10, result
    assert result["simplex_moved"] == 0, result


def test_variable_groups_alternate_without_moving_the_frozen_group(checks):
    result = checks["groups_alternate"]
    sizes = result["sizes"]
    assert sizes["simplex"] >= 4 and sizes["supernet"] > 100, result
    # Even steps: the weights move, the simplex-net not at all; odd steps the reverse
    # (momentum from step 0, or the L2 term of a member at weight 0, would move the weights
    # at step 1). The simplex-net's output layers start at zero, so at first only they
    # have a gradient.
    assert result["step0"]["simplex"] == 0 and result["step0"]["supernet"] > 100, result
    assert result["step1"]["supernet"] == 0 and result["step1"]["simplex"] >= 2, result
    assert result["step2"]["simplex"] == 0 and result["step2"]["supernet"] > 100, result
    assert result["iterations"] == [3, 3], result
    assert result["learning_rates"] == [0.125, 0.25], result


def test_a_member_at_weight_zero_can_be_skipped(checks):
    result = checks["skip_at_zero_weight"]
    # Skipping the off members of an alternation changes no bit of the weights or slots.
    assert result["count"] > 300 and result["bitwise_diff"] == 0, result
    # A member that is not sequential (it runs alongside the previous one) neither.
    assert result["overlap_bitwise_diff"] == 0, result
    # Its forward does not run: a NaN code at weight 0 poisons the weights unless skipped
    # (so the check can fail), while the other member still trains them.
    assert result["nan_skip0"]["nan"] > 100, result
    assert result["nan_skip1"]["nan"] == 0 and result["nan_skip1"]["moved"] > 100, result


@pytest.mark.parametrize("target,reads", [("teacher", "is_teacher"), ("rank_hinge", "pair")])
def test_a_member_reading_a_skippable_one_must_be_skippable(target, reads):
    keras.utils.set_random_seed(0)
    net = supernet_lib.Supernet(space="fmnist")
    net.build()
    arch = sampling.constant_arch(SPACE.largest())

    class Reader(schemes.Scheme):
        def members(self, step):
            return [
                schemes.Member("a", arch, "labels", is_teacher=True, weight=0.0,
                               skip_at_zero_weight=True),
                schemes.Member("b", arch, target, pair="a" if target == "rank_hinge" else None),
            ]

    with pytest.raises(ValueError, match="Member 'b' reads member 'a', which has "
                       "skip_at_zero_weight=True.*on 'b' too"):
        trainer_lib.SupernetTrainer(net, Reader(SPACE))


def test_scheme_state_and_both_optimizers_are_checkpointed(checks):
    result = checks["checkpoint_state"]
    assert result["ring_ok"] and result["pointer"] == 4, result
    assert result["restored_state"] and result["restored_weights"], result
    assert result["simplex_slots_nonzero"] and result["restored_simplex_slots"], result
    assert result["restored_main_slots"], result


def test_per_copy_multipliers_and_masked_l2(checks):
    result = checks["copies_multipliers_and_masked_l2"]
    assert result["copies"] == [[0] * 6, [1] * 6], result
    assert result["error"] < TIGHT and result["moved"] > 10, result
    # Training copy 0 only: copy 1 of every variable bitwise unchanged (masked L2 + LazySGD).
    assert result["copy1_changed"] == 0 and result["copy0_changed"] > 100, result


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    tmp = tmp_path_factory.mktemp("replicas")
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "engine_checks.py"), str(tmp), "--replicas"],
        env=env, capture_output=True, text=True, timeout=1800,
    )
    if out.returncode:
        return {"error": out.stderr[-3000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])["replicas"]


@pytest.mark.parametrize("part", ["targets", "alternation"])
def test_two_replicas_match_one_device_with_every_mechanism(replicas, part):
    assert "error" not in replicas, replicas.get("error")
    result = replicas[part]
    assert replicas["replicas"] == 2, replicas
    assert result["count"][0] == result["count"][1] > 300, result
    assert result["same_ring"] and result["steps"], result
    assert result["diff"] < 1e-9, result

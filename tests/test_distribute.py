"""2 replicas train exactly like 1 device: same subnets, loss scaling, one update."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tfnas import distribute

ROOT = Path(__file__).resolve().parents[1]

# Runs in a fresh process: the CPU must be split into logical devices before TF starts.
SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    from tfnas import distribute
    distribute.split_cpu(2)
    import keras, numpy as np, tensorflow as tf
    from tfnas import schemes, search_space as ss, supernet as supernet_lib, trainer as T

    # float64: BN amplifies float32 round-off over steps; the comparison is about logic.
    keras.config.set_floatx("float64")
    space = ss.get_space("fmnist")
    rng = np.random.default_rng(0)
    half = 8
    # Each global batch is [A; A]: replica 0 gets A, replica 1 gets A. Per-replica BN
    # statistics then equal the global ones, so the runs must agree to round-off.
    batches = []
    for _ in range(3):
        a = rng.normal(size=(half, 28, 28, 1))
        y = rng.integers(0, 10, half)
        batches.append((np.concatenate([a, a]), np.concatenate([y, y]).astype("int32")))
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])

    def train(strategy):
        keras.utils.set_random_seed(1)
        ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2 * half)
        with strategy.scope():
            net = supernet_lib.Supernet("fmnist")
            net.build()
            trainer = T.SupernetTrainer(
                net, schemes.SandwichScheme(space, seed=3, num_random=1), weight_decay=1e-3
            )
            trainer.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                            jit_compile=False)
        trainer.fit(ds, epochs=1, verbose=0)
        steps = int(trainer.optimizer.iterations.numpy())
        return [v.numpy() for v in net.trainable_variables], steps

    mirrored = distribute.make_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2

    # The subnets each replica samples at a few steps.
    scheme = schemes.SandwichScheme(space, seed=3, num_random=2)
    per_replica = mirrored.run(
        tf.function(
            lambda: tf.stack([m.arch for m in scheme.members(tf.constant(5, tf.int64))])
        )
    )
    archs = [a.numpy().tolist() for a in mirrored.experimental_local_results(per_replica)]

    w2, steps2 = train(mirrored)
    w1, steps1 = train(distribute.make_strategy("default"))
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w2))
    print(json.dumps(dict(archs=archs, diff=diff, steps=[steps1, steps2])))
    """
)


@pytest.fixture(scope="module")
def equivalence():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, cwd=ROOT,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_replica_samples_the_same_subnets(equivalence):
    first, second = equivalence["archs"]
    assert first == second
    assert len({tuple(a) for a in first}) == 4  # largest, smallest, 2 distinct random


def test_two_replicas_match_one_device(equivalence):
    assert equivalence["steps"] == [3, 3]
    # float64: agreement to round-off (measured ~1e-15); a missing 1/replicas loss scale
    # would double the update, a replica-dependent arch would change the gradients.
    assert equivalence["diff"] < 1e-9


def test_batch_must_divide_by_replicas():
    class TwoReplicas:
        num_replicas_in_sync = 2

    assert distribute.check_global_batch(8, TwoReplicas()) == 4
    with pytest.raises(ValueError, match="global batch size 7 does not divide by the 2"):
        distribute.check_global_batch(7, TwoReplicas())


def test_unknown_strategy_message():
    with pytest.raises(ValueError, match="Unknown strategy 'tpu'; expected one of default"):
        distribute.make_strategy("tpu")


class _FakeStrategy:
    """Just the `cluster_resolver` of a MultiWorkerMirroredStrategy on one task."""

    def __init__(self, cluster, task_type, task_id):
        import tensorflow as tf

        self.cluster_resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec(cluster), task_type=task_type, task_id=task_id
        )


@pytest.mark.parametrize(
    "cluster, task_type, task_id, chief",
    [
        ({"worker": ["a:1", "b:1"]}, "worker", 0, True),
        ({"worker": ["a:1", "b:1"]}, "worker", 1, False),
        ({"chief": ["c:1"], "worker": ["a:1"]}, "chief", 0, True),
        ({"chief": ["c:1"], "worker": ["a:1"]}, "worker", 0, False),
    ],
)
def test_only_the_chief_writes_into_the_workdir(tmp_path, cluster, task_type, task_id, chief):
    strategy = _FakeStrategy(cluster, task_type, task_id)
    assert distribute.is_chief(strategy) is chief
    out = distribute.write_dir(tmp_path / "oneshot", strategy)
    assert (out == tmp_path / "oneshot") is chief
    if not chief:
        assert tmp_path not in out.parents and out.is_dir()
    # Every call for the same directory agrees (a stage asks more than once).
    assert distribute.write_dir(tmp_path / "oneshot", strategy) == out


def test_without_a_cluster_every_process_is_chief(tmp_path):
    assert distribute.is_chief()
    assert distribute.write_dir(tmp_path) == tmp_path

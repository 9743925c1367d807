"""2 replicas train exactly like 1 device with the schemes of seed paper 001 (APS multi-path
steps across a phase switch, the CPT pool's redraws and replacements, SSE's bucket switch with
an external teacher): weights, optimizer slots and every scheme state variable agree.

The schemes draw from (seed, step) and keep their pools in tracked state variables that every
replica updates identically; a replica-dependent draw, a pool that only one replica updated,
or a loss without the 1/replicas scale would each break the equality below.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas import optimizers
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas import trainer as trainer_lib
from tfnas.schemes import cpt
from tfnas.schemes import multipath
from tfnas.schemes import sse

ROOT = Path(__file__).resolve().parents[1]
SPACE = ss.get_space("fmnist")
STEPS = 6


def _aps():
    # Phase 0 (steps 0-2): the smallest widths; phase 1 (3-5): the whole space.
    rows = (ss.Bounds((1,) * 5, (4, 4, 6, 2)), ss.FULL_BOUNDS)
    return multipath.MultiPathScheme(SPACE, seed=3, num_paths=2, phase_bounds=((3,), rows))


def _cpt():
    # A pool of 3 redrawn every 2 steps, a ring of 2: redraws and replacements in 6 steps.
    return cpt.CPTScheme(SPACE, seed=3, pool_size=3, recent_size=2, knn=2, redraw_every=2)


def _sse():
    # Bucket 0 for steps 0-2, bucket 1 from step 3 (a restart of the pool), teacher distilled.
    return sse.SSEScheme(SPACE, seed=3, buckets=(0, 1), boundaries=(3,), pool_size=3,
                         recent_size=2, knn=2, redraw_every=2)


# scheme -> (its factory, the supernet's arguments, whether it distils a teacher model)
CASES = {
    "multipath": (_aps, {}, False),
    "cpt": (_cpt, {}, False),
    "sse": (_sse, dict(num_copies=5, routing="depth34_table", split_stem=True), True),
}


def replica_check(name: str) -> dict:
    """Trains ``name`` for STEPS steps on 2 replicas and on 1 device (float64)."""
    from tfnas import distribute

    make_scheme, net_args, distils = CASES[name]
    rng = np.random.default_rng(4)
    # Every global batch is [B; B; B; B]: a replica's batch is [B; B], with B's statistics,
    # so BN and the means agree with 1 device up to round-off.
    batches = []
    for _ in range(STEPS):
        b, y = rng.normal(size=(2, 28, 28, 1)), rng.integers(0, 10, 2)
        batches.append((np.concatenate([b] * 4), np.concatenate([y] * 4).astype("int32")))
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])

    def train(strategy):
        ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
        with strategy.scope():
            keras.utils.set_random_seed(0)
            net = supernet_lib.Supernet("fmnist", zero_init_residual=False, **net_args)
            net.build()
            teacher = None
            if distils:
                keras.utils.set_random_seed(7)
                teacher = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                            keras.layers.Dense(10)], name="teacher")
            scheme = make_scheme()
            trainer = trainer_lib.SupernetTrainer(net, scheme, weight_decay=1e-3,
                                                  teacher_model=teacher)
            trainer.compile(optimizer=optimizers.LazySGD(0.125, momentum=0.9),
                            jit_compile=False)
        trainer.fit(ds, epochs=1, verbose=0)
        values = [v.numpy() for v in net.weights]
        values += [v.numpy() for v in trainer.optimizer.variables]
        state = [v.numpy() for v in scheme.weights]
        return values, state, int(trainer.optimizer.iterations.numpy())

    mirrored = distribute.make_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    two, state2, steps2 = train(mirrored)
    one, state1, steps1 = train(distribute.make_strategy("default"))
    return dict(
        replicas=mirrored.num_replicas_in_sync,
        steps=[steps1, steps2],
        count=[len(one), len(two)],
        state_count=[len(state1), len(state2)],
        diff=max(float(np.abs(a - b).max()) for a, b in zip(one, two)),
        state_equal=all(np.array_equal(a, b) for a, b in zip(state1, state2)),
    )


# ~2-3 minutes each on 2 CPU cores: the CPT pool (the state the other two add nothing to but
# phases and buckets) runs by default, the others with --runslow.
@pytest.mark.parametrize("name", [pytest.param("multipath", marks=pytest.mark.slow), "cpt",
                                  pytest.param("sse", marks=pytest.mark.slow)])
def test_two_replicas_match_one_device(name):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, __file__, "--replicas", name], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["steps"] == [STEPS, STEPS], result
    assert result["count"][0] == result["count"][1] > 100, result
    # CPT and SSE carry a pool, a ring and counters; multi-path has no state.
    assert result["state_count"][0] == result["state_count"][1], result
    assert (result["state_count"][0] > 0) == (name != "multipath"), result
    assert result["state_equal"], result
    # float64: agreement to round-off, which these tiny BN batches amplify over 6 steps at
    # lr 0.125 (measured: multipath 1e-11, cpt 1.4e-9, sse 1e-13). A real difference (a
    # replica-dependent draw, a pool one replica updated, a doubled update) moves weights
    # by orders of magnitude more (float32 round-off alone reached 3e-2, test_kshot.py).
    assert result["diff"] < 1e-7, result


if __name__ == "__main__":
    if "--replicas" in sys.argv:
        from tfnas import distribute

        keras.config.set_floatx("float64")
        distribute.split_cpu(2)
        print(json.dumps(replica_check(sys.argv[sys.argv.index("--replicas") + 1])))

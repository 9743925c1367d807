"""``train.deterministic``: two runs of the same ``oneshot`` command give the same bits.

Determinism is process-global (op determinism cannot be switched off, the RNGs are global),
so every run here is its own process. The two training runs go side by side, so they also
see different timing and thread interleavings.

The runs train 10 steps of the Fashion-MNIST config (batch 128), not the tiny config: tiny
runs (16 or 64 synthetic images a batch) came out bitwise identical even in the default
mode, so they could not catch a missing piece of the deterministic mode, while these 10
steps, with op determinism on but grappler's arithmetic optimizer left on, differed by up
to 8e-4 in a weight (`tfnas.distribute.configure_determinism` says why).
"""

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tfnas import data
from tfnas import distribute
from tfnas import supernet as supernet_lib

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 1800  # seconds; a run traces for minutes on a loaded 2-core machine

SEEDS_SCRIPT = textwrap.dedent(
    """
    import json, random
    import keras, numpy as np, tensorflow as tf
    from tfnas import distribute
    before = distribute.is_deterministic()
    off = distribute.configure_determinism(False, 5)
    on = distribute.configure_determinism(True, 5)
    draws = [random.random(), float(np.random.rand()), float(tf.random.uniform([]))]
    tf.random.set_seed(5)
    print(json.dumps(dict(before=before, off=off, on=on, draws=draws,
                          tf_reference=float(tf.random.uniform([])),
                          grappler=tf.config.optimizer.get_experimental_options())))
    """
)


def _env():
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    return env


def test_configure_determinism_seeds_everything_and_turns_determinism_on():
    out = subprocess.run(
        [sys.executable, "-c", SEEDS_SCRIPT], capture_output=True, text=True, env=_env(),
        cwd=ROOT, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert (got["before"], got["off"], got["on"]) == (False, False, True)
    python_draw, numpy_draw, tf_draw = got["draws"]
    assert python_draw == random.Random(5).random()
    assert numpy_draw == np.random.RandomState(5).rand()
    assert tf_draw == got["tf_reference"]  # the TF global seed is 5
    # The AddN rewrite is off (see the module docstring).
    assert got["grappler"].get("arithmetic_optimization") is False


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_configure_determinism_rejects_a_bad_seed(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0, received .*--config.seed"):
        distribute.configure_determinism(True, seed)


# 10 steps of the Fashion-MNIST config; the subnets are scored on one holdout batch only.
RUN_ARGS = [
    "--config.train.epochs=1",
    "--config.train.steps_per_epoch=10",
    "--config.train.warmup_epochs=0.2",
    "--config.evaluate.num_batches=1",
    "--config.evaluate.recalibration.num_batches=1",
]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    if not os.path.isdir(data.DEFAULT_FASHION_MNIST_DIR):
        pytest.skip(
            f"{data.DEFAULT_FASHION_MNIST_DIR} missing: apt-get install dataset-fashion-mnist"
        )
    base = tmp_path_factory.mktemp("determinism")
    procs = []
    for i in range(2):
        log = open(base / f"run{i}.log", "w")
        cmd = [
            sys.executable, str(ROOT / "bin" / "train"), "--stage=oneshot",
            "--config=configs/fmnist.py", f"--workdir={base / f'run{i}'}", *RUN_ARGS,
            "--config.train.deterministic=True",
        ]
        procs.append((subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=log,
                                       stderr=subprocess.STDOUT), log))
    try:
        for proc, _ in procs:
            proc.wait(timeout=TIMEOUT)
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    for i, (proc, _) in enumerate(procs):
        assert proc.returncode == 0, (base / f"run{i}.log").read_text()[-3000:]
    return [base / f"run{i}" / "oneshot" for i in range(2)]


@pytest.mark.slow
def test_two_deterministic_runs_give_identical_weights(two_runs):
    first, second = (supernet_lib.weight_arrays(d / "supernet.keras") for d in two_runs)
    assert first.keys() == second.keys() and len(first) > 100
    assert all(np.array_equal(first[k], second[k]) for k in first)


@pytest.mark.slow
def test_two_deterministic_runs_give_identical_optimizer_state_and_scores(two_runs):
    first, second = (
        supernet_lib.weight_arrays(d / "checkpoints" / "last.weights.h5") for d in two_runs
    )
    assert first.keys() == second.keys()
    assert all(np.array_equal(first[k], second[k]) for k in first)
    # The runs trained (SGD steps left momentum behind), so equal weights are not two inits.
    momentum = [v for k, v in first.items() if k.startswith("optimizer/") and v.ndim > 1]
    assert momentum and any(np.any(v != 0) for v in momentum)
    reports = [json.loads((d / "report.json").read_text()) for d in two_runs]
    assert reports[0]["steps"] == reports[1]["steps"] == 10
    assert reports[0]["accuracy"] == reports[1]["accuracy"]

"""A real 2-worker MultiWorkerMirroredStrategy ``oneshot`` job on loopback, against 1 worker.

Two ``bin/train --stage=oneshot --config.train.strategy=multi_worker`` processes (TF_CONFIG
workers 0 and 1 on 127.0.0.1, the same workdir) train the tiny Fashion-MNIST config; a third
process trains the same config with the default strategy (one device) in its own workdir.

What must match, and why it can match exactly. Under multi-worker each worker gets one half
of every global batch (the pipeline is sharded by data: worker ``i`` takes the ``i``-th
per-replica slice), computes BN statistics on its half only (per-replica BN, see
`tfnas.distribute`), and the gradients of the two halves are summed. With arbitrary
batches that differs from one device by design. Here the training split is 8 images
(``data.train_subset=8``) and the global batch 16: the in-memory pipeline permutes the 8
images afresh every epoch and batches run across epochs, so each half of every global batch
is a permutation of the *same* 8 images (tiny data has no augmentation). Per-half BN
statistics then equal the global ones, per-half mean losses scaled by 1/2 and summed equal
the global mean, and the sampled subnets depend only on (seed, step). Dropout is off
(``supernet.dropout=0``): its masks are drawn per replica and would differ. So the
2-worker supernet must equal the 1-worker one up to the order of float additions; the
processes compute in float64 (``floatx`` from a ``keras.json`` in ``KERAS_HOME``), where
that round-off is ~1e-15, so the test asserts < 1e-9 -- a wrong loss scale, replicas
training different subnets or a lost update would show at ~1e-3. Both workers hold the
same mirrored variables, so their two saved supernets must be bitwise identical.

Only the chief (worker 0) may write into the workdir: worker 1's files go to a scratch
directory under its ``TMPDIR`` (`tfnas.distribute.write_dir`). TensorBoard event files carry
the writer's pid in their name, which tells who wrote them.

Run with ``.venv/bin/python -m pytest -q --runslow tests/test_multiworker.py``. Collective ops
that hang (a port taken, a worker dead) are bounded by a timeout that kills the processes
and fails with their output.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tfnas import supernet as supernet_lib

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 1800  # seconds for the whole job; the machine is shared and tiny runs trace for minutes

# The settings that make 2 workers comparable with 1 (see the module docstring).
ARGS = [
    "--stage=oneshot",
    "--config=configs/fmnist.py:tiny",
    "--config.data.train_subset=8",
    "--config.supernet.dropout=0.0",
    # The stage sets the dtype policy from this field (keras.json's floatx does not reach it).
    "--config.train.precision=float64",
]


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _start(extra_args, workdir, env, log):
    return subprocess.Popen(
        [sys.executable, str(ROOT / "bin" / "train"), *ARGS, f"--workdir={workdir}", *extra_args],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    base = tmp_path_factory.mktemp("multiworker")
    keras_home = base / "keras_home"
    keras_home.mkdir()
    (keras_home / "keras.json").write_text(
        json.dumps(
            dict(floatx="float64", epsilon=1e-7, backend="tensorflow",
                 image_data_format="channels_last")
        )
    )
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        KERAS_HOME=str(keras_home),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    env.pop("TF_CONFIG", None)
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    shared = base / "shared_workdir"
    single = base / "single_workdir"
    procs, logs = {}, {}
    for name in ("worker0", "worker1", "single"):
        logs[name] = open(base / f"{name}.log", "w")
        (base / f"tmp_{name}").mkdir()
    for index in (0, 1):
        name = f"worker{index}"
        worker_env = dict(
            env,
            TMPDIR=str(base / f"tmp_{name}"),
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        )
        procs[name] = _start(
            ["--config.train.strategy=multi_worker"], shared, worker_env, logs[name]
        )
    procs["single"] = _start([], single, dict(env, TMPDIR=str(base / "tmp_single")), logs["single"])

    deadline = time.time() + TIMEOUT
    try:
        for proc in procs.values():
            proc.wait(timeout=max(1.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        for log in logs.values():
            log.close()
    outputs = {name: (base / f"{name}.log").read_text() for name in procs}
    status = {name: proc.returncode for name, proc in procs.items()}
    if any(code != 0 for code in status.values()):
        tails = "\n".join(f"--- {n} (exit {status[n]}):\n{outputs[n][-2500:]}" for n in procs)
        pytest.fail(f"a process failed or timed out after {TIMEOUT} s:\n{tails}")
    return dict(
        base=base,
        shared=shared,
        single=single,
        pids={name: proc.pid for name, proc in procs.items()},
        outputs=outputs,
    )


def _scratch(job, worker):
    """The scratch ``oneshot`` directory of ``worker`` (under its TMPDIR)."""
    found = list((job["base"] / f"tmp_{worker}").glob("tfnas-*/*-oneshot"))
    assert len(found) == 1, found
    return found[0]


@pytest.mark.slow
def test_two_workers_train_like_one(job):
    multi = supernet_lib.weight_arrays(job["shared"] / "oneshot" / "supernet.keras")
    one = supernet_lib.weight_arrays(job["single"] / "oneshot" / "supernet.keras")
    assert multi.keys() == one.keys()
    assert all(v.dtype == np.float64 for v in multi.values() if v.dtype.kind == "f")
    diff = max(float(np.max(np.abs(multi[k] - one[k]), initial=0.0)) for k in multi)
    assert diff < 1e-9
    # Training happened (2 steps, not 0) in both, so the comparison is not of two inits.
    for workdir in (job["shared"], job["single"]):
        report = json.loads((workdir / "oneshot" / "report.json").read_text())
        assert report["steps"] == 2


@pytest.mark.slow
def test_both_workers_hold_the_same_weights(job):
    chief = supernet_lib.weight_arrays(job["shared"] / "oneshot" / "supernet.keras")
    other = supernet_lib.weight_arrays(_scratch(job, "worker1") / "supernet.keras")
    assert chief.keys() == other.keys()
    assert all(np.array_equal(chief[k], other[k]) for k in chief)


@pytest.mark.slow
def test_only_the_chief_writes_into_the_workdir(job):
    stage = job["shared"] / "oneshot"
    files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
    events = [f for f in files if f.startswith("tensorboard/")]
    others = [f for f in files if not f.startswith("tensorboard/")]
    assert others == [
        "checkpoints/last.weights.h5",
        "checkpoints/state.json",
        "config.json",
        "manifest.json",
        "report.json",
        "supernet.keras",
    ]
    # The event files of the workdir are the chief's only (".<host>.<pid>." in their names).
    assert events and all(f".{job['pids']['worker0']}." in f for f in events), events
    # Worker 1 ran the same saves, into its scratch directory.
    scratch = _scratch(job, "worker1")
    assert (scratch / "supernet.keras").is_file()
    assert (scratch / "report.json").is_file()
    assert (scratch / "checkpoints" / "last.weights.h5").is_file()
    theirs = [p.name for p in (scratch / "tensorboard").rglob("events.*")]
    assert theirs and all(f".{job['pids']['worker1']}." in n for n in theirs), theirs
    # And only the chief records the stage in the workdir's manifest.
    assert not (scratch / "manifest.json").exists()

"""The one-shot stage end to end: training, crash resume, NaN guard, outputs."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from configs import fmnist
from tfnas.stages import oneshot
from tfnas.stages import registry

ROOT = Path(__file__).resolve().parents[2]


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _command(workdir, *overrides):
    return [
        sys.executable,
        str(ROOT / "bin" / "train"),
        "--stage=oneshot",
        "--config=" + str(ROOT / "configs" / "fmnist.py") + ":tiny",
        f"--workdir={workdir}",
        "--config.train.num_random_subnets=0",
        *overrides,
    ]


def test_kill_9_mid_epoch_then_the_same_command_resumes(tmp_path):
    """A run killed mid-epoch continues from its last checkpoint, and finishes the stage."""
    overrides = ["--config.train.epochs=3", "--config.train.steps_per_epoch=40"]
    command = _command(tmp_path, *overrides)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    state = tmp_path / "oneshot" / "checkpoints" / "state.json"
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 600
        while not state.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert state.exists(), "no checkpoint was written"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    killed_at = json.loads(state.read_text())["epochs"]
    assert 1 <= killed_at < 3, "the run was not killed mid-training"

    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert f"resuming from the checkpoint after epoch {killed_at}" in out.stdout
    report = json.loads((tmp_path / "oneshot" / "report.json").read_text())
    assert report["resumed_from_epoch"] == killed_at
    assert report["steps"] == 3 * 40  # the step counter came back with the optimizer
    assert set(report["accuracy"]) == {"largest", "smallest"}
    assert all(0.0 <= a <= 1.0 for a in report["accuracy"].values())
    assert (tmp_path / "oneshot" / "supernet.keras").exists()
    assert (tmp_path / "oneshot" / "config.json").exists()
    manifest = registry.read_manifest(tmp_path, "oneshot")
    assert manifest["supernet"].endswith("supernet.keras")
    assert list((tmp_path / "oneshot" / "tensorboard").rglob("events.out.tfevents*"))

    # A finished run is a no-op: the supernet file (which evaluate fingerprints) is kept.
    before = _sha(tmp_path / "oneshot" / "supernet.keras")
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert "already trained for 3 epochs" in again.stdout
    assert _sha(tmp_path / "oneshot" / "supernet.keras") == before


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    config = fmnist.get_config("tiny")
    config.train.scheme = "uniform"  # one member: the cheapest graph to trace
    oneshot.train_supernet(config, tmp_path)
    checkpoint = tmp_path / "checkpoints" / "last.weights.h5"
    good = _sha(checkpoint)
    config.train.epochs = 3
    config.train.learning_rate = 1e30
    with pytest.raises(oneshot.TrainingDivergedError) as err:
        oneshot.train_supernet(config, tmp_path)
    message = str(err.value)
    assert "loss became NaN or infinite at epoch 2" in message
    assert "last good checkpoint (after epoch 1)" in message
    assert "--config.train.learning_rate" in message
    assert _sha(checkpoint) == good
    assert json.loads((tmp_path / "checkpoints" / "state.json").read_text())["epochs"] == 1

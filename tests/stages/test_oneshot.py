"""The one-shot stage end to end: training, crash resume, NaN guard, outputs."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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


def _weights(path):
    import keras

    return [w.numpy() for w in keras.saving.load_model(path).weights]


def test_kill_9_mid_epoch_then_the_same_command_resumes(tmp_path, kill_at_checkpoint):
    """A run killed mid-epoch continues from its last checkpoint, finishes the stage, and
    ends with the weights of a run that was never interrupted (uniform scheme, no dropout:
    the data stream, the sampled subnets and the optimizer state all come back)."""
    overrides = [
        "--config.train.epochs=3",
        "--config.train.steps_per_epoch=40",
        "--config.train.scheme=uniform",
        "--config.supernet.dropout=0.0",
    ]
    command = _command(tmp_path, *overrides)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    state = tmp_path / "oneshot" / "checkpoints" / "state.json"
    killed_at = kill_at_checkpoint(command, state, env=env, timeout=600)
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

    straight = tmp_path / "straight"
    done = subprocess.run(
        _command(straight, *overrides), env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    resumed = _weights(tmp_path / "oneshot" / "supernet.keras")
    uninterrupted = _weights(straight / "oneshot" / "supernet.keras")
    assert len(resumed) == len(uninterrupted)
    for a, b in zip(resumed, uninterrupted):
        np.testing.assert_array_equal(a, b)

    # A finished run is a no-op: the supernet file (which evaluate fingerprints) is kept.
    before = _sha(tmp_path / "oneshot" / "supernet.keras")
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert "already trained for 3 epochs" in again.stdout
    assert _sha(tmp_path / "oneshot" / "supernet.keras") == before


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    """Batches turn NaN from the third on: epoch 1 (2 steps) is saved, epoch 2 diverges."""
    import tensorflow as tf

    from tfnas import data as data_lib

    real = data_lib.build_dataset

    def poisoned(*args, **kwargs):
        def poison(index, batch):
            images, labels = batch
            nan = tf.fill(tf.shape(images), tf.constant(float("nan"), images.dtype))
            return tf.where(index >= 2, nan, images), labels

        return real(*args, **kwargs).enumerate().map(poison)

    monkeypatch.setattr(oneshot.data_lib, "build_dataset", poisoned)
    config = fmnist.get_config("tiny")
    config.train.scheme = "uniform"  # one member: the cheapest graph to trace
    config.train.epochs = 3
    with pytest.raises(oneshot.TrainingDivergedError) as err:
        oneshot.train_supernet(config, tmp_path)
    message = str(err.value)
    assert "loss became NaN or infinite at epoch 2" in message
    assert "last good checkpoint (after epoch 1)" in message
    assert "--config.train.learning_rate" in message
    assert json.loads((tmp_path / "checkpoints" / "state.json").read_text())["epochs"] == 1
    assert not list((tmp_path / "checkpoints").glob("tmp*"))


def test_resume_refuses_another_training_config_and_overwrite_moves_the_run_aside(tmp_path):
    config = fmnist.get_config("tiny")
    config.train.scheme = "uniform"
    oneshot.train_supernet(config, tmp_path)
    state = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert state["run_config"] == oneshot.run_config(config)
    assert (tmp_path / "config.json").exists()

    changed = fmnist.get_config("tiny")
    changed.train.scheme = "uniform"
    changed.train.epochs = 2
    changed.train.learning_rate = 0.5
    with pytest.raises(ValueError) as err:
        oneshot.train_supernet(changed, tmp_path)
    message = str(err.value)
    assert "train.epochs: checkpoint 1, now 2" in message
    assert "train.learning_rate: checkpoint 0.1, now 0.5" in message
    assert "--overwrite" in message

    # Fields that do not change the weights may differ on resume.
    logging = fmnist.get_config("tiny")
    logging.train.scheme = "uniform"
    logging.train.log_every_steps = 7
    _, initial_epoch = oneshot.train_supernet(logging, tmp_path)
    assert initial_epoch == 1

    trainer, initial_epoch = oneshot.train_supernet(changed, tmp_path, overwrite=True)
    assert initial_epoch == 0 and int(trainer.optimizer.iterations.numpy()) == 4
    aside = [p for p in tmp_path.parent.iterdir() if p.name.startswith(tmp_path.name + ".replaced")]
    assert len(aside) == 1 and (aside[0] / "checkpoints" / "state.json").exists()

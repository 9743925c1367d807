"""The constraint pool across a crash: a CPT run killed with SIGKILL mid-training resumes
from its checkpoint and ends with the weights *and pool* of a run never interrupted."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfnas import supernet as supernet_lib

ROOT = Path(__file__).resolve().parents[2]
OVERRIDES = [
    "--config.train.epochs=3",
    "--config.train.steps_per_epoch=12",
    "--config.supernet.dropout=0.0",
    # A re-draw every 5 steps: the resumed epochs cross re-draws and rule updates.
    "--config.train.cpt.redraw_every=5",
]


def _command(workdir):
    return [sys.executable, str(ROOT / "bin" / "train"), "--stage=oneshot",
            "--config=" + str(ROOT / "configs" / "fmnist_cpt.py") + ":tiny",
            f"--workdir={workdir}", *OVERRIDES]


# ~3 minutes (two bin/train runs and a killed one); tests/test_cpt.py checks in-process that a
# checkpoint holds the pool and a restored run continues with it.
@pytest.mark.slow
def test_kill_9_then_resume_continues_with_the_same_pool(tmp_path, kill_at_checkpoint):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    state = tmp_path / "run" / "oneshot" / "checkpoints" / "state.json"
    killed_at = kill_at_checkpoint(_command(tmp_path / "run"), state, env=env, timeout=600)
    assert 1 <= killed_at < 3, "the run was not killed mid-training"
    out = subprocess.run(_command(tmp_path / "run"), env=env, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert f"resuming from the checkpoint after epoch {killed_at}" in out.stdout

    straight = subprocess.run(_command(tmp_path / "straight"), env=env, capture_output=True,
                              text=True, timeout=900)
    assert straight.returncode == 0, straight.stdout[-2000:] + straight.stderr[-3000:]
    resumed = supernet_lib.weight_arrays(
        tmp_path / "run" / "oneshot" / "checkpoints" / "last.weights.h5")
    uninterrupted = supernet_lib.weight_arrays(
        tmp_path / "straight" / "oneshot" / "checkpoints" / "last.weights.h5")
    assert resumed.keys() == uninterrupted.keys()
    # The scheme's state: pool, ring, the ring's fill and head, the replacement count.
    state_keys = [k for k in resumed if "scheme" in k]
    assert len(state_keys) == 5, sorted(resumed)
    for key in resumed:
        np.testing.assert_array_equal(resumed[key], uninterrupted[key], err_msg=key)

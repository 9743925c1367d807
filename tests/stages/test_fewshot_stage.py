"""The fewshot stage: G = 2..G_max from the one-shot supernet, inheritance, resume, products."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from configs import fmnist_fewshot
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas import transfer
from tfnas.stages import evaluate
from tfnas.stages import fewshot
from tfnas.stages import registry

ROOT = Path(__file__).resolve().parents[2]


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _config():
    config = fmnist_fewshot.get_config("tiny")  # G = 2..3, 2 steps each, monitor off
    config.train.num_random_subnets = 1
    return config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny one-shot run, then the fewshot stage on it."""
    work = tmp_path_factory.mktemp("fewshot")
    config = _config()
    assert registry.run_stage("oneshot", config, registry.StageArgs(str(work))) == 0
    assert registry.run_stage("fewshot", config, registry.StageArgs(str(work))) == 0
    return work


def test_refuses_without_a_one_shot_supernet(tmp_path):
    with pytest.raises(ValueError, match="--stage=oneshot"):
        registry.run_stage("fewshot", _config(), registry.StageArgs(str(tmp_path)))
    assert not (tmp_path / "fewshot").exists()  # nothing written before the inputs check


@pytest.mark.slow
def test_end_to_end_products_and_manifest(workdir):
    for g, counts in ((2, (1, 2, 2, 2, 2, 2)), (3, (1, 3, 3, 3, 3, 3))):
        directory = fewshot.step_dir(workdir, g)
        assert (directory / "checkpoints" / "state.json").exists()
        assert list((directory / "tensorboard").rglob("events.out.tfevents*"))
        saved = json.loads((directory / "config.json").read_text())
        assert saved["supernet"]["num_copies"] == g
        assert saved["supernet"]["routing"] == "stage_width_nested"
        assert saved["train"]["scheme"] == "fewshot"
        assert saved["train"]["warmup_epochs"] == 0.0
        report = json.loads((directory / "report.json").read_text())
        assert tuple(report["copy_counts"]) == counts
        assert report["steps"] == 2
        net = keras.saving.load_model(directory / "supernet.keras")
        assert net.copy_counts == counts
    # G=3 started from G=2's final supernet (no monitor, so no best-tau file).
    report3 = json.loads((fewshot.step_dir(workdir, 3) / "report.json").read_text())
    assert report3["initialized_from"] == "./fewshot/G2/supernet.keras"
    table = json.loads((workdir / "fewshot" / "table.json").read_text())
    assert [r["G"] for r in table] == ["one-shot", 2, 3]
    assert all(r["best_kendall_tau"] is None for r in table)  # monitor off
    params = [r["params"] for r in table]
    assert params[0] < params[1] < params[2]  # more copies, more weights
    assert (workdir / "fewshot" / "table.tsv").read_text().startswith("G\tepochs")
    assert list((workdir / "fewshot" / "tensorboard").rglob("events.out.tfevents*"))
    manifest = registry.read_manifest(workdir, "fewshot")
    g3 = str(workdir / "fewshot" / "G3" / "supernet.keras")
    assert manifest["supernet"] == g3 and manifest["num_copies"] == 3  # G_max without tau
    # evaluate (and rank through it) uses the selected G without being told a path.
    path, origin = evaluate.supernet_path(_config(), str(workdir))
    assert path == g3 and "fewshot" in origin


@pytest.mark.slow
def test_rerun_is_a_no_op(workdir, capsys):
    before = _sha(fewshot.step_dir(workdir, 3) / "supernet.keras")
    assert registry.run_stage("fewshot", _config(), registry.StageArgs(str(workdir))) == 0
    assert "G=3 already trained" in capsys.readouterr().out
    assert _sha(fewshot.step_dir(workdir, 3) / "supernet.keras") == before


@pytest.mark.slow
def test_a_finished_g_refuses_another_recipe(workdir):
    config = _config()
    config.fewshot.lr_mode = "paper"
    with pytest.raises(ValueError, match="another recipe"):
        registry.run_stage("fewshot", config, registry.StageArgs(str(workdir)))


def test_inheritance_is_exact(tmp_path):
    """The G=3 supernet as the stage initializes it (step_config, then the engine's
    init_from) gives every arch the G=2 supernet's logits, bit for bit: the archs whose
    group did not split and the split ones (both halves start as the parent). The G=2
    supernet has random weights, every copy different, instead of trained ones (fast)."""
    config = _config()
    g2 = supernet_lib.build_supernet(fewshot.step_config(config, 2, "").supernet, config.space)
    rng = np.random.default_rng(0)
    for v in g2.weights:
        if "moving_variance" in v.path:
            v.assign(rng.uniform(0.5, 1.5, size=v.shape).astype("float32"))
        else:
            v.assign(rng.normal(scale=0.3, size=v.shape).astype("float32"))
    g2_file = tmp_path / "g2.keras"
    g2.save(g2_file)
    derived = fewshot.step_config(config, 3, g2_file)
    g3 = supernet_lib.build_supernet(derived.supernet, config.space)
    transfer.init_from_config(g3, derived.supernet)
    space = ss.get_space(config.space)
    archs = [space.largest(), space.smallest(), *space.sample_many(6, seed=1)]
    images = rng.normal(size=(4, 28, 28, 1)).astype("float32")
    unsplit = split = 0
    for arch in archs:
        a = supernet_lib.arch_tensor(arch)
        same = bool(np.all(g2.copies(a).numpy() == g3.copies(a).numpy()))
        unsplit, split = unsplit + same, split + (not same)
        np.testing.assert_array_equal(
            g2(images, arch=a, training=False).numpy(), g3(images, arch=a, training=False).numpy()
        )
    assert unsplit >= 1 and split >= 1  # the largest keeps copy 0 everywhere at G=2 and 3
    # The copies of G=2 differ, so the equality is not that of identical copies.
    assert not np.array_equal(g2.classifier.kernel.numpy()[0], g2.classifier.kernel.numpy()[1])


def _command(workdir, stage, *overrides):
    return [
        sys.executable,
        str(ROOT / "bin" / "train"),
        f"--stage={stage}",
        "--config=" + str(ROOT / "configs" / "fmnist_fewshot.py") + ":tiny",
        f"--workdir={workdir}",
        "--config.train.num_random_subnets=0",
        *overrides,
    ]


@pytest.mark.slow
def test_kill_9_during_g3_resumes_at_g3(tmp_path, kill_at_checkpoint):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    one = subprocess.run(
        _command(tmp_path, "oneshot"), env=env, capture_output=True, text=True, timeout=900
    )
    assert one.returncode == 0, one.stdout[-2000:] + one.stderr[-3000:]
    command = _command(
        tmp_path, "fewshot", "--config.fewshot.epochs=(3,)", "--config.train.steps_per_epoch=30"
    )
    state = fewshot.step_dir(tmp_path, 3) / "checkpoints" / "state.json"
    killed_at = kill_at_checkpoint(command, state, env=env, timeout=900)
    assert 1 <= killed_at < 3, "the run was not killed during G=3"
    g2 = fewshot.step_dir(tmp_path, 2) / "supernet.keras"
    g2_sha = _sha(g2)

    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "G=2 already trained" in out.stdout
    assert f"resuming from the checkpoint after epoch {killed_at}" in out.stdout
    assert _sha(g2) == g2_sha
    report = json.loads((fewshot.step_dir(tmp_path, 3) / "report.json").read_text())
    assert report["resumed_from_epoch"] == killed_at
    assert report["steps"] == 3 * 30
    assert registry.read_manifest(tmp_path, "fewshot")["num_copies"] == 3

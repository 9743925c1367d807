"""benchmarks/aps_cpt_sse_ladder.py: every rung spends the same 600 steps, each stage's phase
boundaries are the configs' proportions of its own steps (pinned by hand), and the flags
parse and validate through bin/train; ``--runslow`` runs the whole ladder on the :tiny
configs (chained init_from, SSE from CPT, the init_largest teacher) and ranks it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import aps_cpt_sse_ladder as ladder  # noqa: E402


def _steps(stage):
    return ladder.STAGES[stage][1]


@pytest.mark.parametrize("rung", sorted(ladder.RUNGS))
def test_every_rung_trains_600_steps(rung):
    assert sum(_steps(s) for s in ladder.chain(ladder.RUNGS[rung])) == 600


def test_phase_boundaries_keep_the_configs_proportions():
    # APS: phases of 5, 10, 15, 5, 10, 25 of 70 epochs -> ends at 5/70, 15/70, 30/70, 35/70,
    # 45/70 of the steps. 324 steps: 23.1, 69.4, 138.9, 162, 208.3 -> 23, 69, 139, 162, 208.
    assert ladder.budget_overrides(*ladder.STAGES["aps324"][:2])[-1] == (
        "--config.train.phases.boundaries=(23, 69, 139, 162, 208)")
    # 600 steps: 42.9, 128.6, 257.1, 300, 385.7.
    assert ladder.budget_overrides(*ladder.STAGES["aps600"][:2])[-1] == (
        "--config.train.phases.boundaries=(43, 129, 257, 300, 386)")
    # SSE34: buckets of 6, 9, 6, 9 epochs -> 0.2, 0.5, 0.7 of 138 steps: 27.6, 69, 96.6.
    assert ladder.budget_overrides(*ladder.STAGES["sse34"][:2])[-1] == (
        "--config.train.phases.boundaries=(28, 69, 97)")
    # SSE4: buckets of 6 and 9 epochs -> 0.4 of 138: 55.2.
    assert ladder.budget_overrides(*ladder.STAGES["sse4"][:2])[-1] == (
        "--config.train.phases.boundaries=(55,)")
    assert ladder.budget_overrides(*ladder.STAGES["cpt276"][:2]) == [
        "--config.train.epochs=3", "--config.train.steps_per_epoch=92"]


@pytest.mark.parametrize("stage", ["aps324", "sse4"])
def test_the_flags_parse_and_validate(stage, tmp_path):
    config_file, _, extra, _ = ladder.STAGES[stage]
    out = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "train"), "--stage=describe",
         f"--config={ROOT / 'configs' / config_file}", f"--workdir={tmp_path}",
         *extra, *ladder.budget_overrides(*ladder.STAGES[stage][:2])],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    config = json.loads((tmp_path / "describe" / "config.json").read_text())
    flag = ladder.budget_overrides(*ladder.STAGES[stage][:2])[-1]
    assert str(tuple(config["train"]["phases"]["boundaries"])) == flag.split("=", 1)[1]
    assert config["train"]["steps_per_epoch"] * 3 == _steps(stage)


@pytest.mark.slow
def test_the_tiny_ladder_runs_and_ranks_every_rung(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["aps_cpt_sse_ladder.py", "--tiny", f"--out={tmp_path}",
                                      "--bootstrap=0"])
    ladder.main()
    report = json.loads((tmp_path / "report.json").read_text())
    assert list(report["rungs"]) == list(ladder.RUNGS)
    assert report["n"] == 40
    teacher = json.loads((tmp_path / "distill" / "oneshot" / "teacher.json").read_text())
    assert teacher["kind"] == "init_largest"
    assert teacher["source"] == str(
        (tmp_path / "cpt138" / "oneshot" / "supernet.keras").resolve())
    assert (tmp_path / "tau_by_rung.png").stat().st_size > 0

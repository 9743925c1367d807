"""benchmarks/ranking_ablation.py: the table rebuilds from cached runs, its numbers are SciPy's,
and runs of different budgets are refused.

The runs here are written by hand in the layout the script's stages leave (each stage's
``config.json``, ``timing.json``, the monitor's ``history.jsonl`` and the last stage's
``evaluate`` manifest), so the report is checked in seconds without training; the flags of
every scheme's stages are checked by ``bin/train --stage=describe``, and a slow test runs
every scheme's tiny chain end to end.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import arm_report  # noqa: E402
import ranking_ablation as ablation  # noqa: E402

from tfnas import search_space as ss  # noqa: E402
from tfnas.stages import registry  # noqa: E402

GT = arm_report.ground_truth(arm_report.GT)  # v1, seed 0: 40 archs


def _fake_run(out: Path, scheme: str, seed: int, scores: dict, steps_per_epoch: int = 200,
              taus=(0.1, 0.2, 0.3)) -> None:
    """One scored (scheme, seed) run as the script's stages leave it."""
    for i, stage in enumerate(ablation.SCHEMES[scheme]):
        stage_dir = out / scheme / f"seed{seed}" / stage.name
        (stage_dir / stage.stage).mkdir(parents=True)
        config = {"train": {"epochs": 3, "steps_per_epoch": steps_per_epoch, "batch_size": 128}}
        (stage_dir / stage.stage / "config.json").write_text(json.dumps(config))
        (stage_dir / "timing.json").write_text(json.dumps(
            {f"{stage.stage}_seconds": 60.0 * (i + 1), "resumed": False, "peak_rss_mib": 1000.0}))
        monitor = stage_dir / stage.stage / "monitor"
        monitor.mkdir()
        (monitor / "history.jsonl").write_text("".join(
            json.dumps({"epoch": e + 1, "kendall_tau": t, "seconds": 5.0}) + "\n"
            for e, t in enumerate(taus)))
    results = stage_dir / "evaluate" / "results.json"
    results.parent.mkdir()
    noise = {"num_examples": 5000, "binomial_se": 0.006, "score_sd": 0.004, "ratio": 1.5}
    results.write_text(json.dumps({"results": [{"code": c, "acc": a} for c, a in scores.items()],
                                   "noise": noise}))
    registry.write_manifest(str(stage_dir), "evaluate", results=str(results))


def _noisy(scale: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {c: a + rng.normal(scale=scale) for c, a in GT.items()}


def test_report_rebuilds_the_table_from_cached_runs(tmp_path):
    runs = {("sandwich", 0): _noisy(0.01, 1), ("sandwich", 1): _noisy(0.01, 2),
            ("spos", 0): _noisy(0.003, 3), ("spos", 1): _noisy(0.003, 4)}
    for (scheme, seed), scores in runs.items():
        _fake_run(tmp_path, scheme, seed, scores)
    result = ablation.report(tmp_path, list(ablation.SCHEMES), arm_report.GT, n_boot=200)

    codes = list(GT)
    truth = [GT[c] for c in codes]

    def tau(key):
        return stats.kendalltau([runs[key][c] for c in codes], truth).statistic

    spos, sandwich = result["schemes"]["spos"], result["schemes"]["sandwich"]
    assert result["n"] == 40 and set(result["schemes"]) == {"sandwich", "spos"}
    assert spos["tau"]["runs"] == pytest.approx([tau(("spos", 0)), tau(("spos", 1))])
    assert spos["tau"]["value"] == pytest.approx((tau(("spos", 0)) + tau(("spos", 1))) / 2)
    assert spos["seed_spread"] == pytest.approx(abs(tau(("spos", 0)) - tau(("spos", 1))))
    delta = spos["tau"]["value"] - sandwich["tau"]["value"]
    assert spos["vs_sandwich"]["delta"] == pytest.approx(delta)
    assert sandwich["vs_sandwich"] is None
    # v1's ceiling (seed 0 vs seed 1 on 15 archs) normalizes tau.
    ceiling = result["per_run"]["ceiling_tau"]["value"]
    assert spos["tau_normalized"] == pytest.approx(spos["tau"]["value"] / ceiling)
    # One stage of 600 steps of 128 images in 60 s, 3 x 5 s of it the monitor's:
    # 45 s of training, 0.075 s/step, 76,800 / 45 images/s.
    assert spos["seconds_per_step"] == pytest.approx(0.075)
    assert spos["images_per_second"] == pytest.approx(76800 / 45)
    assert spos["images"] == 600 * 128 and spos["peak_rss_mib"] == 1000.0
    assert spos["score_noise"]["binomial_se"] == pytest.approx(0.006)
    for png in result["plots"]:
        assert (tmp_path / png).stat().st_size > 0
    assert "tau_by_step.png" in result["plots"]
    text = (tmp_path / "report.md").read_text()
    assert text.count("| spos |") == 1 and "- spos - sandwich: " in text

    # One scheme more: only its run is new, the others are read again.
    again_scores = _noisy(0.001, 5)
    _fake_run(tmp_path, "rd_flops", 0, again_scores)
    again = ablation.report(tmp_path, list(ablation.SCHEMES), arm_report.GT, n_boot=0)
    assert set(again["schemes"]) == {"sandwich", "spos", "rd_flops"}
    assert again["schemes"]["spos"]["tau"]["value"] == pytest.approx(spos["tau"]["value"])
    # rd_flops has seed 0 only: it is compared with the sandwich's seed 0, not its mean.
    rd = again["schemes"]["rd_flops"]["vs_sandwich"]
    rd_tau = stats.kendalltau([again_scores[c] for c in codes], truth).statistic
    assert rd["seeds"] == [0]
    assert rd["delta"] == pytest.approx(rd_tau - tau(("sandwich", 0)))


def test_the_monitor_curve_counts_steps_across_a_chain(tmp_path):
    _fake_run(tmp_path, "aps_cpt_sse", 0, _noisy(0.01, 1), steps_per_epoch=10)
    steps, taus = ablation.monitor_curve(tmp_path, "aps_cpt_sse", 0)
    # 3 stages of 3 epochs of 10 steps: the monitor ran after steps 10, 20, ..., 90.
    assert steps == list(range(10, 100, 10)) and taus == [0.1, 0.2, 0.3] * 3
    # A stage without a monitor history still counts its steps.
    (tmp_path / "aps_cpt_sse" / "seed0" / "cpt" / "oneshot" / "monitor" / "history.jsonl").unlink()
    steps, _ = ablation.monitor_curve(tmp_path, "aps_cpt_sse", 0)
    assert steps == [10, 20, 30, 70, 80, 90]


def test_runs_of_different_budgets_are_refused(tmp_path):
    _fake_run(tmp_path, "sandwich", 0, _noisy(0.01, 1))
    _fake_run(tmp_path, "spos", 0, _noisy(0.01, 2), steps_per_epoch=100)
    with pytest.raises(SystemExit, match="different numbers of images"):
        ablation.report(tmp_path, list(ablation.SCHEMES), arm_report.GT, n_boot=0)


def test_budget_shares_add_up_to_the_budget():
    for scheme, stages in ablation.SCHEMES.items():
        steps = [round(s.share * 600) for s in stages]
        assert sum(steps) == 600, scheme


@pytest.mark.parametrize("scheme", ["fs_split", "rd_flops", "kshot_sandwich"])
def test_the_stages_flags_parse_and_validate(scheme, tmp_path):
    """``bin/train --stage=describe`` accepts every stage's flags at the 600-step budget and
    resolves the budget the script asks for."""
    for stage in ablation.SCHEMES[scheme]:
        flags = [o.format(pool="", epochs=ablation.EPOCHS) for o in stage.overrides]
        flags += ablation.stage_steps(stage, 600, tiny=False)
        out = subprocess.run(
            [sys.executable, str(ROOT / "bin" / "train"), "--stage=describe",
             f"--config={ROOT / 'configs' / stage.config}", f"--workdir={tmp_path / stage.name}",
             "--config.train.monitor.enabled=True",
             f"--config.train.monitor.ground_truth={ablation.MONITOR_GT}", *flags],
            capture_output=True, text=True, timeout=300,
        )
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        config = json.loads((tmp_path / stage.name / "describe" / "config.json").read_text())
        per_epoch = config["train"]["steps_per_epoch"]
        if stage.stage == "fewshot":
            assert per_epoch * (ablation.FS_GROUPS - 1) == 300
            assert config["fewshot"]["select"] == 0
            assert config["fewshot"]["max_copies"] == ablation.FS_GROUPS
        else:
            assert per_epoch * config["train"]["epochs"] == round(stage.share * 600)


@pytest.mark.slow
def test_every_tiny_scheme_runs_and_ranks(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["ranking_ablation.py", "--tiny", f"--out={tmp_path}",
                                      "--seeds=0", "--bootstrap=0",
                                      f"--ground_truth={arm_report.GT}"])
    ablation.main()
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["schemes"]) == set(ablation.SCHEMES) and report["n"] == 40
    assert (tmp_path / "tau_by_scheme.png").stat().st_size > 0


def test_a_run_is_scored_again_when_its_scores_miss_a_ranked_arch(tmp_path, monkeypatch):
    """A run scored on v1's 40 archs is scored again for a ground truth with more archs;
    one that has every arch is not."""
    calls = []
    monkeypatch.setattr(ablation, "timed_stage", lambda *a, **k: None)
    monkeypatch.setattr(ablation, "bin_train", lambda config, *args: calls.append(args))
    _fake_run(tmp_path, "sandwich", 0, _noisy(0.01, 1))
    v1 = ROOT / "benchmarks" / "fmnist_ranking" / "archs.txt"
    ablation.run_scheme("sandwich", 0, tmp_path, v1, 600, tiny=False)
    assert calls == []
    more = tmp_path / "more.txt"
    extra = ss.get_space("fmnist").sample(np.random.default_rng(123)).code
    assert extra not in GT
    more.write_text(v1.read_text() + extra + "\n")
    ablation.run_scheme("sandwich", 0, tmp_path, more, 600, tiny=False)
    assert len(calls) == 1 and "--stage=evaluate" in calls[0] and f"--codes={more}" in calls[0]


def test_proxies_are_scored_again_when_they_miss_a_ranked_arch(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ablation, "bin_train", lambda config, *args: calls.append(args))
    v1 = ROOT / "benchmarks" / "fmnist_ranking" / "archs.txt"
    ablation.run_proxies(tmp_path, v1, tiny=False)  # nothing scored yet
    assert len(calls) == 1 and "--stage=proxies" in calls[0]
    scores = tmp_path / "proxies" / "scores.json"
    scores.parent.mkdir()
    scores.write_text(json.dumps({"results": [{"code": c, "scores": {}} for c in GT]}))
    registry.write_manifest(str(tmp_path), "proxies", scores=str(scores))
    ablation.run_proxies(tmp_path, v1, tiny=False)
    assert len(calls) == 1  # every v1 arch has its scores
    more = tmp_path / "more.txt"
    more.write_text(v1.read_text()
                    + ss.get_space("fmnist").sample(np.random.default_rng(123)).code + "\n")
    ablation.run_proxies(tmp_path, more, tiny=False)
    assert len(calls) == 2 and f"--codes={more}" in calls[1]

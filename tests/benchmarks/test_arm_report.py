"""benchmarks/arm_report.py through the benchmarks that use it (rdnas_vs_sandwich.py,
kshot_ablation.py), ``--report_only``: each ranks its committed arms' scores from a copy of
their products (no supernet needed); every arm's Kendall tau equals SciPy's on the same scores
and ground truth, and the paired differences are against the benchmark's baseline arm."""

import importlib
import json
import shutil
import sys
from pathlib import Path

import pytest
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import arm_report  # noqa: E402

# benchmark module -> its baseline arm and the report's row name of an arm.
BENCHMARKS = {
    "rdnas_vs_sandwich": ("sandwich", lambda arm: arm if arm == "sandwich" else f"rd {arm}"),
    "kshot_ablation": ("oneshot", lambda arm: arm if arm == "oneshot" else f"kshot {arm}"),
}


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_report_only_ranks_every_committed_arm_against_the_ground_truth(
    name, tmp_path, monkeypatch
):
    bench = importlib.import_module(name)
    baseline, row = BENCHMARKS[name]
    if arm_report.arm_scores(bench.OUT / baseline) is None:
        pytest.skip(f"benchmarks/{name}/ has no scored {baseline} arm committed yet")
    out = tmp_path / "copy"
    shutil.copytree(bench.OUT, out, ignore=shutil.ignore_patterns("*.keras", "checkpoints",
                                                                   "tensorboard"))
    monkeypatch.setattr(bench, "OUT", out)
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--report_only", "--bootstrap=0"])
    bench.main()
    report = json.loads((out / "report.json").read_text())
    gt = arm_report.ground_truth()
    assert report["n"] == 40 and report["pred_name"] == baseline
    assert len(report["arms"]) >= 1
    for arm in report["arms"]:
        results = json.loads((out / arm / "evaluate" / "results.json").read_text())["results"]
        scores = {r["code"]: r["acc"] for r in results}
        codes = sorted(gt)
        tau = stats.kendalltau([scores[c] for c in codes], [gt[c] for c in codes]).statistic
        assert abs(report["rankers"][row(arm)]["kendall_tau"]["value"] - tau) < 1e-12
        if arm != baseline:
            paired = report["paired"][row(arm)]
            assert abs(paired["delta"] - (report["rankers"][baseline]["kendall_tau"]["value"]
                                          - tau)) < 1e-12
    assert report["ceiling_tau"]["n"] == 15
    gt2 = arm_report.ground_truth(arm_report.GT2)
    common = [c for c in gt2 if c in gt]
    ceiling = stats.kendalltau([gt[c] for c in common], [gt2[c] for c in common]).statistic
    assert abs(report["ceiling_tau"]["value"] - ceiling) < 1e-12

"""benchmarks/rdnas_vs_sandwich.py --report_only: ranks the committed arms' scores from a copy
of their products (no supernet needed); every arm's Kendall tau equals SciPy's on the same
scores and ground truth, and the paired differences are against the sandwich arm."""

import json
import shutil
import sys
from pathlib import Path

from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import rdnas_vs_sandwich as bench  # noqa: E402

from tfnas import scores as scores_lib  # noqa: E402


def test_report_only_ranks_every_committed_arm_against_the_ground_truth(tmp_path, monkeypatch):
    out = tmp_path / "copy"
    shutil.copytree(bench.OUT, out, ignore=shutil.ignore_patterns("*.keras", "checkpoints"))
    monkeypatch.setattr(bench, "OUT", out)
    monkeypatch.setattr(sys, "argv", ["rdnas_vs_sandwich.py", "--report_only", "--bootstrap=0"])
    bench.main()
    report = json.loads((out / "report.json").read_text())
    gt = dict(scores_lib.load_scores(bench.GT, "ground_truth"))
    assert report["n"] == 40 and report["pred_name"] == "sandwich"
    for arm in report["arms"]:
        results = json.loads((out / arm / "evaluate" / "results.json").read_text())["results"]
        scores = {r["code"]: r["acc"] for r in results}
        codes = sorted(gt)
        tau = stats.kendalltau([scores[c] for c in codes], [gt[c] for c in codes]).statistic
        name = "sandwich" if arm == "sandwich" else f"rd {arm}"
        assert abs(report["rankers"][name]["kendall_tau"]["value"] - tau) < 1e-12
        if arm != "sandwich":
            paired = report["paired"][name]
            assert abs(paired["delta"] - (report["rankers"]["sandwich"]["kendall_tau"]["value"]
                                          - tau)) < 1e-12
    assert report["ceiling_tau"]["n"] == 15

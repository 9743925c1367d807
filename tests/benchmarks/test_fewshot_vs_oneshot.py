"""benchmarks/fewshot_vs_oneshot.py --report_only: re-ranks the committed arms' scores from a
copy of their products (no supernet needed) and gets the committed report."""

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import fewshot_vs_oneshot  # noqa: E402


def test_report_only_reproduces_the_committed_report(tmp_path, monkeypatch):
    committed = ROOT / "benchmarks" / "fewshot_vs_oneshot"
    expected = json.loads((committed / "report.json").read_text())
    out = tmp_path / "copy"
    shutil.copytree(committed, out)
    (out / "report.json").unlink()
    monkeypatch.setattr(fewshot_vs_oneshot, "OUT", out)
    monkeypatch.setattr(sys, "argv", ["fewshot_vs_oneshot.py", "--report_only"])
    fewshot_vs_oneshot.main()
    got = json.loads((out / "report.json").read_text())
    assert got["n"] == expected["n"] == 40
    assert set(got["rankers"]) == set(expected["rankers"])
    for name, ranker in expected["rankers"].items():
        assert got["rankers"][name]["kendall_tau"]["value"] == ranker["kendall_tau"]["value"]
    assert got["paired"]["fewshot - oneshot"]["delta"] == (
        expected["paired"]["fewshot - oneshot"]["delta"]
    )
    assert [r["G"] for r in got["per_G"]] == ["one-shot", 2, 3, 4, 5, 6, 7]

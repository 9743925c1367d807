"""benchmarks/gt_v2.py report: seed means, reliability and the ceiling that rank reads."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gt_v2  # noqa: E402

from tfnas import codes as codes_lib  # noqa: E402
from tfnas import ground_truth as gt_lib  # noqa: E402
from tfnas import scores  # noqa: E402


def _write_seed(directory, seed, accs, recipe_hash="h"):
    header = {"version": 1, "recipe_hash": recipe_hash, "recipe": {"r": 1}}
    rows = [{"code": c, "acc": a, "cpu_seconds": 10.0, "seconds": 20.0} for c, a in accs.items()]
    path = gt_lib.gt_path(directory, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(x) for x in [header, *rows]) + "\n")


def test_report_averages_seeds_and_records_the_ceiling(tmp_path, monkeypatch):
    monkeypatch.setattr(gt_v2, "OUT", tmp_path)
    codes = [r.code for r in codes_lib.read_codes(gt_v2.archs_file())][:60]
    assert len(codes) == 60
    v1 = codes_lib.read_codes(ROOT / "benchmarks" / "fmnist_ranking" / "archs.txt")
    assert codes[:40] == [r.code for r in v1]
    seed0 = {c: 0.70 + 0.001 * i for i, c in enumerate(codes)}
    seed1 = {c: 0.70 + 0.001 * i + (0.002 if i % 2 else -0.002) for i, c in enumerate(codes)}
    stage_dir = tmp_path / "L12" / "standalone"
    _write_seed(stage_dir, 0, seed0)
    _write_seed(stage_dir, 1, seed1)
    out = gt_v2.report("L12", [0, 1])
    saved = json.loads((tmp_path / "L12" / "ground_truth.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["recipe_hash"] == "h"
    assert saved["machine_time"]["cpu_hours"] == pytest.approx(120 * 10 / 3600)
    mean = {r["code"]: r["acc"] for r in saved["results"]}
    assert mean[codes[3]] == pytest.approx((seed0[codes[3]] + seed1[codes[3]]) / 2)
    assert saved["reliability"] == pytest.approx(gt_lib.reliability([seed0, seed1]))
    # rank divides tau by this ceiling.
    assert scores.load_ceiling(tmp_path / "L12" / "ground_truth.json") == pytest.approx(
        out["reliability"]["expected_ceiling"]
    )


def test_report_refuses_an_incomplete_seed(tmp_path, monkeypatch):
    monkeypatch.setattr(gt_v2, "OUT", tmp_path)
    codes = [r.code for r in codes_lib.read_codes(gt_v2.archs_file())]
    _write_seed(tmp_path / "L12" / "standalone", 0, {c: 0.5 for c in codes})
    _write_seed(tmp_path / "L12" / "standalone", 1, {c: 0.5 for c in codes[:10]})
    with pytest.raises(SystemExit, match="seed 1 of recipe L12 misses 50 of 60"):
        gt_v2.report("L12", [0, 1])


def test_run_without_shard_merges_sharded_seeds_instead_of_training_them(tmp_path, monkeypatch):
    """A seed that sharded processes trained is merged (``--stage=merge`` checks coverage),
    not trained again into the unsharded file; a seed without shards is trained."""
    monkeypatch.setattr(gt_v2, "OUT", tmp_path)
    stage_dir = tmp_path / "L12" / "standalone"
    stage_dir.mkdir(parents=True)
    (stage_dir / "ground_truth.seed0.shard-1-of-2.jsonl").write_text("")
    calls = []
    monkeypatch.setattr(gt_v2.subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    gt_v2.run("L12", [0, 1], None)
    stages = [[a for a in cmd if a.startswith("--stage=")] for cmd in calls]
    seeds = [[a for a in cmd if a.startswith("--config.standalone.seed=")] for cmd in calls]
    assert stages == [["--stage=merge"], ["--stage=standalone"]]
    assert seeds == [["--config.standalone.seed=0"], ["--config.standalone.seed=1"]]
    calls.clear()
    gt_v2.run("L12", [0], "2/2")  # a sharded run trains its shard even when others exist
    assert "--stage=standalone" in calls[0] and "--shard=2/2" in calls[0]


def test_progress_pairs_seeds_across_shard_files(tmp_path, monkeypatch):
    """Seed 0 in two shard files, seed 1 in one: 4 archs have both seeds, and the
    reliability is computed on exactly those."""
    monkeypatch.setattr(gt_v2, "OUT", tmp_path)
    stage_dir = tmp_path / "L12" / "standalone"
    codes = [r.code for r in codes_lib.read_codes(gt_v2.archs_file())]
    header = {"version": 1, "recipe_hash": "h", "recipe": {}}
    s0 = {c: 0.8 + 0.01 * i for i, c in enumerate(codes[:6])}
    s1 = {c: 0.8 + 0.01 * i + (0.003 if i % 2 else 0.0) for i, c in enumerate(codes[:4])}

    def write(name, accs):
        rows = [header] + [{"code": c, "acc": a} for c, a in accs.items()]
        stage_dir.mkdir(parents=True, exist_ok=True)
        (stage_dir / name).write_text("".join(json.dumps(r) + "\n" for r in rows))

    write("ground_truth.seed0.shard-1-of-2.jsonl", dict(list(s0.items())[:3]))
    write("ground_truth.seed0.shard-2-of-2.jsonl", dict(list(s0.items())[3:]))
    write("ground_truth.seed1.shard-1-of-2.jsonl", s1)
    out = gt_v2.progress("L12", [0, 1])
    assert out["done"] == {0: 6, 1: 4} and out["paired"] == 4
    assert out["reliability"] == pytest.approx(
        gt_lib.reliability([{c: s0[c] for c in s1}, s1]))
    assert not (tmp_path / "L12" / "ground_truth.json").exists()

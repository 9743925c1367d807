"""Stage ``rank``, run in-process on a tmp workdir with FLOPs as the "supernet" scores."""

import json

import numpy as np
import pytest

ml_collections = pytest.importorskip("ml_collections")
ss = pytest.importorskip("tfnas.search_space")
registry = pytest.importorskip("tfnas.stages.registry")
rank = pytest.importorskip("tfnas.stages.rank")
config_lib = pytest.importorskip("tfnas.config_lib")
scores = pytest.importorskip("tfnas.scores")


@pytest.fixture(scope="module")
def archs():
    """24 sampled ImageNet archs with a made-up ground truth that roughly follows params."""
    space = ss.get_space("imagenet")
    archs = space.sample_many(24, seed=0)
    rng = np.random.default_rng(0)
    params = np.array([space.params(a) for a in archs], float)
    gt = 70 + 5 * params / params.max() + rng.normal(0, 0.5, len(archs))
    return space, archs, gt.tolist()


def _write_competition(path, archs, accs):
    data = {
        f"arch{i + 1}": {"acc": acc, "arch": a.code} for i, (a, acc) in enumerate(zip(archs, accs))
    }
    path.write_text(json.dumps(data))
    return str(path)


def _write_results(path, codes, accs):
    path.write_text(json.dumps({"results": [{"code": c, "acc": a} for c, a in zip(codes, accs)]}))
    return str(path)


def _config(**rank_fields):
    """A whole config (every stage reads a validated one) with ``rank_fields`` changed."""
    config = config_lib.base_config("rank_test", space="imagenet")
    config.rank.update(rank_fields)
    return config


def _args(tmp_path, **kw):
    return registry.StageArgs(workdir=str(tmp_path / "work"), **kw)


def test_rank_stage_writes_report_and_manifest(tmp_path, archs, capsys):
    space, archs, gt = archs
    flops = [space.flops(a) for a in archs]
    results = _write_results(tmp_path / "results.json", [a.code for a in archs], flops)
    truth = _write_competition(tmp_path / "gt.json", archs, gt)
    config = _config(ks=(3, 0.5), bootstrap=100, seed=1)
    assert rank.run(config, _args(tmp_path, results=results, ground_truth=truth)) == 0

    stage_dir = tmp_path / "work" / "rank"
    report = json.loads((stage_dir / "report.json").read_text())
    assert report["n"] == 24 and report["n_boot"] == 100 and report["seed"] == 1
    assert [k["k"] for k in report["ks"]] == [3, 12]
    assert list(report["rankers"]) == ["supernet", "flops", "params"]
    # The "supernet" scored archs by FLOPs: its row must equal the FLOPs baseline's.
    assert report["rankers"]["supernet"] == report["rankers"]["flops"]
    assert report["files"] == {"results": results, "ground_truth": truth}
    assert (stage_dir / "manifest.json").exists()
    assert "report.json" in (stage_dir / "manifest.json").read_text()
    out = capsys.readouterr().out
    assert "Ranking of 24 archs (imagenet space)" in out and "params" in out


def test_rank_stage_with_the_default_rank_section(tmp_path, archs):
    space, archs, gt = archs
    params = [space.params(a) for a in archs]
    results = _write_competition(tmp_path / "results.json", archs, params)
    truth = _write_competition(tmp_path / "gt.json", archs, gt)
    rank.run(_config(), _args(tmp_path, results=results, ground_truth=truth))
    report = json.loads((tmp_path / "work" / "rank" / "report.json").read_text())
    assert report["n_boot"] == 1000 and report["seed"] == 0
    assert [k["label"] for k in report["ks"]] == ["10%", "5", "25%", "10", "50%"]


def test_rank_stage_can_drop_scored_codes_without_ground_truth(tmp_path, archs):
    space, archs, gt = archs
    extra = space.sample_many(30, seed=1)
    scored = archs + [a for a in extra if a.code not in {b.code for b in archs}]
    results = _write_results(
        tmp_path / "results.json", [a.code for a in scored], [space.flops(a) for a in scored]
    )
    truth = _write_competition(tmp_path / "gt.json", archs, gt)
    args = _args(tmp_path, results=results, ground_truth=truth)
    with pytest.raises(ValueError, match="supernet codes have no ground truth"):
        rank.run(_config(bootstrap=0), args)
    rank.run(_config(bootstrap=0, drop_unmatched_pred=True), args)
    report = json.loads((tmp_path / "work" / "rank" / "report.json").read_text())
    assert report["inputs"]["pred_dropped"] == len(scored) - len(archs)


@pytest.mark.parametrize("missing", ["results", "ground_truth"])
def test_rank_stage_names_the_missing_flag(tmp_path, missing):
    kw = {"results": "r.json", "ground_truth": "g.json"}
    del kw[missing]
    with pytest.raises(ValueError, match=f"the rank stage needs --{missing}=FILE"):
        rank.run(_config(), _args(tmp_path, **kw))


def test_rank_stage_takes_results_from_the_evaluate_manifest(tmp_path, archs):
    space, archs, gt = archs
    codes = [a.code for a in archs]
    results = _write_results(tmp_path / "results.json", codes, [space.flops(a) for a in archs])
    registry.write_manifest(tmp_path / "work", "evaluate", results=results)
    truth = _write_competition(tmp_path / "gt.json", archs, gt)
    rank.run(_config(bootstrap=0), _args(tmp_path, ground_truth=truth))
    report = json.loads((tmp_path / "work" / "rank" / "report.json").read_text())
    assert report["files"]["results"] == results


def test_load_scores_errors(tmp_path):
    with pytest.raises(ValueError, match=r"--results=.*nope.json: no such file"):
        scores.load_scores(tmp_path / "nope.json", "results")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"results": [{"code": "1", "score": 0.5}]}))
    with pytest.raises(ValueError, match=r"entry results\[0\] has no 'code' and 'acc' .*score"):
        scores.load_scores(bad, "results")
    bad.write_text(json.dumps({"arch1": {"acc": 1.0}}))
    with pytest.raises(ValueError, match="--ground_truth: .*entry 'arch1' is"):
        scores.load_scores(bad, "ground_truth")
    bad.write_text(json.dumps({"arch1": {"acc": None, "arch": "1"}, "arch2": {"arch": "2"}}))
    with pytest.raises(ValueError, match=r"2 of 2 entries have no acc \(e.g. arch1, arch2\)"):
        scores.load_scores(bad, "ground_truth")
    bad.write_text("1252233313000000223212122253130000000000006515000000\n")
    with pytest.raises(ValueError, match="1 of 1 entries have no acc"):
        scores.load_scores(bad, "results")
    bad.write_text("{}")
    with pytest.raises(ValueError, match="holds no archs; expected competition JSON"):
        scores.load_scores(bad, "ground_truth")

"""Stage ``proxies`` end to end, in process, on ``configs/fmnist.py:tiny``; and its proxies as
rankers of the ``rank`` stage.

`tfnas.proxies.score_arch` is wrapped by a recorder that logs every code the stage scores,
so resume, deduplication and the shard merge are checked by what was (not) scored again.
"""

import json
import types

import numpy as np
import pytest

from configs import fmnist
from tfnas import proxies
from tfnas import search_space as ss
from tfnas.stages import proxies as proxies_stage
from tfnas.stages import rank as rank_stage
from tfnas.stages import registry

NAMES = ("flops", "params", "grad_norm", "naswot")


def _config(**fields):
    config = fmnist.get_config("tiny")
    config.proxies.names = NAMES
    config.proxies.batch_size = 8
    config.proxies.update(fields)
    return config


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("proxies_stage")
    space = ss.get_space("fmnist")
    unique = [a.code for a in space.sample_many(4, seed=21)]
    codes = root / "codes.txt"
    # unique[1] listed twice: scored once.
    codes.write_text("\n".join(["# four archs", *unique[:3], unique[1], unique[3]]) + "\n")
    scored = []
    real = proxies.score_arch

    def recording(space, arch, *args, **kwargs):
        scored.append(arch)
        return real(space, arch, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(proxies_stage.proxies_lib, "score_arch", recording)
        yield types.SimpleNamespace(
            root=root, space=space, unique=unique, codes=str(codes), scored=scored
        )


def _run(setup, workdir, config=None, **kwargs):
    setup.scored.clear()
    args = registry.StageArgs(workdir=str(workdir), codes=setup.codes, **kwargs)
    return registry.run_stage("proxies", config or _config(), args)


def _scores(workdir):
    return json.loads((workdir / "proxies" / "scores.json").read_text())


@pytest.fixture(scope="module")
def first(setup):
    """One unsharded run over the codes."""
    workdir = setup.root / "work"
    assert _run(setup, workdir) == 0
    return workdir, list(setup.scored)


def test_scores_every_unique_code_once_and_writes_the_products(setup, first, capsys):
    workdir, scored = first
    assert scored == setup.unique
    data = _scores(workdir)
    assert data["proxies"] == list(NAMES)
    assert [r["code"] for r in data["results"]] == setup.unique
    for row in data["results"]:
        arch = setup.space.parse(row["code"])
        assert set(row["scores"]) == set(NAMES)
        assert row["scores"]["flops"] == setup.space.flops(arch)
        assert row["scores"]["params"] == setup.space.params(arch)
        assert row["scores"]["grad_norm"] > 0
    speed = data["throughput"]
    assert speed["archs_timed"] == 4 and speed["archs_per_minute"] > 0
    assert speed["archs_per_minute"] == pytest.approx(60.0 / speed["seconds_per_arch"]["total"])
    assert set(speed["seconds_per_arch"]) == {"build", *NAMES, "total"}
    manifest = json.loads((workdir / "proxies" / "manifest.json").read_text())["products"]
    assert manifest["scores"] == "./proxies/scores.json"
    assert manifest["archs_per_minute"] == speed["archs_per_minute"]
    assert (workdir / "proxies" / "config.json").exists()
    lines = (workdir / "proxies" / "scores.jsonl").read_text().splitlines()
    assert [json.loads(line)["code"] for line in lines] == setup.unique


def test_a_second_run_scores_nothing_and_rewrites_nothing(setup, first):
    workdir, _ = first
    before = {p.name: p.stat().st_mtime_ns for p in (workdir / "proxies").iterdir()}
    _run(setup, workdir)
    assert setup.scored == []
    assert {p.name: p.stat().st_mtime_ns for p in (workdir / "proxies").iterdir()} == before


def test_a_killed_run_resumes_with_the_missing_archs(setup, first, tmp_path):
    workdir, _ = first
    resumed = tmp_path / "resumed"
    (resumed / "proxies").mkdir(parents=True)
    lines = (workdir / "proxies" / "scores.jsonl").read_text().splitlines()
    # Two archs done, the third torn mid-line by the kill.
    (resumed / "proxies" / "scores.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:30])
    _run(setup, resumed)
    assert setup.scored == setup.unique[2:]
    # The same scores as the uninterrupted run: each arch is seeded on its own.
    assert _scores(resumed)["results"] == _scores(workdir)["results"]


def test_shards_then_an_unsharded_run_merge_without_scoring_again(setup, first, tmp_path):
    workdir, _ = first
    sharded = tmp_path / "sharded"
    _run(setup, sharded, shard="2/2")
    assert setup.scored == setup.unique[1::2]
    _run(setup, sharded, shard="1/2")
    assert setup.scored == setup.unique[0::2]
    assert not (sharded / "proxies" / "scores.json").exists()
    _run(setup, sharded)
    assert setup.scored == []
    assert _scores(sharded)["results"] == _scores(workdir)["results"]


def test_rows_of_another_recipe_are_refused_unless_overwrite(setup, first, tmp_path):
    workdir, _ = first
    other = tmp_path / "other"
    (other / "proxies").mkdir(parents=True)
    jsonl = (workdir / "proxies" / "scores.jsonl").read_text()
    (other / "proxies" / "scores.jsonl").write_text(jsonl)
    config = _config(names=("flops", "params"))
    with pytest.raises(ValueError, match="proxy scores of another recipe .*--overwrite"):
        _run(setup, other, config)
    _run(setup, other, config, overwrite=True)
    assert setup.scored == setup.unique
    assert list(_scores(other)["results"][0]["scores"]) == ["flops", "params"]
    assert list((other / "proxies").glob("scores.jsonl.replaced-*"))


def test_bad_codes_fail_before_anything_is_written(setup, tmp_path):
    workdir = tmp_path / "bad"
    args = registry.StageArgs(workdir=str(workdir), codes="1" * 52)
    with pytest.raises(ValueError, match="arch1: Invalid arch code"):
        registry.run_stage("proxies", _config(), args)
    with pytest.raises(ValueError, match="pass --codes=FILE"):
        registry.run_stage("proxies", _config(), registry.StageArgs(workdir=str(workdir)))
    assert not workdir.exists()


# ---------------------------------------------------------------------- rank with proxies


def _ground_truth(path, codes, accs):
    data = {f"arch{i}": {"acc": a, "arch": c} for i, (c, a) in enumerate(zip(codes, accs), 1)}
    path.write_text(json.dumps(data))
    return str(path)


def test_rank_reports_every_proxy_next_to_flops_and_params(setup, first, tmp_path, capsys):
    workdir, _ = first
    accs = [0.8, 0.7, 0.75, 0.9]
    truth = _ground_truth(tmp_path / "gt.json", setup.unique, accs)
    config = _config()
    config.rank.bootstrap = 50
    config.rank.ks = (2,)
    # No supernet scores: FLOPs, params and the proxies alone.
    rank_stage.run(config, registry.StageArgs(workdir=str(workdir), ground_truth=truth))
    report = json.loads((workdir / "rank" / "report.json").read_text())
    assert list(report["rankers"]) == ["flops", "params", "grad_norm", "naswot"]
    assert report["proxies"]["rankers"] == ["grad_norm", "naswot"]
    assert report["proxies"]["skipped"] == {}
    grad = {r["code"]: r["scores"]["grad_norm"] for r in _scores(workdir)["results"]}
    # Ties in neither: Kendall tau-b is (concordant - discordant) / 6 pairs.
    g = [grad[c] for c in setup.unique]
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    s = sum(np.sign(g[i] - g[j]) * np.sign(accs[i] - accs[j]) for i, j in pairs)
    assert report["rankers"]["grad_norm"]["kendall_tau"]["value"] == pytest.approx(s / 6)

    # With supernet scores: each proxy also gets its paired difference to the supernet.
    results = tmp_path / "results.json"
    results.write_text(
        json.dumps({"results": [{"code": c, "acc": a + 0.01} for c, a in zip(setup.unique, accs)]})
    )
    args = registry.StageArgs(workdir=str(workdir), results=str(results), ground_truth=truth)
    rank_stage.run(config, args)
    report = json.loads((workdir / "rank" / "report.json").read_text())
    assert list(report["paired"]) == ["flops", "params", "grad_norm", "naswot"]
    assert "supernet - naswot" in capsys.readouterr().out


def test_rank_leaves_out_proxies_that_miss_ground_truth_archs(setup, first, tmp_path, capsys):
    workdir, _ = first
    extra = setup.space.sample_many(1, seed=99)[0].code
    truth = _ground_truth(tmp_path / "gt.json", [*setup.unique, extra], [0.8, 0.7, 0.75, 0.9, 0.6])
    config = _config()
    config.rank.bootstrap = 0
    rank_stage.run(config, registry.StageArgs(workdir=str(workdir), ground_truth=truth))
    report = json.loads((workdir / "rank" / "report.json").read_text())
    assert list(report["rankers"]) == ["flops", "params"]
    assert "no score for 1 of the 5 ground-truth archs" in report["proxies"]["skipped"]["naswot"]
    assert "rank: proxy grad_norm left out: no score for 1" in capsys.readouterr().out

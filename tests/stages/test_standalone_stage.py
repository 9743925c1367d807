"""Stage ``standalone`` (ground truth), in-process on the tiny fmnist config."""

import json

import pytest

from configs import fmnist
from tfnas import ground_truth as gt_lib
from tfnas import search_space as ss
from tfnas import standalone as standalone_lib
from tfnas.stages import registry
from tfnas.stages import standalone

SPACE = ss.get_space("fmnist")
CODES = [SPACE.smallest().code, "1252233313000000223212122253130000000000006515000000"]


def _run(tmp_path, config=None, codes=None, **kwargs):
    config = config or fmnist.get_config("tiny")
    args = registry.StageArgs(workdir=str(tmp_path), codes=",".join(codes or CODES), **kwargs)
    return standalone.run(config, args)


def _fake_training(monkeypatch):
    """Accuracy = the arch's FLOPs rank proxy: deterministic and fast."""
    def train(config, arch, seed):
        return SPACE.flops(arch) / 1e9 + seed, 1.0, 0.5

    monkeypatch.setattr(standalone_lib, "train_standalone", train)


def test_writes_header_rows_and_results_then_resumes(tmp_path, monkeypatch):
    assert _run(tmp_path, codes=[*CODES, CODES[0]]) == 0  # a repeated code is trained once
    path = gt_lib.gt_path(tmp_path / "standalone", 0)
    header, *rows = [json.loads(line) for line in path.read_text().splitlines()]
    config = fmnist.get_config("tiny")
    assert header["version"] == gt_lib.FORMAT_VERSION
    assert header["recipe"] == standalone_lib.recipe(config)
    assert header["recipe_hash"] == gt_lib.recipe_hash(standalone_lib.recipe(config))
    assert [r["code"] for r in rows] == CODES
    for row in rows:
        assert 0.0 <= row["acc"] <= 1.0 and row["seconds"] > 0 and row["cpu_seconds"] > 0
        assert row["seed"] == 0 and row["recipe_hash"] == header["recipe_hash"]
        assert row["train_subset"] == config.standalone.train_subset
        assert row["split"] == config.standalone.split
    twin = json.loads(path.with_suffix(".json").read_text())
    assert [r["code"] for r in twin["results"]] == CODES and twin["recipe"] == header["recipe"]

    # The same command again trains nothing: every code is done.
    def fail(*a, **k):
        raise AssertionError("a finished arch was trained again")

    monkeypatch.setattr(standalone_lib, "train_standalone", fail)
    assert _run(tmp_path) == 0
    assert len(path.read_text().splitlines()) == 1 + len(CODES)


def test_another_recipe_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(
        standalone_lib, "train_standalone", lambda config, arch, seed: (0.5, 1.0, 0.5)
    )
    assert _run(tmp_path, codes=CODES[:1]) == 0
    config = fmnist.get_config("tiny")
    config.standalone.zero_init_residual = True
    with pytest.raises(ValueError, match="ground truths of different recipes must not mix"):
        _run(tmp_path, config=config)
    # Another seed is another file, so it is not a different recipe.
    config = fmnist.get_config("tiny")
    config.standalone.seed = 1
    assert _run(tmp_path, config=config, codes=CODES[:1]) == 0
    assert gt_lib.gt_path(tmp_path / "standalone", 1).exists()


def test_shards_write_their_own_files_and_merge_checks_coverage(tmp_path, monkeypatch):
    _fake_training(monkeypatch)
    codes = [a.code for a in SPACE.sample_many(5, seed=1)]
    assert _run(tmp_path, codes=codes, shard="1/2") == 0
    stage_dir = tmp_path / "standalone"
    first = gt_lib.gt_path(stage_dir, 0, (1, 2))
    assert [c for c in gt_lib.read_ground_truth(first)[1]] == codes[0::2]
    assert not gt_lib.gt_path(stage_dir, 0).exists()  # no shard writes the shared file
    args = registry.StageArgs(workdir=str(tmp_path), codes=",".join(codes))
    with pytest.raises(ValueError, match=r"shards \[2\] absent, 2 codes missing"):
        registry.run_stage("merge", fmnist.get_config("tiny"), args)
    assert _run(tmp_path, codes=codes, shard="2/2") == 0
    assert registry.run_stage("merge", fmnist.get_config("tiny"), args) == 0
    header, rows = gt_lib.read_ground_truth(gt_lib.gt_path(stage_dir, 0))
    assert list(rows) == codes
    assert header["recipe_hash"] == gt_lib.recipe_hash(
        standalone_lib.recipe(fmnist.get_config("tiny"))
    )
    results = json.loads(gt_lib.gt_path(stage_dir, 0).with_suffix(".json").read_text())
    assert [r["code"] for r in results["results"]] == codes
    manifest = registry.read_manifest(tmp_path, "standalone")
    assert manifest["ground_truth"] == str(stage_dir / "ground_truth.seed0.json")


def test_overwrite_moves_the_ground_truth_aside(tmp_path, monkeypatch):
    _fake_training(monkeypatch)
    assert _run(tmp_path, codes=CODES[:1]) == 0
    path = gt_lib.gt_path(tmp_path / "standalone", 0)
    before = path.read_text()
    changed = fmnist.get_config("tiny")
    changed.standalone.epochs = 2
    assert _run(tmp_path, config=changed, codes=CODES[:1], overwrite=True) == 0
    aside = list(path.parent.glob(path.name + ".replaced-*"))
    assert len(aside) == 1 and aside[0].read_text() == before
    assert gt_lib.read_ground_truth(path)[0]["recipe"]["standalone"]["epochs"] == 2


def test_bad_codes_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="No archs to train"):
        standalone.run(fmnist.get_config("tiny"), registry.StageArgs(workdir=str(tmp_path)))
    with pytest.raises(ValueError, match="--codes: arch1"):
        _run(tmp_path, codes=["123"])
    assert list(tmp_path.iterdir()) == []

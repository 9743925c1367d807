"""Stage ``standalone`` (ground truth), in-process on the tiny fmnist config."""

import json

import pytest

from configs import fmnist
from tfnas import search_space as ss
from tfnas.stages import registry
from tfnas.stages import standalone

SPACE = ss.get_space("fmnist")
CODES = [SPACE.smallest().code, "1252233313000000223212122253130000000000006515000000"]


def _run(tmp_path, config=None, codes=None):
    config = config or fmnist.get_config("tiny")
    args = registry.StageArgs(workdir=str(tmp_path), codes=",".join(codes or CODES))
    return standalone.run(config, args)


def test_writes_header_rows_and_results_then_resumes(tmp_path, monkeypatch):
    assert _run(tmp_path, codes=[*CODES, CODES[0]]) == 0  # a repeated code is trained once
    path = standalone.gt_path(tmp_path, 0)
    header, *rows = [json.loads(line) for line in path.read_text().splitlines()]
    config = fmnist.get_config("tiny")
    assert header["version"] == standalone.FORMAT_VERSION
    assert header["recipe"] == standalone.recipe(config)
    assert header["recipe_hash"] == standalone.recipe_hash(standalone.recipe(config))
    assert [r["code"] for r in rows] == CODES
    for row in rows:
        assert 0.0 <= row["acc"] <= 1.0 and row["seconds"] > 0
        assert row["seed"] == 0 and row["recipe_hash"] == header["recipe_hash"]
        assert row["train_subset"] == config.standalone.train_subset
        assert row["split"] == config.standalone.split
    twin = json.loads(path.with_suffix(".json").read_text())
    assert [r["code"] for r in twin["results"]] == CODES and twin["recipe"] == header["recipe"]

    # The same command again trains nothing: every code is done.
    def fail(*a, **k):
        raise AssertionError("a finished arch was trained again")

    monkeypatch.setattr(standalone, "train_standalone", fail)
    assert _run(tmp_path) == 0
    assert len(path.read_text().splitlines()) == 1 + len(CODES)


def test_another_recipe_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(standalone, "train_standalone", lambda config, arch, seed: (0.5, 1.0))
    assert _run(tmp_path, codes=CODES[:1]) == 0
    config = fmnist.get_config("tiny")
    config.standalone.zero_init_residual = True
    with pytest.raises(ValueError, match="ground truths of different recipes must not mix"):
        _run(tmp_path, config=config)
    # Another seed is another file, so it is not a different recipe.
    config = fmnist.get_config("tiny")
    config.standalone.seed = 1
    assert _run(tmp_path, config=config, codes=CODES[:1]) == 0
    assert standalone.gt_path(tmp_path, 1).exists()


@pytest.mark.parametrize("zero_init", [False, True])
def test_recipe_builds_the_plain_model_it_names(monkeypatch, zero_init):
    seen = {}
    build = standalone.static.build_static_model

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return build(*args, **kwargs)

    monkeypatch.setattr(standalone.static, "build_static_model", spy)
    config = fmnist.get_config("tiny")
    config.standalone.zero_init_residual = zero_init
    acc, seconds = standalone.train_standalone(config, SPACE.smallest(), seed=0)
    assert seen["zero_init_residual"] is zero_init and 0.0 <= acc <= 1.0 and seconds > 0

"""tfnas.stages.registry: registration, run_stage (validation, resolved config), manifests."""

import dataclasses
import json

import pytest

from configs import fmnist
from tfnas.stages import registry


@pytest.fixture
def scratch_stages(monkeypatch):
    """STAGES as a copy, so that stages registered by a test disappear after it."""
    monkeypatch.setattr(registry, "STAGES", dict(registry.STAGES))
    return registry.STAGES


def test_stages_register_on_import_in_run_order():
    names = registry.stage_names()
    assert names[0] == "describe"
    assert {"describe", "oneshot", "evaluate", "rank"} <= set(names)
    assert names.index("oneshot") < names.index("evaluate") < names.index("rank")
    for stage in registry.STAGES.values():
        assert stage.help and callable(stage.run)


def test_stage_args_defaults_and_frozen():
    args = registry.StageArgs(workdir="/tmp/w")
    assert (args.codes, args.results, args.ground_truth, args.shard) == (None,) * 4
    assert args.overwrite is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        args.workdir = "/elsewhere"


def test_run_stage_validates_and_runs_and_the_stage_writes_its_config(tmp_path, scratch_stages):
    calls = []

    @registry.register("probe", help="test stage")
    def probe(config, args):
        calls.append((config.name, args.codes))
        # run_stage writes nothing: a stage writes config.json when it produces something.
        assert not (tmp_path / "probe").exists()
        registry.write_config(config, tmp_path / "probe")

    config = fmnist.get_config("tiny")
    config.train.batch_size = 24  # as a --config.train.batch_size=24 override would
    args = registry.StageArgs(workdir=str(tmp_path), codes="X")
    assert registry.run_stage("probe", config, args) == 0
    assert calls == [("fmnist_tiny", "X")]
    written = json.loads((tmp_path / "probe" / "config.json").read_text())
    assert written["train"]["batch_size"] == 24
    assert written["space"] == "fmnist"
    text = (tmp_path / "probe" / "config.json").read_text()
    assert text.startswith('{\n  "data"')  # sorted and indented


def test_run_stage_returns_the_stage_status(tmp_path, scratch_stages):
    registry.register("fails", help="returns 3")(lambda config, args: 3)
    config = fmnist.get_config("tiny")
    assert registry.run_stage("fails", config, registry.StageArgs(str(tmp_path))) == 3


def test_invalid_config_stops_before_the_stage(tmp_path, scratch_stages):
    calls = []
    registry.register("never", help="must not run")(lambda config, args: calls.append(1))
    config = fmnist.get_config("tiny")
    config.train.batch_size = 0
    with pytest.raises(ValueError, match=r"config\.train\.batch_size=0"):
        registry.run_stage("never", config, registry.StageArgs(str(tmp_path)))
    assert not calls
    assert not (tmp_path / "never").exists()


def test_unknown_stage_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError) as info:
        registry.run_stage("trian", fmnist.get_config("tiny"), registry.StageArgs(str(tmp_path)))
    message = str(info.value)
    assert "unknown stage 'trian'" in message
    for name in registry.stage_names():
        assert name in message


def test_registering_another_function_under_a_taken_name_fails(scratch_stages):
    registry.register("twice", help="first")(lambda config, args: 0)
    with pytest.raises(ValueError, match="registered twice"):

        @registry.register("twice", help="second")
        def other(config, args):
            return 0


def test_manifest_round_trip(tmp_path):
    assert registry.read_manifest(tmp_path, "oneshot") == {}  # not run: empty
    (tmp_path / "oneshot").mkdir()
    (tmp_path / "oneshot" / "s.keras").write_text("")
    path = registry.write_manifest(
        tmp_path, "oneshot", supernet=tmp_path / "oneshot" / "s.keras", epochs=3
    )
    assert path == tmp_path / "oneshot" / "manifest.json"
    products = registry.read_manifest(tmp_path, "oneshot")
    assert products == {"supernet": str(tmp_path / "oneshot" / "s.keras"), "epochs": 3}
    manifest = json.loads(path.read_text())
    assert manifest["stage"] == "oneshot" and "written" in manifest
    # A new manifest replaces the previous one.
    registry.write_manifest(tmp_path, "oneshot", supernet="other.keras")
    assert registry.read_manifest(tmp_path, "oneshot") == {"supernet": "other.keras"}


def test_broken_manifest_is_an_error(tmp_path):
    (tmp_path / "rank").mkdir()
    (tmp_path / "rank" / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not a stage manifest.*--stage=rank"):
        registry.read_manifest(tmp_path, "rank")


def test_a_stage_that_fails_on_its_inputs_leaves_the_workdir_as_it_was(tmp_path, scratch_stages):
    @registry.register("picky", help="checks its input first")
    def picky(config, args):
        raise ValueError("no input")

    with pytest.raises(ValueError, match="no input"):
        registry.run_stage("picky", fmnist.get_config("tiny"), registry.StageArgs(str(tmp_path)))
    assert list(tmp_path.iterdir()) == []


def test_move_aside_renames_and_never_deletes(tmp_path):
    stage = tmp_path / "oneshot"
    (stage / "checkpoints").mkdir(parents=True)
    (stage / "checkpoints" / "state.json").write_text("{}")
    moved = registry.move_aside(stage)
    assert not stage.exists()
    assert moved.name.startswith("oneshot.replaced-")
    assert (moved / "checkpoints" / "state.json").read_text() == "{}"
    stage.mkdir()
    again = registry.move_aside(stage)
    assert again != moved and again.exists() and moved.exists()
    assert registry.move_aside(tmp_path / "missing") is None


def test_manifest_paths_are_relative_to_the_workdir_and_survive_a_move(tmp_path):
    workdir = tmp_path / "run"
    (workdir / "evaluate").mkdir(parents=True)
    (workdir / "evaluate" / "results.json").write_text("{}")
    outside = tmp_path / "elsewhere.json"
    registry.write_manifest(
        workdir, "evaluate", results=workdir / "evaluate" / "results.json", other=str(outside),
        count=3,
    )
    raw = json.loads((workdir / "evaluate" / registry.MANIFEST_FILE).read_text())["products"]
    assert raw == {"results": "./evaluate/results.json", "other": str(outside), "count": 3}
    moved = tmp_path / "copy"
    (workdir).rename(moved)
    products = registry.read_manifest(moved, "evaluate")
    assert products["results"] == str(moved / "evaluate" / "results.json")
    assert products["other"] == str(outside) and products["count"] == 3

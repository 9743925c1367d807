"""Stage ``export`` in-process on the tiny fmnist config (no training, no subprocess)."""

import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs import fmnist
from tfnas import export as export_lib
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas.stages import export as export_stage
from tfnas.stages import registry

SPACE = ss.get_space("fmnist")
EXAMPLE = "1252233313000000223212122253130000000000006515000000"  # SEARCH_SPACE.md
SMALLEST = SPACE.smallest().code


def _config(root, **export):
    """The tiny config exporting into ``root``; a fresh supernet unless a test says otherwise
    (these tests check the export itself, not the weights)."""
    config = fmnist.get_config("tiny")
    config.export.root = str(root)
    config.export.allow_untrained = True
    for key, value in export.items():
        config.export[key] = value
    return config


def _variable(loaded, name):
    (var,) = [v for v in loaded.signatures["serving_default"].variables if v.name == name]
    return var.numpy()


def test_exports_inline_codes_of_a_fresh_supernet_with_recalibrated_bn(
    tmp_path, capsys, monkeypatch
):
    # Keep the stage's supernet and recalibrator, to check the exports against them.
    used = {}
    make_recalibrator = export_stage._recalibrator

    def recalibrator(config, supernet):
        used["supernet"] = supernet
        used["recalibrator"] = make_recalibrator(config, supernet)
        return used["recalibrator"]

    monkeypatch.setattr(export_stage, "_recalibrator", recalibrator)
    config = _config(tmp_path / "saved", run="demo")
    workdir = tmp_path / "wd"
    args = registry.StageArgs(workdir=str(workdir), codes=f"{SMALLEST}, {EXAMPLE},{SMALLEST}")
    assert registry.run_stage("export", config, args) == 0
    out = capsys.readouterr().out
    assert "FRESHLY INITIALIZED" in out and "--config.export.allow_untrained" in out

    run_dir = tmp_path / "saved" / "demo"
    assert sorted(p.name for p in run_dir.iterdir()) == sorted([SMALLEST, EXAMPLE])
    manifest = registry.read_manifest(workdir, "export")
    assert manifest["root"] == str(run_dir)
    assert [e["code"] for e in manifest["exports"]] == [SMALLEST, EXAMPLE]
    assert [e["key"] for e in manifest["exports"]] == ["arch1", "arch2"]
    assert (workdir / "export" / "config.json").is_file()

    meta = export_lib.read_metadata(run_dir / EXAMPLE)
    assert meta["code"] == EXAMPLE and meta["key"] == "arch2"
    assert meta["source"]["checkpoint"] is None
    assert meta["source"]["description"] == "freshly initialized (seed 0), untrained"
    assert meta["bn_statistics"]["recalibrated"] is True
    assert meta["preprocessing"]["dataset"] == "synthetic" and meta["metrics"] == {}

    # Each export carries its own arch's recalibrated BN statistics (not the initial 0 / 1,
    # nor those of the arch recalibrated after it): the supernet's logits right after
    # recalibrating that arch. EXAMPLE was recalibrated last; SMALLEST is recalibrated again.
    supernet = used["supernet"]
    images = np.random.default_rng(0).normal(size=(4, 28, 28, 1)).astype(np.float32)
    for code in (EXAMPLE, SMALLEST):
        if code == SMALLEST:
            used["recalibrator"].recalibrate(code)
        loaded = tf.saved_model.load(str(run_dir / code))
        assert np.abs(_variable(loaded, "stem_bn/moving_mean:0")).max() > 0
        logits = loaded.signatures["serving_default"](images=tf.constant(images))["logits"]
        expected = supernet(images, arch=SPACE.parse(code).digits(), training=False).numpy()
        scale = np.abs(expected).max()  # graph optimisation: round-off (see test_export.py)
        np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-5, atol=1e-5 * scale)


def test_existing_exports_need_overwrite(tmp_path):
    config = _config(tmp_path / "saved", recalibrate=False)
    target = tmp_path / "saved" / config.name / SMALLEST
    target.mkdir(parents=True)
    (target / "marker").write_text("keep")
    args = registry.StageArgs(workdir=str(tmp_path / "wd"), codes=SMALLEST)
    message = f"export directory {target} already exists; pass --overwrite"
    with pytest.raises(ValueError, match=re.escape(message)):
        export_stage.run(config, args)
    assert (target / "marker").read_text() == "keep"

    overwrite = registry.StageArgs(workdir=str(tmp_path / "wd"), codes=SMALLEST, overwrite=True)
    assert export_stage.run(config, overwrite) == 0
    assert not (target / "marker").exists() and (target / "saved_model.pb").is_file()
    assert export_lib.read_metadata(target)["bn_statistics"] == {"recalibrated": False}


def test_top_k_of_the_evaluate_results_with_their_accuracy(tmp_path):
    workdir = tmp_path / "wd"
    space_codes = [SMALLEST, EXAMPLE, SPACE.sample_many(1, seed=5)[0].code]
    accs = [0.30, 0.90, 0.60]
    results = workdir / "evaluate" / "results.json"
    results.parent.mkdir(parents=True)
    rows = [{"code": c, "acc": a, "flops": 0, "params": 0} for c, a in zip(space_codes, accs)]
    results.write_text(json.dumps({"supernet": "", "results": rows}))
    registry.write_manifest(workdir, "evaluate", results=str(results))

    config = _config(tmp_path / "saved", top_k=2, recalibrate=False)
    assert export_stage.run(config, registry.StageArgs(workdir=str(workdir))) == 0
    exports = registry.read_manifest(workdir, "export")["exports"]
    assert [(e["key"], e["code"], e["acc"]) for e in exports] == [
        ("top1", EXAMPLE, 0.90),
        ("top2", space_codes[2], 0.60),
    ]
    metrics = export_lib.read_metadata(exports[0]["path"])["metrics"]
    assert metrics["acc"] == 0.90 and metrics["results"] == str(results)
    assert metrics["split"] == config.evaluate.split


def test_no_codes_and_no_evaluate_results_is_an_error(tmp_path):
    config = _config(tmp_path / "saved")
    with pytest.raises(ValueError, match=r"No archs to export: pass --codes=FILE"):
        export_stage.run(config, registry.StageArgs(workdir=str(tmp_path / "wd")))


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras save
def test_supernet_from_the_oneshot_manifest(tmp_path, capsys):
    workdir = tmp_path / "wd"
    config = _config(tmp_path / "saved", recalibrate=False)
    keras.utils.set_random_seed(1)
    net = supernet_lib.build_supernet(config.supernet, config.space)
    path = workdir / "oneshot" / "supernet.keras"
    path.parent.mkdir(parents=True)
    net.save(path)
    registry.write_manifest(workdir, "oneshot", supernet=str(path))

    assert export_stage.run(config, registry.StageArgs(str(workdir), codes=SMALLEST)) == 0
    assert "WARNING" not in capsys.readouterr().out
    meta = export_lib.read_metadata(tmp_path / "saved" / config.name / SMALLEST)
    assert meta["source"]["checkpoint"] == str(path.resolve())
    assert meta["source"]["sha256"] == export_lib.file_sha256(path)
    # No config.json beside the checkpoint: nothing says how it was trained.
    assert meta["training"] is None


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras save
def test_metadata_says_how_the_supernet_was_trained(tmp_path):
    """The oneshot stage's config.json and teacher.json beside the checkpoint become the
    ``training`` entry; a run that drew from a codes file is marked transductive."""
    workdir = tmp_path / "wd"
    config = _config(tmp_path / "saved", recalibrate=False)
    trained = fmnist.get_config("tiny")
    trained.seed = 7
    trained.train.scheme = "cpt"
    trained.train.codes_file = str(tmp_path / "candidates.txt")
    stage = workdir / "oneshot"
    registry.write_config(trained, stage)
    teacher = {"kind": "init_largest", "source": "/runs/cpt/oneshot/supernet.keras"}
    (stage / "teacher.json").write_text(json.dumps(teacher))
    keras.utils.set_random_seed(1)
    path = stage / "supernet.keras"
    supernet_lib.build_supernet(config.supernet, config.space).save(path)
    registry.write_manifest(workdir, "oneshot", supernet=str(path))

    assert export_stage.run(config, registry.StageArgs(str(workdir), codes=SMALLEST)) == 0
    training = export_lib.read_metadata(tmp_path / "saved" / config.name / SMALLEST)["training"]
    assert training == {
        "config": str((stage / "config.json").resolve()),
        "config_name": trained.name,
        "seed": 7,
        "scheme": "cpt",
        "steps": int(trained.train.epochs) * int(trained.train.steps_per_epoch),
        "teacher": teacher,
        "codes_file": str(tmp_path / "candidates.txt"),
        "transductive": True,
    }


def test_an_untrained_supernet_is_exported_only_when_asked(tmp_path):
    config = _config(tmp_path / "saved", allow_untrained=False)
    workdir = tmp_path / "wd"
    with pytest.raises(ValueError) as err:
        export_stage.run(config, registry.StageArgs(workdir=str(workdir), codes=SMALLEST))
    message = str(err.value)
    assert message.startswith("no trained supernet to export: config.export.supernet is empty")
    assert str(workdir / "oneshot" / "manifest.json") in message  # where it looked
    assert "--config.export.allow_untrained=True" in message
    assert not (tmp_path / "saved").exists() and not workdir.exists()

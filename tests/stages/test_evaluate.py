"""Stages ``evaluate`` and ``merge`` end to end, in process, on ``configs/fmnist.py:tiny``.

One freshly built supernet is saved as ``.keras``; the stage loads it and builds its
evaluator the real way on the first run. Tracing the evaluator is the slow part, so later
runs get the same loaded supernet and evaluator back (a recorder wraps
``keras.saving.load_model`` and `evaluation.build_evaluator` and logs every code the stage
scores), except where a test asks for a fresh load, as a separate process would do.
"""

import json
import shutil
import types
from pathlib import Path

import keras
import pytest

from configs import fmnist
from tfnas import evaluation
from tfnas import records
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas.stages import evaluate as evaluate_stage
from tfnas.stages import registry


class _Recorder:
    """Caches the loaded supernet and its evaluator; logs loads and scored codes."""

    def __init__(self):
        self.loads = []
        self.evaluators_built = 0
        self.scored = []
        self.fresh_next = False
        self.supernet = None
        self.evaluator = None
        self._load = keras.saving.load_model
        self._make_evaluator = evaluation.build_evaluator

    def load_model(self, path, *args, **kwargs):
        self.loads.append(str(path))
        if self.supernet is None or self.fresh_next:
            self.supernet = self._load(path, *args, **kwargs)
            self.evaluator = None
            self.fresh_next = False
        return self.supernet

    def make_evaluator(self, config, supernet):
        assert supernet is self.supernet
        if self.evaluator is None:
            self.evaluator = self._make_evaluator(config, supernet)
            self.evaluators_built += 1
        recorder = self

        class Counting:
            num_eval_examples = recorder.evaluator.num_eval_examples

            def accuracy(self, arch, recalibrate=True):
                recorder.scored.append(arch if isinstance(arch, str) else arch.code)
                return recorder.evaluator.accuracy(arch, recalibrate)

        return Counting()

    def take_scored(self):
        scored, self.scored = self.scored, []
        return scored


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate_stage")
    config = fmnist.get_config("tiny")
    space = ss.get_space(config.space)
    keras.utils.set_random_seed(0)
    net = supernet_lib.build_supernet(config.supernet, config.space)
    path = root / "supernet.keras"
    net.save(path)
    config.evaluate.supernet = str(path)

    sampled = [a.code for a in space.sample_many(3, seed=3)]
    unique = [space.largest().code, *sampled, space.smallest().code]
    lines = ["# codes to score", unique[0], unique[1], "", unique[2], unique[3]]
    lines += [unique[1], unique[4]]  # unique[1] listed twice
    codes = root / "codes.txt"
    codes.write_text("\n".join(lines) + "\n")
    listed = [unique[0], unique[1], unique[2], unique[3], unique[1], unique[4]]

    recorder = _Recorder()
    with pytest.MonkeyPatch.context() as mp:
        fake_keras = types.SimpleNamespace(
            saving=types.SimpleNamespace(load_model=recorder.load_model)
        )
        mp.setattr(evaluate_stage, "keras", fake_keras)
        mp.setattr(evaluation, "build_evaluator", recorder.make_evaluator)
        yield types.SimpleNamespace(
            root=root,
            config=config,
            space=space,
            supernet=str(path),
            codes=str(codes),
            unique=unique,
            listed=listed,
            recorder=recorder,
        )


def _run(setup, workdir, stage="evaluate", **kwargs):
    args = registry.StageArgs(workdir=str(workdir), codes=setup.codes, **kwargs)
    return registry.run_stage(stage, setup.config, args)


def _jsonl_codes(path):
    return [json.loads(line)["code"] for line in path.read_text().splitlines()]


def _outputs(workdir):
    stage_dir = workdir / "evaluate"
    results = json.loads((stage_dir / "results.json").read_text())
    competition = json.loads((stage_dir / "codes.acc.json").read_text())
    return results, competition


@pytest.fixture(scope="module")
def full(setup):
    """The unsharded run: the reference outputs."""
    workdir = setup.root / "full"
    assert _run(setup, workdir) == 0
    return types.SimpleNamespace(workdir=workdir, scored=setup.recorder.take_scored())


def test_unsharded_run_scores_each_code_once_and_fills_the_competition_json(setup, full):
    assert setup.recorder.loads == [setup.supernet]
    assert setup.recorder.evaluators_built == 1
    assert full.scored == setup.unique  # the duplicate is scored once, in file order
    stage_dir = full.workdir / "evaluate"
    assert _jsonl_codes(stage_dir / "results.jsonl") == setup.unique

    results, competition = _outputs(full.workdir)
    assert results["supernet"] == setup.supernet
    rows = results["results"]
    assert [r["code"] for r in rows] == setup.unique
    for row in rows:
        arch = setup.space.parse(row["code"])
        assert row["flops"] == setup.space.flops(arch)
        assert row["params"] == setup.space.params(arch)
        assert 0.0 <= row["acc"] <= 1.0
    acc = {r["code"]: r["acc"] for r in rows}

    # Keys and order of the input kept (a text file: arch1..archN), acc filled.
    assert list(competition) == [f"arch{i}" for i in range(1, len(setup.listed) + 1)]
    assert [v["arch"] for v in competition.values()] == setup.listed
    assert [v["acc"] for v in competition.values()] == [acc[c] for c in setup.listed]
    assert competition["arch5"]["acc"] == competition["arch2"]["acc"]  # the duplicate

    manifest = registry.read_manifest(full.workdir, "evaluate")
    assert manifest["results"] == str(stage_dir / "results.json")
    assert manifest["competition"] == str(stage_dir / "codes.acc.json")
    assert (stage_dir / "config.json").exists()


def test_results_record_each_scores_binomial_noise_against_the_spread(setup, full):
    results, _ = _outputs(full.workdir)
    rows = results["results"]
    # The tiny config scores 2 evaluation batches of 16 holdout images.
    assert [row["examples"] for row in rows] == [32] * len(setup.unique)
    # By hand: acc = k / 32 for each arch; the binomial variance p (1 - p) / 32 averaged
    # over the archs, against the sample variance of the accs.
    hits = [round(row["acc"] * 32) for row in rows]
    assert [h / 32 for h in hits] == [row["acc"] for row in rows]
    variances = [(h / 32) * (1 - h / 32) / 32 for h in hits]
    mean = sum(hits) / 32 / len(hits)
    sd = (sum((h / 32 - mean) ** 2 for h in hits) / (len(hits) - 1)) ** 0.5
    noise = results["noise"]
    assert noise["num_examples"] == 32
    assert noise["binomial_se"] == pytest.approx((sum(variances) / len(hits)) ** 0.5)
    assert noise["score_sd"] == pytest.approx(sd)
    if sd > 0:
        assert noise["ratio"] == pytest.approx(noise["binomial_se"] / sd)
    # Fewer than 2 archs, or rows without ``examples`` (scored before it was recorded): none.
    assert evaluate_stage.score_noise(rows[:1]) is None
    assert evaluate_stage.score_noise([{"code": r["code"], "acc": r["acc"]} for r in rows]) is None


def test_competition_json_input_keeps_keys_order_and_fills_acc(setup, full, tmp_path):
    u = setup.unique
    source = {
        "zeta": {"acc": 0.0, "arch": u[3]},
        "alpha": {"acc": 0.0, "arch": u[0]},
        "arch10": {"acc": 0.0, "arch": u[3]},
        "mid": {"acc": 0.0, "arch": u[4]},
    }
    path = tmp_path / "track1.json"
    path.write_text(json.dumps(source, indent=4))
    args = registry.StageArgs(workdir=str(tmp_path / "work"), codes=str(path))
    assert registry.run_stage("evaluate", setup.config, args) == 0
    assert setup.recorder.take_scored() == [u[3], u[0], u[4]]

    out = json.loads((tmp_path / "work" / "evaluate" / "track1.acc.json").read_text())
    reference, _ = _outputs(full.workdir)
    acc = {r["code"]: r["acc"] for r in reference["results"]}
    assert list(out) == list(source)
    assert {k: v["arch"] for k, v in out.items()} == {k: v["arch"] for k, v in source.items()}
    assert {k: v["acc"] for k, v in out.items()} == {k: acc[v["arch"]] for k, v in source.items()}


def test_rerun_of_a_finished_run_scores_nothing(setup, full, tmp_path, capsys):
    workdir = tmp_path / "work"
    shutil.copytree(full.workdir, workdir)
    loads = len(setup.recorder.loads)
    assert _run(setup, workdir) == 0
    assert setup.recorder.take_scored() == []
    assert len(setup.recorder.loads) == loads  # nothing to do: the supernet is not loaded
    assert f"{len(setup.unique)} already done" in capsys.readouterr().out
    assert _outputs(workdir) == _outputs(full.workdir)


def _killed_copy(full, workdir, torn: bool):
    """The full run's JSONL cut after its first line (+ a torn half of the second)."""
    lines = (full.workdir / "evaluate" / "results.jsonl").read_text().splitlines()
    text = lines[0] + "\n" + (lines[1][: len(lines[1]) // 2] if torn else "")
    (workdir / "evaluate").mkdir(parents=True)
    (workdir / "evaluate" / "results.jsonl").write_text(text)


def test_resume_after_a_kill_between_two_archs(setup, full, tmp_path):
    _killed_copy(full, tmp_path, torn=False)
    assert _run(setup, tmp_path) == 0
    assert setup.recorder.take_scored() == setup.unique[1:]
    assert _jsonl_codes(tmp_path / "evaluate" / "results.jsonl") == setup.unique
    assert _outputs(tmp_path) == _outputs(full.workdir)


def test_resume_after_a_kill_mid_write(setup, full, tmp_path):
    _killed_copy(full, tmp_path, torn=True)
    try:
        assert _run(setup, tmp_path) == 0
    finally:
        # Only the missing codes were scored (the torn one again), whatever happens next.
        assert setup.recorder.take_scored() == setup.unique[1:]
    assert sorted(records.read_jsonl(tmp_path / "evaluate" / "results.jsonl")) == sorted(
        setup.unique
    )
    assert _outputs(tmp_path) == _outputs(full.workdir)


@pytest.fixture(scope="module")
def shards(setup, full):
    """Shards 1/2 and 2/2 in one workdir; shard 2 loads the supernet and evaluator afresh."""
    workdir = setup.root / "shards"
    assert _run(setup, workdir, shard="1/2") == 0
    first = setup.recorder.take_scored()
    setup.recorder.fresh_next = True  # as a separate process: a new load, a new evaluator
    assert _run(setup, workdir, shard="2/2") == 0
    second = setup.recorder.take_scored()
    return types.SimpleNamespace(workdir=workdir, scored=(first, second))


def test_shards_then_merge_equal_the_unsharded_run(setup, full, shards):
    u = setup.unique
    assert shards.scored == (u[0::2], u[1::2])
    stage_dir = shards.workdir / "evaluate"
    assert _jsonl_codes(stage_dir / "results.shard-1-of-2.jsonl") == u[0::2]
    assert _jsonl_codes(stage_dir / "results.shard-2-of-2.jsonl") == u[1::2]
    assert not (stage_dir / "results.json").exists()  # written by merge only
    assert setup.recorder.evaluators_built == 2

    assert _run(setup, shards.workdir, stage="merge") == 0
    assert setup.recorder.take_scored() == []
    assert _outputs(shards.workdir) == _outputs(full.workdir)  # same accs, order, keys
    manifest = registry.read_manifest(shards.workdir, "evaluate")
    assert manifest["results"] == str(stage_dir / "results.json")


def _shard_dir(workdir, *files):
    stage_dir = workdir / "evaluate"
    stage_dir.mkdir(parents=True)
    for source, name in files:
        shutil.copy(source, stage_dir / name)
    return stage_dir


def test_merge_with_a_missing_shard_fails(setup, shards, tmp_path):
    first = shards.workdir / "evaluate" / "results.shard-1-of-2.jsonl"
    _shard_dir(tmp_path, (first, first.name))
    missing = setup.unique[1::2]
    with pytest.raises(ValueError) as err:
        _run(setup, tmp_path, stage="merge")
    assert str(err.value) == (
        f"cannot merge 1 of 2 shards ({tmp_path / 'evaluate'}): shards [2] absent, "
        f"{len(missing)} codes missing (e.g. {missing[:2]}), 0 in two shards (e.g. []), 0 not "
        "in the codes (e.g. []). Run the missing shards (the same command resumes), or check "
        "--codes."
    )
    assert not (tmp_path / "evaluate" / "results.json").exists()


def test_merge_with_a_code_in_two_shards_fails(setup, shards, tmp_path):
    shard_dir = shards.workdir / "evaluate"
    stage_dir = _shard_dir(
        tmp_path,
        *[
            (shard_dir / f"results.shard-{i}-of-2.jsonl", f"results.shard-{i}-of-2.jsonl")
            for i in (1, 2)
        ],
    )
    first_line = (stage_dir / "results.shard-1-of-2.jsonl").read_text().splitlines()[0]
    with (stage_dir / "results.shard-2-of-2.jsonl").open("a") as f:
        f.write(first_line + "\n")
    with pytest.raises(ValueError) as err:
        _run(setup, tmp_path, stage="merge")
    assert str(err.value) == (
        f"cannot merge 2 of 2 shards ({stage_dir}): shards [] absent, 0 codes missing (e.g. "
        f"[]), 1 in two shards (e.g. {[setup.unique[0]]}), 0 not in the codes (e.g. []). Run "
        "the missing shards (the same command resumes), or check --codes."
    )


def test_merge_without_shards_fails(setup, tmp_path):
    with pytest.raises(ValueError) as err:
        _run(setup, tmp_path, stage="merge")
    assert str(err.value).startswith(
        f"No shard files in {tmp_path}/evaluate or {tmp_path}/standalone (seed 0)"
    )


@pytest.mark.parametrize("spec", ["0/2", "3/2", "2", "a/b", "1/2/3", "-1/2", "1/0"])
def test_bad_shard_is_rejected_before_anything_runs(setup, tmp_path, spec):
    expected = (
        f"--shard={spec!r} is not a shard; expected I/N with 1 <= I <= N, e.g. --shard=1/4 "
        "for the first of four shards."
    )
    with pytest.raises(ValueError) as err:
        records.parse_shard(spec)
    assert str(err.value) == expected
    loads = len(setup.recorder.loads)
    with pytest.raises(ValueError) as err:
        _run(setup, tmp_path, shard=spec)
    assert str(err.value) == expected
    assert len(setup.recorder.loads) == loads
    assert not list((tmp_path / "evaluate").glob("results*"))


def test_parse_shard_and_shard_codes():  # (tests/test_records.py tests the rest)
    assert records.parse_shard(None) == (1, 1)
    assert records.parse_shard("") == (1, 1)
    assert records.parse_shard("2/4") == (2, 4)
    codes = [str(i) for i in range(7)]
    parts = [records.shard_codes(codes, i, 3) for i in (1, 2, 3)]
    assert parts == [["0", "3", "6"], ["1", "4"], ["2", "5"]]
    assert sorted(sum(parts, [])) == codes


def _restamp(path, fingerprint):
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({**r, "fingerprint": fingerprint}) + "\n" for r in rows))


def test_resuming_scores_of_another_supernet_is_refused_and_overwrite_starts_over(
    setup, full, tmp_path
):
    workdir = tmp_path / "work"
    shutil.copytree(full.workdir, workdir)
    jsonl = workdir / "evaluate" / "results.jsonl"
    _restamp(jsonl, "0123456789abcdef")
    with pytest.raises(ValueError, match=r"another supernet.*0123456789abcdef.*--overwrite"):
        _run(setup, workdir)
    assert setup.recorder.take_scored() == []
    assert _run(setup, workdir, overwrite=True) == 0
    assert setup.recorder.take_scored() == setup.unique
    assert _outputs(workdir) == _outputs(full.workdir)


def test_merge_of_shards_from_different_supernets_fails(setup, shards, tmp_path):
    shard_dir = shards.workdir / "evaluate"
    names = [f"results.shard-{i}-of-2.jsonl" for i in (1, 2)]
    stage_dir = _shard_dir(tmp_path, *[(shard_dir / n, n) for n in names])
    _restamp(stage_dir / names[1], "0123456789abcdef")
    with pytest.raises(ValueError, match=r"different supernets.*--overwrite"):
        _run(setup, tmp_path, stage="merge")


def test_a_codes_file_named_results_json_does_not_overwrite_the_results(setup, full, tmp_path):
    named = tmp_path / "results.json"
    named.write_text(Path(setup.codes).read_text())
    workdir = tmp_path / "work"
    args = registry.StageArgs(workdir=str(workdir), codes=str(named))
    assert registry.run_stage("evaluate", setup.config, args) == 0
    setup.recorder.take_scored()
    stage_dir = workdir / "evaluate"
    results = json.loads((stage_dir / "results.json").read_text())
    assert [r["code"] for r in results["results"]] == setup.unique  # still the results
    assert (stage_dir / "results.acc.json").exists()  # the competition output beside it


def test_missing_or_foreign_supernet_is_refused_before_anything_is_written(setup, tmp_path):
    config = setup.config.copy_and_resolve_references()
    config.evaluate.supernet = str(tmp_path / "missing.keras")
    args = registry.StageArgs(workdir=str(tmp_path / "work"), codes=setup.codes)
    with pytest.raises(ValueError, match=r"missing.keras \(from --config.evaluate.supernet\) "
                       "does not exist"):
        registry.run_stage("evaluate", config, args)
    assert not (tmp_path / "work").exists()

    # A supernet of the cifar10 space, scored with an fmnist config.
    from configs import cifar10

    other = cifar10.get_config("tiny")
    foreign = supernet_lib.build_supernet(other.supernet, other.space)
    foreign.save(tmp_path / "cifar.keras")
    config.evaluate.supernet = str(tmp_path / "cifar.keras")
    with pytest.raises(ValueError, match="is of the 'cifar10' space but config.space is "
                       "'fmnist'"):
        registry.run_stage("evaluate", config, args)
    (tmp_path / "not_a_supernet.keras").write_text("hello")
    config.evaluate.supernet = str(tmp_path / "not_a_supernet.keras")
    with pytest.raises(ValueError, match="is not a saved tfnas supernet"):
        registry.run_stage("evaluate", config, args)
    assert not (tmp_path / "work").exists()

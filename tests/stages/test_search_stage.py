"""Stage ``search`` end to end on ``configs/fmnist.py:tiny`` with a real (untrained) supernet.

One freshly built supernet is saved as ``.keras``; in process, loading it and tracing its
evaluator happen once (a wrapper hands the same supernet and evaluator to every later stage
run, as test_evaluate.py does), so the runs here measure the stage, not tracing. The slow
tests run ``bin/train`` in subprocesses: a kill -9 mid-search, and keras-tuner's chief with
two workers on loopback.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs import fmnist
from tfnas import evaluation
from tfnas import nsga2
from tfnas import records
from tfnas import search as search_lib
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas.stages import registry

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]
POPULATION, GENERATIONS = 3, 2


def _config(supernet):
    config = fmnist.get_config("tiny")
    config.search.supernet = str(supernet)
    config.evaluate.supernet = str(supernet)
    config.search.population = POPULATION
    config.search.generations = GENERATIONS
    return config


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("search_stage")
    config = fmnist.get_config("tiny")
    keras.utils.set_random_seed(0)
    net = supernet_lib.build_supernet(config.supernet, config.space)
    path = root / "supernet.keras"
    net.save(path)
    built = {}
    load, build = supernet_lib.load_supernet, evaluation.build_evaluator

    def load_once(*args, **kwargs):
        if "supernet" not in built:
            built["supernet"] = load(*args, **kwargs)
        return built["supernet"]

    def build_once(config, supernet, **kwargs):
        key = json.dumps(kwargs, sort_keys=True)
        if key not in built:
            built[key] = build(config, supernet, **kwargs)
        return built[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(supernet_lib, "load_supernet", load_once)
        mp.setattr(evaluation, "build_evaluator", build_once)
        yield types.SimpleNamespace(root=root, supernet=path, config=_config(path))


def _run(stage, config, workdir, **kwargs):
    return registry.run_stage(stage, config, registry.StageArgs(workdir=str(workdir), **kwargs))


def _jsonl(workdir):
    return (Path(workdir) / "evaluate" / "results.jsonl").read_text().splitlines()


@pytest.fixture(scope="module")
def searched(setup):
    """evaluate scores generation 0's codes, then the search runs in the same workdir."""
    workdir = setup.root / "run"
    settings = search_lib.settings_from_config(setup.config)
    gen0 = nsga2.propose(ss.get_space("fmnist"), [], set(), settings, 0)
    assert _run("evaluate", setup.config, workdir, codes=",".join(gen0)) == 0
    assert len(_jsonl(workdir)) == POPULATION
    assert _run("search", setup.config, workdir) == 0
    return types.SimpleNamespace(workdir=workdir, gen0=gen0)


def _products(workdir):
    d = Path(workdir) / "search"
    return {name: (d / name).read_text() for name in
            ("front.json", "archs.json", "front.tsv", "archs.tsv", "history.json")}


def test_products(setup, searched):
    stage = searched.workdir / "search"
    archs = json.loads((stage / "archs.json").read_text())
    rows = archs["results"]
    space = ss.get_space("fmnist")
    assert len(rows) == POPULATION * GENERATIONS == len({r["code"] for r in rows})
    assert [r["code"] for r in rows[:POPULATION]] == searched.gen0
    assert archs["supernet"] == str(setup.supernet)
    for r in rows:
        assert r["flops"] == space.flops(r["code"]) and r["params"] == space.params(r["code"])
        assert 0 <= r["acc"] <= 1
    # The front, by brute force: no other arch at least as accurate and as cheap.
    expected = {
        r["code"] for r in rows
        if not any(o["acc"] >= r["acc"] and o["flops"] <= r["flops"] and o is not r
                   and (o["acc"], o["flops"]) != (r["acc"], r["flops"]) for o in rows)
    }
    front = json.loads((stage / "front.json").read_text())["results"]
    assert {r["code"] for r in front} == expected
    assert [r["acc"] for r in front] == sorted((r["acc"] for r in front), reverse=True)
    tsv = (stage / "archs.tsv").read_text().splitlines()
    assert tsv[0].split("\t") == list(search_lib.COLUMNS) and len(tsv) == len(rows) + 1
    assert len((stage / "front.tsv").read_text().splitlines()) == len(front) + 1

    manifest = json.loads((stage / "manifest.json").read_text())["products"]
    assert manifest["front"] == "./search/front.json"
    assert manifest["figure"] == "./search/front.png"
    assert manifest["best"] == front[0]["code"]
    assert (stage / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (stage / "config.json").exists()

    # TensorBoard: the hypervolume and the figure of each generation.
    scalars, images = {}, set()
    for event_file in (stage / "tensorboard").glob("events.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                if value.tag == "search/hypervolume":
                    scalars[event.step] = float(tf.make_ndarray(value.tensor))
                if value.tag == "search/front":
                    images.add(event.step)
    history = json.loads((stage / "history.json").read_text())
    assert sorted(scalars) == sorted(images) == list(range(GENERATIONS))
    np.testing.assert_allclose([scalars[g] for g in range(GENERATIONS)],
                               [h["hypervolume"] for h in history], rtol=1e-6)


def test_cache_is_shared_with_evaluate(setup, searched):
    # The search scored only what evaluate had not: 3 + 3 rows, each code once.
    lines = _jsonl(searched.workdir)
    assert len(lines) == POPULATION * GENERATIONS
    assert len({json.loads(line)["code"] for line in lines}) == len(lines)
    # evaluate on every searched code scores nothing new.
    codes = [r["code"] for r in json.loads(
        (searched.workdir / "search" / "archs.json").read_text())["results"]]
    assert _run("evaluate", setup.config, searched.workdir, codes=",".join(codes)) == 0
    assert _jsonl(searched.workdir) == lines


def test_rerun_scores_nothing_and_writes_the_same(setup, searched, capsys):
    before = _products(searched.workdir)
    lines = _jsonl(searched.workdir)
    assert _run("search", setup.config, searched.workdir) == 0
    assert _jsonl(searched.workdir) == lines
    assert _products(searched.workdir) == before
    # The TensorBoard summaries are rewritten, not appended a second time.
    assert len(list((searched.workdir / "search" / "tensorboard").glob("events.*"))) == 1
    assert f"{POPULATION * GENERATIONS} trials already run" in capsys.readouterr().out


def test_other_settings_are_refused(setup, searched):
    config = _config(setup.supernet)
    config.search.seed = 7
    with pytest.raises(ValueError, match="other settings.*seed"):
        _run("search", config, searched.workdir)


def test_no_supernet(tmp_path):
    config = fmnist.get_config("tiny")
    with pytest.raises(ValueError, match="No supernet to search"):
        _run("search", config, tmp_path)
    assert not (tmp_path / "search").exists()


def test_export_and_standalone_select_the_front(setup, searched):
    from tfnas.stages import export as export_stage
    from tfnas.stages import standalone as standalone_stage

    front = json.loads((searched.workdir / "search" / "front.json").read_text())["results"]
    best = sorted(front, key=lambda r: -r["acc"])
    args = registry.StageArgs(workdir=str(searched.workdir), codes="search:1")
    assert export_stage.select_archs(setup.config, args) == [("front1", best[0]["code"])]
    args = registry.StageArgs(workdir=str(searched.workdir), codes="search")
    assert standalone_stage.load_codes(setup.config, args) == [r["code"] for r in best]


@pytest.mark.slow
def test_export_and_standalone_take_the_front(setup, searched, tmp_path):
    config = _config(setup.supernet)
    config.export.supernet = str(setup.supernet)
    config.export.root = str(tmp_path / "saved")
    front = json.loads((searched.workdir / "search" / "front.json").read_text())["results"]
    assert _run("export", config, searched.workdir, codes="search:1") == 0
    exports = registry.read_manifest(searched.workdir, "export")["exports"]
    assert [(e["key"], e["code"]) for e in exports] == [("front1", front[0]["code"])]
    assert exports[0]["acc"] == front[0]["acc"]  # the metadata records the search's score
    assert (tmp_path / "saved" / config.name / front[0]["code"] / "saved_model.pb").exists()

    assert _run("standalone", config, searched.workdir, codes="search") == 0
    gt = registry.read_manifest(searched.workdir, "standalone")["ground_truth"]
    trained = [r["code"] for r in json.loads(Path(gt).read_text())["results"]]
    assert trained == [r["code"] for r in front]


# ------------------------------------------------------------------ subprocesses (slow)


def _bin_train(workdir, supernet, *extra, env=None):
    cmd = [
        sys.executable, str(ROOT / "bin" / "train"), "--stage=search",
        "--config=configs/fmnist.py:tiny", f"--workdir={workdir}",
        f"--config.search.supernet={supernet}",
        "--config.search.population=3", "--config.search.generations=3", *extra,
    ]
    return cmd, dict(os.environ, **(env or {}))


def _front_and_archs(workdir):
    stage = Path(workdir) / "search"
    return (json.loads((stage / "front.json").read_text())["results"],
            json.loads((stage / "archs.json").read_text())["results"])


@pytest.fixture(scope="module")
def one_process(setup):
    workdir = setup.root / "one_process"
    cmd, env = _bin_train(workdir, setup.supernet)
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return workdir


@pytest.mark.slow
def test_kill_9_mid_search_then_rerun_gives_the_same_front(setup, one_process, tmp_path):
    workdir = tmp_path / "killed"
    cmd, env = _bin_train(workdir, setup.supernet)
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    results = workdir / "evaluate" / "results.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if results.exists() and len(records.read_jsonl(results)) >= 4:  # into generation 1
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the search ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (workdir / "search" / "front.json").exists()
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert _front_and_archs(workdir) == _front_and_archs(one_process)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_chief_and_two_workers_give_the_same_front(setup, one_process, tmp_path):
    port = str(_free_port())
    procs = []
    for tuner_id in ("chief", "tuner0", "tuner1"):
        env = {"KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
               "KERASTUNER_ORACLE_PORT": port}
        # Each worker its own workdir (as on its own machine); the chief's holds the front.
        cmd, env = _bin_train(tmp_path / tuner_id, setup.supernet, env=env)
        procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=900)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    scored = [len(records.read_jsonl(tmp_path / w / "evaluate" / "results.jsonl"))
              for w in ("tuner0", "tuner1")]
    assert sum(scored) == 9 and min(scored) > 0, scored  # both workers scored
    assert not (tmp_path / "chief" / "evaluate").exists()  # the chief scores nothing
    assert _front_and_archs(tmp_path / "chief") == _front_and_archs(one_process)

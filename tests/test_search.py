"""tfnas.search: the keras-tuner Oracle and tuner, resumed after interruptions and kills.

Scores come from a fake evaluator (a fixed function of the code, the same in every
process), so these tests exercise the search machinery in seconds; the stage's test
(tests/stages/test_search_stage.py) scores with a real supernet.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs import fmnist
from tfnas import config_lib
from tfnas import evaluation
from tfnas import nsga2
from tfnas import search
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:keras_tuner")

ROOT = Path(__file__).resolve().parents[1]
SPACE = ss.get_space("fmnist")
FINGERPRINT = "f" * 16


def fake_acc(code: str) -> float:
    """More FLOPs, more accuracy, plus a code-hashed wiggle: a fixed function of the code."""
    wiggle = int(hashlib.sha256(code.encode()).hexdigest()[:8], 16) / 16**8
    return round(0.3 + 0.5 * (SPACE.flops(code) / 1.7e7) ** 0.5 + 0.05 * wiggle, 6)


class FakeEvaluator:
    def __init__(self, fail_at=None):
        self.calls = []
        self.fail_at = fail_at

    def accuracy(self, code):
        self.calls.append(code)
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise Interrupted(f"killed while scoring call {self.fail_at}")
        return fake_acc(code)


class Interrupted(BaseException):
    """Stands for a kill: keras-tuner catches Exception in a trial, not BaseException."""


def settings(**kw):
    base = dict(population=6, budget=0.0, bounds=ss.COMPETITION_BOUNDS, seed=3)
    base.update(kw)
    return nsga2.Settings(**base)


def run_search(workdir, s, generations, evaluator=None, oracle_hook=None):
    workdir = Path(workdir)
    evaluator = evaluator or FakeEvaluator()
    cache = search.ScoreCache(workdir, SPACE, FINGERPRINT, lambda: evaluator)
    oracle = search.NSGA2Oracle(SPACE, s, generations)
    if oracle_hook:
        oracle_hook(oracle)
    tuner = search.SupernetSearchTuner(oracle, cache, directory=workdir / "search",
                                       project_name="tuner", log=None)
    tuner.search(verbose=0)
    return oracle, evaluator


def front_codes(oracle):
    rows = search.evaluated_rows(oracle)
    idx = nsga2.pareto_front([(r["code"], r["acc"], r["flops"]) for r in rows],
                             oracle.settings.budget)
    return [rows[i]["code"] for i in idx]


def brute_force_front(rows, budget):
    """Feasible rows no other feasible row beats in both accuracy and FLOPs."""
    ok = [r for r in rows if not budget or r["flops"] <= budget]
    return {
        r["code"]
        for r in ok
        if not any(
            o["acc"] >= r["acc"] and o["flops"] <= r["flops"]
            and (o["acc"] > r["acc"] or o["flops"] < r["flops"])
            for o in ok
        )
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted search: 6 x 4 trials under a FLOPs budget."""
    budget = float(np.median([SPACE.flops(SPACE.sample(np.random.default_rng(i),
                                                        ss.COMPETITION_BOUNDS))
                              for i in range(100)]))
    s = settings(budget=budget)
    workdir = tmp_path_factory.mktemp("reference")
    oracle, evaluator = run_search(workdir, s, 4)
    return s, oracle, evaluator, workdir


def test_uninterrupted_search(reference):
    s, oracle, evaluator, workdir = reference
    rows = search.evaluated_rows(oracle)
    assert len(rows) == 24 and len(evaluator.calls) == 24  # every code scored once
    assert oracle.finished()
    assert len({r["code"] for r in rows}) == 24
    assert [r["generation"] for r in rows] == [g for g in range(4) for _ in range(6)]
    assert all(r["acc"] == fake_acc(r["code"]) for r in rows)
    # Every proposed code is feasible and within the bounds.
    assert all(r["feasible"] and s.bounds.contains(SPACE.parse(r["code"])) for r in rows)
    assert set(front_codes(oracle)) == brute_force_front(rows, s.budget)
    # Generation 0 is the seeded random draw, whatever else happened.
    assert [r["code"] for r in rows[:6]] == nsga2.propose(SPACE, [], set(), s, 0)
    # The shared cache holds the evaluate stage's rows.
    lines = (workdir / "evaluate" / "results.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert set(first) == {"code", "acc", "flops", "params", "fingerprint"}
    assert first["fingerprint"] == FINGERPRINT and len(lines) == 24


def test_search_improves_on_random(reference):
    # With accuracy rising with FLOPs under a budget, the search should push the best
    # feasible accuracy above generation 0's (a fake objective; not the real benchmark).
    s, oracle, _, _ = reference
    history = search.generation_history(search.evaluated_rows(oracle), s, SPACE)
    hv = [h["hypervolume"] for h in history]
    assert all(b >= a for a, b in zip(hv, hv[1:]))  # the front never gets worse
    assert history[-1]["best_feasible_acc"] >= history[0]["best_feasible_acc"]


def test_rerun_of_a_finished_search_scores_nothing(reference):
    s, oracle, _, workdir = reference
    again, evaluator = run_search(workdir, s, 4)
    assert evaluator.calls == []
    assert search.evaluated_rows(again) == search.evaluated_rows(oracle)


# Every supernet kind the search scores: one-shot, few-shot groups (G = 3 nested), SSE's
# sub-supernets (the (d3, d4) buckets) and K-shot (K = 2, merged by the simplex-net).
SUPERNET_KINDS = {
    "shared": {},
    "fewshot_groups": dict(num_copies=3, routing="stage_width_nested"),
    "sub_supernets": dict(num_copies=5, routing="depth34_table"),
    "kshot": dict(num_kernels=2),
}


def hand_accuracy(net, code, recal, evals):
    """Recalibrate ``code`` one batch at a time (momentum n / (n + 1), the exact mean), then
    count its hits batch by batch: what an evaluator should do, without the evaluator."""
    arch = supernet_lib.arch_tensor(code, SPACE)
    for n, (images,) in enumerate(recal):
        net(images, arch=arch, training=True, bn_momentum=n / (n + 1.0))
    hits = 0
    for x, y in evals:
        predicted = tf.argmax(net(x, arch=arch), -1, output_type=tf.int32)
        hits += int(tf.reduce_sum(tf.cast(tf.equal(predicted, y), tf.int32)))
    return hits / sum(int(y.shape[0]) for _, y in evals)


@pytest.mark.parametrize("kind", list(SUPERNET_KINDS))
def test_search_scores_every_supernet_kind_through_the_evaluator(kind, tmp_path):
    keras.utils.set_random_seed(0)
    net = supernet_lib.Supernet("fmnist", **SUPERNET_KINDS[kind])
    net.build()
    rng = np.random.default_rng(0)
    recal = [(tf.constant(rng.normal(size=(8, 28, 28, 1)), tf.float32),) for _ in range(2)]
    evals = [
        (
            tf.constant(rng.normal(size=(16, 28, 28, 1)), tf.float32),
            tf.constant(rng.integers(0, 10, size=16), tf.int32),
        )
        for _ in range(2)
    ]
    evaluator = evaluation.SubnetEvaluator(net, recal, evals)
    oracle, _ = run_search(tmp_path, settings(population=4), 2, evaluator=evaluator)
    rows = search.evaluated_rows(oracle)
    assert len(rows) == 8 and len({r["code"] for r in rows}) == 8
    for row in rows[:4] + rows[-2:]:  # generation 0 and two children
        assert row["acc"] == pytest.approx(hand_accuracy(net, row["code"], recal, evals))


def _interrupt_save(at):
    """Makes the oracle's `at`-th state save raise (after the trial files are written)."""

    def hook(oracle):
        calls = {"n": 0}
        original = oracle.save

        def save():
            calls["n"] += 1
            if calls["n"] == at:
                raise Interrupted(f"killed before oracle save {at}")
            original()

        oracle.save = save

    return hook


def _interrupt_trial_file(at):
    def hook(oracle):
        calls = {"n": 0}
        original = oracle._save_trial

        def save_trial(trial):
            calls["n"] += 1
            if calls["n"] == at:
                raise Interrupted(f"killed before trial file {at}")
            original(trial)

        oracle._save_trial = save_trial

    return hook


@pytest.mark.parametrize(
    "interruptions",
    [
        [dict(evaluator=FakeEvaluator(fail_at=4))],  # mid-trial, generation 0
        [dict(evaluator=FakeEvaluator(fail_at=8))],  # mid-trial, generation 1
        [dict(oracle_hook=_interrupt_save(15))],  # between a trial file and oracle.json
        [dict(oracle_hook=_interrupt_trial_file(20))],
        [dict(evaluator=FakeEvaluator(fail_at=2)), dict(oracle_hook=_interrupt_save(9)),
         dict(evaluator=FakeEvaluator(fail_at=13))],  # killed three times
    ],
)
def test_resume_after_interruptions_gives_the_same_front(reference, tmp_path, interruptions):
    s, oracle, _, _ = reference
    scored = []
    for kwargs in interruptions:
        with pytest.raises(Interrupted):
            run_search(tmp_path, s, 4, **kwargs)
        if "evaluator" in kwargs:
            scored += kwargs["evaluator"].calls[:-1]  # the killed call scored nothing
    resumed, evaluator = run_search(tmp_path, s, 4)
    scored += evaluator.calls
    assert search.evaluated_rows(resumed) == search.evaluated_rows(oracle)
    assert front_codes(resumed) == front_codes(oracle)
    if all("evaluator" in k for k in interruptions):
        # Scored at most once: a code scored before a kill comes from the cache after it.
        assert len(scored) == len(set(scored)) == 24


def test_oracle_waits_for_the_previous_generation(tmp_path):
    s = settings(population=3)
    oracle = search.NSGA2Oracle(SPACE, s, 2)
    oracle._set_project_dir(str(tmp_path), "tuner")
    trials = [oracle.create_trial(f"tuner{i}") for i in range(3)]
    assert [t.status for t in trials] == ["RUNNING"] * 3
    # Generation 1 cannot be bred before generation 0's scores are in.
    assert oracle.create_trial("tuner3").status == "IDLE"
    assert not oracle.finished()
    for i, t in enumerate(trials):
        oracle.update_trial(t.trial_id, {"acc": 0.5 + i / 10})
        t.status = "COMPLETED"
        oracle.end_trial(t)
        assert oracle.generation_done(0) == (i == 2)
    t = oracle.create_trial("tuner3")
    assert t.status == "RUNNING" and int(t.trial_id) == 3
    assert t.hyperparameters.values["code"] == oracle.children[1][0]


def test_failed_trials_leave_selection_but_close_the_generation(tmp_path):
    s = settings(population=3)
    oracle = search.NSGA2Oracle(SPACE, s, 2, max_retries_per_trial=0)
    oracle._set_project_dir(str(tmp_path), "tuner")
    for i in range(3):
        t = oracle.create_trial("tuner0")
        if i == 1:
            t.status = "INVALID"  # raised; no retries left: FAILED
        else:
            oracle.update_trial(t.trial_id, {"acc": 0.5})
            t.status = "COMPLETED"
        oracle.end_trial(t)
    assert oracle.trials["1"].status == "FAILED"
    assert oracle.generation_done(0)
    assert [r[0] for r in oracle.population_before(1)] == [
        oracle.children[0][0], oracle.children[0][2]]


def test_cache_is_shared_and_checks_the_fingerprint(tmp_path):
    code = SPACE.smallest().code
    path = tmp_path / "evaluate" / "results.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps(dict(code=code, acc=0.42, flops=1, params=2,
                                    fingerprint=FINGERPRINT)) + "\n")
    evaluator = FakeEvaluator()
    cache = search.ScoreCache(tmp_path, SPACE, FINGERPRINT, lambda: evaluator)
    assert cache.score(code) == {"acc": 0.42, "flops": 1.0, "params": 2.0}
    assert evaluator.calls == []
    other = SPACE.largest().code
    assert cache.score(other)["acc"] == fake_acc(other)
    assert evaluator.calls == [other]
    with pytest.raises(ValueError, match="another supernet.*fingerprint ffffffffffffffff"):
        search.ScoreCache(tmp_path, SPACE, "0" * 16, lambda: evaluator)


def test_front_records(tmp_path):
    from tfnas.stages import registry

    with pytest.raises(ValueError, match="no search front"):
        search.front_records(tmp_path, "search")
    assert search.front_records(tmp_path, "codes.txt") is None
    rows = [{"code": "a", "acc": 0.5}, {"code": "b", "acc": 0.9}, {"code": "c", "acc": 0.7}]
    front = tmp_path / "search" / "front.json"
    front.parent.mkdir()
    front.write_text(json.dumps({"results": rows}))
    registry.write_manifest(tmp_path, "search", front=front)
    path = registry.read_manifest(tmp_path, "search")["front"]  # what the stages pass
    assert search.front_records(tmp_path, "search", path) == [
        ("front1", "b"), ("front2", "c"), ("front3", "a")]
    assert search.front_records(tmp_path, "search:2", path) == [("front1", "b"), ("front2", "c")]
    with pytest.raises(ValueError, match="search:K with K >= 1"):
        search.front_records(tmp_path, "search:0", path)
    assert search.front_accuracies(path) == (path, {"a": 0.5, "b": 0.9, "c": 0.7})


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("population", 1, "config.search.population"),
        ("selection", "random", "config.search.selection"),
        ("objective", "latency", "config.search.objective"),
        ("bounds", "tiny", "config.search.bounds"),
        ("mutation_prob", 1.5, "config.search.mutation_prob"),
        ("budget", -1.0, "config.search.budget"),
    ],
)
def test_validate_config(field, value, message):
    config = fmnist.get_config("tiny")
    config_lib.validate_config(config)
    config.search[field] = value
    with pytest.raises(ValueError, match=message):
        config_lib.validate_config(config)


def test_defaults_are_the_papers():
    config = fmnist.get_config()
    assert (config.search.population, config.search.generations) == (50, 20)
    assert config.search.num_parents == 20  # seed paper 004 §3's truncation parents
    s = search.settings_from_config(config)
    assert s.bounds == ss.BOUNDS_PRESETS[config.train.bounds]


def test_budget_below_every_arch_is_refused():
    s = settings(budget=10.0)
    with pytest.raises(ValueError, match="config.search.budget=10 is below"):
        search.check_budget(SPACE, s)


# A subprocess running the search with the fake evaluator; it SIGKILLs itself while
# scoring its KILL_AT-th code (a real kill -9: nothing is flushed or cleaned up).
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {tests!r})
    import test_search as t
    from tfnas import nsga2, search_space as ss
    kill_at = int(sys.argv[2])

    class Killing(t.FakeEvaluator):
        def accuracy(self, code):
            if len(self.calls) + 1 == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return super().accuracy(code)

    s = t.settings(budget=float(sys.argv[3]))
    t.run_search(sys.argv[1], s, 4, evaluator=Killing())
    """
)


@pytest.mark.slow
def test_kill_9_and_rerun_gives_the_same_front(reference, tmp_path):
    s, oracle, _, _ = reference
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests")))
    workdir = tmp_path / "w"
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, str(script), str(workdir)]
    killed = subprocess.run(cmd + ["9", str(s.budget)], env=env, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert len((workdir / "evaluate" / "results.jsonl").read_text().splitlines()) == 8
    done = subprocess.run(cmd + ["0", str(s.budget)], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    resumed = search.NSGA2Oracle(SPACE, s, 4)
    resumed._set_project_dir(str(workdir / "search"), "tuner")
    resumed.reload()
    assert search.evaluated_rows(resumed) == search.evaluated_rows(oracle)
    assert front_codes(resumed) == front_codes(oracle)
    assert len((workdir / "evaluate" / "results.jsonl").read_text().splitlines()) == 24

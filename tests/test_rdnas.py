"""The RD-NAS scheme (`tfnas.schemes.rdnas`): pairs, priors, lambda(t), members, a short fit.

The hinge's and the margin loss's gradient routing are pinned in tests/test_trainer.py.
"""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from tfnas import sampling
from tfnas import schemes
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas import trainer as trainer_lib
from tfnas.schemes import rdnas

ROOT = Path(__file__).resolve().parents[1]
SPACE = ss.get_space("fmnist")


def _code(arch) -> str:
    return "".join(map(str, np.asarray(arch)))


def _table(path: Path, n=8, seed=5, null=True, scores=None) -> Path:
    """A proxies-stage scores.json with ``n`` uniform codes scored by FLOPs (``fake``) and
    one null row, as the stage writes a non-finite score."""
    archs = SPACE.sample_many(n, seed=seed)
    rows = [
        {"code": a.code, "scores": {"fake": float(SPACE.flops(a)) if scores is None
                                    else scores[i]}}
        for i, a in enumerate(archs)
    ]
    if null:
        rows.append({"code": SPACE.largest().code, "scores": {"fake": None}})
    path.write_text(json.dumps({"proxies": ["fake"], "fingerprint": "x", "results": rows}))
    return path


# -------------------------------------------------------------------------- pair sampler


def test_threshold_is_a_quantile_of_the_samplers_own_distances_and_pairs_respect_it():
    scheme = rdnas.RDNASScheme(SPACE, seed=3, num_random=1, num_pairs=2, max_tries=30)
    # The median of uniform-vs-uniform distances: about half of independent in-graph draws
    # reach it (an independent estimate of the NumPy one made at construction).
    draw = tf.function(lambda t: sampling.arch_distance(
        sampling.uniform_arch(sampling.member_seed(11, t, 0), SPACE),
        sampling.uniform_arch(sampling.member_seed(11, t, 1), SPACE)))
    d = np.array([int(draw(tf.constant(t, tf.int64))) for t in range(400)])
    assert 0.42 < np.mean(d >= scheme.min_distance) < 0.62, (scheme.min_distance, d.mean())
    pair = tf.function(lambda t: scheme.pair(t, 1))
    exhausted = 0
    for t in range(60):
        a, b, _, out = pair(tf.constant(t, tf.int64))
        exhausted += int(out)
        if not out:
            assert ss.arch_distance(_code(a), _code(b)) >= scheme.min_distance
        SPACE.parse(_code(a)), SPACE.parse(_code(b))  # valid codes
    assert exhausted == 0  # P(30 rejections in a row) ~ 1e-9
    # A quantile near 1 exhausts some pairs, and they are counted, not hidden.
    hard = rdnas.RDNASScheme(SPACE, seed=3, num_random=1, min_distance_quantile=0.999,
                             max_tries=2)
    flags = [bool(hard.pair(tf.constant(t, tf.int64), 0)[3]) for t in range(20)]
    assert any(flags)
    # Quantile 0: every pair is accepted at the first try.
    free = rdnas.RDNASScheme(SPACE, seed=3, min_distance_quantile=0.0)
    assert free.min_distance <= min(d)


def test_the_threshold_is_deterministic_in_the_seed():
    one = rdnas.RDNASScheme(SPACE, seed=4, min_distance_quantile=0.3)
    two = rdnas.RDNASScheme(SPACE, seed=4, min_distance_quantile=0.3)
    assert (one.min_distance, one.mean_distance) == (two.min_distance, two.mean_distance)
    higher = rdnas.RDNASScheme(SPACE, seed=4, min_distance_quantile=0.9)
    assert higher.min_distance > one.min_distance


# Runs in a fresh process: the CPU must be split into logical devices before TF starts.
_REPLICAS = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    from tfnas import distribute
    distribute.split_cpu(2)
    import tensorflow as tf
    from tfnas.schemes import rdnas

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    flops = rdnas.RDNASScheme("fmnist", seed=2, num_random=1, steps_per_epoch=2,
                              lambda_schedule="sine", epochs=4)
    table = rdnas.RDNASScheme("fmnist", seed=2, num_random=1, prior="table",
                              proxy_table=sys.argv[1], proxy_name="fake", loss="margin")

    @tf.function
    def step(t):
        out = []
        for scheme in (flops, table):
            for m in scheme.members(t):
                out.append(tf.cast(m.arch, tf.float32))
                extra = [m.rank_sign, m.weight, m.margin]
                if m.pair_arch is not None:
                    out.append(tf.cast(m.pair_arch, tf.float32))
                out.append(tf.stack([tf.cast(x, tf.float32) for x in extra]))
        return tf.concat(out, axis=0)

    out = {}
    for t in range(4):
        per_replica = strategy.run(step, args=(tf.constant(t, tf.int64),))
        out[t] = [v.numpy().tolist() for v in strategy.experimental_local_results(per_replica)]

    # The exhausted-pair counter (a state variable) counts each pair once on 2 replicas, as
    # one device counts it.
    with strategy.scope():
        hard = rdnas.RDNASScheme("fmnist", seed=2, min_distance_quantile=0.99, max_tries=1)
        hard.build()

    @tf.function
    def count(t):
        hard.members(t)
        hard.update(t, {})

    for t in range(6):
        strategy.run(count, args=(tf.constant(t, tf.int64),))
    expected = sum(int(hard.pair(tf.constant(t, tf.int64), j)[3])
                   for t in range(6) for j in range(2))
    out["count"] = [int(hard.exhausted_pairs.numpy()), expected]
    print(json.dumps(out))
    """
)


def test_every_replica_draws_the_same_pairs_signs_and_weights(tmp_path):
    table = _table(tmp_path / "scores.json")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", _REPLICAS, str(table)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    counted, expected = result.pop("count")
    assert counted == expected and expected > 0
    for t, (first, second) in result.items():
        assert first == second, t
    assert result["0"][0] != result["1"][0]  # and the step changes the draws


# ------------------------------------------------------------------------------- priors


def test_rank_sign_agrees_with_the_flops_and_params_of_the_two_archs():
    for prior, cost in (("flops", SPACE.flops), ("params", SPACE.params)):
        scheme = rdnas.RDNASScheme(SPACE, seed=7, num_random=2, prior=prior)
        pair = tf.function(lambda t, scheme=scheme: scheme.pair(t, 0))
        signs = []
        for t in range(80):
            a, b, sign, _ = pair(tf.constant(t, tf.int64))
            ca, cb = cost(SPACE.parse(_code(a))), cost(SPACE.parse(_code(b)))
            assert float(sign) == (1.0 if cb > ca else -1.0), (t, ca, cb)
            signs.append(float(sign))
        assert 0 < signs.count(1.0) < 80  # both orders occur


def test_proxy_table_pairs_come_from_the_pool_with_the_tables_order(tmp_path):
    path = _table(tmp_path / "scores.json", n=8)
    payload = json.loads(path.read_text())
    scores = {r["code"]: r["scores"]["fake"] for r in payload["results"]}
    scheme = rdnas.RDNASScheme(SPACE, seed=1, prior="table", proxy_table=str(path),
                               proxy_name="fake", min_distance_quantile=0.0)
    seen_a = []
    for t in range(8):
        for j in range(2):
            a, b, sign, _ = scheme.pair(tf.constant(t, tf.int64), j)
            ca, cb = _code(a), _code(b)
            # The null row (the largest) is never drawn.
            assert scores.get(ca) is not None and scores.get(cb) is not None
            assert float(sign) == (1.0 if scores[cb] > scores[ca] else -1.0)
            seen_a.append(ca)
    # a is drawn without replacement per pass: 16 draws = 2 passes over the 8 codes.
    assert sorted(seen_a[:8]) == sorted(c for c, s in scores.items() if s is not None)
    # Ties: a is the better one (R3's k_a >= k_b branch), so the sign is -1.
    tied = _table(tmp_path / "tied.json", n=4, null=False, scores=[1.0] * 4)
    tie = rdnas.RDNASScheme(SPACE, seed=1, prior="table", proxy_table=str(tied),
                            proxy_name="fake", min_distance_quantile=0.0)
    assert {float(tie.pair(tf.constant(t, tf.int64), 0)[2]) for t in range(6)} == {-1.0}


def test_bad_proxy_tables_are_refused(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        rdnas.load_proxy_table(tmp_path / "none.json", "fake", SPACE)
    path = _table(tmp_path / "scores.json")
    with pytest.raises(ValueError, match="'zen' is not in"):
        rdnas.load_proxy_table(path, "zen", SPACE)
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a proxies stage scores.json"):
        rdnas.load_proxy_table(tmp_path / "bad.json", "fake", SPACE)
    one = _table(tmp_path / "one.json", n=1)
    with pytest.raises(ValueError, match="at least 2"):
        rdnas.load_proxy_table(one, "fake", SPACE)


# ---------------------------------------------------------------------------- lambda(t)


@pytest.mark.parametrize(
    "schedule, epochs_and_values",
    [
        # Shipped: min(2, epoch / 10), 0-based epochs (SCHEMES.md §4.2).
        ("warmup", [(0, 0.0), (10, 1.0), (19, 1.9), (20, 2.0), (69, 2.0)]),
        ("constant", [(0, 2.0), (69, 2.0)]),
        # 2 sin(0.8 pi e / E), E = 70.
        ("sine", [(0, 0.0), (35, 2 * math.sin(0.4 * math.pi)), (70, 2 * math.sin(0.8 * math.pi))]),
    ],
)
def test_lambda_at_its_end_points(schedule, epochs_and_values):
    spe = 5
    scheme = rdnas.RDNASScheme(SPACE, seed=0, steps_per_epoch=spe, epochs=70,
                               lambda_schedule=schedule)
    for epoch, value in epochs_and_values:
        for step in (epoch * spe, epoch * spe + spe - 1):  # the epoch's first and last step
            assert float(scheme.weight(tf.constant(step, tf.int64))) == pytest.approx(
                value, abs=1e-6
            ), (schedule, step)
    assert float(rdnas.lambda_schedule(10 * spe, "warmup", spe, 70, 1.0, 5.0)) == 1.0


# ------------------------------------------------------------------------------ members


def test_members_are_the_sandwich_then_the_pairs():
    scheme = rdnas.RDNASScheme(SPACE, seed=0, num_random=2, dropout=0.1, num_pairs=2,
                               steps_per_epoch=1, lambda_schedule="constant", lambda_max=1.5)
    members = scheme.members(tf.constant(4, tf.int64))
    assert [(m.name, m.target, m.pair) for m in members] == [
        ("largest", "labels", None),
        ("smallest", "teacher", None),
        ("random1", "teacher", None),
        ("random2", "teacher", None),
        ("pair1_a", "none", None),
        ("pair1_b", "rank_hinge", "pair1_a"),
        ("pair2_a", "none", None),
        ("pair2_b", "rank_hinge", "pair2_a"),
    ]
    assert members[0].is_teacher and members[0].regularize and members[0].dropout == 0.1
    assert not any(m.is_teacher or m.regularize or m.dropout for m in members[1:])
    assert float(members[5].weight) == 1.5 and members[4].weight == 1.0
    # Pair j's archs are the draws of pair(step, j), seeded apart from the random members.
    a, b, sign, _ = scheme.pair(tf.constant(4, tf.int64), 1)
    assert _code(members[6].arch) == _code(a) and _code(members[7].arch) == _code(b)
    assert float(members[7].rank_sign) == float(sign)
    codes = {_code(m.arch) for m in members[2:]}
    assert len(codes) == 6

    margin = rdnas.RDNASScheme(SPACE, seed=0, num_random=1, num_pairs=3, loss="margin",
                               margin_scale=0.2)
    members = margin.members(tf.constant(4, tf.int64))
    assert [(m.name, m.target) for m in members[3:]] == [
        ("pair1", "rank_margin"), ("pair2", "rank_margin"), ("pair3", "rank_margin")]
    a, b, _, _ = margin.pair(tf.constant(4, tf.int64), 0)
    assert _code(members[3].arch) == _code(b) and _code(members[3].pair_arch) == _code(a)
    distance = ss.arch_distance(_code(a), _code(b))
    assert float(members[3].margin) == pytest.approx(0.2 * distance / margin.mean_distance)


def test_get_config_round_trips(tmp_path):
    path = _table(tmp_path / "scores.json")
    scheme = rdnas.RDNASScheme(SPACE, seed=2, num_random=1, bounds=ss.COMPETITION_BOUNDS,
                               prior="table", proxy_table=str(path), proxy_name="fake",
                               loss="margin", lambda_schedule="sine", epochs=9,
                               steps_per_epoch=4)
    clone = rdnas.RDNASScheme.from_config(scheme.get_config())
    assert clone.get_config() == scheme.get_config()
    t = tf.constant(6, tf.int64)
    for m, n in zip(scheme.members(t), clone.members(t)):
        assert _code(m.arch) == _code(n.arch)


# --------------------------------------------------------------------------- training


def _fit(scheme, steps=3):
    keras.utils.set_random_seed(0)
    net = supernet_lib.Supernet(space="fmnist")
    net.build()
    trainer = trainer_lib.SupernetTrainer(net, scheme, weight_decay=1e-4)
    trainer.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), jit_compile=False)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(8 * steps, 28, 28, 1)).astype("float32")
    labels = rng.integers(0, 10, 8 * steps).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    history = trainer.fit(ds, epochs=1, verbose=0)
    return trainer, history.history


@pytest.mark.slow  # two traces of a multi-member step: minutes on a loaded 2-core host
def test_a_short_fit_logs_finite_losses_and_the_hinge(tmp_path):
    scheme = rdnas.RDNASScheme(SPACE, seed=0, num_random=1, num_pairs=1, steps_per_epoch=1,
                               lambda_schedule="constant", lambda_max=2.0, max_tries=1,
                               min_distance_quantile=0.9)
    trainer, history = _fit(scheme)
    keys = {"loss", "loss_largest", "loss_smallest", "loss_random1", "loss_pair1_a",
            "loss_pair1_b"}
    assert keys <= set(history)
    assert all(math.isfinite(history[k][-1]) for k in keys)
    assert history["loss_pair1_a"][-1] == 0.0  # forward only
    # Exhausted pairs are counted in the scheme's state (quantile 0.9 with one try fails
    # often): a count, between 0 and the 3 pairs of the 3 steps.
    assert 0 <= int(scheme.exhausted_pairs.numpy()) <= 3
    assert int(trainer.optimizer.iterations.numpy()) == 3

    path = _table(tmp_path / "scores.json")
    table = rdnas.RDNASScheme(SPACE, seed=0, num_random=0, num_pairs=1, prior="table",
                              proxy_table=str(path), proxy_name="fake", loss="margin",
                              lambda_schedule="constant", margin_scale=0.5)
    _, history = _fit(table, steps=2)
    assert math.isfinite(history["loss_pair1"][-1]) and history["loss_pair1"][-1] >= 0.0


# ------------------------------------------------------------------------------- config


def _section(**changes):
    section = ml_collections.ConfigDict(dict(rdnas.DEFAULTS))
    section.update(changes)
    return section


def test_the_defaults_are_valid_and_build_through_build_scheme():
    from configs import fmnist

    rdnas.validate_config(_section())
    config = fmnist.get_config("tiny")
    config.train.scheme = "rdnas"
    if "rdnas" not in config.train:
        with config.train.unlocked():
            config.train.rdnas = _section()
    scheme = schemes.build_scheme(config, steps_per_epoch=7)
    assert isinstance(scheme, schemes.RDNASScheme)
    assert scheme.steps_per_epoch == 7 and scheme.num_pairs == 2 and scheme.prior == "flops"
    assert schemes.build_scheme(config).steps_per_epoch == config.train.steps_per_epoch
    config.train.steps_per_epoch = 0
    with pytest.raises(ValueError, match="steps per epoch"):
        schemes.build_scheme(config)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(num_pairs=0), r"config.train.rdnas.num_pairs=0 is invalid"),
        (dict(prior="zen"), r"config.train.rdnas.prior='zen' is invalid"),
        (dict(prior="table"), r"config.train.rdnas.proxy_table='' is invalid.*prior='table'"),
        (dict(prior="table", proxy_table="s.json"), r"proxy_name='' is invalid"),
        (dict(proxy_name="zen"), r"proxy_name='zen' is invalid.*prior='flops'"),
        (dict(loss="ranknet"), r"config.train.rdnas.loss='ranknet' is invalid"),
        (dict(margin_scale=-1.0), r"margin_scale=-1.0 is invalid"),
        (dict(lambda_schedule="cosine"), r"lambda_schedule='cosine' is invalid"),
        (dict(lambda_ramp_epochs=0.0), r"lambda_ramp_epochs=0.0 is invalid"),
        (dict(min_distance_quantile=1.0), r"min_distance_quantile=1.0 is invalid"),
        (dict(max_tries=0), r"max_tries=0 is invalid"),
    ],
)
def test_validator_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        rdnas.validate_config(_section(**changes))


def test_validator_refuses_missing_and_unknown_fields():
    section = _section()
    del section["max_tries"]
    with pytest.raises(ValueError, match="config.train.rdnas.max_tries is missing"):
        rdnas.validate_config(section)
    with pytest.raises(ValueError, match="num_pair is not a field.*did you mean"):
        rdnas.validate_config(_section(num_pair=2))


def test_scheme_arguments_are_checked():
    with pytest.raises(ValueError, match="steps_per_epoch=0"):
        rdnas.RDNASScheme(SPACE, steps_per_epoch=0)
    with pytest.raises(ValueError, match="loss='ranknet'"):
        rdnas.RDNASScheme(SPACE, loss="ranknet")

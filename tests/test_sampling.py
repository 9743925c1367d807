"""tfnas.sampling: in-graph samplers against their intended distributions, and replicas."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfnas import sampling
from tfnas import search_space as ss

ROOT = Path(__file__).resolve().parents[1]
SPACES = ["fmnist", "imagenet"]
DRAWS = 5000


def _draw_many(fn, n=DRAWS):
    """n draws of fn(seed) for seeds (0, i), in one graph."""
    seeds = tf.stack([tf.zeros([n], tf.int64), tf.range(n, dtype=tf.int64)], axis=1)
    return tf.function(lambda s: tf.map_fn(fn, s, fn_output_signature=tf.int32))(seeds).numpy()


def _assert_uniform(values, support, what):
    """Each value of ``support`` is drawn with frequency 1/len(support), within 5 s.d."""
    values = np.asarray(values)
    assert set(np.unique(values)) <= set(support), what
    p = 1.0 / len(support)
    sd = np.sqrt(len(values) * p * (1 - p))
    for v in support:
        count = int((values == v).sum())
        assert abs(count - len(values) * p) <= 5 * sd, (what, v, count, len(values) * p)


@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("bounds", [ss.FULL_BOUNDS, ss.COMPETITION_BOUNDS,
                                    ss.Bounds(digit_hi=(1, 1, 2, 4, 6), depth_lo=(3, 2, 5, 4))])
def test_bounded_draws_match_the_intended_marginals(space_name, bounds):
    space = ss.get_space(space_name)
    hi, lo = sampling.bounds_tensors(bounds)
    codes = _draw_many(lambda s: sampling.bounded_arch(s, space, hi, lo))
    archs = [space.parse("".join(map(str, c))) for c in codes]  # every draw is a valid code
    assert all(bounds.contains(a) for a in archs)
    for stage in range(4):
        depths = [a.depths[stage] for a in archs]
        _assert_uniform(depths, range(bounds.depth_lo[stage], ss.MAX_DEPTHS[stage] + 1),
                        f"depth {stage + 1}")
        top = range(1, bounds.stage_hi(stage) + 1)
        _assert_uniform([a.outs[stage] for a in archs], top, f"out {stage + 1}")
        # The first block of a stage always exists; its mid is uniform within the bound.
        _assert_uniform([a.mids[stage][0] for a in archs], top, f"mid {stage + 1}.1")
    _assert_uniform([a.stem for a in archs], range(1, bounds.digit_hi[0] + 1), "stem")


def test_bounds_are_tensors_one_trace_for_every_phase():
    space = ss.get_space("fmnist")
    traces = []

    @tf.function(input_signature=[tf.TensorSpec([2], tf.int64), tf.TensorSpec([5], tf.int32),
                                  tf.TensorSpec([4], tf.int32)])
    def draw(seed, hi, lo):
        traces.append(1)
        return sampling.bounded_arch(seed, space, hi, lo)

    seed = tf.constant([0, 3], tf.int64)
    for bounds in (ss.FULL_BOUNDS, ss.COMPETITION_BOUNDS, ss.Bounds((1,) * 5, (5, 5, 8, 5))):
        code = "".join(map(str, draw(seed, *sampling.bounds_tensors(bounds)).numpy()))
        assert bounds.contains(space.parse(code))
    assert len(traces) == 1
    # The narrowest bounds leave one arch: the largest.
    assert code == space.largest().code


def test_smallest_of_a_bounded_space_by_hand():
    space = ss.get_space("imagenet")
    # Depths 2, stem and stage-1 digits 3, stage 2 digits 3, stage 3 digits 5, stage 4 7.
    assert space.smallest(ss.COMPETITION_BOUNDS).code == (
        "1222233333000000333300000055550000000000007777000000"
    )
    assert space.smallest().code == "1222277777000000777700000077770000000000007777000000"
    assert space.largest(ss.COMPETITION_BOUNDS) == space.largest()
    assert ss.COMPETITION_BOUNDS.contains(space.smallest(ss.COMPETITION_BOUNDS))
    assert not ss.COMPETITION_BOUNDS.contains(space.smallest())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(digit_hi=(3, 2, 3, 5, 7)), "stem bound .3. and the stage-1 bound .2."),
        (dict(digit_hi=(3, 3, 3, 5)), "expected 5 integers"),
        (dict(digit_hi=(0, 0, 3, 5, 7)), "expected 5 integers in 1..7"),
        (dict(depth_lo=(1, 2, 2, 2)), "within its stage's range"),
        (dict(depth_lo=(2, 2, 9, 2)), "within its stage's range"),
    ],
)
def test_bounds_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ss.Bounds(**kwargs)


def test_numpy_bounded_sampler_stays_inside_and_unbounded_draws_are_unchanged():
    space = ss.get_space("fmnist")
    rng = np.random.default_rng(1)
    assert all(
        ss.COMPETITION_BOUNDS.contains(space.sample(rng, ss.COMPETITION_BOUNDS))
        for _ in range(300)
    )
    # The v1 benchmark's archs are sample_many(40, seed=2022): unbounded draws stay as they were.
    v1 = (ROOT / "benchmarks" / "fmnist_ranking" / "archs.txt").read_text().split("\n")
    v1_codes = [c for c in v1 if c[:1].isdigit()]
    assert [a.code for a in space.sample_many(3, seed=2022)] == v1_codes[:3]


def test_list_sampler_covers_the_table_once_per_pass():
    space = ss.get_space("fmnist")
    table = np.stack([a.digits() for a in space.sample_many(7, seed=4)]).astype(np.int32)
    draw = tf.function(lambda i: sampling.list_arch(tf.constant(9, tf.int64), i, table))
    drawn = [tuple(draw(tf.constant(i, tf.int64)).numpy()) for i in range(21)]
    rows = {tuple(r) for r in table}
    for start in (0, 7, 14):
        assert sorted(drawn[start:start + 7]) == sorted(rows)  # a permutation each pass
    assert drawn[:7] != drawn[7:14]  # a new order per pass
    again = [tuple(draw(tf.constant(i, tf.int64)).numpy()) for i in range(7)]
    assert again == drawn[:7]  # a pure function of (seed, index)


def test_bucket_sampler_draws_depths_from_the_bucket():
    space = ss.get_space("fmnist")
    pairs = tf.constant([[2, 2], [8, 5]], tf.int32)
    hi, lo = sampling.bounds_tensors(ss.FULL_BOUNDS)
    codes = _draw_many(lambda s: sampling.bucket_arch(s, space, pairs, hi, lo), n=400)
    d34 = [(c[3], c[4]) for c in codes]
    assert set(d34) == {(2, 2), (8, 5)}
    _assert_uniform([d == (2, 2) for d in d34], [False, True], "bucket")
    for c in codes:
        space.parse("".join(map(str, c)))  # the slots follow the new depths


def test_arch_distance_by_hand_and_in_graph():
    space = ss.get_space("fmnist")
    a = space.largest().code
    b = "1222211111000000111100000011110000000000001111000000"  # depths 2, digits 1
    # Same digits where both have blocks; b lacks 3 + 3 + 6 + 3 = 15 of a's 23 blocks, each
    # with a mid and an out read as 9 against 1: 15 * 2 * 8 = 240.
    assert ss.arch_distance(a, b) == 240
    archs = space.sample_many(20, seed=8)
    for x, y in zip(archs[:10], archs[10:]):
        got = sampling.arch_distance(x.digits(), y.digits()).numpy()
        assert got == ss.arch_distance(x, y)


def test_rejection_sampler_respects_the_threshold_and_is_bounded():
    space = ss.get_space("fmnist")
    anchor = tf.constant(space.largest().digits())
    hi, lo = sampling.bounds_tensors(ss.FULL_BOUNDS)

    def draw(seed):
        return sampling.bounded_arch(seed, space, hi, lo)

    @tf.function
    def sample(seed, threshold, max_tries):
        return sampling.rejection_arch(
            seed, draw, lambda a: sampling.arch_distance(a, anchor) >= threshold, max_tries
        )

    for i in range(20):
        arch, tries, exhausted = sample(tf.constant([1, i], tf.int64), 200, 50)
        assert not exhausted and 1 <= tries <= 50
        assert sampling.arch_distance(arch, anchor) >= 200
    _, tries, exhausted = sample(tf.constant([1, 0], tf.int64), 10_000, 5)
    assert exhausted and tries == 5


# Runs in a fresh process: the CPU must be split into logical devices before TF starts.
_REPLICAS = textwrap.dedent(
    """
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    from tfnas import distribute
    distribute.split_cpu(2)
    import numpy as np, tensorflow as tf
    from tfnas import sampling, search_space as ss

    space = ss.get_space("fmnist")
    table = np.stack([a.digits() for a in space.sample_many(5, seed=4)]).astype(np.int32)
    pairs = tf.constant([[2, 2], [3, 4], [8, 5]], tf.int32)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    @tf.function
    def step(t):
        hi, lo = sampling.bounds_tensors(ss.COMPETITION_BOUNDS)
        seed = sampling.member_seed(3, t, 1)
        return tf.stack([
            sampling.bounded_arch(seed, space, hi, lo),
            sampling.bucket_arch(seed, space, pairs, hi, lo),
            sampling.list_arch(3, t * 4 + 1, table),
            sampling.rejection_arch(
                seed, lambda s: sampling.bounded_arch(s, space, hi, lo),
                lambda a: sampling.arch_distance(a, table[0]) >= 60, 20)[0],
        ])

    out = {}
    for t in range(3):
        per_replica = strategy.run(step, args=(tf.constant(t, tf.int64),))
        values = [v.numpy().tolist() for v in strategy.experimental_local_results(per_replica)]
        out[t] = values
    print(json.dumps(out))
    """
)


def test_every_replica_draws_the_same_archs():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", _REPLICAS], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for t, (first, second) in result.items():
        assert first == second, t
    assert result["0"][0] != result["1"][0]  # and the step changes the draws


def test_schemes_sample_the_configured_bounds():
    from configs import imagenet
    from tfnas import schemes

    config = imagenet.get_config("tiny")
    assert config.train.bounds == "competition"
    scheme = schemes.build_scheme(config)
    space = ss.get_space("imagenet")
    members = scheme.members(tf.constant(3, tf.int64))
    codes = ["".join(map(str, m.arch.numpy())) for m in members]
    assert codes[1] == space.smallest(ss.COMPETITION_BOUNDS).code  # the sandwich's smallest
    draws = [scheme.sample(tf.constant(t, tf.int64), 0).numpy() for t in range(200)]
    assert all(
        ss.COMPETITION_BOUNDS.contains(space.parse("".join(map(str, d)))) for d in draws
    )
    # With the full space, the draws are uniform_arch's, as they always were.
    config.train.bounds = "full"
    full = schemes.build_scheme(config)
    seed = sampling.member_seed(config.seed, tf.constant(5, tf.int64), 1)
    np.testing.assert_array_equal(
        full.sample(tf.constant(5, tf.int64), 1), sampling.uniform_arch(seed, space)
    )

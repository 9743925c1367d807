"""tfnas.ground_truth: reliability statistics against hand computation; shard files."""

import json
import math

import pytest

from tfnas import ground_truth as gt

# Four archs, two seeds. By hand:
#   per-arch seed differences are all 0.01 -> within-arch variance 0.01**2 / 2 = 5e-5,
#   seed s.d. sqrt(5e-5);
#   seed means 0.705, 0.715, 0.745, 0.755 -> deviations +-0.025, +-0.015 from 0.73,
#   arch s.d. sqrt(2 * (0.025**2 + 0.015**2) / 3) = sqrt(0.0017 / 3);
#   seed 0 strictly increasing, seed 1 two tied pairs: 4 concordant pairs, none discordant,
#   2 ties in seed 1 -> tau-b = 4 / sqrt(6 * 4);
#   centred seed 0 (-3, -1, 1, 3)/100, seed 1 (-2, -2, 2, 2)/100 -> r = 16 / sqrt(20 * 16)
#   = 2 / sqrt(5); Spearman-Brown for 2 seeds 2r / (1 + r).
SEED0 = {"a": 0.70, "b": 0.72, "c": 0.74, "d": 0.76}
SEED1 = {"a": 0.71, "b": 0.71, "c": 0.75, "d": 0.75}
R = 2 / math.sqrt(5)
RELIABILITY = 2 * R / (1 + R)


def test_reliability_by_hand():
    rel = gt.reliability([SEED0, SEED1])
    assert rel["n"] == 4 and rel["seeds"] == 2
    assert rel["mean_acc"] == pytest.approx(0.73)
    assert rel["seed_sd"] == pytest.approx(math.sqrt(5e-5))
    assert rel["arch_sd"] == pytest.approx(math.sqrt(0.0017 / 3))
    assert rel["seed_tau"] == pytest.approx(4 / math.sqrt(24))
    assert rel["seed_r"] == pytest.approx(R)
    assert rel["split_half_r"] == pytest.approx(R)
    assert rel["reliability"] == pytest.approx(RELIABILITY)
    # tau = (2 / pi) asin(r) for a bivariate normal; a perfect ranker correlates at sqrt(R).
    assert rel["expected_ceiling"] == pytest.approx(2 / math.pi * math.asin(math.sqrt(RELIABILITY)))
    assert rel["expected_replicate_tau"] == pytest.approx(2 / math.pi * math.asin(RELIABILITY))


def test_reliability_uses_common_codes_and_needs_two_seeds():
    extra = dict(SEED0, e=0.9)
    assert gt.reliability([extra, SEED1])["n"] == 4
    with pytest.raises(ValueError, match="at least 2 seed"):
        gt.reliability([SEED0])
    with pytest.raises(ValueError, match="only 2 archs"):
        gt.reliability([{"a": 1, "b": 2}, {"a": 1, "b": 3}])


def test_spearman_brown_and_ceiling_end_points():
    assert gt.spearman_brown(0.5, 1) == pytest.approx(0.5)
    assert gt.spearman_brown(0.5, 3) == pytest.approx(1.5 / 2.0)
    assert gt.ceiling_from_reliability(1.0) == pytest.approx(1.0)
    assert gt.ceiling_from_reliability(0.0) == 0.0
    assert gt.ceiling_from_reliability(-0.2) == 0.0


def test_expected_agreement_by_hand():
    """r = sqrt(0.64 * 0.36) = 0.48, tau = (2 / pi) asin(0.48); rel_a = rel_b gives the
    replicate tau; no reliability, no agreement."""
    assert gt.expected_agreement(0.64, 0.36) == pytest.approx(2 / math.pi * math.asin(0.48))
    assert gt.expected_agreement(0.5, 0.5) == pytest.approx(2 / math.pi * math.asin(0.5))
    assert gt.expected_agreement(1.0, 1.0) == pytest.approx(1.0)
    assert gt.expected_agreement(0.0, 0.9) == 0.0
    assert gt.expected_agreement(float("nan"), 0.9) == 0.0


def test_seed_mean_and_tau():
    mean = gt.seed_mean([SEED0, SEED1])
    assert mean == pytest.approx({"a": 0.705, "b": 0.715, "c": 0.745, "d": 0.755})
    assert gt.tau(SEED0, {"a": 4, "b": 3, "c": 2, "d": 1, "z": 0}) == pytest.approx(-1.0)


def _write(path, header, rows):
    path.write_text("\n".join(json.dumps(x) for x in [header, *rows]) + "\n")


def test_merge_shards_writes_the_unsharded_file(tmp_path):
    header = {"version": 1, "recipe_hash": "h1", "recipe": {"r": 1}}
    _write(gt.gt_path(tmp_path, 0, (1, 2)), header, [{"code": "a", "acc": 0.5}])
    _write(gt.gt_path(tmp_path, 0, (2, 2)), header, [{"code": "b", "acc": 0.6}])
    out = gt.merge_shards(tmp_path, 0, ["a", "b"])
    assert out == tmp_path / "ground_truth.seed0.jsonl"
    head, rows = gt.read_ground_truth(out)
    assert head == header and {c: r["acc"] for c, r in rows.items()} == {"a": 0.5, "b": 0.6}
    results = json.loads(out.with_suffix(".json").read_text())
    assert [r["code"] for r in results["results"]] == ["a", "b"]


def test_merge_shards_refuses_mixed_recipes_and_gaps(tmp_path):
    _write(gt.gt_path(tmp_path, 0, (1, 2)), {"recipe_hash": "h1", "recipe": {}}, [{"code": "a"}])
    _write(gt.gt_path(tmp_path, 0, (2, 2)), {"recipe_hash": "h2", "recipe": {}}, [{"code": "b"}])
    with pytest.raises(ValueError, match="different recipes"):
        gt.merge_shards(tmp_path, 0, ["a", "b"])
    _write(gt.gt_path(tmp_path, 0, (2, 2)), {"recipe_hash": "h1", "recipe": {}}, [])
    with pytest.raises(ValueError, match="1 codes missing"):
        gt.merge_shards(tmp_path, 0, ["a", "b"])

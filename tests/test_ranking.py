"""Ranking metrics: values against scipy, bootstrap CIs, top-k, partial correlation, report."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from tfnas import ranking

# The 30-arch ImageNet ground truth, vendored (tests/data/README.md).
GT30 = Path(__file__).resolve().parent / "data" / "cvpr22" / "gt_arch30_imagenet2500.json"

# Fixed data with ties on both sides (tau-b differs from tau-a here).
X = np.array([1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 8, 9], float)
Y = np.array([2, 1, 3, 3, 5, 4, 6, 6, 9, 7, 8, 8], float)


def _noisy(n, noise, seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.normal(size=n)
    return gt + noise * rng.normal(size=n), gt


# ------------------------------------------------------------------ correlations


@pytest.mark.parametrize(
    "fn, ref",
    [
        (ranking.kendall_tau, lambda x, y: stats.kendalltau(x, y, variant="b")),
        (ranking.spearman_rho, stats.spearmanr),
        (ranking.pearson_r, stats.pearsonr),
    ],
)
def test_correlations_match_scipy_with_ties(fn, ref):
    result = fn(X, Y, n_boot=0)
    expected = ref(X, Y)
    assert result["n"] == len(X)
    assert result["value"] == pytest.approx(expected.statistic, abs=1e-12)
    assert result["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    assert result["ci"] is None and result["n_boot_used"] == 0


def test_tau_b_is_not_tau_a_on_tied_data():
    # Guards against the tie-free formula: tau-b corrects the denominator for ties.
    value = ranking.kendall_tau(X, Y, n_boot=0)["value"]
    n = len(X)
    concordance = sum(
        np.sign(X[i] - X[j]) * np.sign(Y[i] - Y[j]) for i in range(n) for j in range(i)
    )
    assert value != pytest.approx(concordance / (n * (n - 1) / 2))


def _resamples(n=25, rows=40, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, size=n).astype(float)  # many ties, and resampling adds more
    y = rng.integers(0, 6, size=n).astype(float)
    return rng.integers(0, n, size=(rows, n)), x, y


@pytest.mark.parametrize(
    "batched, ref",
    [
        (ranking._kendall_stat, lambda x, y: stats.kendalltau(x, y, variant="b").statistic),
        (ranking._spearman_stat, lambda x, y: stats.spearmanr(x, y).statistic),
        (ranking._pearson_stat, lambda x, y: stats.pearsonr(x, y).statistic),
    ],
)
def test_batched_statistics_used_by_the_bootstrap_match_scipy(batched, ref):
    index, x, y = _resamples()
    expected = [ref(x[row], y[row]) for row in index]
    np.testing.assert_allclose(batched(index, x, y), expected, atol=1e-12)


def test_batched_kendall_scipy_fallback_for_many_archs_agrees(monkeypatch):
    index, x, y = _resamples()
    fast = ranking._kendall_stat(index, x, y)
    monkeypatch.setattr(ranking, "_MAX_N_MATRIX", 10)
    np.testing.assert_allclose(ranking._kendall_stat(index, x, y), fast, atol=1e-12)


def test_batched_statistics_are_nan_on_constant_resamples():
    index = np.array([[0, 1, 2], [1, 1, 1]])
    x, y = np.array([0.1, 0.1, 0.1]), np.array([1.0, 2.0, 3.0])
    for fn in (ranking._kendall_stat, ranking._spearman_stat, ranking._pearson_stat):
        assert np.isnan(fn(index, x, y)).all()
        assert np.isnan(fn(index, y, x)).all()


# --------------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("fn", [ranking.kendall_tau, ranking.spearman_rho, ranking.pearson_r])
def test_bootstrap_ci_contains_estimate_and_is_deterministic(fn):
    pred, gt = _noisy(40, 1.0)
    a = fn(pred, gt, n_boot=500, seed=3)
    low, high = a["ci"]
    assert low < a["value"] < high
    assert a["n_boot"] == 500 and a["n_boot_used"] == 500
    assert fn(pred, gt, n_boot=500, seed=3) == a
    assert fn(pred, gt, n_boot=500, seed=4)["ci"] != a["ci"]


def test_bootstrap_ci_narrows_with_n():
    widths = []
    for n in (20, 80, 320):
        pred, gt = _noisy(n, 1.0, seed=n)
        low, high = ranking.kendall_tau(pred, gt, n_boot=400, seed=0)["ci"]
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]


def test_bootstrap_skips_constant_resamples_and_counts_them():
    # With 3 archs, a resample drawing only archs 0 and 1 has constant pred.
    pred, gt = [1.0, 1.0, 2.0], [1.0, 2.0, 3.0]
    result = ranking.kendall_tau(pred, gt, n_boot=200, seed=5)
    index = np.random.default_rng(5).integers(0, 3, size=(200, 3))
    constant = (np.ptp(np.asarray(pred)[index], axis=1) == 0) | (
        np.ptp(np.asarray(gt)[index], axis=1) == 0
    )
    assert 0 < constant.sum() < 200
    assert result["n_boot_used"] == 200 - constant.sum()
    assert result["n_boot"] == 200


def test_bootstrap_level_and_count_are_validated():
    pred, gt = _noisy(10, 1.0)
    with pytest.raises(ValueError, match=r"CI level must be in \(0, 1\), e.g. 0.95, got 95"):
        ranking.kendall_tau(pred, gt, level=95)
    with pytest.raises(ValueError, match="n_boot must be >= 0 resamples, got -1"):
        ranking.kendall_tau(pred, gt, n_boot=-1)


# ------------------------------------------------------------------------- top-k


def test_precision_at_k_hand_computed():
    pred = [5, 4, 3, 2, 1]
    gt = [5, 4, 1, 2, 3]
    assert ranking.precision_at_k(pred, gt, 1) == 1.0
    assert ranking.precision_at_k(pred, gt, 2) == 1.0
    assert ranking.precision_at_k(pred, gt, 3) == pytest.approx(2 / 3)  # {0,1,2} vs {0,1,4}
    assert ranking.precision_at_k(pred, gt, 5) == 1.0
    assert ranking.precision_at_k(pred[::-1], gt, 1) == 0.0
    assert ranking.precision_at_k(pred[::-1], gt, 2) == 0.0  # {3,4} vs {0,1}


def test_top_k_kendall_uses_the_best_by_ground_truth():
    gt = [10, 9, 8, 7, 6, 5]
    pred = [1, 2, 3, 6, 5, 4]  # the 3 best by gt are ordered backwards
    assert ranking.top_k_kendall(pred, gt, 3) == pytest.approx(-1.0)
    assert ranking.top_k_kendall(pred, gt, 6) == pytest.approx(
        stats.kendalltau(pred, gt, variant="b").statistic
    )
    assert ranking.top_k_kendall(pred, gt, 1) is None
    assert ranking.top_k_kendall([1, 1, 3, 4], [4, 3, 2, 1], 2) is None  # pred tied there


def test_k_out_of_range_is_an_error():
    with pytest.raises(
        ValueError, match=r"k must be an integer in 1..3 \(the number of archs\), got 4"
    ):
        ranking.precision_at_k([1, 2, 3], [1, 2, 3], 4)


def test_resolve_ks_fractions_absolute_skip_and_dedupe():
    resolved, skipped = ranking.resolve_ks([0.1, 5, 50, 0.5, 15, 3.0], 30)
    assert resolved == [("10%", 3), ("5", 5), ("50%", 15)]
    assert skipped == ["50"]
    with pytest.raises(ValueError, match="k 1.5 is neither an arch count"):
        ranking.resolve_ks([1.5], 30)
    with pytest.raises(TypeError, match="k 'top' is neither an arch count"):
        ranking.resolve_ks(["top"], 30)


# ----------------------------------------------------------------------- partial


def test_partial_correlations_are_one_when_pred_equals_gt():
    _, gt = _noisy(30, 0.0)
    control = gt + np.random.default_rng(9).normal(size=30)
    assert ranking.partial_spearman(gt, gt, control, n_boot=0)["value"] == pytest.approx(1.0)
    assert ranking.partial_kendall(gt, gt, control, n_boot=0)["value"] == pytest.approx(1.0)


def test_partial_spearman_equals_residual_correlation_and_the_closed_form():
    pred, gt = _noisy(50, 1.0, seed=2)
    control = gt + pred + np.random.default_rng(3).normal(size=50)
    value = ranking.partial_spearman(pred, gt, control, n_boot=0)["value"]
    rx, ry, rz = (stats.rankdata(a) for a in (pred, gt, control))
    design = np.stack([np.ones(50), rz], axis=1)

    def residual(r):
        return r - design @ np.linalg.lstsq(design, r, rcond=None)[0]

    assert value == pytest.approx(np.corrcoef(residual(rx), residual(ry))[0, 1], abs=1e-12)
    # The same number from the textbook first-order partial of Spearman rhos.
    r_xy, r_xz, r_yz = (
        stats.spearmanr(a, b).statistic for a, b in ((pred, gt), (pred, control), (gt, control))
    )
    closed = (r_xy - r_xz * r_yz) / math.sqrt((1 - r_xz**2) * (1 - r_yz**2))
    assert value == pytest.approx(closed, abs=1e-12)


def test_partial_kendall_matches_kendall_1942_formula_from_scipy():
    pred, gt = _noisy(40, 1.0, seed=4)
    control = np.round(gt + pred, 1)
    t_xy, t_xz, t_yz = (
        stats.kendalltau(a, b, variant="b").statistic
        for a, b in ((pred, gt), (pred, control), (gt, control))
    )
    expected = (t_xy - t_xz * t_yz) / math.sqrt((1 - t_xz**2) * (1 - t_yz**2))
    result = ranking.partial_kendall(pred, gt, control, n_boot=200, seed=0)
    assert result["value"] == pytest.approx(expected, abs=1e-12)
    assert result["ci"][0] < result["value"] < result["ci"][1]


def test_partial_is_undefined_when_the_ranker_is_the_control():
    pred, gt = _noisy(20, 1.0)
    for fn in (ranking.partial_kendall, ranking.partial_spearman):
        result = fn(pred, gt, 2 * pred + 1, n_boot=50)
        assert result["value"] is None
        assert result["ci"] is None and result["n_boot_used"] == 0


# ------------------------------------------------------------------ input errors


def test_short_input_is_an_error():
    with pytest.raises(
        ValueError, match="pred has 2 scores; a rank correlation needs at least 3 archs"
    ):
        ranking.kendall_tau([1, 2], [1, 2])


def test_nan_input_is_an_error():
    with pytest.raises(
        ValueError, match=r"gt has 1 non-finite scores \(NaN/inf\) of 4, at positions \[2\]"
    ):
        ranking.spearman_rho([1, 2, 3, 4], [1, 2, float("nan"), 4])


def test_constant_and_mismatched_input_are_errors():
    with pytest.raises(ValueError, match=r"pred is constant \(3 archs all scored 7\)"):
        ranking.pearson_r([7, 7, 7], [1, 2, 3])
    with pytest.raises(ValueError, match="equally long .* got pred: 3, gt: 4"):
        ranking.pearson_r([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(ValueError, match=r"one-dimensional .* got shape \(3, 1\)"):
        ranking.pearson_r([[1], [2], [3]], [1, 2, 3])


# ------------------------------------------------------------------------ report


@dataclasses.dataclass(frozen=True)
class _Arch:
    code: str


class _FakeSpace:
    """Duck-typed search space: FLOPs and params looked up per code."""

    name = "fake"

    def __init__(self, flops, params):
        self._flops, self._params = flops, params

    def parse(self, code):
        if code not in self._flops:
            raise ValueError(f"unknown code {code}")
        return _Arch(code)

    def flops(self, arch):
        return self._flops[arch.code]

    def params(self, arch):
        return self._params[arch.code]


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    codes = [f"c{i:03d}" for i in range(40)]
    flops = {c: int(f) for c, f in zip(codes, rng.integers(100, 1000, 40))}
    params = {c: int(p) for c, p in zip(codes, rng.integers(10, 100, 40))}
    gt = {c: flops[c] / 1000 + rng.normal(0, 0.2) for c in codes}
    pred = {c: gt[c] + rng.normal(0, 0.1) for c in codes}
    return _FakeSpace(flops, params), pred, gt


def test_report_has_the_pred_and_flops_params_baselines(toy):
    space, pred, gt = toy
    report = ranking.ranking_report(pred, gt, space, ks=(5, 0.5, 100), n_boot=100)
    assert list(report["rankers"]) == ["supernet", "flops", "params"]
    assert report["n"] == 40 and report["space"] == "fake"
    assert report["ks"] == [{"label": "5", "k": 5}, {"label": "50%", "k": 20}]
    assert report["ks_skipped"] == ["100"]
    codes = sorted(gt)
    g = [gt[c] for c in codes]
    for name, scores in (("supernet", pred), ("flops", space._flops), ("params", space._params)):
        section = report["rankers"][name]
        s = [scores[c] for c in codes]
        assert section["kendall_tau"]["value"] == pytest.approx(
            stats.kendalltau(s, g, variant="b").statistic, abs=1e-12
        )
        assert section["spearman_rho"]["value"] == pytest.approx(
            stats.spearmanr(s, g).statistic, abs=1e-12
        )
        assert section["pearson_r"]["value"] == pytest.approx(
            stats.pearsonr(s, g).statistic, abs=1e-12
        )
        assert [t["k"] for t in section["top_k"]] == [5, 20]
        assert section["kendall_tau"]["n_boot_used"] == 100
    assert report["rankers"]["flops"]["partial_flops"]["kendall_tau"]["value"] is None
    assert report["rankers"]["params"]["partial_flops"]["kendall_tau"]["value"] is not None
    json.dumps(report, allow_nan=False)  # JSON-ready: no NaN


def test_report_without_pred_has_only_baselines(toy):
    space, _, gt = toy
    report = ranking.ranking_report(None, gt, space, n_boot=0)
    assert list(report["rankers"]) == ["flops", "params"]


def test_report_matches_by_code_not_order(toy):
    space, pred, gt = toy
    shuffled = dict(reversed(list(pred.items())))
    a = ranking.ranking_report(pred, gt, space, n_boot=20)
    b = ranking.ranking_report(shuffled, gt, space, n_boot=20)
    assert a == b


def test_report_missing_codes_error_names_counts_and_examples(toy):
    space, pred, gt = toy
    pred = {c: v for c, v in pred.items() if c not in ("c000", "c001")}
    pred["zzz"] = 1.0
    with pytest.raises(ValueError) as info:
        ranking.ranking_report(pred, gt, space, n_boot=0)
    message = str(info.value)
    assert "2 of 40 ground-truth codes have no supernet score (e.g. 'c000', 'c001')" in message
    assert "1 of 39 supernet codes have no ground truth (e.g. 'zzz')" in message


def test_report_can_drop_scored_codes_without_ground_truth(toy):
    space, pred, gt = toy
    extra = dict(pred, zzz=1.0)
    with pytest.raises(ValueError, match="pass drop_unmatched_pred=True"):
        ranking.ranking_report(extra, gt, space, n_boot=0)
    report = ranking.ranking_report(extra, gt, space, n_boot=0, drop_unmatched_pred=True)
    assert report["inputs"]["pred_dropped"] == 1
    plain = ranking.ranking_report(pred, gt, space, n_boot=0)
    assert report["rankers"] == plain["rankers"]


def test_report_averages_duplicate_codes(toy):
    space, pred, gt = toy
    pairs = list(pred.items()) + [("c000", pred["c000"] + 1.0)]
    report = ranking.ranking_report(pairs, gt, space, n_boot=0)
    assert report["inputs"]["pred_duplicates"] == 1
    averaged = dict(pred, c000=pred["c000"] + 0.5)
    expected = ranking.ranking_report(averaged, gt, space, n_boot=0)
    assert report["rankers"] == expected["rankers"]


def test_report_input_errors(toy):
    space, pred, gt = toy
    with pytest.raises(ValueError, match="ground truth has 2 archs; .* at least 3"):
        ranking.ranking_report(None, dict(list(gt.items())[:2]), space)
    with pytest.raises(ValueError, match=r"supernet score of code 'c005' is nan"):
        ranking.ranking_report(dict(pred, c005=float("nan")), gt, space)
    with pytest.raises(ValueError, match=r"ground truth is constant .* unfilled competition"):
        ranking.ranking_report(None, {c: 0.0 for c in gt}, space)
    with pytest.raises(ValueError, match="ground-truth code 'nope' is not a fake code"):
        ranking.ranking_report(None, dict(gt, nope=1.0), space)


def test_format_report_is_a_table_of_every_ranker(toy):
    space, pred, gt = toy
    report = ranking.ranking_report(pred, gt, space, ks=(5, 0.5, 100), n_boot=50)
    text = ranking.format_report(report)
    assert "Ranking of 40 archs (fake space), 95% CIs from 50 paired bootstrap" in text
    for header in ("Kendall tau-b", "Spearman rho", "Pearson r", "FLOPs held fixed", "k=20 (50%)"):
        assert header in text
    for name in ("flops", "params"):
        assert sum(line.startswith(name) for line in text.splitlines()) == 3
    # The supernet's three rows, and its two paired differences (with FLOPs and params).
    assert sum(line.startswith("supernet") for line in text.splitlines()) == 5
    assert "supernet - flops" in text and "supernet - params" in text
    tau = report["rankers"]["supernet"]["kendall_tau"]["value"]
    assert f"{tau:+.3f}" in text
    assert "k skipped, more than 40 archs: 100" in text


# --------------------------------------------------------------------- real data


def _gt30():
    ss = pytest.importorskip("tfnas.search_space")
    data = json.loads(GT30.read_text())
    return ss.get_space("imagenet"), {v["arch"]: v["acc"] for v in data.values()}


def test_gt30_imagenet_flops_and_params_against_scipy():
    space, gt = _gt30()
    report = ranking.ranking_report(None, gt, "imagenet", n_boot=200)
    assert report["n"] == 30
    codes = sorted(gt)
    g = [gt[c] for c in codes]
    for name, count in (("flops", space.flops), ("params", space.params)):
        s = [count(space.parse(c)) for c in codes]
        section = report["rankers"][name]
        assert section["kendall_tau"]["value"] == pytest.approx(
            stats.kendalltau(s, g, variant="b").statistic, abs=1e-12
        )
        assert section["spearman_rho"]["value"] == pytest.approx(
            stats.spearmanr(s, g).statistic, abs=1e-12
        )
        assert section["pearson_r"]["value"] == pytest.approx(
            stats.pearsonr(s, g).statistic, abs=1e-12
        )
        low, high = section["kendall_tau"]["ci"]
        assert low <= section["kendall_tau"]["value"] <= high
    assert "params" in ranking.format_report(report)


# ------------------------------------------------------------------ paired comparison


def test_paired_tau_difference_of_opposite_rankers():
    """A = ground truth, B = its reverse: delta = 1 - (-1) = 2. Of the 2**6 equally likely
    swap patterns of the permutation test, only "swap none" and "swap all" keep A exactly
    increasing (|delta| = 2), so the exact p-value is 2 / 64; the Monte-Carlo one is within
    4 binomial standard errors (0.0028 each at 4000 permutations)."""
    gt = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    result = ranking.paired_tau_difference(gt, gt[::-1], gt, n_boot=200, n_perm=4000, seed=3)
    assert result["delta"] == pytest.approx(2.0)
    assert result["tau_a"] == pytest.approx(1.0) and result["tau_b"] == pytest.approx(-1.0)
    assert result["p_value"] == pytest.approx(2 / 64, abs=0.012)
    low, high = result["ci"]
    assert low == pytest.approx(2.0) and high == pytest.approx(2.0)


def test_paired_mean_tau_difference_averages_the_runs_taus():
    """Two runs per recipe: delta is the mean of scipy's tau-b of A's runs minus B's,
    computed by hand here; each bootstrap resample is the same mean on resampled archs, so
    with one run each it reduces to `paired_tau_difference` (same seed, same resamples)."""
    rng = np.random.default_rng(0)
    gt = rng.normal(size=30)
    a = [gt + rng.normal(scale=s, size=30) for s in (0.5, 1.0)]
    b = [gt + rng.normal(scale=s, size=30) for s in (2.0, 3.0)]
    result = ranking.paired_mean_tau_difference(a, b, gt, n_boot=300, n_perm=200, seed=4)
    tau = [stats.kendalltau(x, gt).statistic for x in a + b]
    assert result["tau_a"] == pytest.approx(tau[:2]) and result["tau_b"] == pytest.approx(tau[2:])
    assert result["delta"] == pytest.approx((tau[0] + tau[1]) / 2 - (tau[2] + tau[3]) / 2)
    low, high = result["ci"]
    assert low < result["delta"] < high and result["p_value"] is not None
    single = ranking.paired_mean_tau_difference(a[:1], b[:1], gt, n_boot=300, n_perm=0, seed=4)
    reference = ranking.paired_tau_difference(a[0], b[0], gt, n_boot=300, n_perm=0, seed=4)
    assert single["delta"] == pytest.approx(reference["delta"])
    assert single["ci"] == pytest.approx(reference["ci"])


def test_mean_kendall_tau_of_one_run_is_kendall_tau():
    """One run: scipy's tau-b and the same bootstrap interval as `kendall_tau`; two runs:
    the mean of their taus, computed by hand."""
    rng = np.random.default_rng(1)
    gt = rng.normal(size=25)
    runs = [gt + rng.normal(scale=s, size=25) for s in (0.7, 1.5)]
    one = ranking.mean_kendall_tau(runs[:1], gt, n_boot=200, seed=2)
    reference = ranking.kendall_tau(runs[0], gt, n_boot=200, seed=2)
    assert one["value"] == pytest.approx(reference["value"])
    assert one["ci"] == pytest.approx(reference["ci"])
    two = ranking.mean_kendall_tau(runs, gt, n_boot=200, seed=2)
    tau = [stats.kendalltau(x, gt).statistic for x in runs]
    assert two["runs"] == pytest.approx(tau)
    assert two["value"] == pytest.approx(np.mean(tau))
    assert two["ci"][0] < two["value"] < two["ci"][1]


def test_paired_mean_tau_difference_of_opposite_recipes():
    """Every run of A is the ground truth and every run of B its reverse: delta = 2, and
    only swapping no arch or every arch keeps |delta| = 2 (exact p = 2 / 2**6)."""
    gt = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    result = ranking.paired_mean_tau_difference(
        [gt, gt], [gt[::-1], gt[::-1]], gt, n_boot=100, n_perm=4000, seed=3
    )
    assert result["delta"] == pytest.approx(2.0)
    assert result["p_value"] == pytest.approx(2 / 64, abs=0.012)
    unequal = ranking.paired_mean_tau_difference([gt], [gt, gt[::-1]], gt, n_boot=0)
    assert unequal["delta"] == pytest.approx(1.0) and unequal["p_value"] is None
    with pytest.raises(ValueError, match="at least one run"):
        ranking.paired_mean_tau_difference([], [gt], gt)


def test_paired_tau_difference_of_equal_rankers_is_zero_with_p_one():
    gt = [0.3, 0.1, 0.5, 0.4, 0.2, 0.6]
    pred = [1, 3, 2, 5, 4, 6]
    result = ranking.paired_tau_difference(pred, pred, gt, n_boot=100, n_perm=50)
    assert result["delta"] == 0.0
    assert result["p_value"] == 1.0
    assert result["ci"] == [0.0, 0.0]


def test_ranking_report_pairs_the_supernet_with_every_baseline_and_normalizes():
    from tfnas import search_space as ss

    space = ss.get_space("fmnist")
    codes = [a.code for a in space.sample_many(12, seed=5)]
    gt = {c: float(space.flops(space.parse(c))) for c in codes}  # FLOPs ranks perfectly
    pred = {c: -v for c, v in gt.items()}  # the worst possible ranker
    report = ranking.ranking_report(
        pred, gt, space, n_boot=50, n_perm=50, ceiling=0.5,
        extra_rankers={"proxy": dict(gt)},
    )
    assert set(report["paired"]) == {"flops", "params", "proxy"}
    assert report["paired"]["flops"]["delta"] == pytest.approx(-2.0)
    assert report["rankers"]["flops"]["kendall_tau_normalized"] == pytest.approx(1.0 / 0.5)
    assert report["rankers"]["supernet"]["kendall_tau_normalized"] == pytest.approx(-2.0)
    text = ranking.format_report(report)
    assert "Paired difference in Kendall tau-b" in text and "supernet - proxy" in text
    with pytest.raises(ValueError, match="ranker 'proxy' has no score for 1"):
        partial = {c: 1.0 for c in codes if c != codes[1]}
        ranking.ranking_report(pred, gt, space, n_boot=0, extra_rankers={"proxy": partial})


def test_score_noise_by_hand():
    # p = 0.5, 0.9, 0.7 on 100 images: binomial variances 0.0025, 0.0009, 0.0021; the
    # scores' sample s.d. is sqrt((0.04 + 0.04 + 0) / 2) = 0.2.
    noise = ranking.score_noise({"a": 0.5, "b": 0.9, "c": 0.7}, 100)
    assert noise["binomial_se"] == pytest.approx(math.sqrt((0.0025 + 0.0009 + 0.0021) / 3))
    assert noise["score_sd"] == pytest.approx(0.2)
    assert noise["ratio"] == pytest.approx(noise["binomial_se"] / 0.2)
    with pytest.raises(ValueError, match="num_examples must be >= 1"):
        ranking.score_noise({"a": 0.5, "b": 0.9, "c": 0.7}, 0)

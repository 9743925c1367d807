"""How well a predicted score ranks archs, compared with stand-alone ground truth.

The point of a weight-sharing supernet is a ranking of subnets that agrees with stand-alone
training, so this module measures agreement between two score vectors (higher = better):

- global correlations, each with a paired-bootstrap 95% CI: Kendall's tau-b (the CVPR 2022
  NAS Track 1 metric; ``b`` corrects for ties), Spearman's rho and Pearson's r;
- top-k measures: precision@k and Kendall's tau among the k best archs by ground truth (a
  supernet that ranks the whole space well may still mis-order the archs that matter);
- partial rank correlations with FLOPs held fixed, since a ranker that only tracks model
  size gets a high global tau for free.

`ranking_report` computes all of it for the supernet's scores and, in the same report, for
FLOPs and params used as rankers, so every number comes with its trivial baselines::

    report = ranking.ranking_report(pred, gt, "imagenet")   # dicts {code: score}
    print(ranking.format_report(report))

The report is a JSON-ready dict (undefined values are ``None``). The lower-level functions
(`kendall_tau`, `precision_at_k`, `partial_kendall`, ...) take two (or three) equally long
score sequences.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

DEFAULT_N_BOOT = 1000
DEFAULT_CI_LEVEL = 0.95
# Integers are absolute k, floats in (0, 1) fractions of the number of archs.
DEFAULT_KS = (5, 10, 0.1, 0.25, 0.5)
MIN_ARCHS = 3

# The batched Kendall tau holds [n, n] sign matrices; past this many archs it loops over
# resamples with scipy instead (O(n log n) each, but ~1 ms of overhead per call).
_MAX_N_MATRIX = 3000

_CORRELATIONS = ("kendall_tau", "spearman_rho", "pearson_r")
_PARTIALS = ("kendall_tau", "spearman_rho")


# ---------------------------------------------------------------------------- validation


def _as_vector(values: Any, name: str) -> np.ndarray:
    """A float64 [n] copy of ``values``; ValueError on short, non-1-D or non-finite input."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"{name} must be a sequence of numbers, got {type(values).__name__}: {e}"
        ) from None
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be one-dimensional (one score per arch), got shape {array.shape}"
        )
    if len(array) < MIN_ARCHS:
        raise ValueError(
            f"{name} has {len(array)} scores; a rank correlation needs at least {MIN_ARCHS} "
            "archs: score more archs"
        )
    bad = np.flatnonzero(~np.isfinite(array))
    if len(bad):
        raise ValueError(
            f"{name} has {len(bad)} non-finite scores (NaN/inf) of {len(array)}, at positions "
            f"{bad[:5].tolist()}: drop or re-evaluate those archs"
        )
    return array


def _paired(named: Sequence[tuple[str, Any]]) -> list[np.ndarray]:
    arrays = [_as_vector(values, name) for name, values in named]
    lengths = {len(a) for a in arrays}
    if len(lengths) > 1:
        got = ", ".join(f"{name}: {len(a)}" for (name, _), a in zip(named, arrays))
        raise ValueError(f"score vectors must be equally long (one score per arch), got {got}")
    for (name, _), array in zip(named, arrays):
        if np.ptp(array) == 0:
            raise ValueError(
                f"{name} is constant ({len(array)} archs all scored {array[0]:g}): a ranking "
                "needs at least two distinct scores"
            )
    return arrays


# ----------------------------------------------------------------- batched statistics
# A bootstrap statistic maps ``index`` [B, n] (B resamples, each n arch indices) and the
# [n] arrays to [B] values, NaN where undefined. The original sample is index [[0..n-1]].


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row of [B, n] arrays."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=1) / den
    # Constant rows: the centred values may be rounding noise rather than exact zeros.
    constant = (np.ptp(x, axis=1) == 0) | (np.ptp(y, axis=1) == 0) | (den == 0)
    return np.where(constant, np.nan, np.clip(r, -1.0, 1.0))


def _pearson_stat(index, x, y) -> np.ndarray:
    return _pearson_rows(x[index], y[index])


def _spearman_stat(index, x, y) -> np.ndarray:
    # Average ranks for ties, as scipy.stats.spearmanr.
    return _pearson_rows(stats.rankdata(x[index], axis=1), stats.rankdata(y[index], axis=1))


def _counts(index: np.ndarray, n: int) -> np.ndarray:
    """[B, n] float32: how often each arch is drawn in each resample."""
    rows = len(index)
    flat = (index + n * np.arange(rows)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.float32)


def _kendall_taus(index, arrays, pairs) -> list[np.ndarray]:
    """Kendall's tau-b of each pair (i, j) of ``arrays`` in every resample.

    tau-b = S / sqrt(#pairs untied in a * #pairs untied in b), S = sum over pairs of
    sign(a_i - a_j) sign(b_i - b_j) (Kendall 1945, "The treatment of ties in ranking
    problems"). A resample is the original archs drawn w_k times, so each of these sums is a
    quadratic form w^T M w of a fixed [n, n] sign matrix M (an arch paired with its own copy
    has sign 0, i.e. is tied on both sides, as in scipy): one matmul for all resamples instead
    of B sorts. Values are small integers, exact in float32 (< 2^24 for n <= 3000).
    """
    n = len(arrays[0])
    if n > _MAX_N_MATRIX:
        return [
            np.array([_scipy_kendall(arrays[i][row], arrays[j][row]) for row in index])
            for i, j in pairs
        ]
    weights = _counts(index, n)
    signs = {
        k: np.sign(arrays[k][:, None] - arrays[k][None, :]).astype(np.float32)
        for k in {k for pair in pairs for k in pair}
    }

    def quadratic(matrix):
        return ((weights @ matrix).astype(np.float64) * weights).sum(axis=1)

    untied = {k: quadratic(np.abs(m)) for k, m in signs.items()}
    taus = []
    for i, j in pairs:
        den = np.sqrt(untied[i] * untied[j])
        with np.errstate(invalid="ignore", divide="ignore"):
            tau = quadratic(signs[i] * signs[j]) / den
        taus.append(np.where(den > 0, np.clip(tau, -1.0, 1.0), np.nan))
    return taus


def _kendall_stat(index, x, y) -> np.ndarray:
    return _kendall_taus(index, [x, y], [(0, 1)])[0]


def _scipy_kendall(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(stats.kendalltau(x, y, variant="b").statistic)


def _partial_kendall_stat(index, x, y, z) -> np.ndarray:
    # Kendall (1942), "Partial rank correlation", Biometrika 32(3/4):277-283:
    # tau_xy.z = (tau_xy - tau_xz tau_yz) / sqrt((1 - tau_xz^2) (1 - tau_yz^2)).
    t_xy, t_xz, t_yz = _kendall_taus(index, [x, y, z], [(0, 1), (0, 2), (1, 2)])
    den = np.sqrt((1.0 - t_xz**2) * (1.0 - t_yz**2))
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (t_xy - t_xz * t_yz) / den
    # |tau_xz| = 1: x is a monotone function of z, nothing is left once z is held fixed.
    return np.where(den > 1e-12, np.clip(tau, -1.0, 1.0), np.nan)


def _partial_spearman_stat(index, x, y, z) -> np.ndarray:
    rx, ry, rz = (stats.rankdata(a[index], axis=1) for a in (x, y, z))
    rz = rz - rz.mean(axis=1, keepdims=True)
    zz = (rz * rz).sum(axis=1, keepdims=True)

    def residual(r):
        # Least squares of r on [1, rz]; a constant control leaves just the centred ranks.
        r = r - r.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            beta = np.where(zz > 0, (r * rz).sum(axis=1, keepdims=True) / zz, 0.0)
        e = r - beta * rz
        # Residuals at rounding level mean r is a function of rz: nothing is left.
        scale = np.sqrt((r * r).sum(axis=1))
        empty = np.sqrt((e * e).sum(axis=1)) <= 1e-9 * np.maximum(scale, 1.0)
        return e, empty

    ex, empty_x = residual(rx)
    ey, empty_y = residual(ry)
    r = _pearson_rows(ex, ey)
    return np.where(empty_x | empty_y, np.nan, r)


def _point(statistic, *arrays) -> float:
    """``statistic`` on the original sample."""
    return float(statistic(np.arange(len(arrays[0]))[None], *arrays)[0])


# ------------------------------------------------------------------------------ bootstrap


def _check_boot(n_boot, level) -> int:
    n_boot = int(n_boot)
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0 resamples, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"CI level must be in (0, 1), e.g. 0.95, got {level}")
    return n_boot


def bootstrap_ci(
    statistic: Callable[..., np.ndarray],
    arrays: Sequence[np.ndarray],
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_CI_LEVEL,
) -> dict:
    """Percentile bootstrap interval of a paired statistic.

    Archs are resampled with replacement, the same indices for every array (paired), so the
    interval reflects which archs happened to be measured. Resamples where the statistic is
    undefined (the first two arrays constant, e.g. all draws of one arch) are skipped and
    counted. The indices depend only on (seed, n_boot, n), so every metric and ranker computed
    with one seed sees the same resamples.

    Args:
      statistic: ``statistic(index, *arrays)`` with ``index`` int [B, n] (row b: the arch
        indices of resample b) returns [B] values, NaN when undefined; e.g.
        ``lambda index, x, y: my_rows(x[index], y[index])``.
      arrays: equally long [n] float arrays; the first two are checked for constancy.
      n_boot: number of resamples (0 disables the interval).
      seed: seed of the resampling.
      level: coverage of the interval, e.g. 0.95.

    Returns:
      ``{"ci": [low, high] or None, "n_boot": n_boot, "n_boot_used": int}``.
    """
    n_boot = _check_boot(n_boot, level)
    if n_boot == 0:
        return {"ci": None, "n_boot": 0, "n_boot_used": 0}
    n = len(arrays[0])
    index = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    values = np.asarray(statistic(index, *arrays), np.float64)
    constant = np.zeros(n_boot, bool)
    for a in arrays[:2]:
        constant |= np.ptp(a[index], axis=1) == 0
    values = values[~constant & np.isfinite(values)]
    if len(values) == 0:
        return {"ci": None, "n_boot": n_boot, "n_boot_used": 0}
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return {"ci": [float(low), float(high)], "n_boot": n_boot, "n_boot_used": len(values)}


# ---------------------------------------------------------------------- correlations


def _result(value: float, n: int, boot: dict, p_value: float | None = None) -> dict:
    value = None if value is None or not math.isfinite(value) else float(value)
    out = {"value": value, "n": int(n), **boot}
    if p_value is not None:
        out["p_value"] = float(p_value) if math.isfinite(p_value) else None
    return out


def kendall_tau(
    pred, gt, *, n_boot: int = DEFAULT_N_BOOT, seed: int = 0, level: float = DEFAULT_CI_LEVEL
) -> dict:
    """Kendall's tau-b of ``pred`` against ``gt`` with a paired-bootstrap CI.

    Args:
      pred: predicted scores, one per arch (higher = better).
      gt: ground-truth scores of the same archs in the same order.
      n_boot: bootstrap resamples; seed: their seed; level: CI coverage.

    Returns:
      ``{"value", "n", "ci": [low, high], "n_boot", "n_boot_used", "p_value"}``; ``value`` is
      ``scipy.stats.kendalltau(pred, gt, variant="b")``.
    """
    x, y = _paired([("pred", pred), ("gt", gt)])
    res = stats.kendalltau(x, y, variant="b")
    boot = bootstrap_ci(_kendall_stat, [x, y], n_boot=n_boot, seed=seed, level=level)
    return _result(res.statistic, len(x), boot, res.pvalue)


def spearman_rho(
    pred, gt, *, n_boot: int = DEFAULT_N_BOOT, seed: int = 0, level: float = DEFAULT_CI_LEVEL
) -> dict:
    """Spearman's rho (average ranks for ties); arguments and result as `kendall_tau`."""
    x, y = _paired([("pred", pred), ("gt", gt)])
    res = stats.spearmanr(x, y)
    boot = bootstrap_ci(_spearman_stat, [x, y], n_boot=n_boot, seed=seed, level=level)
    return _result(res.statistic, len(x), boot, res.pvalue)


def pearson_r(
    pred, gt, *, n_boot: int = DEFAULT_N_BOOT, seed: int = 0, level: float = DEFAULT_CI_LEVEL
) -> dict:
    """Pearson's r of the raw scores; arguments and result as `kendall_tau`."""
    x, y = _paired([("pred", pred), ("gt", gt)])
    res = stats.pearsonr(x, y)
    boot = bootstrap_ci(_pearson_stat, [x, y], n_boot=n_boot, seed=seed, level=level)
    return _result(res.statistic, len(x), boot, res.pvalue)


def partial_kendall(
    pred,
    gt,
    control,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_CI_LEVEL,
) -> dict:
    """Kendall's (1942) partial tau of ``pred`` and ``gt`` with ``control`` held fixed.

    ``(tau_xy - tau_xz tau_yz) / sqrt((1 - tau_xz^2)(1 - tau_yz^2))`` from tau-b values. It
    is undefined (``value`` None) when ``pred`` or ``gt`` is a monotone function of
    ``control`` (e.g. FLOPs ranked with FLOPs held fixed). Result as `kendall_tau`, no p-value.
    """
    x, y, z = _paired([("pred", pred), ("gt", gt), ("control", control)])
    return _partial(_partial_kendall_stat, x, y, z, n_boot=n_boot, seed=seed, level=level)


def partial_spearman(
    pred,
    gt,
    control,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_CI_LEVEL,
) -> dict:
    """Partial Spearman rho of ``pred`` and ``gt`` with ``control`` held fixed.

    The Pearson correlation of the residuals of rank(pred) and rank(gt), each regressed (with
    intercept) on rank(control). Undefined when a residual vanishes. Result as `kendall_tau`,
    no p-value.
    """
    x, y, z = _paired([("pred", pred), ("gt", gt), ("control", control)])
    return _partial(_partial_spearman_stat, x, y, z, n_boot=n_boot, seed=seed, level=level)


def _partial(statistic, x, y, z, *, n_boot, seed, level) -> dict:
    value = _point(statistic, x, y, z)
    if math.isnan(value):
        # Undefined on the full sample (pred or gt a function of the control): so is every
        # resample; skip the work.
        boot = {"ci": None, "n_boot": _check_boot(n_boot, level), "n_boot_used": 0}
    else:
        boot = bootstrap_ci(statistic, [x, y, z], n_boot=n_boot, seed=seed, level=level)
    return _result(value, len(x), boot)


# ------------------------------------------------------------------ paired comparison


def _normalized_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks scaled to [0, 1], so that two rankers' scores share one scale."""
    r = stats.rankdata(x)
    return (r - 1.0) / max(len(x) - 1.0, 1.0)


def paired_tau_difference(
    pred_a,
    pred_b,
    gt,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    n_perm: int = 1000,
    seed: int = 0,
    level: float = DEFAULT_CI_LEVEL,
) -> dict:
    """Is ranker A closer to the ground truth than ranker B, on the same archs?

    ``delta`` = tau_b(A, gt) - tau_b(B, gt). The interval is a paired percentile bootstrap
    over archs (the same resampled archs for both rankers, so what the two share cancels);
    the p-value is two-sided, from a paired permutation test: under the null hypothesis
    that A and B rank equally well, swapping A's and B's normalized ranks of an arch
    changes nothing, so each arch's pair is swapped with probability 1/2 and
    ``(1 + #{|delta_perm| >= |delta|}) / (1 + n_perm)`` is reported.

    Args:
      pred_a, pred_b, gt: equally long score sequences (higher = better), one per arch.
      n_boot: bootstrap resamples (0: no interval); n_perm: permutations (0: no p-value);
        seed: their seed; level: CI coverage.

    Returns:
      ``{"delta", "tau_a", "tau_b", "n", "ci", "n_boot", "n_boot_used", "p_value",
      "n_perm"}``.
    """
    a, b, g = _paired([("pred_a", pred_a), ("pred_b", pred_b), ("gt", gt)])
    tau_a = _scipy_kendall(a, g)
    tau_b = _scipy_kendall(b, g)
    delta = tau_a - tau_b

    def statistic(index, x, y, z):
        return _kendall_stat(index, x, z) - _kendall_stat(index, y, z)

    boot = bootstrap_ci(statistic, [a, b, g], n_boot=n_boot, seed=seed, level=level)
    p_value = None
    n_perm = int(n_perm)
    if n_perm < 0:
        raise ValueError(f"n_perm must be >= 0 permutations, got {n_perm}")
    if n_perm:
        ra, rb = _normalized_ranks(a), _normalized_ranks(b)
        rng = np.random.default_rng(seed + 1)
        exceed = 0
        for _ in range(n_perm):
            swap = rng.random(len(a)) < 0.5
            pa, pb = np.where(swap, rb, ra), np.where(swap, ra, rb)
            d = _scipy_kendall(pa, g) - _scipy_kendall(pb, g)
            exceed += abs(d) >= abs(delta) - 1e-12
        p_value = (1 + exceed) / (1 + n_perm)
    return {
        "delta": float(delta),
        "tau_a": float(tau_a),
        "tau_b": float(tau_b),
        "n": len(a),
        **boot,
        "p_value": p_value,
        "n_perm": n_perm,
    }



def _runs_bootstrap(runs, g, combine, *, n_boot, seed, level) -> dict:
    """`bootstrap_ci` of ``combine(taus)``, ``taus`` the [runs, B] tau-b of every run against
    ``g`` in each resample (the same archs for every run)."""

    def statistic(index, x0, gg, *rest):
        xs = [x0, *rest]
        return combine(np.stack(
            _kendall_taus(index, [*xs, gg], [(i, len(xs)) for i in range(len(xs))])))

    # bootstrap_ci checks its first two arrays for constant resamples: run 0 and gt first.
    return bootstrap_ci(statistic, [runs[0], g, *runs[1:]], n_boot=n_boot, seed=seed,
                        level=level)


def mean_kendall_tau(
    preds: Sequence,
    gt,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_CI_LEVEL,
) -> dict:
    """The mean Kendall tau-b of several runs of one recipe (e.g. supernet seeds).

    ``value`` = mean_s tau_b(preds[s], gt); the interval resamples archs, the same archs for
    every run, so it holds which archs were measured; ``runs`` (one tau per run) shows the
    runs' own spread.

    Returns:
      ``{"value", "runs": [...], "n", "ci", "n_boot", "n_boot_used"}``.
    """
    if not preds:
        raise ValueError("mean_kendall_tau needs at least one run's scores, got none")
    arrays = _paired([(f"preds[{i}]", p) for i, p in enumerate(preds)] + [("gt", gt)])
    g, runs = arrays[-1], arrays[:-1]
    taus = [_scipy_kendall(x, g) for x in runs]
    boot = _runs_bootstrap(runs, g, lambda t: np.mean(t, axis=0), n_boot=n_boot, seed=seed,
                           level=level)
    return {"value": float(np.mean(taus)), "runs": [float(t) for t in taus], "n": len(g), **boot}


def paired_mean_tau_difference(
    preds_a: Sequence,
    preds_b: Sequence,
    gt,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    n_perm: int = 1000,
    seed: int = 0,
    level: float = DEFAULT_CI_LEVEL,
) -> dict:
    """`paired_tau_difference` of two training recipes, each run with several seeds.

    A supernet's ranking depends on its training seed, so a recipe is judged by the mean
    tau of its supernets: ``delta`` = mean_s tau_b(A_s, gt) - mean_s tau_b(B_s, gt). The
    interval resamples archs (the same archs for every run), so it holds the uncertainty of
    which archs were measured; the seeds' own spread is in ``tau_a`` and ``tau_b`` (one
    tau per run), and with 2 seeds it is no more than a rough look. With as many runs of A as
    of B, the permutation test swaps an arch's normalized ranks between A_s and B_s (every s
    at once, with probability 1/2) and reports a two-sided p-value; otherwise p is None.

    Args:
      preds_a, preds_b: one score sequence per run (seed), each as long as ``gt``.
      gt: the ground truth, one value per arch. The other arguments: `paired_tau_difference`.

    Returns:
      ``{"delta", "tau_a": [...], "tau_b": [...], "n", "runs_a", "runs_b", "ci", "n_boot",
      "n_boot_used", "p_value", "n_perm"}``.
    """
    if not preds_a or not preds_b:
        raise ValueError(
            f"need at least one run of each recipe, got {len(preds_a)} and {len(preds_b)}"
        )
    na = len(preds_a)
    named = [(f"preds_a[{i}]", p) for i, p in enumerate(preds_a)]
    named += [(f"preds_b[{i}]", p) for i, p in enumerate(preds_b)] + [("gt", gt)]
    arrays = _paired(named)
    g = arrays[-1]
    runs_a, runs_b = arrays[:na], arrays[na:-1]
    tau_a = [_scipy_kendall(x, g) for x in runs_a]
    tau_b = [_scipy_kendall(x, g) for x in runs_b]
    delta = float(np.mean(tau_a) - np.mean(tau_b))

    boot = _runs_bootstrap(
        [*runs_a, *runs_b], g,
        lambda t: np.mean(t[:na], axis=0) - np.mean(t[na:], axis=0),
        n_boot=n_boot, seed=seed, level=level,
    )
    p_value = None
    n_perm = int(n_perm)
    if n_perm < 0:
        raise ValueError(f"n_perm must be >= 0 permutations, got {n_perm}")
    if n_perm and len(runs_a) == len(runs_b):
        ra = [_normalized_ranks(x) for x in runs_a]
        rb = [_normalized_ranks(x) for x in runs_b]
        rng = np.random.default_rng(seed + 1)
        exceed = 0
        for _ in range(n_perm):
            swap = rng.random(len(g)) < 0.5
            d = np.mean([
                _scipy_kendall(np.where(swap, y, x), g) - _scipy_kendall(np.where(swap, x, y), g)
                for x, y in zip(ra, rb)
            ])
            exceed += abs(d) >= abs(delta) - 1e-12
        p_value = (1 + exceed) / (1 + n_perm)
    return {
        "delta": delta,
        "tau_a": [float(t) for t in tau_a],
        "tau_b": [float(t) for t in tau_b],
        "n": len(g),
        "runs_a": na,
        "runs_b": len(runs_b),
        **boot,
        "p_value": p_value,
        "n_perm": n_perm if p_value is not None else 0,
    }

def score_noise(scores: Mapping[str, float], num_examples: int) -> dict:
    """How much of the spread of accuracy scores the evaluation set's size alone explains.

    Each score is a top-1 accuracy on ``num_examples`` images, so it carries a binomial
    standard error sqrt(p (1 - p) / num_examples) even for a fixed model. Set against the
    standard deviation of the scores across archs: when they are alike, the scores cannot
    rank the archs, whatever the supernet learned.

    Returns:
      ``{"num_examples", "binomial_se" (root-mean-square over the archs), "score_sd"
      (across archs, ddof 1), "ratio" (binomial_se / score_sd)}``.
    """
    if num_examples < 1:
        raise ValueError(f"num_examples must be >= 1 evaluation images, got {num_examples}")
    p = np.asarray(list(scores.values()), dtype=np.float64)
    if p.size < 2 or not np.all((p >= 0) & (p <= 1)):
        raise ValueError(
            f"score_noise needs 2 or more accuracies in [0, 1], received {p.size}: "
            f"{p[:5].tolist()}; score more archs"
        )
    se = float(np.sqrt(np.mean(p * (1.0 - p) / num_examples)))
    sd = float(np.std(p, ddof=1))
    return {
        "num_examples": int(num_examples),
        "binomial_se": se,
        "score_sd": sd,
        "ratio": se / sd if sd > 0 else None,
    }


# ---------------------------------------------------------------------------- top-k


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    # Stable sort: ties at the k-th place go to the earlier arch (ranking_report orders archs
    # by code, so the choice is reproducible).
    return np.argsort(-scores, kind="stable")[:k]


def _check_k(k, n: int) -> int:
    if isinstance(k, bool) or int(k) != k or not 1 <= k <= n:
        raise ValueError(f"k must be an integer in 1..{n} (the number of archs), got {k!r}")
    return int(k)


def precision_at_k(pred, gt, k: int) -> float:
    """|top-k by ``pred`` ∩ top-k by ``gt``| / k; ties at the cut go to the earlier arch."""
    x, y = _paired([("pred", pred), ("gt", gt)])
    k = _check_k(k, len(x))
    return len(set(_top(x, k).tolist()) & set(_top(y, k).tolist())) / k


def top_k_kendall(pred, gt, k: int) -> float | None:
    """Kendall's tau-b of ``pred`` vs ``gt`` over the k best archs by ``gt``.

    None when undefined (k < 2, or ``pred`` or ``gt`` constant on those archs).
    """
    x, y = _paired([("pred", pred), ("gt", gt)])
    k = _check_k(k, len(x))
    top = _top(y, k)
    if k < 2:
        return None
    value = _scipy_kendall(x[top], y[top])
    return None if math.isnan(value) else value


def resolve_ks(ks: Iterable, n: int) -> tuple[list[tuple[str, int]], list[str]]:
    """Turns k specs into ``([(label, k), ...] sorted by k, skipped labels)``.

    An integer (or integral float >= 1) is an absolute k; a float in (0, 1) a fraction of
    ``n``, rounded (at least 1). ks larger than ``n`` are skipped; a k reached twice is kept
    once (first label).
    """
    resolved, skipped, seen = [], [], set()
    for spec in ks:
        if isinstance(spec, bool) or not isinstance(spec, (int, float, np.integer, np.floating)):
            raise TypeError(
                f"k {spec!r} is neither an arch count (int >= 1) nor a fraction in (0, 1)"
            )
        if 0 < spec < 1:
            k, label = max(1, round(float(spec) * n)), f"{spec:.0%}"
        elif spec >= 1 and int(spec) == spec:
            k, label = int(spec), str(int(spec))
        else:
            raise ValueError(
                f"k {spec!r} is neither an arch count (int >= 1) nor a fraction in (0, 1)"
            )
        if k > n:
            skipped.append(label)
        elif k not in seen:
            seen.add(k)
            resolved.append((label, k))
    return sorted(resolved, key=lambda item: item[1]), skipped


# --------------------------------------------------------------------------- report


def _score_map(scores, name: str) -> tuple[dict[str, float], int]:
    """{code: score} from a mapping, (code, score) pairs or records with .code/.acc.

    A code given more than once is one arch: its scores are averaged (the count of extra
    entries is returned) so that repeated measurements do not weigh an arch twice.
    """
    if isinstance(scores, Mapping):
        items = list(scores.items())
    else:
        items = []
        for item in scores:
            if hasattr(item, "code") and hasattr(item, "acc"):
                items.append((item.code, item.acc))
            else:
                items.append(tuple(item))
    sums: dict[str, list[float]] = {}
    for code, value in items:
        code = str(code).strip()
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} score of code {code!r} is not a number: {value!r}") from None
        if not math.isfinite(value):
            raise ValueError(
                f"{name} score of code {code!r} is {value}: drop or re-evaluate that arch"
            )
        sums.setdefault(code, []).append(value)
    return {c: float(np.mean(v)) for c, v in sums.items()}, len(items) - len(sums)


def _examples(codes: Iterable[str], limit: int = 3) -> str:
    codes = sorted(codes)
    more = f", ... ({len(codes) - limit} more)" if len(codes) > limit else ""
    return ", ".join(repr(c) for c in codes[:limit]) + more


def _resolve_space(space):
    if isinstance(space, str):
        from tfnas import search_space  # Deferred: the metrics themselves need no space.

        return search_space.get_space(space)
    return space


def _ranker_section(
    score: np.ndarray, gt: np.ndarray, flops: np.ndarray, ks, n_boot: int, seed: int, level: float
) -> dict:
    kw = {"n_boot": n_boot, "seed": seed, "level": level}
    top_k = [
        {
            "label": label,
            "k": k,
            "precision": precision_at_k(score, gt, k),
            "kendall_tau": top_k_kendall(score, gt, k),
        }
        for label, k in ks
    ]
    return {
        "kendall_tau": kendall_tau(score, gt, **kw),
        "spearman_rho": spearman_rho(score, gt, **kw),
        "pearson_r": pearson_r(score, gt, **kw),
        "top_k": top_k,
        "partial_flops": {
            "kendall_tau": partial_kendall(score, gt, flops, **kw),
            "spearman_rho": partial_spearman(score, gt, flops, **kw),
        },
    }


def ranking_report(
    pred,
    gt,
    space,
    *,
    ks: Iterable = DEFAULT_KS,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_CI_LEVEL,
    pred_name: str = "supernet",
    drop_unmatched_pred: bool = False,
    extra_rankers: Mapping[str, Mapping[str, float]] | None = None,
    ceiling: float | None = None,
    n_perm: int = 1000,
) -> dict:
    """Every ranking metric of ``pred`` against ``gt``, next to FLOPs and params as rankers.

    Args:
      pred: ``{code: score}`` (or (code, score) pairs, or records with ``.code``/``.acc``),
        higher = better; None to report only the FLOPs/params baselines.
      gt: ground truth in the same forms, e.g. stand-alone accuracies.
      space: a `tfnas.search_space.SearchSpace` or its name; gives FLOPs and params of codes.
      ks: top-k specs for `resolve_ks` (ints absolute, floats in (0, 1) fractions).
      n_boot: bootstrap resamples per CI (0: no CIs); seed: their seed; level: CI coverage.
      pred_name: the name of ``pred``'s row.
      drop_unmatched_pred: ignore predicted codes without ground truth (e.g. the supernet
        scored all 45,000 competition codes, 30 have ground truth). By default every code
        must be on both sides.
      extra_rankers: more ``{name: {code: score}}`` rankers (e.g. zero-cost proxies); each
        must score every ground-truth code.
      ceiling: the Kendall tau a perfect ranker is expected to reach against this ground
        truth (`tfnas.ground_truth.reliability`'s ``expected_ceiling``); adds
        ``kendall_tau_normalized`` = tau / ceiling to every ranker.
      n_perm: permutations of the paired tests (``paired``).

    Returns:
      A JSON-ready dict: ``n``, ``space``, ``ks``, ``ks_skipped``, ``n_boot``, ``seed``,
      ``ci_level``, ``inputs`` (counts, duplicates, dropped) and ``rankers``:
      ``{name: {"kendall_tau", "spearman_rho", "pearson_r": {value, n, ci, n_boot_used,
      p_value}, "top_k": [{label, k, precision, kendall_tau}], "partial_flops":
      {"kendall_tau", "spearman_rho"}}}`` for ``pred_name`` (if given), ``"flops"``,
      ``"params"`` and the extra rankers; ``paired``: `paired_tau_difference` of ``pred_name``
      against every other ranker (``{other: {...}}``); ``ceiling``.

    Raises:
      ValueError: codes on one side only, fewer than 3 archs, non-finite or constant scores,
        invalid codes.
    """
    space = _resolve_space(space)
    gt_map, gt_dups = _score_map(gt, "ground truth")
    inputs: dict[str, Any] = {"n_gt": len(gt_map), "gt_duplicates": gt_dups}
    if pred is not None:
        pred_map, pred_dups = _score_map(pred, pred_name)
        inputs.update(n_pred=len(pred_map), pred_duplicates=pred_dups)
        no_gt = set(pred_map) - set(gt_map)
        no_pred = set(gt_map) - set(pred_map)
        if drop_unmatched_pred:
            inputs["pred_dropped"] = len(no_gt)
            no_gt = set()
        if no_gt or no_pred:
            parts = []
            if no_pred:
                parts.append(
                    f"{len(no_pred)} of {len(gt_map)} ground-truth codes have no {pred_name} "
                    f"score (e.g. {_examples(no_pred)})"
                )
            if no_gt:
                parts.append(
                    f"{len(no_gt)} of {len(pred_map)} {pred_name} codes have no ground truth "
                    f"(e.g. {_examples(no_gt)})"
                )
            raise ValueError(
                "; ".join(parts)
                + ". Archs are matched by code: score every ground-truth arch"
                + ("" if no_pred else ", or pass drop_unmatched_pred=True to ignore the extra")
            )
    codes = sorted(gt_map)
    if len(codes) < MIN_ARCHS:
        raise ValueError(
            f"ground truth has {len(codes)} archs; a rank correlation needs at least "
            f"{MIN_ARCHS}: measure more archs"
        )
    flops, params = [], []
    for code in codes:
        try:
            arch = space.parse(code)
        except ValueError as e:
            raise ValueError(f"ground-truth code {code!r} is not a {space.name} code: {e}") from e
        flops.append(space.flops(arch))
        params.append(space.params(arch))
    gt_vec = _as_vector([gt_map[c] for c in codes], "ground truth")
    flops_vec = np.asarray(flops, np.float64)
    rankers = {}
    if pred is not None:
        rankers[pred_name] = _as_vector([pred_map[c] for c in codes], pred_name)
    rankers["flops"] = flops_vec
    rankers["params"] = np.asarray(params, np.float64)
    for name, scores in (extra_rankers or {}).items():
        missing = [c for c in codes if c not in scores]
        if missing:
            raise ValueError(
                f"ranker {name!r} has no score for {len(missing)} of the {len(codes)} "
                f"ground-truth archs (e.g. {_examples(missing)}); score every arch"
            )
        rankers[name] = _as_vector([scores[c] for c in codes], name)
    ks_resolved, ks_skipped = resolve_ks(ks, len(codes))
    for name, vec in rankers.items():
        if np.ptp(vec) == 0:
            raise ValueError(
                f"{name} is constant over the {len(codes)} archs (all {vec[0]:g}): it cannot "
                "rank them"
            )
    if np.ptp(gt_vec) == 0:
        raise ValueError(
            f"ground truth is constant over the {len(codes)} archs (all {gt_vec[0]:g}); an "
            "unfilled competition file (acc 0.0) is not ground truth"
        )
    sections = {
        name: _ranker_section(vec, gt_vec, flops_vec, ks_resolved, n_boot, seed, level)
        for name, vec in rankers.items()
    }
    if ceiling is not None:
        if not ceiling > 0:
            raise ValueError(
                f"ceiling must be a positive Kendall tau (the ground truth's expected ceiling), "
                f"got {ceiling!r}"
            )
        for sec in sections.values():
            value = sec["kendall_tau"]["value"]
            sec["kendall_tau_normalized"] = None if value is None else value / ceiling
    paired = {}
    if pred is not None:
        for name, vec in rankers.items():
            if name != pred_name:
                paired[name] = paired_tau_difference(
                    rankers[pred_name], vec, gt_vec, n_boot=n_boot, n_perm=n_perm, seed=seed,
                    level=level,
                )
    return {
        "n": len(codes),
        "space": space.name,
        "ks": [{"label": label, "k": k} for label, k in ks_resolved],
        "ks_skipped": ks_skipped,
        "n_boot": int(n_boot),
        "seed": int(seed),
        "ci_level": float(level),
        "inputs": inputs,
        "rankers": sections,
        "pred_name": pred_name if pred is not None else None,
        "paired": paired,
        "ceiling": None if ceiling is None else float(ceiling),
    }


# --------------------------------------------------------------------------- format


def _num(value, width: int = 6) -> str:
    return f"{value:+.3f}".rjust(width) if value is not None else "n/a".rjust(width)


def _with_ci(result: dict) -> str:
    ci = result.get("ci")
    interval = f"[{_num(ci[0])}, {_num(ci[1])}]" if ci else " " * 16
    return f"{_num(result['value'])} {interval}"


def format_report(report: dict) -> str:
    """A plain-text table of a `ranking_report`: one row per ranker, one block per measure."""
    rankers = report["rankers"]
    width = max(10, *(len(name) for name in rankers)) + 2
    cell = 26
    lines = []
    ci = (
        f"{report['ci_level']:.0%} CIs from {report['n_boot']} paired bootstrap resamples "
        f"(seed {report['seed']})"
        if report["n_boot"]
        else "no CIs (n_boot=0)"
    )
    lines.append(f"Ranking of {report['n']} archs ({report['space']} space), {ci}")
    inputs = report["inputs"]
    notes = [
        f"{inputs[key]} {what}"
        for key, what in (
            ("gt_duplicates", "duplicate ground-truth entries averaged"),
            ("pred_duplicates", "duplicate predicted entries averaged"),
            ("pred_dropped", "predicted codes without ground truth ignored"),
        )
        if inputs.get(key)
    ]
    if notes:
        lines.append("(" + "; ".join(notes) + ")")

    def table(title, header, rows):
        lines.append("")
        lines.append(title)
        lines.append("ranker".ljust(width) + "".join(h.ljust(cell) for h in header).rstrip())
        lines.extend(rows)

    skipped = []
    rows = []
    for name, sec in rankers.items():
        rows.append(
            name.ljust(width)
            + "".join(_with_ci(sec[m]).ljust(cell) for m in _CORRELATIONS).rstrip()
        )
        for m in _CORRELATIONS:
            r = sec[m]
            if r["n_boot"] and r["n_boot_used"] < r["n_boot"]:
                skipped.append(f"{name} {m}: {r['n_boot'] - r['n_boot_used']}")
    table("Correlation with ground truth", ["Kendall tau-b", "Spearman rho", "Pearson r"], rows)
    if report.get("ceiling"):
        lines.append(
            f"tau / ceiling (expected tau of a perfect ranker, {report['ceiling']:.3f}): "
            + ", ".join(
                f"{name} {_num(sec['kendall_tau_normalized']).strip()}"
                for name, sec in rankers.items()
            )
        )
    if report.get("paired"):
        rows = []
        for other, d in report["paired"].items():
            p = "n/a" if d["p_value"] is None else f"{d['p_value']:.3f}"
            interval = f"[{_num(d['ci'][0])}, {_num(d['ci'][1])}]" if d.get("ci") else ""
            rows.append(
                f"{report['pred_name']} - {other}".ljust(width + 12)
                + f"{_num(d['delta'])} {interval}".ljust(cell)
                + f"p = {p} ({d['n_perm']} permutations)"
            )
        lines.append("")
        lines.append("Paired difference in Kendall tau-b (bootstrap CI, permutation p-value)")
        lines.extend(rows)

    rows = []
    for name, sec in rankers.items():
        part = sec["partial_flops"]
        rows.append(
            name.ljust(width) + "".join(_with_ci(part[m]).ljust(cell) for m in _PARTIALS).rstrip()
        )
        for m in _PARTIALS:
            r = part[m]
            if r["value"] is not None and r["n_boot"] and r["n_boot_used"] < r["n_boot"]:
                skipped.append(f"{name} partial {m}: {r['n_boot'] - r['n_boot_used']}")
    table(
        "Partial correlation, FLOPs held fixed (Kendall 1942 partial tau; Spearman on rank "
        "residuals)",
        ["Kendall tau", "Spearman rho"],
        rows,
    )

    if report["ks"]:
        header = [
            f"k={k['k']}" + (f" ({k['label']})" if k["label"] != str(k["k"]) else "")
            for k in report["ks"]
        ]
        rows = []
        for name, sec in rankers.items():
            cells = [
                f"{t['precision']:.2f} {_num(t['kendall_tau'])}".ljust(18) for t in sec["top_k"]
            ]
            rows.append(name.ljust(width) + "".join(cells).rstrip())
        lines.append("")
        lines.append("Top-k by ground truth: precision@k, Kendall tau-b among the k best")
        lines.append("ranker".ljust(width) + "".join(h.ljust(18) for h in header).rstrip())
        lines.extend(rows)
    if report["ks_skipped"]:
        lines.append(
            f"(k skipped, more than {report['n']} archs: {', '.join(report['ks_skipped'])})"
        )
    if any(sec["partial_flops"][m]["value"] is None for sec in rankers.values() for m in _PARTIALS):
        lines.append("")
        lines.append("n/a: undefined, the ranker is a monotone function of FLOPs")
    if skipped:
        lines.append("")
        lines.append(
            "Bootstrap resamples skipped as degenerate (constant scores): " + "; ".join(skipped)
        )
    return "\n".join(lines)


# -------------------------------------------------------------------- the config section

CONFIG_FIELDS = ("ks", "bootstrap", "seed", "drop_unmatched_pred")


def validate_config(section) -> None:
    """Checks the ``rank`` section of an experiment config (`tfnas.config_lib`).

    Fields (the ``rank`` stage passes them to `ranking_report`):

    - ``ks``: the top-k specs of precision@k and top-k tau, a tuple of arch counts (ints
      >= 1) and fractions of the archs (floats in (0, 1)); see `resolve_ks`.
    - ``bootstrap`` (int >= 0): bootstrap resamples per confidence interval (0: none).
    - ``seed`` (int >= 0): their seed.
    - ``drop_unmatched_pred`` (bool): ignore scored codes that have no ground truth (e.g.
      a supernet that scored every competition code) instead of failing.

    Raises:
      ValueError: naming ``config.rank.<field>``, the value, what is expected and how to
        fix it; also for a missing or unknown field.
    """
    from tfnas import config_checks

    fields = config_checks.Section(
        section, "rank", CONFIG_FIELDS, owner="tfnas.ranking.validate_config"
    )
    ks = fields["ks"]
    ok = isinstance(ks, (tuple, list)) and all(
        config_checks.is_number(k) and (0 < k < 1 or (k >= 1 and int(k) == k)) for k in ks
    )
    if not ok:
        raise fields.fail(
            "ks",
            ks,
            "a tuple of arch counts (integers >= 1) and fractions of the archs (numbers in "
            "(0, 1))",
            "fix it with e.g. --config.rank.ks='(5, 10, 0.1)' or in the config file",
        )
    fields.integer("bootstrap", 0)
    fields.integer("seed", 0)
    fields.boolean("drop_unmatched_pred")

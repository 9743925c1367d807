"""Stand-alone ground truth: its file format, and how far it can be trusted.

A ground-truth file is what ``bin/train --stage=standalone`` writes: a JSON Lines file whose
first line is a header ``{"version", "recipe_hash", "recipe"}`` and every further line one
arch trained from scratch ``{"code", "acc", "recipe_hash", "seed", "train_subset", "split",
"seconds", "cpu_seconds"}``. Sharded runs write one file per shard
(``ground_truth.seed<S>.shard-<I>-of-<N>.jsonl``) and `merge_shards` joins them, checking
that every code is there exactly once and that every shard used the same recipe.

A ranking is judged against ground truth, so the ground truth's own noise bounds what any
ranker can reach. `reliability` measures it from two or more seeds of the same archs::

    from tfnas import ground_truth
    rel = ground_truth.reliability([acc_seed0, acc_seed1])   # dicts {code: accuracy}
    rel["seed_tau"], rel["expected_ceiling"]

This module reads files and computes statistics; it imports no TensorFlow, and nothing that
trains a supernet imports it (`tests/test_isolation.py`): ground truth selects checkpoints
and is reported, it never enters a loss.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from tfnas import records

__all__ = [
    "FORMAT_VERSION",
    "ceiling_from_reliability",
    "expected_agreement",
    "gt_path",
    "merge_shards",
    "read_ground_truth",
    "recipe_hash",
    "reliability",
    "seed_mean",
    "spearman_brown",
    "tau",
    "write_results_json",
]

FORMAT_VERSION = 1


def recipe_hash(recipe: Mapping[str, Any]) -> str:
    """A short, stable hash of a recipe (a JSON-ready dict)."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def gt_path(directory: str | os.PathLike, seed: int, shard: tuple[int, int] = (1, 1)) -> Path:
    """``<directory>/ground_truth.seed<S>[.shard-I-of-N].jsonl``."""
    return Path(directory) / f"ground_truth.seed{seed}{records.shard_suffix(*shard)}.jsonl"


def read_ground_truth(path: str | os.PathLike) -> tuple[dict | None, dict[str, dict]]:
    """(header, {code: row}) of a ground-truth JSONL file; a torn last line is ignored.

    A missing file gives ``(None, {})``.
    """
    path = Path(path)
    if not path.exists():
        return None, {}
    lines = path.read_text().splitlines()
    try:
        header = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        header = None
    if header is not None and "recipe_hash" not in header:
        raise ValueError(
            f"{path} is not a ground-truth file (its first line has no recipe_hash); ground "
            "truth files are written by bin/train --stage=standalone"
        )
    return header, records.read_lines(lines[1:])


def write_results_json(path: str | os.PathLike, header: dict, rows: Sequence[dict]) -> Path:
    """The results-JSON twin of a ground-truth file (what ``rank`` reads), atomically."""
    out = Path(path)
    records.write_text_atomic(
        out, json.dumps({"recipe": header["recipe"], "results": list(rows)}, indent=1)
    )
    return out


def merge_shards(directory: str | os.PathLike, seed: int, codes: Sequence[str]) -> Path:
    """Joins ``ground_truth.seed<S>.shard-*-of-N.jsonl`` into ``ground_truth.seed<S>.jsonl``.

    Raises:
      ValueError: shards of different counts or recipes, a missing shard, or a code missing,
        trained in two shards, or not in ``codes``.
    """
    directory = Path(directory)
    pattern = f"ground_truth.seed{seed}.shard-*-of-*.jsonl"
    files = sorted(directory.glob(pattern))
    headers, parts = [], []
    for path in files:
        header, rows = read_ground_truth(path)
        headers.append((path, header))
        parts.append((path.name, rows))
    hashes = {h.get("recipe_hash") for _, h in headers if h is not None}
    if len(hashes) > 1:
        raise ValueError(
            f"the shards in {directory} were trained with different recipes ({sorted(hashes)}):"
            " ground truths of different recipes must not mix; rerun the stale shards in "
            "another --workdir"
        )
    merged = records.merge_parts(parts, codes, where=f"{directory}/{pattern}")
    header = next(h for _, h in headers if h is not None)
    out = gt_path(directory, seed)
    lines = [json.dumps(header)] + [json.dumps(merged[c]) for c in codes]
    records.write_text_atomic(out, "\n".join(lines) + "\n")
    write_results_json(out.with_suffix(".json"), header, [merged[c] for c in codes])
    return out


# ------------------------------------------------------------------------- reliability


def _common(accs: Sequence[Mapping[str, float]]) -> tuple[list[str], np.ndarray]:
    """The codes every seed has, and the [seeds, archs] accuracy matrix."""
    if len(accs) < 2:
        raise ValueError(
            f"reliability needs the same archs trained with at least 2 seeds, got {len(accs)} "
            "seed(s): train the archs again with --config.standalone.seed=1"
        )
    codes = sorted(set.intersection(*(set(a) for a in accs)))
    if len(codes) < 3:
        raise ValueError(
            f"only {len(codes)} archs were trained with every seed; reliability needs at "
            "least 3: train more archs with each seed"
        )
    return codes, np.array([[float(a[c]) for c in codes] for a in accs])


def seed_mean(accs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """{code: mean accuracy over the seeds} for the codes every seed has."""
    codes, matrix = _common(accs) if len(accs) > 1 else (sorted(accs[0]), None)
    if matrix is None:
        return {c: float(accs[0][c]) for c in codes}
    return dict(zip(codes, matrix.mean(axis=0).tolist()))


def tau(pred: Mapping[str, float], truth: Mapping[str, float]) -> float:
    """Kendall tau-b of two {code: score} maps over their common codes."""
    codes = sorted(set(pred) & set(truth))
    return float(stats.kendalltau([pred[c] for c in codes], [truth[c] for c in codes]).statistic)


def spearman_brown(r: float, k: float) -> float:
    """Reliability of the mean of k parallel measurements whose pairwise correlation is r."""
    if r <= -1.0 / max(k - 1, 1e-12) or not math.isfinite(r):
        return float("nan")
    return k * r / (1.0 + (k - 1.0) * r)


def ceiling_from_reliability(reliability: float) -> float:
    """Expected Kendall tau of a perfect ranker against a ground truth of this reliability.

    A ranker that knows each arch's expected accuracy correlates with a noisy ground truth at
    sqrt(reliability) (Pearson); under bivariate normality tau = (2 / pi) arcsin(r).
    """
    if not math.isfinite(reliability) or reliability <= 0:
        return 0.0
    return 2.0 / math.pi * math.asin(math.sqrt(min(reliability, 1.0)))


def expected_agreement(reliability_a: float, reliability_b: float) -> float:
    """Expected Kendall tau between two ground truths of one true ranking, of these
    reliabilities: what noise alone leaves of a ranking that did not change.

    Two noisy measurements of the same true accuracies correlate at sqrt(rel_a * rel_b)
    (Pearson); under bivariate normality tau = (2 / pi) arcsin(r). Use it to judge whether a
    ranking moved between two recipes (e.g. 12 and 24 epochs): an observed tau near this
    value is all the agreement the two noisy ground truths could show.
    """
    if not (math.isfinite(reliability_a) and math.isfinite(reliability_b)):
        return 0.0
    if reliability_a <= 0 or reliability_b <= 0:
        return 0.0
    return 2.0 / math.pi * math.asin(math.sqrt(min(reliability_a * reliability_b, 1.0)))


def reliability(accs: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """How far a ground truth measured with several seeds agrees with itself.

    Args:
      accs: one {code: accuracy} map per training seed (at least 2); the codes every seed
        has are used.

    Returns:
      ``n`` (archs), ``seeds``, ``mean_acc``; ``seed_sd`` (the within-arch standard deviation
      across seeds, pooled over archs) and ``arch_sd`` (the standard deviation of the
      seed-mean accuracies across archs), as accuracy fractions; ``seed_tau`` (Kendall tau
      between the first two seeds), ``seed_r`` (Pearson r, averaged over seed pairs);
      ``split_half_r`` (Pearson r between the means of the two halves of the seeds, the
      first half against the second) and ``reliability`` (the reliability of the mean of
      all seeds: Spearman-Brown of ``seed_r`` to their number); ``expected_ceiling`` (the
      Kendall tau a perfect ranker is expected to reach against the seed mean,
      `ceiling_from_reliability`) and ``expected_replicate_tau`` (tau expected between this
      seed mean and an independent one of as many seeds).
    """
    codes, m = _common(accs)
    k = m.shape[0]
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    seed_r = float(np.mean([stats.pearsonr(m[i], m[j]).statistic for i, j in pairs]))
    half = k // 2
    split_half = float(stats.pearsonr(m[:half].mean(0), m[half : 2 * half].mean(0)).statistic)
    rel = spearman_brown(seed_r, k)
    return {
        "n": len(codes),
        "seeds": k,
        "mean_acc": float(m.mean()),
        "seed_sd": float(np.sqrt(m.var(axis=0, ddof=1).mean())),
        "arch_sd": float(m.mean(axis=0).std(ddof=1)),
        "seed_tau": float(stats.kendalltau(m[0], m[1]).statistic),
        "seed_r": seed_r,
        "split_half_r": split_half,
        "reliability": rel,
        "expected_ceiling": ceiling_from_reliability(rel),
        "expected_replicate_tau": expected_agreement(rel, rel),
    }

"""The ranking report of benchmark arms on the Fashion-MNIST ranking benchmark.

Every arm is a workdir that `bin_train.train_and_score` trained and scored on the 40 archs of
``fmnist_ranking/archs.txt``; this module reads their scores and ranks them against the
stand-alone ground truth (seed 0), with the ground truth's own ceiling (seed 0 vs seed 1):

    done = {arm: s for arm in ARMS if (s := arm_report.arm_scores(OUT / arm)) is not None}
    report = arm_report.rank_arms(done, baseline="sandwich", n_boot=1000)
    report["a_vs_b"] = arm_report.paired(done, "a", "b", n_boot=1000)
    report["arms"] = arm_report.arm_rows(OUT, done)
    lines = arm_report.header_lines(report) + arm_report.paired_line("a - b", report["a_vs_b"])
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from bin_train import seconds_per_step

from tfnas import ranking
from tfnas import scores as scores_lib
from tfnas.stages import registry

HERE = Path(__file__).resolve().parent
GT = HERE / "fmnist_ranking" / "standalone" / "ground_truth.seed0.json"
GT2 = HERE / "fmnist_ranking" / "standalone" / "ground_truth.seed1.json"


def ground_truth(path: Path = GT) -> dict[str, float]:
    return dict(scores_lib.load_scores(str(path), "ground_truth"))


def selected(names: str, known, what: str = "arms") -> list[str]:
    """The comma-separated ``names`` of a ``--arms`` flag, each one of ``known``."""
    chosen = names.split(",")
    unknown = [a for a in chosen if a not in known]
    if unknown:
        raise SystemExit(f"error: unknown {what} {unknown}; expected some of {list(known)}")
    return chosen


def add_run_arguments(parser, out: Path) -> None:
    """The flags of a benchmark whose arms train: ``--report_only``, ``--bootstrap``,
    ``--tiny`` (the configs' tiny variants, a smoke run) and ``--out`` (default ``out``)."""
    parser.add_argument("--report_only", action="store_true")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--tiny", action="store_true",
                        help="the configs' :tiny variants (synthetic data, a few steps)")
    parser.add_argument("--out", default=str(out))


def output_dir(args, out: Path) -> Path:
    """``--out``; a smoke run (``--tiny``) must not write into the committed ``out``."""
    chosen = Path(args.out)
    if args.tiny and chosen.resolve() == out.resolve():
        raise SystemExit("error: --tiny writes smoke-run products; pass --out=<a scratch dir>")
    return chosen


def scored_arms(out: Path, names) -> dict[str, dict[str, float]]:
    """{arm: its scores} of the arms of ``names`` (in that order) scored under ``out``."""
    return {arm: s for arm in names if (s := arm_scores(out / arm)) is not None}


def arm_scores(workdir: Path) -> dict[str, float] | None:
    """The supernet accuracies ``--stage=evaluate`` wrote in ``workdir``; None before it ran."""
    results = registry.read_manifest(str(workdir), "evaluate").get("results")
    if not results:
        return None
    return dict(scores_lib.load_scores(results, "results"))


def ceiling(gt_path: Path, n_boot: int) -> dict:
    """The Kendall tau a perfect ranker is expected to reach against ``gt_path``.

    A seed-mean ground truth (``benchmarks/gt_v2.py``) records it (`tfnas.ground_truth
    .reliability`: Spearman-Brown of its seed-to-seed r); for the v1 ground truth it is the
    agreement of seed 0 with seed 1 on the archs trained twice, with a bootstrap CI.
    """
    recorded = scores_lib.load_ceiling(str(gt_path))
    if recorded is not None:
        n = len(ground_truth(gt_path))
        return {"n": n, "value": recorded, "ci": None,
                "source": "expected ceiling of the seed mean (Spearman-Brown)"}
    if Path(gt_path).resolve() != GT.resolve():
        return {"n": 0, "value": None, "ci": None, "source": "none recorded"}
    gt, gt2 = ground_truth(GT), ground_truth(GT2)
    common = [c for c in gt2 if c in gt]
    tau = ranking.kendall_tau([gt[c] for c in common], [gt2[c] for c in common], n_boot=n_boot)
    return {"n": len(common), **tau, "source": "ground truth seed 0 vs seed 1"}


def rank_arms(done: dict[str, dict[str, float]], baseline: str, n_boot: int,
              row=lambda arm: arm, extra: dict | None = None, gt_path: Path = GT) -> dict:
    """`tfnas.ranking.ranking_report` of every arm of ``done`` against the ground truth.

    ``baseline`` is the reference ranker (each other arm's paired tau difference is against
    it); ``row(arm)`` names an arm's row; ``extra`` adds rankers that are not arms (proxies);
    ``gt_path`` is the ground truth (v1's seed 0 by default). The report also holds
    ``ceiling_tau`` (`ceiling`), by which it normalizes tau.
    """
    if baseline not in done:
        raise SystemExit(f"error: the {baseline} arm has no scores yet; run it first")
    gt = ground_truth(gt_path)
    ceil = ceiling(gt_path, n_boot)
    rankers = {row(arm): s for arm, s in done.items() if arm != baseline}
    rankers.update(extra or {})
    report = ranking.ranking_report(
        done[baseline], gt, "fmnist", n_boot=n_boot, pred_name=row(baseline),
        extra_rankers=rankers, ceiling=ceil["value"], drop_unmatched_pred=True,
    )
    report["ceiling_tau"] = ceil
    return report


def paired(done: dict[str, dict[str, float]], a: str, b: str, n_boot: int,
           gt_path: Path = GT) -> dict | None:
    """Paired Kendall tau difference, arm ``a`` - arm ``b``, on the ground truth's archs."""
    if a not in done or b not in done:
        return None
    gt = ground_truth(gt_path)
    codes = sorted(gt)
    return ranking.paired_tau_difference(
        [done[a][c] for c in codes], [done[b][c] for c in codes], [gt[c] for c in codes],
        n_boot=n_boot,
    )


def arm_rows(out: Path, done: dict[str, dict[str, float]]) -> dict[str, dict]:
    """Per arm: weight dictionaries K, steps, mean supernet accuracy, wall seconds per step."""
    rows = {}
    for arm in done:
        config = json.loads((out / arm / "oneshot" / "config.json").read_text())
        steps = int(config["train"]["epochs"]) * int(config["train"]["steps_per_epoch"])
        rows[arm] = {
            "num_kernels": int(config["supernet"]["num_kernels"]),
            "steps": steps,
            "mean_acc": float(np.mean(list(done[arm].values()))),
            "seconds_per_step": seconds_per_step(out / arm, steps),
        }
    return rows


def _ci(stat: dict) -> str:
    return f" [{stat['ci'][0]:+.3f}, {stat['ci'][1]:+.3f}]" if stat.get("ci") else ""


def header_lines(report: dict) -> list[str]:
    """The report's table and the ceiling line."""
    ceil = report["ceiling_tau"]
    if ceil["value"] is None:
        return [ranking.format_report(report), "", "Ceiling: none recorded for this ground truth."]
    return [ranking.format_report(report), "",
            f"Ceiling ({ceil['source']}, n = {ceil['n']}): tau {ceil['value']:+.3f}{_ci(ceil)}."]


def paired_line(title: str, d: dict | None) -> list[str]:
    """A paired difference (`paired`) as a report line; nothing when it was not computed."""
    if d is None:
        return []
    return ["", f"Paired Kendall tau difference, {title}: {d['delta']:+.3f}{_ci(d)}, "
                f"permutation p = {d['p_value']:.2f} (n = {d['n']})."]


def arms_table(rows: dict[str, dict], with_k: bool = False) -> list[str]:
    """The per-arm table of `arm_rows` in Markdown."""
    head = "| arm |" + (" K |" if with_k else "") + " steps | mean supernet acc | s/step |"
    lines = ["", head, "|---" * (head.count("|") - 1) + "|"]
    for arm, r in rows.items():
        sec = "" if r["seconds_per_step"] is None else f"{r['seconds_per_step']:.2f}"
        k = f" {r['num_kernels']} |" if with_k else ""
        lines.append(f"| {arm} |{k} {r['steps']} | {r['mean_acc']:.4f} | {sec} |")
    return lines

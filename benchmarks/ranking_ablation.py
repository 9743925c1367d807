"""The ranking table of every scheme at equal budget: which seed methods raise ranking consistency?

    .venv/bin/python benchmarks/ranking_ablation.py [--schemes=sandwich,spos,...] [--seeds=0,1]
        [--ground_truth=benchmarks/gt_v2/L12/ground_truth.json] [--steps=1200] [--report_only]
    .venv/bin/python benchmarks/ranking_ablation.py --tiny --out=/tmp/ablation   # smoke run

Every scheme trains supernets on the Fashion-MNIST ranking benchmark (`configs/fmnist_*.py`:
the benchmark's data, supernet and batch of 128) for the same budget, ``--steps`` batches in
all (1200 by default, ``BUDGET`` says why; a one-shot phase a method starts from included),
once per supernet seed (``config.seed``: initialization, data order and every sampled
subnet), then scores the ground truth's archs after BN recalibration (``--stage=evaluate``).
A scheme is a chain of ``bin/train`` stages, each started from the previous stage's supernet:

- ``spos``: one uniform path a step (`configs/fmnist_ranking.py`, ``train.scheme=uniform``);
- ``sandwich``: largest, smallest, 2 random, in-place distillation (`configs/fmnist_ranking.py`);
- ``fs_split``: sandwich (half the budget), then FS-split G = 2..7 one epoch each (the other
  half), at the G of the best monitor tau (`configs/fmnist_fewshot.py`);
- ``kshot_fixed``: K = 4 dictionaries, lambda = 1/K throughout (`configs/fmnist_kshot.py`);
- ``kshot``: K-shot as published: simplex-net with its channel branch, r_c, alternation;
- ``aps_cpt_sse``: APS_v3 (0.54) -> CPT (0.23) -> SSE34 with distillation (0.23)
  (`configs/fmnist_aps.py`, `fmnist_cpt.py`, `fmnist_sse.py`);
- ``rd_flops``: sandwich + RD-NAS with the FLOPs prior (``train.scheme=rdnas``);
- ``rd_synflow``: sandwich + RD-NAS, SynFlow prior from a proxy table over a pool of 200
  random codes (none of them ranked);
- ``kshot_sandwich``: a composition, K-shot whose supernet step is the sandwich; it needs
  only config (``train.kshot.supernet_step=sandwich``), no trainer code.

The APS/CPT/SSE split keeps seed paper 001's 70 : 30 : 30 epochs (`aps_cpt_sse_ladder.py`).
RD's lambda ramps over half the run (``lambda_ramp_epochs=1.5`` of 3), the shipped
``min(2, epoch / 10)`` scaled to this budget. Every stage runs the ranking monitor each epoch
on ``MONITOR_GT`` (the v1 ground truth's 15 seed-1 archs): its tau against the cumulative step
is the third picture, and FS-split picks its G by it (the method's own selection, seed paper
000 §2.2). Those 15 archs are among the ranked ones, so ``fs_split``'s row is optimistic by
whatever that choice gains.

Rankers that train nothing sit next to the schemes: FLOPs, params and every zero-cost proxy
(``--stage=proxies`` on the ranked archs, at initialization).

``report`` (every run, and ``--report_only``) reads whatever runs are done and writes
``ranking_ablation/report.{json,md}`` and three PNGs in seconds: per scheme and seed Kendall
tau, Spearman rho and Pearson r with bootstrap CIs and tau over the ceiling; per scheme the
seed-mean tau with its CI, the seeds' spread and the paired seed-mean tau difference against
``sandwich`` (`tfnas.ranking.paired_mean_tau_difference`); the training stages' s/step, images
per second, peak RSS and the run's wall time. ``tau_by_scheme.png`` (bars with CIs),
``scatter_best_worst.png`` and ``tau_by_step.png``. Each (scheme, seed) run is a directory of
resumable stages, ``ranking_ablation/<scheme>/seed<s>/<stage>/``: rerun after a kill, or add
a scheme or a seed, and only what is missing trains. The report refuses runs whose budget or
ranked archs differ from the others'.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import aps_cpt_sse_ladder as ladder  # noqa: E402
import arm_report  # noqa: E402
import rdnas_vs_sandwich as rdnas  # noqa: E402
from bin_train import bin_train  # noqa: E402
from bin_train import timed_stage  # noqa: E402

from tfnas import codes as codes_lib  # noqa: E402
from tfnas import plotting  # noqa: E402
from tfnas import ranking  # noqa: E402
from tfnas.schemes import fewshot as fewshot_lib  # noqa: E402
from tfnas.stages import rank as rank_stage  # noqa: E402
from tfnas.stages import registry  # noqa: E402

OUT = HERE / "ranking_ablation"
GT_V2 = HERE / "gt_v2"
MONITOR_GT = HERE / "fmnist_ranking" / "standalone" / "ground_truth.seed1.json"
BASELINE = "sandwich"
# The budget: 1200 batches of 128 (153,600 images) let a supernet see more images than one
# stand-alone run of the ground-truth recipe does (12 epochs of 10,000 images at L12), so a
# subnet's inherited weights have had at least a stand-alone run's data. At the 600 steps of
# the other benchmarks the sandwich supernet was still improving its ranking: trained on for
# 600 more steps, its tau rose from +0.116 to +0.254 (README, "Few-shot by group split").
BUDGET = 1200
EPOCHS = 3  # every stage: 3 epochs (a checkpoint and a monitor point each)
BASE = "fmnist_ranking.py"  # the benchmark's config: proxies and RD's prior table
FS_GROUPS = 7


@dataclass(frozen=True)
class Stage:
    """One ``bin/train`` training stage of a scheme's chain."""

    name: str
    config: str  # "file.py[:variant]" under configs/
    share: float  # of the budget's steps
    overrides: tuple[str, ...] = ()
    stage: str = "oneshot"


_RD = ("--config.train.scheme=rdnas", "--config.train.rdnas.lambda_ramp_epochs=1.5")
SCHEMES: dict[str, tuple[Stage, ...]] = {
    "sandwich": (Stage("oneshot", "fmnist_ranking.py", 1.0),),
    "spos": (Stage("oneshot", "fmnist_ranking.py", 1.0, ("--config.train.scheme=uniform",)),),
    "kshot": (Stage("oneshot", "fmnist_kshot.py", 1.0),),
    "kshot_fixed": (
        Stage("oneshot", "fmnist_kshot.py", 1.0,
              ("--config.train.kshot.warmup_epochs={epochs}",)),
    ),
    "fs_split": (
        Stage("oneshot", "fmnist_fewshot.py", 0.5),
        Stage("fewshot", "fmnist_fewshot.py", 0.5, ("--config.fewshot.select=0",),
              stage="fewshot"),
    ),
    "aps_cpt_sse": (
        Stage("aps", "fmnist_aps.py", ladder.APS / 600),
        Stage("cpt", "fmnist_cpt.py", ladder.CPT / 600),
        Stage("sse", "fmnist_sse.py", ladder.SSE / 600),
    ),
    "rd_flops": (Stage("oneshot", "fmnist_ranking.py", 1.0,
                       (*_RD, "--config.train.rdnas.prior=flops")),),
    "rd_synflow": (Stage("oneshot", "fmnist_ranking.py", 1.0, (
        *_RD, "--config.train.rdnas.prior=table", "--config.train.rdnas.proxy_name=synflow",
        "--config.train.rdnas.proxy_table={pool}")),),
    "kshot_sandwich": (Stage("oneshot", "fmnist_kshot.py", 1.0,
                             ("--config.train.kshot.supernet_step=sandwich",)),),
}


def default_ground_truth() -> Path:
    """Ground truth v2 (the newest recipe's ``ground_truth.json``), else v1's seed 0."""
    found = sorted(GT_V2.glob("*/ground_truth.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else arm_report.GT


def archs_of(gt_path: Path) -> Path:
    """The codes file of a ground truth's archs: v2's ``archs.txt`` or v1's."""
    if gt_path.resolve().is_relative_to(GT_V2.resolve()):
        return GT_V2 / "archs.txt"
    return HERE / "fmnist_ranking" / "archs.txt"


def stage_steps(stage: Stage, budget: int, tiny: bool) -> list[str]:
    """The flags giving ``stage`` its share of ``budget`` steps (and phase boundaries)."""
    if tiny:
        return []
    steps = round(stage.share * budget)
    if stage.stage == "fewshot":  # G = 2..FS_GROUPS, one epoch each
        per_g, rem = divmod(steps, FS_GROUPS - 1)
        if rem:
            raise ValueError(f"fewshot: {steps} steps do not divide into {FS_GROUPS - 1} G")
        return [f"--config.fewshot.max_copies={FS_GROUPS}", "--config.fewshot.epochs=(1,)",
                f"--config.train.steps_per_epoch={per_g}"]
    return ladder.budget_overrides(stage.config, steps)


def make_pool(out: Path, archs: Path, tiny: bool) -> Path:
    """RD's prior table: SynFlow at initialization of 200 random codes, none of them a
    ranked arch (`rdnas_vs_sandwich.synflow_table`), made once."""
    table = out / "pool" / "proxies" / "scores.json"
    if table.exists():
        return table
    return rdnas.synflow_table(out, archs, 8 if tiny else rdnas.POOL_SIZE, _config(BASE, tiny))


def _config(config: str, tiny: bool) -> str:
    """``config``, or its ``:tiny`` variant for a smoke run."""
    return config.split(":")[0] + ":tiny" if tiny else config


def run_scheme(scheme: str, seed: int, out: Path, archs: Path, budget: int, tiny: bool) -> None:
    """Trains one (scheme, seed) run's chain, then scores ``archs`` with its last stage."""
    run_dir = out / scheme / f"seed{seed}"
    previous = None
    for stage in SCHEMES[scheme]:
        config = _config(stage.config, tiny)
        pool = make_pool(out, archs, tiny) if any("{pool}" in o for o in stage.overrides) else None
        epochs = ladder.load_config(config).train.epochs if tiny else EPOCHS
        overrides = [o.format(pool=pool, epochs=epochs) for o in stage.overrides]
        overrides += [f"--config.seed={seed}", *stage_steps(stage, budget, tiny)]
        if not tiny:
            overrides += ["--config.train.monitor.enabled=True",
                          f"--config.train.monitor.ground_truth={MONITOR_GT}"]
        if previous is not None:
            source = previous / "oneshot" / "supernet.keras"
            key = "fewshot" if stage.stage == "fewshot" else "supernet"
            overrides.append(f"--config.{key}.init_from={source}")
        timed_stage(config, run_dir / stage.name, stage.stage, overrides)
        previous = run_dir / stage.name
    scored = arm_report.arm_scores(previous) or {}
    if any(code not in scored for code in _codes(archs)):
        bin_train(_config(SCHEMES[scheme][-1].config, tiny), "--stage=evaluate",
                  f"--codes={archs}", f"--workdir={previous}",
                  f"--config.seed={seed}")


def _codes(archs: Path) -> list[str]:
    return [r.code for r in codes_lib.read_codes(archs)]


def run_proxies(out: Path, archs: Path, tiny: bool) -> None:
    """Every zero-cost proxy on the ranked archs (``out/proxies``); the stage resumes, so a
    ground truth with more archs only scores the new ones."""
    path = registry.read_manifest(str(out), "proxies").get("scores")
    scored = {r["code"] for r in json.loads(Path(path).read_text())["results"]} if path else set()
    if any(code not in scored for code in _codes(archs)):
        bin_train(_config(BASE, tiny), "--stage=proxies", f"--codes={archs}",
                  f"--workdir={out}")


# ---------------------------------------------------------------------------------- report


def _trainings(stage_dir: Path, stage: Stage) -> tuple[dict, list[tuple[Path, int]]]:
    """A trained stage's resolved config and its training runs with their epochs: the
    ``oneshot`` run, or the fewshot stage's G = 2..G_max (`tfnas.stages.fewshot`)."""
    config = json.loads((stage_dir / stage.stage / "config.json").read_text())
    if stage.stage != "fewshot":
        return config, [(stage_dir / "oneshot", int(config["train"]["epochs"]))]
    g_max = int(config["fewshot"]["max_copies"])
    epochs = fewshot_lib.per_step(config["fewshot"]["epochs"], g_max)
    return config, [(stage_dir / "fewshot" / f"G{g}", int(epochs[g - 2]))
                    for g in range(2, g_max + 1)]


def _history(run: Path) -> dict[int, dict]:
    """The ranking monitor's rows of one training run by epoch (a resumed run's repeats:
    the last one)."""
    path = run / "monitor" / "history.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return {int(r["epoch"]): r for r in rows}


def _stage_record(stage_dir: Path, stage: Stage) -> dict:
    """One trained stage: steps, images, wall seconds, the ranking monitor's share of them
    (its evaluations are not training, and their number differs between schemes), and the
    process's peak RSS; ``clean`` is False for a resumed stage (its time is not comparable)."""
    config, runs = _trainings(stage_dir, stage)
    train = config["train"]
    steps = sum(epochs for _, epochs in runs) * int(train["steps_per_epoch"])
    timing = json.loads((stage_dir / "timing.json").read_text())
    monitor = sum(float(r.get("seconds", 0.0)) for run, _ in runs
                  for r in _history(run).values())
    return {"steps": steps, "images": steps * int(train["batch_size"]),
            "seconds": timing[f"{stage.stage}_seconds"], "monitor_seconds": monitor,
            "clean": not timing["resumed"], "peak_rss_mib": timing.get("peak_rss_mib")}


def _speed(runs) -> dict:
    """s/step and images/s of a scheme's runs that ran in one go (monitor time excluded),
    the mean over runs of total training seconds / total steps; peak RSS, the largest."""
    clean = [r["stages"].values() for r in runs if all(s["clean"] for s in r["stages"].values())]
    if not clean:
        return {"seconds_per_step": None, "images_per_second": None, "peak_rss_mib": None}
    seconds = [sum(s["seconds"] - s["monitor_seconds"] for s in st) for st in clean]
    steps = [sum(s["steps"] for s in st) for st in clean]
    images = [sum(s["images"] for s in st) for st in clean]
    peaks = [s["peak_rss_mib"] for st in clean for s in st if s["peak_rss_mib"]]
    return {"seconds_per_step": float(np.mean([t / n for t, n in zip(seconds, steps)])),
            "images_per_second": float(np.mean([i / t for i, t in zip(images, seconds)])),
            "peak_rss_mib": max(peaks, default=None)}


def runs_done(out: Path, schemes, equal_budget: bool = True) -> dict[str, dict[int, dict]]:
    """{scheme: {seed: {"scores", "stages", "wall_seconds"}}} of every scored run; with
    ``equal_budget``, refuses runs that trained on different numbers of images."""
    done: dict[str, dict[int, dict]] = {}
    for scheme in schemes:
        for run_dir in sorted((out / scheme).glob("seed*")):
            last = run_dir / SCHEMES[scheme][-1].name
            scores = arm_report.arm_scores(last)
            if scores is None:
                continue
            stages = {s.name: _stage_record(run_dir / s.name, s) for s in SCHEMES[scheme]}
            results = registry.read_manifest(str(last), "evaluate")["results"]
            done.setdefault(scheme, {})[int(run_dir.name[4:])] = {
                "scores": scores, "stages": stages,
                "noise": json.loads(Path(results).read_text()).get("noise"),
                "images": sum(s["images"] for s in stages.values()),
                "wall_seconds": sum(s["seconds"] for s in stages.values()),
            }
    budgets = {(sch, seed): r["images"] for sch, rs in done.items() for seed, r in rs.items()}
    if equal_budget and len(set(budgets.values())) > 1:
        raise SystemExit(
            f"error: the runs under {out} trained on different numbers of images {budgets}; "
            "a table at equal budget needs one --steps for every run (move the odd runs away "
            "or pass --out=<a new directory>)"
        )
    return done


def monitor_curve(out: Path, scheme: str, seed: int) -> tuple[list[int], list[float]]:
    """The ranking monitor's tau against the cumulative training step of one run."""
    steps, taus, offset = [], [], 0
    for stage in SCHEMES[scheme]:
        config, runs = _trainings(out / scheme / f"seed{seed}" / stage.name, stage)
        per_epoch = int(config["train"]["steps_per_epoch"])
        for run, epochs in runs:
            for epoch, row in sorted(_history(run).items()):
                if row.get("kendall_tau") is not None:
                    steps.append(offset + epoch * per_epoch)
                    taus.append(float(row["kendall_tau"]))
            offset += epochs * per_epoch
    return steps, taus


def report(out: Path, schemes, gt_path: Path, n_boot: int, equal_budget: bool = True) -> dict:
    """Ranks every scored run of ``schemes`` under ``out``; writes ``report.{json,md}`` and
    the PNGs. ``equal_budget=False`` only for smoke runs (the tiny configs' budgets differ)."""
    done = runs_done(out, schemes, equal_budget)
    if BASELINE not in done:
        raise SystemExit(f"error: no scored {BASELINE} run under {out}; run it first")
    gt = arm_report.ground_truth(gt_path)
    arms = {f"{sch} s{seed}": r["scores"] for sch, rs in done.items() for seed, r in rs.items()}
    codes = [c for c in gt if all(c in s for s in arms.values())]
    if len(codes) < len(gt):
        raise SystemExit(f"error: the runs scored {len(codes)} of the ground truth's {len(gt)} "
                         f"archs ({gt_path}); score the rest with --codes={archs_of(gt_path)}")
    proxies, _ = rank_stage.proxy_rankers(str(out), codes)
    base = f"{BASELINE} s{min(done[BASELINE])}"
    per_run = arm_report.rank_arms(arms, base, n_boot, extra=proxies, gt_path=gt_path)
    truth = [gt[c] for c in codes]
    table = {}
    for scheme, rs in done.items():
        preds = [[r["scores"][c] for c in codes] for r in rs.values()]
        mean = ranking.mean_kendall_tau(preds, truth, n_boot=n_boot)
        # Against the sandwich, seed with seed: the seeds both have.
        paired_seeds = sorted(set(rs) & set(done[BASELINE]))
        vs = None
        if scheme != BASELINE and paired_seeds:
            vs = ranking.paired_mean_tau_difference(
                [[rs[s]["scores"][c] for c in codes] for s in paired_seeds],
                [[done[BASELINE][s]["scores"][c] for c in codes] for s in paired_seeds],
                truth, n_boot=n_boot)
            vs["seeds"] = paired_seeds
        ceiling = per_run["ceiling_tau"]["value"]
        table[scheme] = {
            "seeds": sorted(rs),
            "tau": mean,
            "tau_normalized": None if not ceiling else mean["value"] / ceiling,
            "seed_spread": float(np.ptp(mean["runs"])) if len(rs) > 1 else None,
            "vs_sandwich": vs,
            **_speed(rs.values()),
            "wall_seconds": float(np.mean([r["wall_seconds"] for r in rs.values()])),
            # The evaluation set's binomial noise against the spread of the supernet's scores
            # (`tfnas.ranking.score_noise`, recorded by the evaluate stage), seed means.
            "score_noise": _mean_noise([r["noise"] for r in rs.values()]),
            "images": next(iter(rs.values()))["images"],
        }
    result = {"ground_truth": str(gt_path), "n": len(codes), "per_run": per_run,
              "schemes": table, "plots": plots(out, done, table, per_run, gt, codes)}
    (out / "report.json").write_text(json.dumps(result, indent=1))
    lines = markdown(result)
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


def _mean_noise(noises: list) -> dict | None:
    noises = [n for n in noises if n]
    if not noises:
        return None
    return {k: float(np.mean([n[k] for n in noises]))
            for k in ("num_examples", "binomial_se", "score_sd", "ratio")}


def _ci(stat: dict | None) -> str:
    if not stat or not stat.get("ci"):
        return ""
    return f" [{stat['ci'][0]:+.3f}, {stat['ci'][1]:+.3f}]"


def _noise(noise: dict | None) -> str:
    if not noise:
        return ""
    return f"{noise['binomial_se']:.4f} / {noise['score_sd']:.4f}"


def _num(value, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def markdown(result: dict) -> list[str]:
    lines = arm_report.header_lines(result["per_run"])
    lines += ["", f"Per scheme (n = {result['n']} archs; ground truth {result['ground_truth']}):",
              "", "| scheme | seeds | tau, seed mean [95% CI] | tau per seed | tau / ceiling "
              "| vs sandwich: delta tau [95% CI], p | eval s.e. / score s.d. | s/step | images/s "
              "| peak RSS (MiB) | wall (s) |", "|---" * 11 + "|"]
    for scheme, row in result["schemes"].items():
        d = row["vs_sandwich"]
        vs = "" if d is None else (f"{d['delta']:+.3f}{_ci(d)}"
                                   + ("" if d["p_value"] is None else f", p = {d['p_value']:.2f}"))
        lines.append(
            f"| {scheme} | {len(row['seeds'])} | {row['tau']['value']:+.3f}{_ci(row['tau'])} | "
            + ", ".join(f"{t:+.3f}" for t in row["tau"]["runs"])
            + f" | {_num(row['tau_normalized'], '+.2f')} | {vs} | {_noise(row['score_noise'])} | "
            f"{_num(row['seconds_per_step'], '.2f')} | {_num(row['images_per_second'], '.0f')} | "
            f"{_num(row['peak_rss_mib'], '.0f')} | {row['wall_seconds']:.0f} |")
    lines += ["", "Against the sandwich (seed-mean tau, 95% CI over archs):"]
    for scheme, row in result["schemes"].items():
        d = row["vs_sandwich"]
        if d is None or not d.get("ci"):
            continue
        low, high = d["ci"]
        verdict = ("resolved: better" if low > 0 else "resolved: worse" if high < 0
                   else "the same ranking" if low == high == d["delta"] == 0
                   else "not resolved: the interval holds 0, the difference is inside the noise")
        lines.append(f"- {scheme} - sandwich: {d['delta']:+.3f}{_ci(d)}, {verdict}.")
    return lines


def plots(out: Path, done: dict, table: dict, per_run: dict, gt: dict, codes) -> list[str]:
    """``tau_by_scheme.png``, ``scatter_best_worst.png`` and ``tau_by_step.png``."""
    figures = {}
    names = list(table)
    taus = [table[s]["tau"] for s in names]
    rankers = per_run["rankers"]
    others = [r for r in ("flops", "params") if r in rankers]
    figures["tau_by_scheme"] = plotting.bars_with_ci(
        names + others, [t["value"] for t in taus] + [rankers[r]["kendall_tau"]["value"]
                                                      for r in others],
        [(t.get("ci") or [None])[0] for t in taus]
        + [(rankers[r]["kendall_tau"].get("ci") or [None])[0] for r in others],
        [(t.get("ci") or [None, None])[1] for t in taus]
        + [(rankers[r]["kendall_tau"].get("ci") or [None, None])[1] for r in others],
        ylabel="Kendall tau vs stand-alone (seed mean)", reference=per_run.get("ceiling"),
        reference_label=f"ceiling ({per_run['ceiling_tau']['source']})",
        title=f"Schemes at equal budget (n = {len(codes)})")
    best = max(names, key=lambda s: table[s]["tau"]["value"])
    worst = min(names, key=lambda s: table[s]["tau"]["value"])
    xs, ys = [], []
    for scheme in dict.fromkeys((best, worst)):
        scores = done[scheme][min(done[scheme])]["scores"]
        xs += [gt[c] for c in codes]
        ys += [scores[c] for c in codes]
    mask = [False] * len(codes) + [True] * (len(xs) - len(codes))
    figures["scatter_best_worst"] = plotting.scatter(
        xs, ys, xlabel="stand-alone accuracy", ylabel="supernet accuracy (first seed)",
        highlight=mask if worst != best else None, highlight_label=f"worst: {worst}",
        title=f"best: {best}" + (f", highlighted worst: {worst}" if worst != best else ""))
    curves_x, curves_y = {}, {}
    for scheme in names:
        steps, curve = monitor_curve(out, scheme, min(done[scheme]))
        if steps:
            curves_x[scheme], curves_y[scheme] = steps, curve
    if curves_y:
        figures["tau_by_step"] = plotting.lines(
            curves_x, curves_y, xlabel="training step (chain included)",
            ylabel="monitor Kendall tau (15 archs)", title="Ranking during training (first seed)")
    for name, fig in figures.items():
        plotting.save_png(fig, out / f"{name}.png")
    return [f"{name}.png" for name in figures]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schemes", default=",".join(SCHEMES))
    parser.add_argument("--seeds", default="0,1", help="supernet seeds (config.seed)")
    parser.add_argument("--steps", type=int, default=BUDGET, help="the budget, in batches of 128")
    parser.add_argument("--ground_truth", default=None,
                        help="default: ground truth v2 if committed, else v1 seed 0")
    arm_report.add_run_arguments(parser, OUT)
    args = parser.parse_args()
    schemes = arm_report.selected(args.schemes, SCHEMES, "schemes")
    if BASELINE not in schemes:
        schemes.insert(0, BASELINE)
    out = arm_report.output_dir(args, OUT)
    gt_path = Path(args.ground_truth) if args.ground_truth else default_ground_truth()
    archs = archs_of(gt_path)
    if not args.report_only:
        run_proxies(out, archs, args.tiny)
        for seed in (int(s) for s in args.seeds.split(",")):
            for scheme in schemes:
                run_scheme(scheme, seed, out, archs, args.steps, args.tiny)
    report(out, list(SCHEMES), gt_path, args.bootstrap, equal_budget=not args.tiny)


if __name__ == "__main__":
    main()

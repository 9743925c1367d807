"""Seed paper 001's ladder (Tables 1-3) on the Fashion-MNIST ranking benchmark, at equal budget.

    .venv/bin/python benchmarks/aps_cpt_sse_ladder.py [--rungs=baseline,aps,...] [--report_only]
    .venv/bin/python benchmarks/aps_cpt_sse_ladder.py --tiny --out=/tmp/ladder   # smoke run

Every rung trains 600 steps of batch 128 in all (the benchmark's budget, equal images), as a
chain of ``--stage=oneshot`` runs each started from the previous one's supernet
(``supernet.init_from``, a fresh optimizer), then scores the 40 ground-truth archs
(``--stage=evaluate``, BN recalibrated; an SSE supernet routes each arch to its bucket):

| rung | chain (steps) |
|---|---|
| ``baseline`` | 4 uniform paths a step, whole space, warm-up + cosine (600) |
| ``aps`` | APS_v3 (600): `configs/fmnist_aps.py` |
| ``cpt`` | APS_v3 (324) -> CPT (276) |
| ``sse4`` | APS_v3 (324) -> CPT (138) -> SSE4, no distillation (138) |
| ``sse34`` | APS_v3 (324) -> CPT (138) -> SSE34, no distillation (138) |
| ``distill`` | APS_v3 (324) -> CPT (138) -> SSE34 + distillation (138) |

The split 324 / 138 / 138 keeps the authors' 70 : 30 : 30 epochs of APS, CPT and SSE; the
phase boundaries of APS and SSE are recomputed for each stage's steps with the configs' own
helpers (`configs.fmnist_aps.aps_phases`, `configs.fmnist_sse.bucket_phases`). The baseline
is APS's step without its phase table (seed paper 001 does not define its baseline,
SCHEMES.md §3.7), so ``aps`` - ``baseline`` is what the progressive shrinking adds. CPT's
pool is redrawn every 500 steps as in the paper, so in these short stages it is drawn once
and then changes by the replacement rule only. The teacher of ``distill`` is
``init_largest``: the CPT supernet's largest subnet, recalibrated (`tfnas.teacher`).

The report ranks every rung against the ground truth (seed 0; `arm_report.rank_arms`,
paired tau differences against ``baseline``), gives each rung's paired difference against the
rung below it (what the step adds), the ceiling (ground truth seed 0 vs seed 1, n = 15), the
wall seconds per step of every stage (start-up included), and ``tau_by_rung.png``.
Resumable: rerun the same command after a kill; a finished stage is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import arm_report  # noqa: E402
from bin_train import seconds_per_step  # noqa: E402
from bin_train import train_and_score  # noqa: E402

from configs import fmnist_aps  # noqa: E402
from configs import fmnist_sse  # noqa: E402
from tfnas import plotting  # noqa: E402

ARCHS = HERE / "fmnist_ranking" / "archs.txt"
OUT = HERE / "aps_cpt_sse_ladder"
BASELINE = "baseline"
EPOCHS = 3  # every stage: 3 epochs (a checkpoint each), steps_per_epoch = steps / 3
APS, CPT, SSE = 324, 138, 138

# stage -> (config file, steps, extra overrides, the stage it starts from)
STAGES = {
    "baseline": ("fmnist_ranking.py", 600,
                 ["--config.train.scheme=multipath", "--config.train.num_paths=4",
                  "--config.supernet.dropout=0.0"], None),
    "aps600": ("fmnist_aps.py", 600, [], None),
    "aps324": ("fmnist_aps.py", APS, [], None),
    "cpt276": ("fmnist_cpt.py", 600 - APS, [], "aps324"),
    "cpt138": ("fmnist_cpt.py", CPT, [], "aps324"),
    "sse4": ("fmnist_sse.py:sse4", SSE,
             ["--config.train.teacher=", "--config.train.sse.distill_weight=0.0"], "cpt138"),
    "sse34": ("fmnist_sse.py:nodistill", SSE, [], "cpt138"),
    "distill": ("fmnist_sse.py", SSE, [], "cpt138"),
}
# rung -> its last stage, in the ladder's order.
RUNGS = {"baseline": "baseline", "aps": "aps600", "cpt": "cpt276", "sse4": "sse4",
         "sse34": "sse34", "distill": "distill"}


def chain(stage: str) -> list[str]:
    """The stages a stage's supernet went through, first to last."""
    stages = [stage]
    while STAGES[stages[0]][3] is not None:
        stages.insert(0, STAGES[stages[0]][3])
    return stages


def load_config(config_file: str):
    """The config of ``"name.py[:variant]"``."""
    import importlib

    name = config_file.split(".py")[0]
    variant = config_file.partition(":")[2] or None
    return importlib.import_module(f"configs.{name}").get_config(variant)


def budget_overrides(config_file: str, steps: int) -> list[str]:
    """``--config.train.*`` flags giving a stage of ``config_file`` ``steps`` steps, and the
    phase boundaries of those steps (APS's six phases, SSE's one phase per bucket) in the
    configs' proportions."""
    if steps % EPOCHS:
        raise ValueError(f"{config_file}: {steps} steps do not divide into {EPOCHS} epochs")
    flags = [f"--config.train.epochs={EPOCHS}",
             f"--config.train.steps_per_epoch={steps // EPOCHS}"]
    config = load_config(config_file)
    if config.train.scheme == "multipath" and config.train.phases.boundaries:
        version = config_file.partition(":")[2] or "v3"
        fmnist_aps.aps_phases(config, version, config.train.phases.width_hi[3:], steps)
    elif config.train.scheme == "sse":
        bounds = config.train.phases.boundaries
        total = EPOCHS * int(config.train.steps_per_epoch)
        # The config's bucket lengths, as fractions of its own budget, on this one.
        ends = (*bounds, total)
        lengths = [b - a for a, b in zip((0, *bounds), ends)]
        fmnist_sse.bucket_phases(config, lengths, steps)
    else:
        return flags
    return flags + [f"--config.train.phases.boundaries={tuple(config.train.phases.boundaries)}"]


def run_stage(stage: str, out: Path, tiny: bool) -> None:
    config_file, _, extra, parent = STAGES[stage]
    overrides = list(extra)
    if tiny:
        config_file = config_file.split(":")[0] + ":tiny"
        if stage == "distill":  # the tiny SSE has no teacher; this rung is about one
            overrides += ["--config.train.teacher=init_largest",
                          "--config.train.sse.distill_weight=0.4"]
    else:
        overrides += budget_overrides(*STAGES[stage][:2])
    if parent is not None:
        overrides.append(
            f"--config.supernet.init_from={out / parent / 'oneshot' / 'supernet.keras'}"
        )
    train_and_score(config_file, out / stage, ARCHS, overrides)


def plots(report: dict, done: dict, out: Path) -> list[str]:
    rankers = report["rankers"]
    names = [r for r in RUNGS if r in done]
    taus = [rankers[r]["kendall_tau"] for r in names]
    lows = [t["ci"][0] if t.get("ci") else None for t in taus]
    highs = [t["ci"][1] if t.get("ci") else None for t in taus]
    fig = plotting.bars_with_ci(
        names, [t["value"] for t in taus], lows, highs, ylabel="Kendall tau vs stand-alone",
        reference=report.get("ceiling"), reference_label="ceiling (GT seed 0 vs 1)",
        title="Seed paper 001's ladder (n = 40)")
    plotting.save_png(fig, out / "tau_by_rung.png")
    return ["tau_by_rung.png"]


def report_rungs(out: Path, n_boot: int) -> None:
    by_stage = arm_report.scored_arms(out, RUNGS.values())
    done = {rung: by_stage[stage] for rung, stage in RUNGS.items() if stage in by_stage}
    report = arm_report.rank_arms(done, BASELINE, n_boot)
    names = [r for r in RUNGS if r in done]
    report["steps_up"] = {
        f"{b} - {a}": arm_report.paired(done, b, a, n_boot) for a, b in zip(names, names[1:])
    }
    report["rungs"] = {}
    for rung in names:
        stages = chain(RUNGS[rung])
        rows = {}
        for stage in stages:
            config = json.loads((out / stage / "oneshot" / "config.json").read_text())
            steps = int(config["train"]["epochs"]) * int(config["train"]["steps_per_epoch"])
            rows[stage] = {"scheme": config["train"]["scheme"], "steps": steps,
                           "seconds_per_step": seconds_per_step(out / stage, steps)}
        report["rungs"][rung] = {
            "stages": rows,
            "steps": sum(r["steps"] for r in rows.values()),
            "mean_acc": float(np.mean(list(done[rung].values()))),
        }
    report["plots"] = plots(report, done, out)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    lines = arm_report.header_lines(report)
    for title, d in report["steps_up"].items():
        lines += arm_report.paired_line(title, d)
    lines += ["", "| rung | stages (scheme: steps, s/step) | steps | mean supernet acc |",
              "|---|---|---|---|"]
    for rung, r in report["rungs"].items():
        stages = ", ".join(
            f"{s} ({v['scheme']}: {v['steps']}"
            + ("" if v["seconds_per_step"] is None else f", {v['seconds_per_step']:.2f} s")
            + ")" for s, v in r["stages"].items())
        lines.append(f"| {rung} | {stages} | {r['steps']} | {r['mean_acc']:.4f} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rungs", default=",".join(RUNGS))
    arm_report.add_run_arguments(parser, OUT)
    args = parser.parse_args()
    rungs = arm_report.selected(args.rungs, RUNGS, "rungs")
    out = arm_report.output_dir(args, OUT)
    if not args.report_only:
        stages = [s for rung in rungs for s in chain(RUNGS[rung])]
        for stage in dict.fromkeys(stages):  # each once, in chain order
            run_stage(stage, out, args.tiny)
    report_rungs(out, args.bootstrap)


if __name__ == "__main__":
    main()

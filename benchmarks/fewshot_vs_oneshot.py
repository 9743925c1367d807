"""Few-shot by group split against the one-shot supernet trained on for the same steps.

    .venv/bin/python benchmarks/fewshot_vs_oneshot.py [--arms=fewshot,oneshot] [--steps=200]
        [--report_only]

Both arms start from the committed Fashion-MNIST benchmark supernet
(``fmnist_ranking/run/oneshot/supernet.keras``: 3 x 200 sandwich steps) and get the same
extra budget, 6 x ``--steps`` steps of batch 128 (the config's 200 per G: seed paper 000's 20
epochs per split against 100 one-shot epochs, scaled as `configs/fmnist_fewshot.py`
describes; the committed report ran ``--steps=100``, half of that, to fit a session):

* ``fewshot``: ``--stage=fewshot`` with `configs/fmnist_fewshot.py` (G = 2..7, one epoch of
  ``--steps`` steps each, no warm-up, base learning rate 0.01, 0.02 at G=3, a fresh optimizer per
  G, per-group learning rates in the code's direction), then ``--stage=evaluate`` of the
  G=7 supernet (the monitor is off, so the stage selects G_max);
* ``oneshot``: ``--stage=oneshot`` with `configs/fmnist_ranking.py`, ``supernet.init_from``
  the same supernet, 6 epochs of ``--steps`` steps, phases restarting the cosine every epoch
  with the same peaks (0.01, 0.02, 0.01, ...) and a momentum reset at each boundary -- the
  few-shot arm's schedule, with one weight copy.

Each arm's 40 ground-truth archs (``fmnist_ranking/archs.txt``) are scored after BN
recalibration (the benchmark's evaluator) and ranked against the committed ground truth
(seed 0, n = 40), with the paired difference in Kendall tau (few-shot minus one-shot: paired
bootstrap CI and permutation p, `tfnas.ranking.paired_tau_difference`) and the ground
truth's ceiling (seed 0 against seed 1 on the 15 archs trained twice). Every step is a
resumable stage; rerun the same command after a kill. The report also lists the parameter count
and supernet file size per G (the fewshot stage's ``table.json``). Products: ``fewshot_vs_oneshot/``
(``report.json``, ``report.md``, and each arm's workdir).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bin_train import bin_train  # noqa: E402

from tfnas import ranking  # noqa: E402
from tfnas import scores as scores_lib  # noqa: E402
from tfnas import search_space as ss  # noqa: E402
from tfnas.stages import registry  # noqa: E402

SOURCE = HERE / "fmnist_ranking" / "run" / "oneshot" / "supernet.keras"
SOURCE_RESULTS = HERE / "fmnist_ranking" / "run" / "evaluate" / "results.json"
ARCHS = HERE / "fmnist_ranking" / "archs.txt"
GT = HERE / "fmnist_ranking" / "standalone" / "ground_truth.seed0.json"
GT2 = HERE / "fmnist_ranking" / "standalone" / "ground_truth.seed1.json"
OUT = HERE / "fewshot_vs_oneshot"
STEPS = [200]  # per G (one epoch); --steps
PEAKS = (0.01, 0.02, 0.01, 0.01, 0.01, 0.01)  # configs/fmnist_fewshot.py, per G = 2..7


def run_fewshot(workdir: Path) -> None:
    overrides = [f"--workdir={workdir}", f"--config.fewshot.init_from={SOURCE}",
                 f"--config.train.steps_per_epoch={STEPS[0]}"]
    bin_train("fmnist_fewshot.py", "--stage=fewshot", *overrides)
    bin_train("fmnist_fewshot.py", "--stage=evaluate", f"--codes={ARCHS}", *overrides)


def run_oneshot(workdir: Path) -> None:
    base = PEAKS[0]
    overrides = [
        f"--workdir={workdir}", f"--config.supernet.init_from={SOURCE}",
        f"--config.train.epochs={len(PEAKS)}", f"--config.train.steps_per_epoch={STEPS[0]}",
        f"--config.train.learning_rate={base}", "--config.train.warmup_epochs=0",
        "--config.train.phases.boundaries="
        + repr(tuple(STEPS[0] * (i + 1) for i in range(len(PEAKS) - 1))),
        "--config.train.phases.peaks=" + repr(tuple(p / base for p in PEAKS)),
        "--config.train.phases.reset_momentum=True",
    ]
    bin_train("fmnist_ranking.py", "--stage=oneshot", *overrides)
    bin_train("fmnist_ranking.py", "--stage=evaluate", f"--codes={ARCHS}", *overrides)


def scores_of(workdir: Path) -> dict[str, float] | None:
    results = registry.read_manifest(str(workdir), "evaluate").get("results")
    if not results:
        return None
    return dict(scores_lib.load_scores(results, "results"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arms", default="fewshot,oneshot")
    parser.add_argument("--report_only", action="store_true")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument(
        "--steps", type=int, default=200,
        help="steps per G (and per one-shot phase); the config's epoch is 200",
    )
    args = parser.parse_args()
    STEPS[0] = args.steps
    arms = args.arms.split(",")
    runners = {"fewshot": run_fewshot, "oneshot": run_oneshot}
    if not args.report_only:
        for arm in arms:
            runners[arm](OUT / arm)

    gt = dict(scores_lib.load_scores(str(GT), "ground_truth"))
    gt2 = dict(scores_lib.load_scores(str(GT2), "ground_truth"))
    space = ss.get_space("fmnist")
    preds = {"start (600 one-shot steps)": dict(scores_lib.load_scores(str(SOURCE_RESULTS),
                                                                        "results"))}
    for arm in ("oneshot", "fewshot"):
        scores = scores_of(OUT / arm)
        if scores is not None:
            # The steps the arm ran, from its own resolved config (not this run's --steps).
            config = json.loads((OUT / arm / arm / "config.json").read_text())
            steps = len(PEAKS) * int(config["train"]["steps_per_epoch"])
            preds[f"{arm} (+{steps} steps)"] = scores
    codes = [c for c in gt if all(c in p for p in preds.values())]
    truth = [gt[c] for c in codes]
    report = {"n": len(codes), "rankers": {}, "paired": {}}
    for name, pred in preds.items():
        values = [pred[c] for c in codes]
        report["rankers"][name] = {
            "kendall_tau": ranking.kendall_tau(values, truth, n_boot=args.bootstrap),
            "spearman_rho": ranking.spearman_rho(values, truth, n_boot=args.bootstrap),
            "pearson_r": ranking.pearson_r(values, truth, n_boot=args.bootstrap),
            "mean_acc": sum(values) / len(values),
        }
    flops = [space.flops(space.parse(c)) for c in codes]
    report["rankers"]["FLOPs"] = {
        "kendall_tau": ranking.kendall_tau(flops, truth, n_boot=args.bootstrap),
        "spearman_rho": ranking.spearman_rho(flops, truth, n_boot=args.bootstrap),
        "pearson_r": ranking.pearson_r(flops, truth, n_boot=args.bootstrap),
    }
    names = list(preds)
    if len(names) == 3:
        fs, os_ = names[2], names[1]
        report["paired"]["fewshot - oneshot"] = ranking.paired_tau_difference(
            [preds[fs][c] for c in codes], [preds[os_][c] for c in codes], truth,
            n_boot=args.bootstrap,
        )
    common = [c for c in gt2 if c in gt]
    report["ceiling"] = {
        "n": len(common),
        "kendall_tau": ranking.kendall_tau([gt[c] for c in common], [gt2[c] for c in common],
                                           n_boot=args.bootstrap),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.json").write_text(json.dumps(report, indent=1))

    def ci(m):
        return f"{m['value']:+.3f} [{m['ci'][0]:+.3f}, {m['ci'][1]:+.3f}]"

    lines = [
        f"n = {len(codes)} ground-truth archs (seed 0).",
        "",
        "| ranker | Kendall tau [95% CI] | Spearman rho | Pearson r | mean supernet acc |",
        "|---|---|---|---|---|",
    ]
    for name, r in report["rankers"].items():
        mean = f"{r['mean_acc']:.4f}" if "mean_acc" in r else ""
        lines.append(
            f"| {name} | {ci(r['kendall_tau'])} | {r['spearman_rho']['value']:+.3f} | "
            f"{r['pearson_r']['value']:+.3f} | {mean} |"
        )
    for name, d in report["paired"].items():
        lines += ["", f"Paired Kendall tau difference, {name}: {d['delta']:+.3f} "
                  f"[{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}], permutation p = {d['p_value']:.2f}."]
    c = report["ceiling"]
    lines += ["", f"Ceiling (ground truth seed 0 vs seed 1, n = {c['n']}): tau "
              f"{ci(c['kendall_tau'])}."]
    table = OUT / "fewshot" / "fewshot" / "table.json"
    if table.exists():  # seed paper 000's Table 3 columns: parameters and file size per G
        rows = json.loads(table.read_text())
        report["per_G"] = [{k: r[k] for k in ("G", "params", "file_bytes")} for r in rows]
        lines += ["", "| G | parameters | supernet file (bytes) |", "|---|---|---|"]
        lines += [f"| {r['G']} | {r['params']:,} | {r['file_bytes']:,} |" for r in rows]
        (OUT / "report.json").write_text(json.dumps(report, indent=1))
    (OUT / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

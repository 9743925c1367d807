"""K-shot NAS ablation (seed paper 004, Table 5 and Fig. 4) on the Fashion-MNIST ranking benchmark.

    .venv/bin/python benchmarks/kshot_ablation.py [--arms=full,oneshot,...] [--report_only]

Every arm trains a supernet from scratch with `configs/fmnist_kshot.py` (the benchmark's data,
supernet and budget: 3 epochs x 200 steps of batch 128, peak learning rate 0.1 with a
warm-up, cosine to 0) and scores the 40 ground-truth archs after BN recalibration
(``--stage=evaluate``: the simplex-net's code of each arch merges the dictionaries). The arms,
the rows of the paper's Table 5 and the points of its Fig. 4 (tau against K):

* ``oneshot``: one weight dictionary (K = 1), one uniform path per step on the labels
  (``train.scheme=uniform``: SPOS, the K-shot paper's one-shot baseline);
* ``fixed``: K = 4, lambda = 1/K for every arch and the whole run (the warm-up spans the run);
* ``simplex``: + the simplex-net, architecture branch only, no r_c;
* ``channel``: + the channel branch (the paper's full simplex-net), no r_c;
* ``full``: + r_c (alpha = 1, tau = 0.3): K-shot NAS as published, K = 4;
* ``k2``, ``k8``: the full method with K = 2 and K = 8 (with ``oneshot`` as K = 1 and ``full``
  as K = 4: the K sweep);
* ``lr_k``: the full method with the supernet's learning rate times K (0.4): the
  compensation of the merged-weight slowdown (a merged weight moves by lr |lambda|^2 g, lr/K at
  the uniform code; SCHEMES.md §0.1 item 8), measured against ``full``.

"Equal budget" is equal steps and images (600 batches of 128). K-shot runs a supernet step
and a simplex step alternately after a warm-up of half an epoch, so its supernet weights see
~350 of the 600 batches, which is the method's price (the paper, Alg. 2); its wall time per
step is in the report. The merged-weight learning rate is not compensated (lr/K at the
uniform code; `tfnas.schemes.kshot`, "Merged-weight learning rate"): the K sweep measures the
method as published, and ``lr_k`` what compensating would change.

The report ranks every arm on the 40 archs against the ground truth (seed 0) with
`tfnas.ranking.ranking_report`: Kendall tau with bootstrap CIs, and the paired tau difference
of every arm against ``oneshot`` (paired bootstrap CI, permutation p), of ``full`` against
``fixed`` (what the simplex-net adds), of each Table-5 row against the row above it and of
each K against the K below it. The ceiling is the ground truth's agreement with itself
(seed 0 vs seed 1, n = 15). Each arm is resumable: rerun the same command after a kill.
Products: ``kshot_ablation/`` (``report.json``, ``report.md``, ``tau_by_arm.png``,
``tau_by_k.png``, the same two in TensorBoard under ``summary/``, and each arm's workdir).
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

import arm_report  # noqa: E402
from bin_train import train_and_score  # noqa: E402

from tfnas import plotting  # noqa: E402

ARCHS = HERE / "fmnist_ranking" / "archs.txt"
OUT = HERE / "kshot_ablation"
CONFIG = "fmnist_kshot.py"
BASELINE = "oneshot"
# arm -> (K, its overrides of configs/fmnist_kshot.py). Run in this order by default: the
# full method and its baseline first, so a cut-short run still has the headline pair.
ARMS = {
    "full": (4, []),
    "oneshot": (1, ["--config.train.scheme=uniform", "--config.supernet.num_kernels=1"]),
    "fixed": (4, ["--config.train.kshot.warmup_epochs=3"]),
    "channel": (4, ["--config.train.kshot.alpha=0"]),
    "simplex": (4, ["--config.supernet.simplex_channel_branch=False",
                    "--config.train.kshot.alpha=0"]),
    "k2": (2, ["--config.supernet.num_kernels=2"]),
    "k8": (8, ["--config.supernet.num_kernels=8"]),
    "lr_k": (4, ["--config.train.learning_rate=0.4"]),
}
# The rows of Table 5, in the paper's order, and the K sweep's arms.
TABLE5 = ("oneshot", "fixed", "simplex", "channel", "full")
K_SWEEP = ("oneshot", "k2", "full", "k8")


def _ci(stat: dict) -> tuple[float | None, float | None]:
    ci = stat.get("ci")
    return (ci[0], ci[1]) if ci else (None, None)


def plots(report: dict, done: dict) -> list[str]:
    """``tau_by_arm.png`` (Table 5's rows) and ``tau_by_k.png`` (Fig. 4), from the report; the
    same figures as TensorBoard images in ``summary/`` (``tensorboard --logdir`` on it)."""
    rankers = report["rankers"]
    figures = {}
    names = [a for a in TABLE5 if a in done]
    if names:
        taus = [rankers[_row(a)]["kendall_tau"] for a in names]
        lows, highs = zip(*(_ci(t) for t in taus))
        figures["tau_by_arm"] = plotting.bars_with_ci(
            names, [t["value"] for t in taus], list(lows), list(highs),
            ylabel="Kendall tau vs stand-alone", reference=report.get("ceiling"),
            reference_label="ceiling (GT seed 0 vs 1)",
            title="K-shot ablation, Fashion-MNIST (n = 40)")
    sweep = [a for a in K_SWEEP if a in done]
    if len(sweep) >= 2:
        taus = [rankers[_row(a)]["kendall_tau"] for a in sweep]
        ks = [ARMS[a][0] for a in sweep]
        lows, highs = zip(*(_ci(t) for t in taus))
        figures["tau_by_k"] = plotting.bars_with_ci(
            [f"K={k}" for k in ks], [t["value"] for t in taus], list(lows), list(highs),
            ylabel="Kendall tau vs stand-alone", reference=report.get("ceiling"),
            reference_label="ceiling (GT seed 0 vs 1)",
            title="tau against K (full method; K=1: one-shot)")
    import tensorflow as tf

    for old in (OUT / "summary").glob("events.out.tfevents*"):
        old.unlink()  # one event file, rewritten with the report
    writer = tf.summary.create_file_writer(str(OUT / "summary"))
    with writer.as_default(step=0):
        for name, fig in figures.items():
            plotting.save_png(fig, OUT / f"{name}.png")
            tf.summary.image(f"kshot_ablation/{name}", plotting.to_rgb_array(fig)[None])
    writer.close()
    return [f"{name}.png" for name in figures]


def _row(arm: str) -> str:
    return arm if arm == BASELINE else f"kshot {arm}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--report_only", action="store_true")
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    arms = arm_report.selected(args.arms, ARMS)
    if not args.report_only:
        for arm in arms:
            train_and_score(CONFIG, OUT / arm, ARCHS, ARMS[arm][1])

    done = arm_report.scored_arms(OUT, ARMS)
    report = arm_report.rank_arms(done, BASELINE, args.bootstrap, row=_row)
    # What the simplex-net (with r_c) adds over the uniform merge: full - fixed.
    report["full_vs_fixed"] = arm_report.paired(done, "full", "fixed", args.bootstrap)
    # The merged-weight learning-rate compensation: lr x K against as published.
    report["lr_k_vs_full"] = arm_report.paired(done, "lr_k", "full", args.bootstrap)
    # Each row of Table 5 against the row above it, and each K against the K below it.
    report["steps_up"] = {
        f"{row[i + 1]} - {row[i]}": d
        for row in (TABLE5, K_SWEEP) for i in range(len(row) - 1)
        if (d := arm_report.paired(done, row[i + 1], row[i], args.bootstrap)) is not None
    }
    report["arms"] = arm_report.arm_rows(OUT, done)
    report["plots"] = plots(report, done)
    (OUT / "report.json").write_text(json.dumps(report, indent=1))
    lines = (arm_report.header_lines(report)
             + arm_report.paired_line("kshot full - kshot fixed", report["full_vs_fixed"])
             + arm_report.paired_line("kshot lr_k - kshot full", report["lr_k_vs_full"])
             + [line for title, d in report["steps_up"].items()
                for line in arm_report.paired_line(title, d)]
             + arm_report.arms_table(report["arms"], with_k=True))
    (OUT / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

if __name__ == "__main__":
    main()

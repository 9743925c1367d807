"""Ranking distillation (RD-NAS) against the plain sandwich rule, at equal steps.

    .venv/bin/python benchmarks/rdnas_vs_sandwich.py [--arms=sandwich,flops_hinge,...]
        [--steps=100] [--report_only]

Every arm starts from the committed Fashion-MNIST benchmark supernet
(``fmnist_ranking/run/oneshot/supernet.keras``: 3 x 200 sandwich steps) and trains
3 epochs x ``--steps`` steps of batch 128 with `configs/fmnist_ranking.py` (``--stage=oneshot``,
``supernet.init_from``, peak learning rate 0.01 without warm-up, cosine to 0), then scores
the 40 ground-truth archs after BN recalibration (``--stage=evaluate``). The arms:

* ``sandwich``: the sandwich rule alone (largest, smallest, 2 random; in-place distillation);
* ``flops_hinge``: ``train.scheme=rdnas``, FLOPs prior in-graph, the hinge as shipped (margin 0,
  gradient to the second subnet only; SCHEMES.md §4.2);
* ``flops_margin``: the same with the paper's margin ranking loss (group distance as margin,
  both losses live);
* ``synflow_hinge``: the prior is SynFlow read from a proxy table over a pool of 200 random
  codes of the space (not the ground-truth archs: ``pool.txt``, scored by ``--stage=proxies``
  with ``proxies.names=("synflow",)``). SynFlow is the best proxy other than FLOPs and params
  on the 40 ground-truth archs (tau +0.213, tied with Zen, which costs 5x more; README,
  "Zero-cost proxies").

RD arms add ``num_pairs=2`` ranked pairs per step, with lambda constant at the shipped plateau
2 (``lambda_schedule=constant``): the shipped ramp (``min(2, epoch/10)``) exists to let a
fresh supernet learn first, and every arm here starts from a trained one. "Equal budget" is
equal steps and images, as in seed paper 003; the RD arms cost more per step (their
wall-clock seconds per step are in the report).

The report ranks every arm and every zero-cost proxy on the 40 archs against the ground
truth (seed 0) with `tfnas.ranking.ranking_report`: Kendall tau with bootstrap CIs, and the
paired tau difference of every ranker against the sandwich arm (paired bootstrap CI,
permutation p). The ceiling is the ground truth's agreement with itself (seed 0 vs seed 1,
n = 15). Each step is a resumable stage: rerun the same command after a kill. Products:
``rdnas_vs_sandwich/`` (``report.json``, ``report.md``, ``pool.txt`` and each arm's workdir).
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

import arm_report  # noqa: E402
from bin_train import bin_train  # noqa: E402
from bin_train import train_and_score  # noqa: E402

from tfnas import search_space as ss  # noqa: E402

SOURCE = HERE / "fmnist_ranking" / "run" / "oneshot" / "supernet.keras"
ARCHS = HERE / "fmnist_ranking" / "archs.txt"
PROXIES = HERE / "fmnist_ranking" / "run" / "proxies" / "scores.json"
OUT = HERE / "rdnas_vs_sandwich"
POOL_SIZE, POOL_SEED = 200, 7
EPOCHS = 3
ARMS = {
    "sandwich": [],
    "flops_hinge": ["--config.train.rdnas.prior=flops", "--config.train.rdnas.loss=hinge"],
    "flops_margin": ["--config.train.rdnas.prior=flops", "--config.train.rdnas.loss=margin"],
    "synflow_hinge": [
        "--config.train.rdnas.prior=table", "--config.train.rdnas.proxy_name=synflow",
        f"--config.train.rdnas.proxy_table={OUT / 'pool' / 'proxies' / 'scores.json'}",
        "--config.train.rdnas.loss=hinge",
    ],
}
RD_COMMON = [
    "--config.train.scheme=rdnas",
    "--config.train.rdnas.lambda_schedule=constant",
    "--config.train.rdnas.lambda_max=2.0",
]


def make_pool(out: Path = OUT, archs: Path = ARCHS, size: int = POOL_SIZE) -> Path:
    """``out/pool.txt``: ``size`` random codes of the space, none of them one of ``archs``."""
    path = out / "pool.txt"
    if path.exists():
        return path
    space = ss.get_space("fmnist")
    held_out = {line.strip() for line in archs.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    rng = np.random.default_rng(POOL_SEED)
    codes: list[str] = []
    while len(codes) < size:
        code = space.sample(rng).code
        if code not in held_out and code not in codes:
            codes.append(code)
    out.mkdir(parents=True, exist_ok=True)
    header = (f"# {size} codes sampled uniformly from the fmnist space "
              f"(numpy default_rng({POOL_SEED})), ground-truth archs excluded\n")
    path.write_text(header + "\n".join(codes) + "\n")
    return path


def synflow_table(out: Path = OUT, archs: Path = ARCHS, size: int = POOL_SIZE,
                  config: str = "fmnist_ranking.py") -> Path:
    """RD's prior table: SynFlow at initialization of `make_pool`'s codes
    (``out/pool/proxies/scores.json``; the proxies stage skips codes already scored)."""
    bin_train(config, "--stage=proxies", f"--codes={make_pool(out, archs, size)}",
              f"--workdir={out / 'pool'}", "--config.proxies.names=('synflow',)")
    return out / "pool" / "proxies" / "scores.json"


def run_arm(arm: str, steps: int) -> None:
    if arm.startswith("synflow"):
        synflow_table()
    overrides = [
        f"--config.supernet.init_from={SOURCE}",
        f"--config.train.epochs={EPOCHS}", f"--config.train.steps_per_epoch={steps}",
        "--config.train.learning_rate=0.01", "--config.train.warmup_epochs=0",
        *(RD_COMMON if ARMS[arm] else []), *ARMS[arm],
    ]
    train_and_score("fmnist_ranking.py", OUT / arm, ARCHS, overrides)


def proxy_scores() -> dict[str, dict[str, float]]:
    payload = json.loads(PROXIES.read_text())
    out: dict[str, dict[str, float]] = {}
    for name in payload["proxies"]:
        if name in ("flops", "params"):
            continue  # ranking_report has them already
        out[f"proxy {name}"] = {
            row["code"]: row["scores"][name] for row in payload["results"]
            if row["scores"].get(name) is not None
        }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--steps", type=int, default=100, help="steps per epoch (3 epochs)")
    parser.add_argument("--report_only", action="store_true")
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    arms = arm_report.selected(args.arms, ARMS)
    if not args.report_only:
        for arm in arms:
            run_arm(arm, args.steps)

    done = arm_report.scored_arms(OUT, ARMS)
    report = arm_report.rank_arms(done, "sandwich", args.bootstrap,
                                  row=lambda arm: arm if arm == "sandwich" else f"rd {arm}",
                                  extra=proxy_scores())
    # Hinge (as shipped) against the paper's margin loss, same prior: the default's evidence.
    report["margin_vs_hinge"] = arm_report.paired(done, "flops_margin", "flops_hinge",
                                                  args.bootstrap)
    report["arms"] = arm_report.arm_rows(OUT, done)
    (OUT / "report.json").write_text(json.dumps(report, indent=1))
    lines = (arm_report.header_lines(report)
             + arm_report.paired_line("rd flops_margin - rd flops_hinge",
                                      report["margin_vs_hinge"])
             + arm_report.arms_table(report["arms"]))
    (OUT / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

if __name__ == "__main__":
    main()

"""Does the search pick better subnets than chance? (issue 17's benchmark)

    .venv/bin/python benchmarks/search_vs_random.py [--budgets=8e6,10e6,12e6]
        [--population=20] [--generations=6] [--randoms=5] [--seeds=0] [--report_only]

For each FLOPs budget:

1. ``bin/train --stage=search`` (NSGA-II, `configs/fmnist_ranking.py`) over the committed
   benchmark supernet (``fmnist_ranking/run/oneshot/supernet.keras``) under the budget;
2. the search's pick is its most accurate feasible arch (the first row of ``front.json``);
3. ``--randoms`` archs are drawn uniformly from the same (bounded) space, keeping those in
   the pick's FLOPs band (within 5% of the pick's FLOPs, and under the budget), with a
   seed fixed by the budget, so a rerun draws the same ones (seeds unlike the search's);
4. ``bin/train --stage=standalone`` trains the pick and the random archs from scratch with
   the ground-truth recipe of `configs/fmnist_ranking.py` (``config.standalone``), for each
   seed in ``--seeds``;
5. the report gives, per budget, the pick's stand-alone rank among the ``1 + randoms``
   archs of its band (1 = best), its accuracy against the band's, and the supernet score of
   the pick (the search's own).

Every step is a resumable stage: rerun the same command after a kill and it goes on where it
stopped. Products go to ``benchmarks/search_vs_random/`` (``report.json`` and ``report.md``,
plus each budget's search and stand-alone products in ``budget_<B>/``).

The ground truth is noisy: on the recipe's 15 archs trained with two seeds, the seed s.d. of
one arch's accuracy is about 0.6 points, against an arch s.d. of about 0.8 points
(`benchmarks/fmnist_ranking/`), so one budget's rank says little on its own. The report
gives every budget's rank as it is, and the mean rank against the chance mean
``(1 + randoms + 1) / 2`` with a one-sided exact p-value (under chance the pick's rank is
uniform on 1..1+randoms, independently per budget and seed mean).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from tfnas import ground_truth as gt_lib  # noqa: E402
from tfnas import search_space as ss  # noqa: E402

CONFIG = ROOT / "configs" / "fmnist_ranking.py"
SUPERNET = HERE / "fmnist_ranking" / "run" / "oneshot" / "supernet.keras"
OUT = HERE / "search_vs_random"
BAND = 0.05


def bin_train(*args: str) -> None:
    cmd = [str(ROOT / "bin" / "train"), f"--config={CONFIG}", *args]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def budget_dir(budget: float) -> Path:
    """``budget_8M`` for 8e6 FLOPs: one directory per budget."""
    return OUT / f"budget_{budget / 1e6:g}M"


def search(budget: float, population: int, generations: int) -> dict:
    workdir = budget_dir(budget)
    bin_train(
        "--stage=search", f"--workdir={workdir}", f"--config.search.supernet={SUPERNET}",
        f"--config.search.budget={budget}", f"--config.search.population={population}",
        f"--config.search.generations={generations}",
    )
    front = json.loads((workdir / "search" / "front.json").read_text())["results"]
    feasible = [r for r in front if r["flops"] <= budget]
    if not feasible:
        raise SystemExit(f"error: the search under {budget:.3g} FLOPs found no feasible arch")
    return max(feasible, key=lambda r: r["acc"])


def band_archs(space, bounds, pick_flops: float, budget: float, count: int, seed: int):
    """``count`` uniform archs of the bounded space with FLOPs in the pick's band."""
    low, high = (1 - BAND) * pick_flops, min((1 + BAND) * pick_flops, budget)
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(200_000):
        arch = space.sample(rng, bounds=bounds)
        if low <= space.flops(arch) <= high:
            code = arch.code
            if code not in found:
                found.append(code)
                if len(found) == count:
                    return found
    raise SystemExit(f"error: fewer than {count} random archs in the band [{low}, {high}]")


def exact_p(ranks: list[int], size: int) -> float:
    """P(mean rank <= observed) when each rank is uniform on 1..size, independently."""
    observed = sum(ranks)
    hits = sum(
        sum(c) <= observed for c in itertools.product(range(1, size + 1), repeat=len(ranks))
    )
    return hits / size ** len(ranks)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", default="8e6,10e6,12e6")
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--randoms", type=int, default=5)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--report_only", action="store_true")
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    space = ss.get_space("fmnist")
    bounds = ss.BOUNDS_PRESETS["full"]

    rows = []
    for i, budget in enumerate(budgets):
        workdir = budget_dir(budget)
        picks_file = workdir / "band.txt"
        if args.report_only:
            if not picks_file.exists():
                continue
            pick_row = json.loads((workdir / "band.json").read_text())["pick"]
        else:
            pick_row = search(budget, args.population, args.generations)
        pick = pick_row["code"]
        if not picks_file.exists():
            # Seeded apart from the search's own draws (its first generation samples the
            # same space from small seeds), so the random archs are not its initial ones.
            randoms = band_archs(
                space, bounds, pick_row["flops"], budget, args.randoms, 1_000 + i
            )
            band = [pick] + [c for c in randoms if c != pick][: args.randoms]
            (workdir / "band.json").write_text(json.dumps({"pick": pick_row, "band": band}))
            picks_file.write_text("\n".join(band) + "\n")
        band = picks_file.read_text().split()
        per_seed = {}
        for seed in seeds:
            if not args.report_only:
                bin_train(
                    "--stage=standalone", f"--workdir={workdir}", f"--codes={picks_file}",
                    f"--config.standalone.seed={seed}",
                )
            path = gt_lib.gt_path(workdir / "standalone", seed)
            if path.exists():
                _, got = gt_lib.read_ground_truth(path)
                per_seed[seed] = {c: got[c]["acc"] for c in band if c in got}
        complete = [a for a in per_seed.values() if len(a) == len(band)]
        if not complete:
            continue
        mean = gt_lib.seed_mean(complete)
        order = sorted(band, key=lambda c: -mean[c])
        rows.append(dict(
            budget=budget, pick=pick, pick_flops=pick_row["flops"],
            pick_supernet_acc=pick_row["acc"], band=band, seeds=sorted(per_seed),
            standalone=mean, pick_rank=order.index(pick) + 1, band_size=len(band),
            pick_acc=mean[pick], random_mean=float(np.mean([mean[c] for c in band[1:]])),
            random_best=float(max(mean[c] for c in band[1:])),
            flops={c: space.flops(space.parse(c)) for c in band},
        ))
    if not rows:
        print("no budget has its stand-alone results yet")
        return
    size = rows[0]["band_size"]
    ranks = [r["pick_rank"] for r in rows]
    summary = dict(
        budgets=len(rows), ranks=ranks, mean_rank=float(np.mean(ranks)),
        chance_mean_rank=(size + 1) / 2, p_one_sided=exact_p(ranks, size),
        population=args.population, generations=args.generations,
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.json").write_text(json.dumps(dict(rows=rows, summary=summary), indent=1))
    lines = [
        "| FLOPs budget | pick FLOPs | pick supernet acc | pick stand-alone acc | "
        "random archs' mean (best) | pick's rank in band |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['budget']:.3g} | {r['pick_flops']:.3g} | {r['pick_supernet_acc']:.4f} | "
            f"{r['pick_acc']:.4f} | {r['random_mean']:.4f} ({r['random_best']:.4f}) | "
            f"{r['pick_rank']} of {r['band_size']} |"
        )
    lines.append("")
    lines.append(
        f"Mean rank {summary['mean_rank']:.2f} against {summary['chance_mean_rank']:.1f} by "
        f"chance (n = {len(rows)} budgets, seeds {rows[0]['seeds']}); one-sided exact "
        f"p = {summary['p_one_sided']:.3f}."
    )
    (OUT / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Ground-truth recipe study: which stand-alone recipe gives a ranking worth judging by?

    .venv/bin/python benchmarks/gt_recipe_study.py run      # trains (resumable), in order
    .venv/bin/python benchmarks/gt_recipe_study.py report   # the table, from what is done

A ground truth is only as good as its agreement with itself. This study trains the same
8 archs (spanning the FLOPs range of the 40 archs of the v1 ground truth) with 2 seeds
under recipes that change one factor at a time from the v1 recipe of
`configs/fmnist_ranking.py` (10,000 training images, 3 epochs, zero-initialized residual
branches, the dataset's default augmentation):

- length: 3, 6, 12 and 24 epochs;
- data: 20,000 images, and the whole 55,000-image training split, at 6 epochs;
- initialization: plain residual branches, at 6 epochs;
- augmentation: pad-crop and flip only (no rotation or colour jitter), and none, at 6
  epochs.

``run`` trains them in the order of `ORDER` (cheap and most informative first) with
``bin/train --stage=standalone``, one workdir per recipe under
``benchmarks/gt_recipe/<recipe>/``; the stage appends one line per arch, so a killed run
resumes with the next arch, and rerunning ``run`` skips what is done. ``report`` prints
and writes ``benchmarks/gt_recipe/report.{json,md}``: per recipe the mean accuracy, the
seed standard deviation, the arch spread, the seed-to-seed Kendall tau, the ceiling
expected for the mean of the seeds (Spearman-Brown), FLOPs' and params' tau against the
recipe's accuracies (does the recipe flip their sign?), tau between the rankings at L and
2L epochs, and the CPU time per arch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tfnas import codes as codes_lib  # noqa: E402
from tfnas import ground_truth as gt_lib  # noqa: E402
from tfnas import search_space as ss  # noqa: E402

OUT = HERE / "gt_recipe"
ARCHS_FILE = OUT / "archs.txt"
V1_ARCHS = HERE / "fmnist_ranking" / "archs.txt"
CONFIG = "configs/fmnist_ranking.py"
SEEDS = (0, 1)
NUM_ARCHS = 8

_LIGHT_AUG = {
    "data.augment.rotation_degrees": 0.0,
    "data.augment.color_jitter_prob": 0.0,
}
_NO_AUG = {**_LIGHT_AUG, "data.augment.pad_crop": 0, "data.augment.flip": False}
# name -> (config overrides on configs/fmnist_ranking.py, what changes, length in epochs)
RECIPES: dict[str, tuple[dict, str, int]] = {
    "L3": ({}, "v1 recipe: 10k images, 3 epochs, zero-init, default augmentation", 3),
    "L6": ({"standalone.epochs": 6}, "6 epochs", 6),
    "L12": ({"standalone.epochs": 12}, "12 epochs", 12),
    "L24": ({"standalone.epochs": 24}, "24 epochs", 24),
    "plain_L6": (
        {"standalone.epochs": 6, "standalone.zero_init_residual": False},
        "6 epochs, plain init",
        6,
    ),
    "lightaug_L6": ({"standalone.epochs": 6, **_LIGHT_AUG}, "6 epochs, pad-crop + flip", 6),
    "noaug_L6": ({"standalone.epochs": 6, **_NO_AUG}, "6 epochs, no augmentation", 6),
    "data20k_L6": (
        {"standalone.epochs": 6, "standalone.train_subset": 20000},
        "6 epochs, 20k images",
        6,
    ),
    "full_L6": (
        {"standalone.epochs": 6, "standalone.train_subset": 0},
        "6 epochs, all 55k images",
        6,
    ),
}
# Cheapest and most informative first: the length ladder's first rungs, then one factor at
# a time at 6 epochs, then the expensive rungs.
ORDER = [
    "L3", "L6", "noaug_L6", "plain_L6", "lightaug_L6", "L12", "data20k_L6", "L24", "full_L6",
]
# (L, 2L) pairs of the length ladder.
LADDER = [("L3", "L6"), ("L6", "L12"), ("L12", "L24")]


def study_archs() -> list[str]:
    """NUM_ARCHS archs of the v1 ground truth at evenly spaced FLOPs ranks (fixed)."""
    if ARCHS_FILE.exists():
        return [r.code for r in codes_lib.read_codes(ARCHS_FILE)]
    space = ss.get_space("fmnist")
    codes = [r.code for r in codes_lib.read_codes(V1_ARCHS)]
    by_flops = sorted(codes, key=lambda c: space.flops(space.parse(c)))
    step = (len(by_flops) - 1) / (NUM_ARCHS - 1)
    picked = [by_flops[round(i * step)] for i in range(NUM_ARCHS)]
    OUT.mkdir(parents=True, exist_ok=True)
    ARCHS_FILE.write_text(
        f"# {NUM_ARCHS} archs of {V1_ARCHS.name} at evenly spaced FLOPs ranks\n"
        + "\n".join(picked) + "\n"
    )
    return picked


def gt_file(recipe: str, seed: int) -> Path:
    return OUT / recipe / "standalone" / f"ground_truth.seed{seed}.jsonl"


def run(recipes: list[str]) -> None:
    study_archs()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for name in recipes:
        overrides, _, _ = RECIPES[name]
        for seed in SEEDS:
            cmd = [
                sys.executable, str(ROOT / "bin" / "train"), "--stage=standalone",
                f"--config={CONFIG}", f"--workdir={OUT / name}", f"--codes={ARCHS_FILE}",
                f"--config.standalone.seed={seed}",
            ] + [f"--config.{k}={v}" for k, v in overrides.items()]
            print("==", " ".join(cmd[1:]), flush=True)
            subprocess.run(cmd, check=True, cwd=ROOT, env=env)


def _load(recipe: str) -> dict[int, dict[str, dict]]:
    """{seed: {code: row}} of the recipe's finished rows."""
    out = {}
    for seed in SEEDS:
        _, rows = gt_lib.read_ground_truth(gt_file(recipe, seed))
        if rows:
            out[seed] = rows
    return out


def report() -> dict:
    archs = study_archs()
    space = ss.get_space("fmnist")
    flops = {c: float(space.flops(space.parse(c))) for c in archs}
    params = {c: float(space.params(space.parse(c))) for c in archs}
    table = {}
    means = {}
    for name in ORDER:
        runs = _load(name)
        done = {seed: {c: r["acc"] for c, r in rows.items()} for seed, rows in runs.items()}
        entry = {
            "what": RECIPES[name][1],
            "overrides": RECIPES[name][0],
            "archs_done": {str(s): len(d) for s, d in done.items()},
        }
        cpu = [r.get("cpu_seconds") for rows in runs.values() for r in rows.values()]
        cpu = [c for c in cpu if c is not None]
        if cpu:
            entry["cpu_s_per_arch"] = sum(cpu) / len(cpu)
        complete = [d for d in done.values() if all(c in d for c in archs)]
        if len(complete) == len(SEEDS):
            rel = gt_lib.reliability([complete[0], complete[1]])
            entry.update(rel)
            mean = gt_lib.seed_mean(complete)
            means[name] = mean
            entry["flops_tau"] = gt_lib.tau(flops, mean)
            entry["params_tau"] = gt_lib.tau(params, mean)
        table[name] = entry
    pairs = [(a, b) for a, b in LADDER if a in means and b in means]
    stability = {f"{a}->{b}": gt_lib.tau(means[a], means[b]) for a, b in pairs}
    # What two seed means of one unchanged ranking would agree at, given the two lengths'
    # noise: tau(L, 2L) cannot be expected to exceed it, however settled the ranking is.
    unchanged = {
        f"{a}->{b}": gt_lib.expected_agreement(table[a]["reliability"], table[b]["reliability"])
        for a, b in pairs
    }
    result = {"archs": archs, "seeds": list(SEEDS), "recipes": table, "stability": stability,
              "stability_if_unchanged": unchanged}
    (OUT / "report.json").write_text(json.dumps(result, indent=1) + "\n")
    (OUT / "report.md").write_text(format_markdown(result))
    print(format_markdown(result))
    return result


def _f(value, fmt="{:+.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def format_markdown(result: dict) -> str:
    lines = [
        "| recipe | what changes | mean acc | seed s.d. (pts) | arch s.d. (pts) | "
        "seed-to-seed tau | expected ceiling (2-seed mean) | FLOPs tau | params tau | "
        "CPU s/arch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in result["recipes"].items():
        if "seed_tau" not in e:
            done = ", ".join(f"seed {s}: {n}" for s, n in e["archs_done"].items()) or "none"
            lines.append(f"| {name} | {e['what']} | not complete ({done} of "
                         f"{len(result['archs'])}) | | | | | | | |")
            continue
        lines.append(
            f"| {name} | {e['what']} | {e['mean_acc']:.4f} | {100 * e['seed_sd']:.2f} | "
            f"{100 * e['arch_sd']:.2f} | {_f(e['seed_tau'])} | {_f(e['expected_ceiling'])} | "
            f"{_f(e['flops_tau'])} | {_f(e['params_tau'])} | "
            f"{_f(e.get('cpu_s_per_arch'), '{:.0f}')} |"
        )
    if result["stability"]:
        unchanged = result.get("stability_if_unchanged", {})
        lines += ["", "| lengths | tau between the seed-mean rankings | expected if the ranking "
                  "did not change (the two lengths' noise alone) |", "|---|---|---|"]
        lines += [f"| {k} | {v:+.2f} | {_f(unchanged.get(k))} |"
                  for k, v in result["stability"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("run", "report"))
    parser.add_argument("--recipes", default=",".join(ORDER), help="Comma-separated subset.")
    args = parser.parse_args()
    if args.command == "run":
        names = args.recipes.split(",")
        unknown = [n for n in names if n not in RECIPES]
        if unknown:
            raise SystemExit(f"error: unknown recipes {unknown}; known: {', '.join(RECIPES)}")
        run(names)
    else:
        report()


if __name__ == "__main__":
    main()

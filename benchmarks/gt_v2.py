"""Ground truth v2 of the Fashion-MNIST ranking benchmark: 60 archs, several seeds, one recipe.

    .venv/bin/python benchmarks/gt_v2.py run --recipe=L12 [--seeds=0,1] [--shard=1/2]
    .venv/bin/python benchmarks/gt_v2.py report --recipe=L12
    .venv/bin/python benchmarks/gt_v2.py progress --recipe=L12   # partial: archs done, reliability

The archs are ``sample_many(60, seed=2022)`` of the ``fmnist`` space, whose first 40 are the
v1 archs (``fmnist_ranking/archs.txt``). The recipe is one of the recipe study's
(`gt_recipe_study.RECIPES`, chosen there by its expected ceiling and its stability under
longer training). ``run`` trains every arch with every seed through ``bin/train
--stage=standalone`` into ``benchmarks/gt_v2/<recipe>/`` (resumable per arch; ``--shard``
splits the archs between processes, and a later ``run`` without it merges the shards instead
of training).
``report`` averages the seeds and writes ``benchmarks/gt_v2/<recipe>/ground_truth.json``: a
results JSON of the seed-mean accuracies that ``rank`` and the benchmarks read, carrying the
recipe, the seeds, the machine time and `tfnas.ground_truth.reliability` (seed-to-seed tau,
split-half reliability, Spearman-Brown, seed and arch standard deviations, and the expected
ceiling that ``rank`` divides tau by).
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
sys.path.insert(0, str(HERE))

import gt_recipe_study  # noqa: E402

from tfnas import codes as codes_lib  # noqa: E402
from tfnas import ground_truth as gt_lib  # noqa: E402
from tfnas import records  # noqa: E402
from tfnas import search_space as ss  # noqa: E402

OUT = HERE / "gt_v2"
NUM_ARCHS = 60
ARCH_SEED = 2022


def archs_file() -> Path:
    """``gt_v2/archs.txt``: the 60 archs (written once; the first 40 are v1's)."""
    path = OUT / "archs.txt"
    if not path.exists():
        codes = [a.code for a in ss.get_space("fmnist").sample_many(NUM_ARCHS, seed=ARCH_SEED)]
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f"# sample_many({NUM_ARCHS}, seed={ARCH_SEED}) of the fmnist space; the first 40 "
            "are the v1 archs\n" + "\n".join(codes) + "\n"
        )
    return path


def _command(recipe: str, seed: int, stage: str, shard: str | None) -> list[str]:
    overrides, _, _ = gt_recipe_study.RECIPES[recipe]
    cmd = [
        sys.executable, str(ROOT / "bin" / "train"), f"--stage={stage}",
        f"--config={gt_recipe_study.CONFIG}", f"--workdir={OUT / recipe}",
        f"--codes={archs_file()}", f"--config.standalone.seed={seed}",
    ] + [f"--config.{k}={v}" for k, v in overrides.items()]
    return cmd + ([f"--shard={shard}"] if shard else [])


def run(recipe: str, seeds: list[int], shard: str | None) -> None:
    """Trains every arch with every seed (``shard``: this process's share); without
    ``shard``, a seed that earlier sharded runs trained is merged instead (`--stage=merge`,
    which checks that every arch is there once) rather than trained again unsharded."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    stage_dir = OUT / recipe / "standalone"
    for seed in seeds:
        sharded = list(stage_dir.glob(f"ground_truth.seed{seed}.shard-*-of-*.jsonl"))
        stage = "merge" if shard is None and sharded else "standalone"
        cmd = _command(recipe, seed, stage, shard)
        print("==", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT, env=env)


def report(recipe: str, seeds: list[int]) -> dict:
    codes = [r.code for r in codes_lib.read_codes(archs_file())]
    stage_dir = OUT / recipe / "standalone"
    runs, header = {}, None
    for seed in seeds:
        head, rows = gt_lib.read_ground_truth(gt_lib.gt_path(stage_dir, seed))
        missing = [c for c in codes if c not in rows]
        if missing:
            raise SystemExit(
                f"error: seed {seed} of recipe {recipe} misses {len(missing)} of {len(codes)} "
                "archs; run it first (the same command resumes)"
            )
        header = header or head
        if head["recipe_hash"] != header["recipe_hash"]:
            raise SystemExit(f"error: seeds {seeds} of {recipe} used different recipes")
        runs[seed] = rows
    accs = [{c: runs[s][c]["acc"] for c in codes} for s in seeds]
    rel = gt_lib.reliability(accs)
    mean = gt_lib.seed_mean(accs)
    rows = [{"code": c, "acc": mean[c]} for c in codes]
    cpu = sum(r.get("cpu_seconds", 0.0) for rs in runs.values() for r in rs.values())
    wall = sum(r.get("seconds", 0.0) for rs in runs.values() for r in rs.values())
    out = {
        "recipe_name": recipe,
        "recipe": header["recipe"],
        "recipe_hash": header["recipe_hash"],
        "seeds": seeds,
        "machine_time": {"cpu_hours": cpu / 3600, "arch_wall_hours": wall / 3600},
        "reliability": rel,
        "results": rows,
    }
    path = OUT / recipe / "ground_truth.json"
    records.write_text_atomic(path, json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k not in ("results", "recipe")}, indent=1))
    print(f"wrote {path}")
    return out


def progress(recipe: str, seeds: list[int]) -> dict:
    """How far generation is: per seed the archs done (the merged file and any shard files),
    and `tfnas.ground_truth.reliability` on the archs every seed has. Writes nothing: a
    partial ground truth must not be ranked against as if it were the whole one."""
    stage_dir = OUT / recipe / "standalone"
    done, hashes = [], set()
    for seed in seeds:
        rows: dict[str, dict] = {}
        files = [gt_lib.gt_path(stage_dir, seed), *sorted(
            stage_dir.glob(f"ground_truth.seed{seed}.shard-*-of-*.jsonl"))]
        for path in (f for f in files if f.exists()):
            head, found = gt_lib.read_ground_truth(path)
            if head is not None:
                hashes.add(head["recipe_hash"])
            rows.update(found)
        done.append({c: r["acc"] for c, r in rows.items()})
    if len(hashes) > 1:
        raise SystemExit(f"error: the files of {recipe} under {stage_dir} hold different recipes")
    common = [c for c in done[0] if all(c in d for d in done)]
    out = {"recipe_name": recipe, "done": {s: len(d) for s, d in zip(seeds, done)},
           "paired": len(common)}
    if len(common) >= 3:
        out["reliability"] = gt_lib.reliability([{c: d[c] for c in common} for d in done])
    print(json.dumps(out, indent=1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("run", "report", "progress"))
    parser.add_argument("--recipe", required=True, choices=sorted(gt_recipe_study.RECIPES))
    parser.add_argument("--seeds", default="0,1", help="Comma-separated training seeds.")
    parser.add_argument("--shard", default=None, help="I/N: this process's share of the archs.")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.command == "run":
        run(args.recipe, seeds, args.shard)
    elif args.command == "progress":
        progress(args.recipe, seeds)
    else:
        report(args.recipe, seeds)


if __name__ == "__main__":
    main()

"""Run-to-run spread of ``oneshot``: the same command N times, default and deterministic mode.

    .venv/bin/python benchmarks/run_to_run.py [--config=configs/fmnist.py[:tiny]] [--runs=3] \\
        [--modes=default,deterministic] [--set=train.epochs=1 --set=train.steps_per_epoch=50] \\
        [--jobs=1] [--out=benchmarks/run_to_run/results.json]

Each run is a fresh process (op determinism and the RNG state are process-global) training
the supernet of ``--config`` with the ``--set`` overrides (default: one epoch of 50 steps,
warm-up 0.2 epochs as in bin/demo) and ``train.deterministic`` set by the mode
(`tfnas.distribute.configure_determinism`).
``--jobs`` runs go at a time (default one); each finished run is appended to ``--out`` at
once, and a rerun of the same command skips the runs already there (they are keyed by the
settings), so an interrupted benchmark resumes. The workdirs are kept beside ``--out``
(``work/<key>/<mode>-<i>/``): the weight differences are computed from their
``oneshot/supernet.keras`` files.

Prints, per mode: each run's largest and smallest subnet accuracy (``report.json``: holdout,
BN recalibrated) and wall time, the spread of those accuracies, and the largest absolute
difference of any supernet weight between two runs (0 means bitwise identical).
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import hashlib
import itertools
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODES = ("default", "deterministic")
DEFAULT_SETS = ("train.epochs=1", "train.steps_per_epoch=50", "train.warmup_epochs=0.2")

# One oneshot run in a fresh process: argv[1] is a JSON dict of the settings.
DRIVER = """
import importlib.util, json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
args = json.loads(sys.argv[1])
sys.path.insert(0, args["root"])
spec = importlib.util.spec_from_file_location("run_to_run_config", args["config"])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
config = module.get_config(args["variant"])
with config.unlocked():
    for field, value in args["set"].items():
        *parents, leaf = field.split(".")
        section = config
        for name in parents:
            section = section[name]
        section[leaf] = value
    config.train.deterministic = args["deterministic"]
from tfnas.stages import registry
sys.exit(registry.run_stage("oneshot", config, registry.StageArgs(workdir=args["workdir"])))
"""


def parse_set(text: str) -> tuple[str, object]:
    """``"a.b=v"`` -> ``("a.b", v)``, v a Python literal when it parses as one, else a string."""
    field, sep, raw = text.partition("=")
    if not sep or not field:
        raise ValueError(f"--set expects FIELD=VALUE (e.g. train.epochs=1), received {text!r}")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return field, value


def settings_key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


def max_weight_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """Largest |a - b| over all weights (the two files must hold the same arrays)."""
    if a.keys() != b.keys():
        raise ValueError(f"the two supernets hold different weights: {sorted(a.keys() ^ b.keys())}")
    return max(
        float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)), initial=0.0))
        for k in a
    )


def run_once(settings: dict, mode: str, index: int, workdir: Path) -> dict:
    args = dict(
        root=str(ROOT),
        config=settings["config"],
        variant=settings["variant"],
        set=settings["set"],
        deterministic=mode == "deterministic",
        workdir=str(workdir),
    )
    start = time.time()
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    seconds = time.time() - start
    if out.returncode:
        raise RuntimeError(f"{mode} run {index} failed:\n{out.stderr[-3000:]}")
    report = json.loads((workdir / "oneshot" / "report.json").read_text())
    return dict(
        mode=mode,
        index=index,
        largest=report["accuracy"]["largest"],
        smallest=report["accuracy"]["smallest"],
        steps=report["steps"],
        seconds=round(seconds, 1),
        supernet=str(workdir / "oneshot" / "supernet.keras"),
    )


def summarize(runs: list[dict]) -> dict:
    sys.path.insert(0, str(ROOT))
    from tfnas import supernet as supernet_lib  # imports TensorFlow: only when comparing

    weights = [supernet_lib.weight_arrays(Path(r["supernet"])) for r in runs]
    diffs = [max_weight_difference(a, b) for a, b in itertools.combinations(weights, 2)]
    return dict(
        runs=len(runs),
        largest=[r["largest"] for r in runs],
        smallest=[r["smallest"] for r in runs],
        largest_range=max(r["largest"] for r in runs) - min(r["largest"] for r in runs),
        smallest_range=max(r["smallest"] for r in runs) - min(r["smallest"] for r in runs),
        max_weight_difference=max(diffs) if diffs else None,
        seconds=[r["seconds"] for r in runs],
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/fmnist.py", help="FILE or FILE:tiny")
    parser.add_argument("--runs", type=int, default=3, help="runs per mode")
    parser.add_argument("--modes", default=",".join(MODES), help="default,deterministic")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (processes)")
    parser.add_argument(
        "--set",
        action="append",
        default=None,
        help=f"config override FIELD=VALUE, repeatable (default: {' '.join(DEFAULT_SETS)})",
    )
    parser.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "run_to_run" / "results.json")
    )
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    for mode in modes:
        if mode not in MODES:
            parser.error(f"--modes: unknown mode {mode!r}; expected {' or '.join(MODES)}")
    if args.runs < 1 or args.jobs < 1:
        parser.error(f"--runs and --jobs must be >= 1, received {args.runs} and {args.jobs}")
    path, _, variant = args.config.partition(":")
    settings = dict(
        config=str((ROOT / path).resolve()),
        variant=variant or None,
        set=dict(parse_set(s) for s in (args.set or DEFAULT_SETS)),
    )
    key = settings_key(settings)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(out.read_text()) if out.exists() else {"benchmarks": {}}
    entry = results["benchmarks"].setdefault(
        key,
        dict(
            settings=settings,
            command=" ".join([Path(sys.executable).name, *sys.argv]),
            host=dict(
                machine=platform.machine(), cpus=os.cpu_count(), python=platform.python_version()
            ),
            runs=[],
        ),
    )
    todo = []
    for mode in modes:
        for index in range(args.runs):
            if any(r["mode"] == mode and r["index"] == index for r in entry["runs"]):
                continue
            workdir = out.parent / "work" / key / f"{mode}-{index}"
            if (workdir / "oneshot").exists():
                # A run killed before its result was recorded: start it over.
                os.replace(workdir, workdir.with_name(f"{workdir.name}.killed-{int(time.time())}"))
            todo.append((mode, index, workdir))
    lock = threading.Lock()

    def one(job):
        mode, index, workdir = job
        print(f"[{key}] {mode} run {index + 1}/{args.runs} ...", flush=True)
        result = run_once(settings, mode, index, workdir)
        with lock:  # record each run as soon as it ends: an interrupted benchmark resumes
            entry["runs"].append(result)
            out.write_text(json.dumps(results, indent=2) + "\n")
            print(f"    {json.dumps(result)}", flush=True)

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for future in [pool.submit(one, job) for job in todo]:
            future.result()
    summary = {}
    for mode in modes:
        runs = sorted(
            (r for r in entry["runs"] if r["mode"] == mode and r["index"] < args.runs),
            key=lambda r: r["index"],
        )
        summary[mode] = summarize(runs)
    entry["summary"] = summary
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(dict(key=key, settings=settings, summary=summary), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

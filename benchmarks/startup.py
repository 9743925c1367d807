"""Time to the first training step, and where it goes.

    .venv/bin/python benchmarks/startup.py [--space=fmnist] [--steps=5] [--variants=...]

Each variant runs in a fresh process (TF's graph caches and options are per process): it
builds the supernet and a `SupernetTrainer` with the sandwich scheme, then times

- ``build_s``: building the supernet, the trainer and the optimizer's slots;
- ``first_step_s``: the first ``train_on_batch`` (tracing the four-member step, grappler's
  graph optimization, the first run);
- ``step_ms``: the median of the next ``--steps`` steps (what the graph options cost or save
  at steady state).

Variants change how the step is traced and what grappler does to the traced graph
(``tf.config.optimizer``):

- ``inline_members``: every member traced and inlined on its own
  (``SupernetTrainer(share_traces=False)``; the folded targets and tensor inputs stay),
  TensorFlow's default grappler;
- ``default``: members of one kind share one traced program (the trainer's default),
  TensorFlow's default grappler;
- ``tfnas``: shared programs and `tfnas.grappler.DEFAULTS` (what ``bin/train`` runs);
- ``no_grappler`` (the meta optimizer off: the graph runs as traced), ``light`` (only the
  cheap passes: pruning, constant folding, shape optimization), and one variant per
  expensive pass turned off, all with shared programs.

Prints a Markdown table, writes ``benchmarks/startup/results.json`` (the last run of each
variant) and appends every run, with the time and the load average, to
``benchmarks/startup/runs.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tfnas import grappler as grappler_lib  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "startup" / "results.json"
RUNS = HERE / "startup" / "runs.jsonl"

VARIANTS = {
    "inline_members": {},
    "default": {},
    "tfnas": dict(grappler_lib.DEFAULTS),
    "no_grappler": {"disable_meta_optimizer": True},
    "light": {
        "layout_optimizer": False,
        "remapping": False,
        "arithmetic_optimization": False,
        "dependency_optimization": False,
        "loop_optimization": False,
        "function_optimization": False,
        "debug_stripper": False,
        "scoped_allocator_optimization": False,
        "implementation_selector": False,
    },
    "no_layout": {"layout_optimizer": False},
    "no_remapping": {"remapping": False},
    "no_arithmetic": {"arithmetic_optimization": False},
    "no_function": {"function_optimization": False},
    "no_constant_folding": {"constant_folding": False},
    "no_dependency": {"dependency_optimization": False},
    "no_loop": {"loop_optimization": False},
}


def child(space_name: str, options: dict, steps: int, share_traces: bool = True) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import tensorflow as tf

    from tfnas import optimizers
    from tfnas import schemes
    from tfnas import search_space as ss
    from tfnas import supernet as supernet_lib
    from tfnas import trainer as trainer_lib

    if options:
        tf.config.optimizer.set_experimental_options(options)
    space = ss.get_space(space_name)
    size = space.resolutions[0]
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(32, size, size, space.in_channels)), tf.float32)
    labels = tf.constant(rng.integers(0, space.num_classes, 32), tf.int32)
    start = time.perf_counter()
    net = supernet_lib.Supernet(space_name, zero_init_residual=True)
    net.build()
    trainer = trainer_lib.SupernetTrainer(
        net, schemes.SandwichScheme(space), weight_decay=5e-5, share_traces=share_traces
    )
    trainer.compile(optimizer=optimizers.LazySGD(0.1, momentum=0.9), jit_compile=False)
    trainer.build_optimizers()
    build = time.perf_counter() - start
    start = time.perf_counter()
    trainer.train_on_batch(images, labels)
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.train_on_batch(images, labels)
        times.append(time.perf_counter() - start)
    return dict(build_s=build, first_step_s=first, step_ms=1e3 * statistics.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--space", default="fmnist")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        share = args.child != "inline_members"
        print(json.dumps(child(args.space, VARIANTS[args.child], args.steps, share)))
        return
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    print("| space | variant | build (s) | first step (s) | later step (ms) |")
    print("|---|---|---|---|---|")
    for name in args.variants.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--child", name, "--space", args.space,
             "--steps", str(args.steps)],
            check=True, capture_output=True, text=True,
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        results[f"{args.space}/{name}"] = row
        # Every run, in order (results.json keeps the last of each variant).
        with RUNS.open("a") as f:
            f.write(json.dumps(dict(space=args.space, variant=name, when=time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), load=os.getloadavg()[0], **row)) + "\n")
        print(f"| {args.space} | {name} | {row['build_s']:.1f} | {row['first_step_s']:.1f} | "
              f"{row['step_ms']:.0f} |", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""What a shared member program costs per step: `_noinline` calls against inlined ones.

    .venv/bin/python benchmarks/member_programs.py [--steps=10] [--modes=noinline,inlined]

`SupernetTrainer(share_traces=True)` (the default) traces one program per `MemberKind` and
marks it ``_noinline``, so the step's graph calls one optimized function per kind instead
of holding a copy per member (`benchmarks/startup.py`: the first step fell from 69 s to
21 s for the sandwich's four members). This benchmark measures what the call costs later
steps. It builds the K-shot step of ``configs/fmnist_kshot.py`` at K = 1 (a uniform single
path: one member) and at K = 8 (a single-path supernet step, then 4 simplex paths of 32
images; no warm-up), once with the default ``noinline`` programs and once with the same
traced programs left for TensorFlow to inline at every call site (``inlined``: the
program's ``_noinline`` attribute dropped: `SupernetTrainer.program_attributes` set to
``{}`` in this script's process). It prints each trainer's first
step (seconds) and then the medians of ``--steps`` rounds of later steps, the trainers
alternating in one process (both kinds of a K-shot step in turn). ``bin/train``'s grappler
defaults apply. Peak RSS is per process, so only the first line's is that trainer's own.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import train_step as bench  # noqa: E402

from tfnas import grappler  # noqa: E402
from tfnas import trainer as trainer_lib  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--modes", default="noinline,inlined")
    args = parser.parse_args()
    grappler.apply(grappler.DEFAULTS)
    fns = {}
    for mode in args.modes.split(","):
        if mode not in ("noinline", "inlined"):
            raise SystemExit(f"error: --modes: {mode!r}; expected noinline and/or inlined")
        # Read when a trainer's programs are first traced: by its first step, below.
        trainer_lib.SupernetTrainer.program_attributes = (
            {"_noinline": True} if mode == "noinline" else {}
        )
        for k in (1, 8):
            step, _ = bench.kshot_trainer("fmnist", k)
            start = time.perf_counter()
            step()
            first = time.perf_counter() - start
            step()
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{mode} K={k}: first step {first:.1f} s, process peak RSS {rss:.0f} MiB",
                  flush=True)
            fns[(mode, k, "supernet")] = fns[(mode, k, "simplex")] = step
    t = bench.alternating_medians(fns, args.steps)
    print("| programs | K=1 step (ms) | K=8 supernet / simplex / mean (ms) |")
    print("|---|---|---|")
    for mode in args.modes.split(","):
        k1 = (t[(mode, 1, "supernet")] + t[(mode, 1, "simplex")]) / 2
        s, x = t[(mode, 8, "supernet")], t[(mode, 8, "simplex")]
        print(f"| {mode} | {k1 * 1e3:.1f} | {s * 1e3:.1f} / {x * 1e3:.1f} / "
              f"{(s + x) / 2 * 1e3:.1f} |")


if __name__ == "__main__":
    main()

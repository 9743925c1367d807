"""Where a sandwich step's memory goes over time: RSS after build, after tracing, per step.

    .venv/bin/python benchmarks/memory_probe.py [--space=imagenet] [--steps=4]
    TF_CPU_ALLOCATOR_USE_BFC=true .venv/bin/python benchmarks/memory_probe.py   # + tensors
    .venv/bin/python benchmarks/memory_probe.py --trim          # malloc_trim after each step
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 .venv/bin/python \\
        benchmarks/memory_probe.py                                            # another malloc

One process: builds the supernet and the sandwich trainer (`bin/train`'s grappler
defaults, as `benchmarks/train_step.py --bench=memory` does), traces the step with
``get_concrete_function`` (tracing alone, before anything runs), then runs ``--steps``
steps. Each line gives the RSS above the built state now and at its peak so far (MiB) and the
step's seconds; with ``TF_CPU_ALLOCATOR_USE_BFC=true`` also TensorFlow's own count of the
tensors' bytes (current and peak, MiB, absolute). Malloc settings (``MALLOC_ARENA_MAX``,
``MALLOC_MMAP_THRESHOLD_``, ``LD_PRELOAD``) apply as set in the environment.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import tensorflow as tf  # noqa: E402
import train_step as bench  # noqa: E402

from tfnas import grappler  # noqa: E402
from tfnas import schemes  # noqa: E402
from tfnas import search_space as ss  # noqa: E402
from tfnas import supernet as supernet_lib  # noqa: E402
from tfnas import trainer as trainer_lib  # noqa: E402


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tensors() -> str:
    try:
        info = tf.config.experimental.get_memory_info("CPU:0")
    except ValueError:
        return ""
    return f", tensors {info['current'] / 2**20:.1f} / peak {info['peak'] / 2**20:.1f}"


def _malloc_trim() -> None:
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--space", default="imagenet", choices=sorted(bench.SETTINGS))
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument(
        "--trim", action="store_true",
        help="call glibc's malloc_trim(0) after tracing and after every step: does the "
        "memory malloc keeps free (not returned to the system) raise the peak?",
    )
    args = parser.parse_args()
    trim = _malloc_trim if args.trim else (lambda: None)
    grappler.apply(grappler.DEFAULTS)
    batch, size = bench.SETTINGS[args.space]
    space = ss.get_space(args.space)
    images, labels = bench.data(space, batch, size)
    net = supernet_lib.Supernet(args.space)
    net.build()
    trainer = trainer_lib.SupernetTrainer(
        net, schemes.SandwichScheme(space), weight_decay=args.weight_decay
    )
    trainer.compile(optimizer=bench.sgd(), jit_compile=False)
    trainer.optimizer.build(net.trainable_variables)
    step = tf.function(trainer.train_step, jit_compile=False)
    built = bench._rss_mib()
    print(f"built: RSS {built:.1f} MiB{tensors()}")
    start = time.perf_counter()
    step.get_concrete_function((images, labels))
    trim()
    print(f"traced: +{bench._rss_mib() - built:.1f} (peak +{peak_mib() - built:.1f}) "
          f"in {time.perf_counter() - start:.1f} s{tensors()}")
    for i in range(args.steps):
        start = time.perf_counter()
        step((images, labels))
        trim()
        print(f"step {i}: +{bench._rss_mib() - built:.1f} (peak +{peak_mib() - built:.1f}) "
              f"in {time.perf_counter() - start:.1f} s{tensors()}", flush=True)


if __name__ == "__main__":
    main()

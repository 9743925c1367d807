"""Where one run's first sandwich step goes: tracing, the first run, later steps, and RSS.

    .venv/bin/python benchmarks/first_step.py [--space=imagenet] [--batch=32]
        [--share-traces=True] [--grappler=tfnas|tf|none]

Builds the supernet and a `SupernetTrainer` with the sandwich scheme (LazySGD, weight decay)
in this process, then times

- ``trace_s``: tracing the step (``get_concrete_function``: Python, Keras and the gradient
  graphs), with the traced graph's node and library-function counts;
- ``first_run_s``: its first call (grappler's optimization of the graph, then one step);
- ``step_s``: the median of 3 later steps;

and the resident memory after each (``*_rss``) and the process's peak so far
(``*_peak``), MiB. ``--grappler``: ``tfnas`` applies `tfnas.grappler.DEFAULTS` (what
``bin/train`` runs), ``tf`` keeps TensorFlow's defaults, ``none`` turns grappler off.
``--share-traces=False`` inlines every member. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfnas import grappler  # noqa: E402
from tfnas import optimizers  # noqa: E402
from tfnas import schemes  # noqa: E402
from tfnas import search_space as ss  # noqa: E402
from tfnas import supernet as supernet_lib  # noqa: E402
from tfnas import trainer as trainer_lib  # noqa: E402

SIZES = {"fmnist": 28, "imagenet": 64}


def _rss() -> float:
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1]) / 1024


def _peak() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--space", default="fmnist", choices=sorted(SIZES))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--share-traces", choices=["True", "False"], default="True")
    parser.add_argument("--grappler", choices=["tfnas", "tf", "none"], default="tfnas")
    args = parser.parse_args()
    if args.grappler == "tfnas":
        grappler.apply(grappler.DEFAULTS)
    elif args.grappler == "none":
        grappler.apply({"disable_meta_optimizer": True})
    space = ss.get_space(args.space)
    size = SIZES[args.space]
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(args.batch, size, size, space.in_channels)),
                         tf.float32)
    labels = tf.constant(rng.integers(0, space.num_classes, args.batch), tf.int32)
    out = dict(vars(args))
    start = time.perf_counter()
    net = supernet_lib.Supernet(args.space, zero_init_residual=True)
    net.build()
    trainer = trainer_lib.SupernetTrainer(
        net, schemes.SandwichScheme(space), weight_decay=5e-5,
        share_traces=args.share_traces == "True",
    )
    trainer.compile(optimizer=optimizers.LazySGD(0.1, momentum=0.9), jit_compile=False)
    trainer.build_optimizers()
    out.update(build_s=time.perf_counter() - start, built_rss=_rss())
    step = tf.function(trainer.train_step, jit_compile=False)
    start = time.perf_counter()
    graph = step.get_concrete_function((images, labels)).graph.as_graph_def()
    out.update(trace_s=time.perf_counter() - start, traced_rss=_rss(), traced_peak=_peak(),
               graph_nodes=len(graph.node), library_functions=len(graph.library.function))
    del graph
    start = time.perf_counter()
    step((images, labels))
    out.update(first_run_s=time.perf_counter() - start, first_rss=_rss(), first_peak=_peak())
    times = []
    for _ in range(3):
        start = time.perf_counter()
        step((images, labels))
        times.append(time.perf_counter() - start)
    out.update(step_s=statistics.median(times), end_rss=_rss(), end_peak=_peak())
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main()

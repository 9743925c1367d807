"""Scoring speed: today's per-batch scoring path against `tfnas.evaluation` on the same archs.

    .venv/bin/python benchmarks/scoring_speed.py --supernet=/tmp/supernet.keras --archs=20

Both paths score the same ``--archs`` archs (``sample_many(N, seed)`` of the config's space, or
``--codes=FILE``) with the same supernet and the same recalibration and evaluation batches
(`tfnas.evaluation.build_evaluator` of ``--config``). The reference is today's path before
issue 17: a verbatim copy of its scoring code (`ReferenceEvaluator`: one graph call per
recalibration batch and per evaluation batch, a Python loop around them) run with TensorFlow's
own oneDNN default (``TF_ENABLE_ONEDNN_OPTS=0``: TF 2.21 leaves oneDNN off here); the new path
is `tfnas.evaluation` in the environment that ``bin/train --stage=evaluate`` sets (oneDNN on,
`tfnas.runtime`). Since a process's oneDNN setting is fixed when TensorFlow loads, each path
runs in its own processes: the two alternate over chunks of ``--chunk`` archs, a fresh process
per chunk, so that both see the same load on a shared machine. Prints archs/minute of each
(wall clock and process CPU time, scoring only: loading and tracing on one warm-up arch are
timed apart), the speed-up, and the largest absolute difference between the two paths'
accuracies (0 when identical); ``--out=FILE`` writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfnas import evaluation  # noqa: E402
from tfnas import runtime  # noqa: E402
from tfnas import search_space as ss  # noqa: E402
from tfnas import supernet as supernet_lib  # noqa: E402


class ReferenceEvaluator:
    """The scoring path before issue 17, kept as the reference (tfnas/evaluation.py at
    commit db9892d): one traced call per recalibration batch, one per evaluation batch."""

    def __init__(self, supernet, recal_batches, eval_batches, mode="cumulative", ema_momentum=0.9):
        evaluation.batch_momentum(0, mode, ema_momentum)  # validates the mode
        self.supernet = supernet
        self.recal_batches = list(recal_batches)
        self.eval_batches = eval_batches
        self.mode = mode
        self.ema_momentum = ema_momentum
        shape = [None, *self.recal_batches[0][0].shape[1:]] if self.recal_batches else None
        image_spec = tf.TensorSpec(shape, tf.float32)
        arch_spec = tf.TensorSpec([52], tf.int32)

        @tf.function(input_signature=[image_spec, arch_spec, tf.TensorSpec([], tf.float32)])
        def recal_step(images, arch, momentum):
            self.supernet(images, arch=arch, training=True, bn_momentum=momentum)
            return tf.constant(0)

        @tf.function(input_signature=[image_spec, tf.TensorSpec([None], tf.int32), arch_spec])
        def correct(images, labels, arch):
            logits = self.supernet(images, arch=arch, training=False)
            hits = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
            return tf.reduce_sum(tf.cast(hits, tf.int32)), tf.size(labels)

        self._recal_step = recal_step
        self._correct = correct

    def recalibrate(self, arch) -> None:
        arch = supernet_lib.arch_tensor(arch, self.supernet.space)
        for i, (images, *_) in enumerate(self.recal_batches):
            momentum = evaluation.batch_momentum(i, self.mode, self.ema_momentum)
            self._recal_step(images, arch, tf.constant(momentum, tf.float32))

    def accuracy(self, arch, recalibrate: bool = True) -> float:
        if recalibrate:
            self.recalibrate(arch)
        arch = supernet_lib.arch_tensor(arch, self.supernet.space)
        hits = total = 0
        for images, labels in self.eval_batches:
            h, n = self._correct(images, tf.cast(labels, tf.int32), arch)
            hits += int(h)
            total += int(n)
        return hits / total


def load_config(path: str, variant: str | None):
    spec = importlib.util.spec_from_file_location("benchmark_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(variant)


def read_codes(path: str) -> list[str]:
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def timed(fn, archs):
    """(accuracies, wall seconds, process CPU seconds) of ``fn(archs)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    accs = fn(archs)
    return accs, time.perf_counter() - wall, time.process_time() - cpu


def child(args) -> int:
    """One path in this process: trace on the largest arch, then time ``--child_codes``."""
    config = load_config(args.config, args.variant)
    space = ss.get_space(config.space)
    codes = args.child_codes.split(",")
    supernet = keras.saving.load_model(args.supernet)
    start = time.perf_counter()
    new = evaluation.build_evaluator(config, supernet)
    data_seconds = time.perf_counter() - start
    per_call = max(1, args.archs_per_call)
    if args.child == "old":
        old = ReferenceEvaluator(
            supernet, new.recal_batches, new.eval_batches, new.mode, new.ema_momentum
        )

        def run(archs):
            return [old.accuracy(a) for a in archs]
    else:
        def run(archs):
            accs = []
            for i in range(0, len(archs), per_call):
                accs += new.accuracies(archs[i : i + per_call])
            return accs

    warm = [space.largest().code] * (1 if args.child == "old" else per_call)
    _, trace, _ = timed(run, warm)
    accs, wall, cpu = timed(run, codes)
    print("RESULT " + json.dumps({"accs": accs, "wall": wall, "cpu": cpu, "trace": trace,
                                  "data_seconds": data_seconds}), flush=True)
    return 0


def run_child(args, path: str, codes: list[str]) -> dict:
    """Runs ``path`` (``old`` or ``new``) in a fresh process on ``codes``; its figures."""
    env = dict(os.environ)
    env.pop(runtime.ONEDNN_VARIABLE, None)
    if path == "old":
        # Today's path also runs with TensorFlow's own oneDNN default (off in TF 2.21 here).
        env[runtime.ONEDNN_VARIABLE] = args.reference_onednn
    else:
        runtime.configure_environment("evaluate", env)  # what bin/train's evaluate sets
    cmd = [sys.executable, os.path.abspath(__file__), f"--child={path}",
           f"--child_codes={','.join(codes)}", f"--supernet={args.supernet}",
           f"--config={args.config}", f"--archs_per_call={args.archs_per_call}"]
    if args.variant:
        cmd.append(f"--variant={args.variant}")
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    line = [x for x in out.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--supernet", required=True, help="a supernet.keras")
    parser.add_argument("--config", default=os.path.join(ROOT, "configs/fmnist_ranking.py"))
    parser.add_argument("--variant", default=None, help="config variant (e.g. tiny)")
    parser.add_argument("--archs", type=int, default=20, help="number of archs scored")
    parser.add_argument("--codes", default="", help="a file of codes (default: sampled)")
    parser.add_argument("--seed", type=int, default=17, help="seed of the sampled archs")
    parser.add_argument("--chunk", type=int, default=5, help="archs per process and path")
    parser.add_argument("--archs_per_call", type=int, default=1,
                        help="archs per graph call of the new path (accuracies)")
    parser.add_argument("--reference_onednn", default="0",
                        help="TF_ENABLE_ONEDNN_OPTS of today's path (TF 2.21's default: off)")
    parser.add_argument("--out", default="", help="write the figures as JSON here")
    parser.add_argument("--child", choices=["old", "new"], help=argparse.SUPPRESS)
    parser.add_argument("--child_codes", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    config = load_config(args.config, args.variant)
    space = ss.get_space(config.space)
    if args.codes:
        codes = read_codes(args.codes)[: args.archs]
    else:
        codes = [a.code for a in space.sample_many(args.archs, seed=args.seed)]
    totals = {"old": [0.0, 0.0], "new": [0.0, 0.0]}
    accs = {"old": [], "new": []}
    traces = {"old": [], "new": []}
    for i in range(0, len(codes), args.chunk):
        chunk = codes[i : i + args.chunk]
        order = ("old", "new") if (i // args.chunk) % 2 == 0 else ("new", "old")
        for name in order:
            got = run_child(args, name, chunk)
            accs[name] += got["accs"]
            totals[name][0] += got["wall"]
            totals[name][1] += got["cpu"]
            traces[name].append(got["trace"])
        print(f"{i + len(chunk)}/{len(codes)} archs: old {totals['old'][0]:.1f} s, "
              f"new {totals['new'][0]:.1f} s", flush=True)
    n = len(codes)
    rate = {k: n / w * 60.0 for k, (w, _) in totals.items()}
    cpu_rate = {k: n / c * 60.0 for k, (_, c) in totals.items()}
    diffs = [abs(a - b) for a, b in zip(accs["old"], accs["new"])]
    report = {
        "archs": n,
        "supernet": args.supernet,
        "config": os.path.relpath(args.config, ROOT),
        "archs_per_call": args.archs_per_call,
        "reference_onednn": args.reference_onednn,
        "archs_per_min": rate,
        "archs_per_cpu_min": cpu_rate,
        "speedup_wall": rate["new"] / rate["old"],
        "speedup_cpu": cpu_rate["new"] / cpu_rate["old"],
        "max_abs_acc_diff": max(diffs),
        "archs_differing": sum(d > 0 for d in diffs),
        "first_call_seconds": {k: sum(v) / len(v) for k, v in traces.items()},
        "load_average": os.getloadavg(),
        "accuracies": {"codes": codes, "old": accs["old"], "new": accs["new"]},
    }
    print(
        f"old path: {rate['old']:.1f} archs/min ({cpu_rate['old']:.1f} per CPU-minute), "
        f"TF_ENABLE_ONEDNN_OPTS={args.reference_onednn}\n"
        f"new path: {rate['new']:.1f} archs/min ({cpu_rate['new']:.1f} per CPU-minute), "
        f"{args.archs_per_call} arch(s) per graph call, tfnas's defaults\n"
        f"speed-up: {report['speedup_wall']:.2f}x wall, {report['speedup_cpu']:.2f}x CPU\n"
        f"max |acc difference| over {n} archs: {report['max_abs_acc_diff']:.6f} "
        f"({report['archs_differing']} archs differ)\n"
        f"first call (tracing), mean per process: old {report['first_call_seconds']['old']:.1f}"
        f" s, new {report['first_call_seconds']['new']:.1f} s; load average "
        f"{report['load_average'][0]:.2f}"
    )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

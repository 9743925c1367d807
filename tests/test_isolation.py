"""Ground truth never reaches a supernet's weights.

What holds, precisely: the ranking monitor (``train.monitor.ground_truth``) reads a
ground-truth file while a supernet trains, to log Kendall tau and to choose which
checkpoint is kept as ``best_tau.keras``. It never enters a loss or a gradient, so the
trained weights do not depend on it; and the modules that define training (trainer,
schemes, supernet, sampling) cannot reach the readers of ground-truth files at all.
"""

import json
import re
import subprocess
import sys

import numpy as np

from configs import fmnist
from tfnas import search_space as ss
from tfnas.stages import oneshot

# Modules that read ground-truth (or any score) files, or rank against them.
GROUND_TRUTH_READERS = (
    "tfnas.ground_truth",
    "tfnas.scores",
    "tfnas.monitor",
    "tfnas.stages",
    "tfnas.stages.rank",
    "tfnas.stages.standalone",
)
TRAINING_MODULES = (
    "tfnas.trainer", "tfnas.schemes", "tfnas.optimizers", "tfnas.supernet", "tfnas.sampling"
)


def test_training_modules_do_not_import_ground_truth_readers():
    probe = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in TRAINING_MODULES)
        + f"print(sorted(m for m in sys.modules if m in {GROUND_TRUTH_READERS!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
        env={"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1]),
             "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _ground_truth_file(path, codes, accs):
    path.write_text(json.dumps({"results": [{"code": c, "acc": a} for c, a in zip(codes, accs)]}))
    return str(path)


def _train(tmp_path, name, ground_truth):
    config = fmnist.get_config("tiny")
    config.train.scheme = "uniform"
    config.supernet.dropout = 0.0
    config.train.monitor.enabled = True
    config.train.monitor.ground_truth = ground_truth
    trainer, _ = oneshot.train_supernet(config, tmp_path / name)
    return [w.numpy() for w in trainer.supernet.weights], tmp_path / name / "monitor"


def test_two_permuted_ground_truths_train_bitwise_equal_weights(tmp_path):
    space = ss.get_space("fmnist")
    codes = [a.code for a in space.sample_many(4, seed=11)]
    accs = [0.1, 0.2, 0.3, 0.4]
    first = _ground_truth_file(tmp_path / "gt_a.json", codes, accs)
    second = _ground_truth_file(tmp_path / "gt_b.json", codes, accs[::-1])
    weights_a, monitor_a = _train(tmp_path, "a", first)
    weights_b, monitor_b = _train(tmp_path, "b", second)
    assert len(weights_a) == len(weights_b)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)
    # The monitor did read them: opposite ground truths give opposite taus.
    history_a = [json.loads(x) for x in (monitor_a / "history.jsonl").read_text().splitlines()]
    history_b = [json.loads(x) for x in (monitor_b / "history.jsonl").read_text().splitlines()]
    tau_a = [h["kendall_tau"] for h in history_a]
    tau_b = [h["kendall_tau"] for h in history_b]
    assert len(tau_a) == 1
    for a, b in zip(tau_a, tau_b):
        assert (a is None and b is None) or abs(a + b) < 1e-9


def test_the_library_does_not_import_the_stages():
    """Stages are drivers on top of the library, never the other way round."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "tfnas"
    offenders = []
    for path in root.rglob("*.py"):
        if "stages" in path.relative_to(root).parts:
            continue
        if re.search(r"^\s*(from|import) tfnas\.stages", path.read_text(), re.M):
            offenders.append(str(path.relative_to(root)))
    assert offenders == []

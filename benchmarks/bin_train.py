"""``bin/train`` as the benchmark scripts run it: one stage in its own process.

    from bin_train import bin_train
    bin_train("fmnist_ranking.py", "--stage=oneshot", "--workdir=...")
    train_and_score("fmnist_ranking.py", workdir, archs, overrides)  # timed, then scored
    timed_stage("fmnist_ranking.py", workdir, "oneshot", overrides)   # timed only
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bin_train(config: str, *args: str) -> float:
    """Runs ``bin/train --config=configs/<config> <args>``, echoing it; raises on failure.

    Returns the process's peak resident memory in MiB (its own ``ru_maxrss``, from
    ``os.wait4``: children of other stages do not count).
    """
    cmd = [str(ROOT / "bin" / "train"), f"--config={ROOT / 'configs' / config}", *args]
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return usage.ru_maxrss / 1024.0  # Linux reports KiB


def timed_stage(config: str, workdir: Path, train_stage: str, overrides: list[str]) -> dict:
    """Runs ``train_stage`` in ``workdir`` once; ``workdir/timing.json`` records it.

    Resumable: rerun after a kill and the stage resumes from its checkpoint; a finished stage
    (``timing.json`` present) is not run again. ``timing.json`` holds the stage's wall seconds,
    start-up included, its process's peak RSS (MiB), and whether it was resumed (a resumed
    stage's time and memory are not comparable, `seconds_per_step`).
    """
    timing = workdir / "timing.json"
    if timing.exists():
        return json.loads(timing.read_text())
    marker = workdir / f"{train_stage}.started"
    resumed = marker.exists()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    start = time.perf_counter()
    peak = bin_train(config, f"--stage={train_stage}", f"--workdir={workdir}", *overrides)
    record = {f"{train_stage}_seconds": time.perf_counter() - start, "resumed": resumed,
              "peak_rss_mib": peak}
    timing.write_text(json.dumps(record))
    return record


def train_and_score(config: str, workdir: Path, codes: Path, overrides: list[str],
                    train_stage: str = "oneshot") -> None:
    """Trains ``workdir`` with ``train_stage`` (`timed_stage`) and scores ``codes``
    (``--stage=evaluate``). Resumable: rerun after a kill and each stage resumes."""
    timed_stage(config, workdir, train_stage, overrides)
    bin_train(config, "--stage=evaluate", f"--codes={codes}", f"--workdir={workdir}",
              *overrides)


def seconds_per_step(workdir: Path, steps: int, train_stage: str = "oneshot") -> float | None:
    """The training stage's wall seconds (start-up included) per step, if it ran in one go."""
    path = workdir / "timing.json"
    if not path.exists():
        return None
    timing = json.loads(path.read_text())
    return None if timing["resumed"] else timing[f"{train_stage}_seconds"] / steps

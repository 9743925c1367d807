"""``bin/train`` as the benchmark scripts run it: one stage in its own process.

    from bin_train import bin_train
    bin_train("fmnist_ranking.py", "--stage=oneshot", "--workdir=...")
    train_and_score("fmnist_ranking.py", workdir, archs, overrides)  # timed, then scored
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bin_train(config: str, *args: str) -> None:
    """Runs ``bin/train --config=configs/<config> <args>``, echoing it; raises on failure."""
    cmd = [str(ROOT / "bin" / "train"), f"--config={ROOT / 'configs' / config}", *args]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def train_and_score(config: str, workdir: Path, codes: Path, overrides: list[str],
                    train_stage: str = "oneshot") -> None:
    """Trains ``workdir`` with ``train_stage`` and scores ``codes`` (``--stage=evaluate``).

    Resumable: rerun after a kill and each stage resumes from its checkpoint or manifest.
    ``workdir/timing.json`` holds the training stage's wall seconds, start-up included, and
    whether it was resumed (a resumed stage's time is not comparable, `seconds_per_step`).
    """
    common = [f"--workdir={workdir}", *overrides]
    timing = workdir / "timing.json"
    if not timing.exists():
        marker = workdir / f"{train_stage}.started"
        resumed = marker.exists()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        start = time.perf_counter()
        bin_train(config, f"--stage={train_stage}", *common)
        timing.write_text(json.dumps({f"{train_stage}_seconds": time.perf_counter() - start,
                                      "resumed": resumed}))
    bin_train(config, "--stage=evaluate", f"--codes={codes}", *common)


def seconds_per_step(workdir: Path, steps: int, train_stage: str = "oneshot") -> float | None:
    """The training stage's wall seconds (start-up included) per step, if it ran in one go."""
    path = workdir / "timing.json"
    if not path.exists():
        return None
    timing = json.loads(path.read_text())
    return None if timing["resumed"] else timing[f"{train_stage}_seconds"] / steps

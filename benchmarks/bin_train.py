"""``bin/train`` as the benchmark scripts run it: one stage in its own process.

    from bin_train import bin_train
    bin_train("fmnist_ranking.py", "--stage=oneshot", "--workdir=...")
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bin_train(config: str, *args: str) -> None:
    """Runs ``bin/train --config=configs/<config> <args>``, echoing it; raises on failure."""
    cmd = [str(ROOT / "bin" / "train"), f"--config={ROOT / 'configs' / config}", *args]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)

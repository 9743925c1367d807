"""The committed Fashion-MNIST ranking benchmark is relocatable: its rank step runs from a
copy of the benchmark in another directory, without the supernet or the checkpoints."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"


def test_rank_step_runs_from_a_copy_elsewhere(tmp_path):
    copy = tmp_path / "elsewhere" / "benchmarks"
    copy.mkdir(parents=True)
    shutil.copy(BENCH / "fmnist_ranking.py", copy)
    shutil.copytree(ROOT / "configs", copy.parent / "configs")
    ignore = shutil.ignore_patterns("*.keras", "*.h5", "tensorboard")
    shutil.copytree(BENCH / "fmnist_ranking", copy / "fmnist_ranking", ignore=ignore)
    assert not list(copy.rglob("*.keras"))
    # The copy's manifests name nothing outside it.
    for manifest in (copy / "fmnist_ranking" / "run").glob("*/manifest.json"):
        paths = [v for v in json.loads(manifest.read_text())["products"].values()
                 if isinstance(v, str)]  # the others are figures (e.g. archs per minute)
        assert paths, manifest
        for value in paths:
            assert value.startswith("./"), (manifest, value)

    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, str(copy / "fmnist_ranking.py"), "--rank_only", "--bootstrap=50"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    report = json.loads((copy / "fmnist_ranking" / "run" / "benchmark.json").read_text())
    # The committed scores of the 40 archs, ranked against the committed ground truth.
    assert report["report"]["n"] == 40
    committed = json.loads((BENCH / "fmnist_ranking" / "run" / "benchmark.json").read_text())
    tau = report["report"]["rankers"]["supernet"]["kendall_tau"]["value"]
    assert tau == committed["report"]["rankers"]["supernet"]["kendall_tau"]["value"]

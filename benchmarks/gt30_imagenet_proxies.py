"""Real-data check of the ranking metrics: FLOPs and params as rankers of the 30 ImageNet archs.

The only ImageNet ground truth at hand is ``data/cvpr22/gt_arch30_imagenet2500.json``: 30
competition codes with stand-alone accuracies (2,500 validation images). This prints the
`tfnas.ranking` report of the two zero-cost proxies against it -- the baseline any supernet
has to beat on these archs::

    .venv/bin/python benchmarks/gt30_imagenet_proxies.py [--ground_truth=FILE] \\
        [--bootstrap=1000] [--seed=0]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from absl import app
from absl import flags

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))  # Run as a script from a checkout, without installing.

from tfnas import ranking  # noqa: E402  (after the sys.path insert)

_GROUND_TRUTH = flags.DEFINE_string(
    "ground_truth",
    str(_ROOT.parent / "shared/data/cvpr22/gt_arch30_imagenet2500.json"),
    "Competition JSON of codes with stand-alone ImageNet accuracies.",
)
_BOOTSTRAP = flags.DEFINE_integer("bootstrap", ranking.DEFAULT_N_BOOT, "Bootstrap resamples.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the bootstrap resamples.")


def main(argv):
    del argv
    data = json.loads(Path(_GROUND_TRUTH.value).read_text())
    gt = {entry["arch"]: entry["acc"] for entry in data.values()}
    report = ranking.ranking_report(None, gt, "imagenet", n_boot=_BOOTSTRAP.value, seed=_SEED.value)
    print(ranking.format_report(report))


if __name__ == "__main__":
    app.run(main)

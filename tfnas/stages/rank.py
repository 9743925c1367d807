"""Stage ``rank``: how well a supernet's scores rank archs against ground truth.

    bin/train --stage=rank --config=configs/imagenet.py --workdir=/tmp/run \\
        --results=/tmp/run/evaluate/results.json \\
        --ground_truth=../shared/data/cvpr22/gt_arch30_imagenet2500.json

Both files are either competition JSON, ``{"arch1": {"acc": 70.4, "arch": "1252..."}, ...}``,
or results JSON, ``{"results": [{"code": "1252...", "acc": 0.81}, ...]}``; archs are matched
by code. Prints `tfnas.ranking.format_report` (the supernet next to FLOPs and params as
rankers, with the paired difference in Kendall tau between the supernet and each of them
(bootstrap CI and permutation p-value), and tau divided by the ground truth's expected
ceiling when the ground-truth file records one) and writes the report to
``<workdir>/rank/report.json`` plus ``manifest.json``.
Without ``--results`` it takes the ``evaluate`` stage's ``results.json`` in the same workdir.

Config: the ``rank`` section (top-k specs, bootstrap resamples and their seed, whether
scored codes without ground truth are dropped), documented by `tfnas.ranking.validate_config`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tfnas import ranking
from tfnas import scores as scores_lib
from tfnas.stages import registry

STAGE = "rank"
# Producer of the default --results (its manifest's "results"); named, not imported: the
# evaluate module pulls in TensorFlow.
EVALUATE_STAGE = "evaluate"


def _rank_config(config) -> dict:
    """The `ranking.ranking_report` options of ``config.rank``."""
    section = config.rank
    return {
        "ks": tuple(section.ks),
        "n_boot": int(section.bootstrap),
        "seed": int(section.seed),
        "drop_unmatched_pred": bool(section.drop_unmatched_pred),
    }


def _inputs(args: registry.StageArgs) -> tuple[str, str]:
    """(results, ground_truth) paths: the flags, results defaulting to the evaluate stage's."""
    results = args.results
    if not results:
        results = registry.read_manifest(args.workdir, EVALUATE_STAGE).get("results")
    if not results:
        raise ValueError(
            "the rank stage needs --results=FILE (the supernet's scores, competition or results "
            f"JSON); none given and no {EVALUATE_STAGE} stage results in --workdir={args.workdir}"
        )
    if not args.ground_truth:
        raise ValueError(
            "the rank stage needs --ground_truth=FILE (stand-alone accuracies, competition or "
            "results JSON), e.g. ../shared/data/cvpr22/gt_arch30_imagenet2500.json"
        )
    return str(results), str(args.ground_truth)


@registry.register(STAGE, help="Rank correlation of supernet scores with ground truth.")
def run(config, args: registry.StageArgs) -> int:
    results, ground_truth = _inputs(args)
    options = _rank_config(config)
    pred = scores_lib.load_scores(results, "results")
    gt = scores_lib.load_scores(ground_truth, "ground_truth")
    ceiling = scores_lib.load_ceiling(ground_truth)
    report = ranking.ranking_report(pred, gt, config.space, ceiling=ceiling, **options)
    report["files"] = {"results": results, "ground_truth": ground_truth}
    print(ranking.format_report(report))
    stage_dir = Path(args.workdir) / STAGE
    registry.write_config(config, stage_dir)
    path = stage_dir / "report.json"
    # allow_nan=False: undefined values are already None, keep the file standard JSON.
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    registry.write_manifest(args.workdir, STAGE, report=str(path))
    return 0

"""Stage ``rank``: how well a supernet's scores rank archs against ground truth.

    bin/train --stage=rank --config=configs/imagenet.py --workdir=/tmp/run \\
        --results=/tmp/run/evaluate/results.json \\
        --ground_truth=../shared/data/cvpr22/gt_arch30_imagenet2500.json

Both files are either competition JSON, ``{"arch1": {"acc": 70.4, "arch": "1252..."}, ...}``,
or results JSON, ``{"results": [{"code": "1252...", "acc": 0.81}, ...]}``; archs are matched
by code. Prints `tfnas.ranking.format_report` (the supernet next to FLOPs and params as
rankers) and writes the report to ``<workdir>/rank/report.json`` plus ``manifest.json``.
Without ``--results`` it takes the ``evaluate`` stage's ``results.json`` in the same workdir.

Config fields (all optional, defaults in brackets): ``rank.ks`` [`ranking.DEFAULT_KS`], the
top-k specs (ints absolute, floats in (0, 1) fractions); ``rank.bootstrap`` [1000], bootstrap
resamples per CI (0: none); ``rank.seed`` [0], their seed; ``rank.drop_unmatched_pred``
[False], ignore scored codes that have no ground truth instead of failing.
"""

from __future__ import annotations

import json
from pathlib import Path

from tfnas import codes as codes_lib
from tfnas import ranking
from tfnas.stages import registry

STAGE = "rank"
# Producer of the default --results (its manifest's "results"); named, not imported: the
# evaluate module pulls in TensorFlow.
EVALUATE_STAGE = "evaluate"


def load_scores(path, flag: str) -> list[tuple[str, float]]:
    """(code, acc) pairs from a results-JSON or competition-JSON file.

    Competition JSON is read by `tfnas.codes.read_codes`; every entry must have a numeric
    ``acc``. Results JSON (the ``evaluate`` stage's ``results.json``) is
    ``{"results": [{"code": ..., "acc": ...}, ...]}``, other keys ignored.

    Args:
      path: the file.
      flag: the command-line flag it came from, named in error messages.

    Raises:
      ValueError: missing or malformed file, or entries without a score.
    """
    path = Path(path)
    expected = (
        'expected competition JSON {"arch1": {"acc": ..., "arch": "<code>"}, ...} or results '
        'JSON {"results": [{"code": "<code>", "acc": ...}, ...]}'
    )
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ValueError(f"--{flag}={path}: no such file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None  # Not JSON: read_codes says what it is.
    if isinstance(data, dict) and "results" in data:
        entries = data["results"]
        if not isinstance(entries, list):
            raise ValueError(f"--{flag}={path}: 'results' is not a list; {expected}")
        pairs = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or "code" not in entry or "acc" not in entry:
                found = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
                raise ValueError(
                    f"--{flag}={path}: entry results[{i}] has no 'code' and 'acc' "
                    f"(found {found}); {expected}"
                )
            pairs.append((str(entry["code"]), entry["acc"]))
    else:
        try:
            records = codes_lib.read_codes(path)
        except ValueError as e:
            raise ValueError(f"--{flag}: {e} ({expected})") from None
        unscored = [r.key for r in records if r.acc is None]
        if unscored:
            raise ValueError(
                f"--{flag}={path}: {len(unscored)} of {len(records)} entries have no acc "
                f"(e.g. {', '.join(unscored[:3])}); {expected}"
            )
        pairs = [(r.code, r.acc) for r in records]
    if not pairs:
        raise ValueError(f"--{flag}={path} holds no archs; {expected}")
    return pairs


def _rank_config(config) -> dict:
    section = config.get("rank") if hasattr(config, "get") else None
    section = section or {}

    def field(name, default):
        value = section.get(name, None) if hasattr(section, "get") else None
        return default if value is None else value

    return {
        "ks": tuple(field("ks", ranking.DEFAULT_KS)),
        "n_boot": int(field("bootstrap", ranking.DEFAULT_N_BOOT)),
        "seed": int(field("seed", 0)),
        "drop_unmatched_pred": bool(field("drop_unmatched_pred", False)),
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
    pred = load_scores(results, "results")
    gt = load_scores(ground_truth, "ground_truth")
    report = ranking.ranking_report(pred, gt, config.space, **options)
    report["files"] = {"results": results, "ground_truth": ground_truth}
    print(ranking.format_report(report))
    stage_dir = Path(args.workdir) / STAGE
    stage_dir.mkdir(parents=True, exist_ok=True)
    path = stage_dir / "report.json"
    # allow_nan=False: undefined values are already None, keep the file standard JSON.
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    registry.write_manifest(args.workdir, STAGE, report=str(path))
    return 0

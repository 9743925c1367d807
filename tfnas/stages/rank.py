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

Zero-cost proxies: when the ``proxies`` stage has run in the workdir, every proxy it scored
(other than FLOPs and params, which are always there) is a ranker too, with its paired
difference to the supernet: the zero-shot rows of seed paper 003, Fig. 1. A proxy that did
not score every ground-truth arch, or scored one as undefined (non-finite), or is constant,
is left out with a printed note, recorded under ``proxies`` in the report. With proxy scores
and no ``--results`` (and no ``evaluate`` stage), the report ranks FLOPs, params and the
proxies alone.

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
# Producer of the proxy rankers (its manifest's "scores", tfnas.stages.proxies).
PROXIES_STAGE = "proxies"
# Proxies the report always has as rankers.
_BUILT_IN = ("flops", "params")


def _rank_config(config) -> dict:
    """The `ranking.ranking_report` options of ``config.rank``."""
    section = config.rank
    return {
        "ks": tuple(section.ks),
        "n_boot": int(section.bootstrap),
        "seed": int(section.seed),
        "drop_unmatched_pred": bool(section.drop_unmatched_pred),
    }


def _inputs(args: registry.StageArgs) -> tuple[str | None, str]:
    """(results, ground_truth) paths: the flags, results defaulting to the evaluate stage's;
    results None when there are none but the workdir has proxy scores."""
    results = args.results
    if not results:
        results = registry.read_manifest(args.workdir, EVALUATE_STAGE).get("results")
    if not results and not registry.read_manifest(args.workdir, PROXIES_STAGE).get("scores"):
        raise ValueError(
            "the rank stage needs --results=FILE (the supernet's scores, competition or results "
            f"JSON); none given and no {EVALUATE_STAGE} stage results (nor {PROXIES_STAGE} stage "
            f"scores) in --workdir={args.workdir}"
        )
    if not args.ground_truth:
        raise ValueError(
            "the rank stage needs --ground_truth=FILE (stand-alone accuracies, competition or "
            "results JSON), e.g. ../shared/data/cvpr22/gt_arch30_imagenet2500.json"
        )
    return (str(results) if results else None), str(args.ground_truth)


def proxy_rankers(workdir, gt_codes) -> tuple[dict[str, dict[str, float]], dict | None]:
    """The ``proxies`` stage's scores in ``workdir`` as rankers of the ground-truth codes.

    Returns:
      ``({proxy: {code: score}}, info)``: info is None when the stage has not run, else
      ``{"file", "rankers": [names], "skipped": {name: why}}``. A proxy is skipped when it
      has no score for some ground-truth arch, an undefined one, or the same for all.
    """
    path = registry.read_manifest(workdir, PROXIES_STAGE).get("scores")
    if not path:
        return {}, None
    try:
        data = json.loads(Path(path).read_text())
        rows = {str(r["code"]).strip(): r["scores"] for r in data["results"]}
        names = list(data["proxies"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"{path} (the {PROXIES_STAGE} stage's scores in --workdir={workdir}) is not a proxy "
            f"scores file ({type(err).__name__}: {err}); run --stage={PROXIES_STAGE} again "
            "with --overwrite"
        ) from None
    codes = sorted(set(gt_codes))
    missing = [c for c in codes if c not in rows]
    rankers, skipped = {}, {}
    for name in names:
        if name in _BUILT_IN:
            continue
        if missing:
            skipped[name] = (
                f"no score for {len(missing)} of the {len(codes)} ground-truth archs; run "
                f"--stage={PROXIES_STAGE} --codes=<the ground-truth file> in this workdir"
            )
            continue
        values = {c: rows[c].get(name) for c in codes}
        undefined = [c for c, v in values.items() if v is None]
        if undefined:
            skipped[name] = f"undefined (non-finite) for {len(undefined)} of {len(codes)} archs"
        elif len(set(values.values())) < 2:
            skipped[name] = f"the same score for all {len(codes)} archs"
        else:
            rankers[name] = values
    return rankers, {"file": str(path), "rankers": list(rankers), "skipped": skipped}


@registry.register(STAGE, help="Rank correlation of supernet scores with ground truth.")
def run(config, args: registry.StageArgs) -> int:
    results, ground_truth = _inputs(args)
    options = _rank_config(config)
    pred = scores_lib.load_scores(results, "results") if results else None
    gt = scores_lib.load_scores(ground_truth, "ground_truth")
    ceiling = scores_lib.load_ceiling(ground_truth)
    extra, proxies_info = proxy_rankers(args.workdir, [str(c).strip() for c, _ in gt])
    report = ranking.ranking_report(
        pred, gt, config.space, ceiling=ceiling, extra_rankers=extra, **options
    )
    report["files"] = {"results": results, "ground_truth": ground_truth}
    if proxies_info is not None:
        report["proxies"] = proxies_info
    print(ranking.format_report(report))
    for name, why in (proxies_info or {}).get("skipped", {}).items():
        print(f"rank: proxy {name} left out: {why}")
    stage_dir = Path(args.workdir) / STAGE
    registry.write_config(config, stage_dir)
    path = stage_dir / "report.json"
    # allow_nan=False: undefined values are already None, keep the file standard JSON.
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    registry.write_manifest(args.workdir, STAGE, report=str(path))
    return 0

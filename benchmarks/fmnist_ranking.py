"""The Fashion-MNIST ranking benchmark: does the supernet rank archs like stand-alone training?

    .venv/bin/python benchmarks/fmnist_ranking.py [--workdir=benchmarks/fmnist_ranking/run]
        [--config.train.epochs=3 ...]  (any config override of configs/fmnist_ranking.py)

1. trains the one-shot supernet with the fixed budget of `configs/fmnist_ranking.py`
   (stage ``oneshot``; resumes if interrupted),
2. scores the 40 ground-truth archs with inherited weights after BN recalibration (stage
   ``evaluate``; resumable),
3. prints Kendall tau-b, Spearman rho and Pearson r with bootstrap 95% CIs against the
   committed ground truth (``standalone/ground_truth.seed0.json``), next to FLOPs and
   params as rankers, and the ceiling: the ground truth's own seed-to-seed agreement on the
   archs trained twice (``ground_truth.seed1.json``).

Writes ``<workdir>/benchmark.json`` and prints the wall time of each step. With
``--rank_only`` it skips steps 1 and 2 and ranks the scores the workdir's ``evaluate``
manifest names: the committed run (``fmnist_ranking/run/``, whose manifests hold paths
relative to the workdir) re-ranks from a copy anywhere, without its supernet.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from tfnas import ranking  # noqa: E402
from tfnas import scores as scores_lib  # noqa: E402
from tfnas import search_space as ss  # noqa: E402
from tfnas.stages import rank as rank_stage  # noqa: E402
from tfnas.stages import registry  # noqa: E402

GT_DIR = HERE / "fmnist_ranking" / "standalone"
_CONFIG = config_flags.DEFINE_config_file(
    "config", str(ROOT / "configs" / "fmnist_ranking.py"), "Benchmark config."
)
_WORKDIR = flags.DEFINE_string("workdir", str(HERE / "fmnist_ranking" / "run"), "Workdir.")
_GT = flags.DEFINE_string("ground_truth", str(GT_DIR / "ground_truth.seed0.json"), "GT.")
_GT2 = flags.DEFINE_string("ground_truth_2", str(GT_DIR / "ground_truth.seed1.json"), "GT seed 1.")
_BOOT = flags.DEFINE_integer("bootstrap", 1000, "Bootstrap resamples.")
_RANK_ONLY = flags.DEFINE_bool(
    "rank_only", False, "Only rank the evaluate stage's scores already in --workdir."
)


def ceiling(gt_a: dict, gt_b: dict) -> dict:
    """Agreement of two ground truths of the same archs (different training seeds)."""
    codes = [c for c in gt_b if c in gt_a]
    if len(codes) < 3:
        return {"n": len(codes)}
    a = [gt_a[c] for c in codes]
    b = [gt_b[c] for c in codes]
    return {
        "n": len(codes),
        "kendall_tau": ranking.kendall_tau(a, b, n_boot=_BOOT.value),
        "spearman_rho": ranking.spearman_rho(a, b, n_boot=_BOOT.value),
        "pearson_r": ranking.pearson_r(a, b, n_boot=_BOOT.value),
    }


def main(argv):
    del argv
    config = _CONFIG.value
    workdir = _WORKDIR.value
    times = {}
    codes_file = HERE / "fmnist_ranking" / "archs.txt"

    if not _RANK_ONLY.value:
        start = time.perf_counter()
        registry.run_stage("oneshot", config, registry.StageArgs(workdir=workdir))
        times["oneshot_s"] = time.perf_counter() - start

        start = time.perf_counter()
        registry.run_stage(
            "evaluate", config, registry.StageArgs(workdir=workdir, codes=str(codes_file))
        )
        times["evaluate_s"] = time.perf_counter() - start

    gt = dict(scores_lib.load_scores(_GT.value, "ground_truth"))
    results = registry.read_manifest(workdir, "evaluate").get("results")
    if not results:
        raise SystemExit(f"error: no evaluate results in {workdir}; run without --rank_only")
    pred = dict(scores_lib.load_scores(results, "results"))
    # Ranks the archs that have ground truth (all 40 once the ground truth is complete).
    # The zero-cost proxies scored in the workdir (--stage=proxies) rank next to FLOPs and
    # params: the zero-shot rows of seed paper 003 Fig. 1.
    proxies, _ = rank_stage.proxy_rankers(workdir, list(gt))
    report = ranking.ranking_report(
        pred, gt, ss.get_space(config.space), n_boot=_BOOT.value, seed=0,
        ks=ranking.DEFAULT_KS, drop_unmatched_pred=True, extra_rankers=proxies,
    )
    print(ranking.format_report(report))
    # The evaluation set's size bounds how finely the supernet's scores can rank.
    ev = config.evaluate
    num_eval = int(ev.num_batches) * int(ev.batch_size) or int(config.data.holdout_size)
    noise = ranking.score_noise({c: pred[c] for c in gt if c in pred}, num_eval)
    print(
        f"Score noise: binomial s.e. {noise['binomial_se']:.4f} on {num_eval} holdout images "
        f"against an s.d. of {noise['score_sd']:.4f} across the archs' supernet scores "
        f"(ratio {noise['ratio']:.2f})"
    )
    ceil = {}
    if Path(_GT2.value).exists():
        ceil = ceiling(gt, dict(scores_lib.load_scores(_GT2.value, "ground_truth_2")))
        if "kendall_tau" in ceil:
            print(
                f"Ceiling (ground truth seed 0 vs seed 1, n={ceil['n']}): "
                f"tau {ceil['kendall_tau']['value']:+.3f} "
                f"[{ceil['kendall_tau']['ci'][0]:+.3f}, {ceil['kendall_tau']['ci'][1]:+.3f}], "
                f"rho {ceil['spearman_rho']['value']:+.3f}, r {ceil['pearson_r']['value']:+.3f}"
            )
    print("Wall time: " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    out = Path(workdir) / "benchmark.json"
    out.write_text(
        json.dumps(dict(report=report, ceiling=ceil, times=times, score_noise=noise), indent=1)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    app.run(main)

"""Sub-supernet Enhancing on the Fashion-MNIST ranking benchmark (seed paper 001 §2.3, §3.4).

    bin/train --stage=oneshot --config=configs/fmnist_sse.py --workdir=workdirs/sse \\
        --config.supernet.init_from=workdirs/cpt/oneshot/supernet.keras
    bin/train --stage=evaluate --config=configs/fmnist_sse.py --workdir=workdirs/sse \\
        --codes=benchmarks/fmnist_ranking/archs.txt

The third stage of the 2nd place (SCHEMES.md §3.1 steps 8-11, `tfnas.schemes.sse`): the
supernet is split into 5 whole copies keyed by the depths of stages 3 and 4
(``routing=depth34_table``, `tfnas.supernet.SSE_BUCKETS`, ``split_stem``), each starting as
the CPT supernet (the broadcast of ``init_from``). Buckets 0-3 are trained in turn, one
phase each with the authors' 6/9/6/9 epoch proportions of the 600 steps, a fresh momentum
and a restarted cosine per bucket (peak 0.075: 0.003 vs APS's 0.004 in the authors' flags),
each with its own constraint pool of 7; bucket 4 keeps the CPT weights. Loss: 0.4 CE +
0.4 distillation + 0.2 over the pool. The teacher (``train.teacher``) is ``init_largest``: a
snapshot of the CPT supernet's largest subnet, BN recalibrated (the authors used the
external pretrained ResNet48; `tfnas.teacher` records which teacher ran in
``oneshot/teacher.json``).

Variants: ``sse4`` (the paper's 3 groups by stage-4 depth, d4 = 2 / d4 = 5 / the rest; groups
0 and 1 trained, 6 and 9 epochs), ``nodistill`` (no teacher: 0.4 CE + 0.2 pool), ``tiny``
(synthetic data, no teacher: the tiny run has no CPT supernet to start from).
"""

from configs import fmnist_ranking
from tfnas import config_lib

OWN_VARIANTS = ("sse4", "nodistill")
SSE4_BUCKETS = "22,32,42,52,62,72,82;25,35,45,55,65,75,85"


def bucket_phases(config, epochs, total_steps: int) -> None:
    """One phase per trained bucket, lengths in the proportions of ``epochs``."""
    ends, total = [], 0
    for e in epochs[:-1]:
        total += e
        ends.append(round(total_steps * total / sum(epochs)))
    config.train.phases.boundaries = tuple(ends)
    config.train.phases.peaks = (1.0,) * len(epochs)
    config.train.phases.reset_momentum = True
    config.train.sse.buckets = tuple(range(len(epochs)))


def get_config(variant=None):
    """``variant``: None (SSE34 with distillation), ``"sse4"``, ``"nodistill"`` or ``"tiny"``."""
    config = fmnist_ranking.get_config()
    config.name = "fmnist_sse" if variant in (None, "tiny") else f"fmnist_sse_{variant}"
    config.supernet.routing = "depth34_table"
    config.supernet.num_copies = 5
    config.supernet.split_stem = True
    config.train.scheme = "sse"
    # Plain cross-entropy on every path, no dropout (SCHEMES.md §3.1 step 3).
    config.supernet.dropout = 0.0
    config.train.learning_rate = 0.075
    config.train.warmup_epochs = 0.0
    config.train.teacher = "init_largest"
    steps = config.train.epochs * config.train.steps_per_epoch
    epochs = (6, 9, 6, 9)
    if variant == "sse4":
        config.supernet.depth34_buckets = SSE4_BUCKETS
        config.supernet.num_copies = 3
        epochs = (6, 9)
    bucket_phases(config, epochs, steps)
    if variant in ("nodistill", "tiny"):
        config.train.sse.distill_weight = 0.0
        config.train.teacher = ""
    if variant == "tiny":
        config.train.sse.pool_size = 3
        config.train.sse.knn = 2
        config.train.sse.recent_size = 4
    return config_lib.finish(config, variant, OWN_VARIANTS)

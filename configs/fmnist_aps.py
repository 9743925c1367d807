"""Adapted Progressive Shrinking on the Fashion-MNIST ranking benchmark (seed paper 001 §2.2, §3.2).

    bin/train --stage=oneshot --config=configs/fmnist_aps.py --workdir=workdirs/aps
    bin/train --stage=oneshot --config=configs/fmnist_aps.py:v1 --workdir=workdirs/aps_v1

The benchmark's data, supernet and budget (`configs/fmnist_ranking.py`: 600 steps of batch
128) with ``train.scheme=multipath``: 4 sampled subnets per step on the labels, gradients
summed, weight decay once per step (SCHEMES.md §3.1 step 3). The six phases of the 2nd
place (SCHEMES.md §3.4: 5, 10, 15 depth epochs, then 5, 10, 25 width epochs of 70) keep their
proportions of the 600 steps; each has its own peak learning rate (x1, x2, x4 of
``train.learning_rate`` in each half, the authors' 0.001/0.002/0.004), a cosine restarted per
phase, no warm-up, and zeroed momentum at each boundary (the authors build a new optimizer
per phase).

- Depth phases D1-D3: every width digit 1 (the widest), the per-stage depth lower bounds of
  the version: **v3** (the default) (4,4,6,2) -> (3,3,4,2) -> (2,2,2,2); **v2** (4,4,6,4) ->
  (3,3,4,2) -> (2,2,2,2); **v1** (4,4,6,4) -> (3,3,4,3) -> (2,2,2,2) (the paper's §3.2: v2
  widens D4 in phase 2, v3 also in phase 1).
- Width phases W1-W3: the largest digit of stages 1-4 grows to the evaluated space. The
  paper's ImageNet rows end at the competition space (3,3,5,7); this benchmark scores archs
  of the whole space, so its rows are (3,3,3,3) -> (5,5,5,5) -> (7,7,7,7)
  (`configs/imagenet_aps.py` has the paper's).

The peak of 4 x 0.025 = 0.1 matches the sandwich benchmark's (also 4 subnets a step).
Variants: ``v1``, ``v2``, ``tiny`` (synthetic data, one step per phase).
"""

from configs import fmnist_ranking
from tfnas import config_lib

OWN_VARIANTS = ("v1", "v2")
# Per-stage depth lower bounds of the three depth phases (seed paper 001 §3.2).
DEPTH_PHASES = {
    "v1": ((4, 4, 6, 4), (3, 3, 4, 3), (2, 2, 2, 2)),
    "v2": ((4, 4, 6, 4), (3, 3, 4, 2), (2, 2, 2, 2)),
    "v3": ((4, 4, 6, 2), (3, 3, 4, 2), (2, 2, 2, 2)),
}
# Phase lengths in the authors' epochs (D1-D3, W1-W3; SCHEMES.md §3.4).
PHASE_EPOCHS = (5, 10, 15, 5, 10, 25)


def aps_phases(config, version: str, width_rows, total_steps: int) -> None:
    """Sets ``config.train.phases`` to APS ``version`` over ``total_steps`` steps."""
    ends, total = [], 0
    for epochs in PHASE_EPOCHS[:-1]:
        total += epochs
        ends.append(round(total_steps * total / sum(PHASE_EPOCHS)))
    phases = config.train.phases
    phases.boundaries = tuple(ends)
    phases.peaks = (1.0, 2.0, 4.0, 1.0, 2.0, 4.0)
    phases.reset_momentum = True
    phases.depth_lo = DEPTH_PHASES[version] + ((2, 2, 2, 2),) * 3
    phases.width_hi = ((1, 1, 1, 1),) * 3 + tuple(width_rows)


def get_config(variant=None):
    """``variant``: None (APS_v3), ``"v1"``, ``"v2"`` or ``"tiny"``."""
    config = fmnist_ranking.get_config()
    config.name = "fmnist_aps" if variant in (None, "tiny") else f"fmnist_aps_{variant}"
    config.train.scheme = "multipath"
    # Plain cross-entropy on every path, no dropout (SCHEMES.md §3.1 step 3).
    config.supernet.dropout = 0.0
    config.train.num_paths = 4
    config.train.learning_rate = 0.025
    config.train.warmup_epochs = 0.0
    steps = config.train.epochs * config.train.steps_per_epoch
    version = variant if variant in OWN_VARIANTS else "v3"
    aps_phases(config, version, ((3, 3, 3, 3), (5, 5, 5, 5), (7, 7, 7, 7)), steps)
    return config_lib.finish(config, variant, OWN_VARIANTS)

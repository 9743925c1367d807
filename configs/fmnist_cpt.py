"""Candidate Plasticity Training on the Fashion-MNIST ranking benchmark (seed paper 001 §2.4).

    bin/train --stage=oneshot --config=configs/fmnist_aps.py --workdir=workdirs/aps
    bin/train --stage=oneshot --config=configs/fmnist_cpt.py --workdir=workdirs/cpt \\
        --config.supernet.init_from=workdirs/aps/oneshot/supernet.keras

The second stage of the 2nd place (SCHEMES.md §3.1 steps 4-7): from the APS weights with a
fresh optimizer, each step trains the sampled arch (0.5 x CE) and a constraint pool of 10
diverse archs (0.05 x CE each), the pool kept by the authors' replacement rule over a ring of
the 100 most recent archs and drawn afresh every 500 steps (`tfnas.schemes.cpt`). The
sampled archs are uniform in the evaluated space (here the whole space); the authors drew
them from the 45,000 test codes, which ``--config.train.codes_file=...`` reproduces (off by
default: transductive). Budget: 600 steps of batch 128 (the authors: 30 epochs, 3/7 of
APS's 70); peak learning rate 0.025, a quarter of APS's largest (0.001 vs 0.004 in the
authors' flags), cosine to 0, no warm-up. Each step runs 11 subnets (about 2.75 times the
cost of a sandwich step).
"""

from configs import fmnist_ranking
from tfnas import config_lib


def get_config(variant=None):
    """``variant``: None (the benchmark) or ``"tiny"`` (synthetic data, two steps)."""
    config = fmnist_ranking.get_config()
    config.name = "fmnist_cpt"
    config.train.scheme = "cpt"
    # Plain cross-entropy on every path, no dropout (SCHEMES.md §3.1 step 3).
    config.supernet.dropout = 0.0
    config.train.learning_rate = 0.025
    config.train.warmup_epochs = 0.0
    if variant == "tiny":
        config.train.cpt.pool_size = 3
        config.train.cpt.knn = 2
        config.train.cpt.recent_size = 4
    return config_lib.finish(config, variant)

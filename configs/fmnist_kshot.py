"""K-shot supernets with a simplex-net on the Fashion-MNIST ranking benchmark (seed paper 004).

    bin/train --stage=oneshot --config=configs/fmnist_kshot.py --workdir=workdirs/kshot
    bin/train --stage=evaluate --config=configs/fmnist_kshot.py --workdir=workdirs/kshot \\
        --codes=benchmarks/fmnist_ranking/archs.txt
    bin/train --stage=rank --config=configs/fmnist_kshot.py --workdir=workdirs/kshot \\
        --ground_truth=benchmarks/fmnist_ranking/standalone/ground_truth.seed0.json
    bin/train --stage=oneshot --config=configs/fmnist_kshot.py:tiny --workdir=/tmp/kshot

The benchmark's data, supernet and budget (`configs/fmnist_ranking.py`: 3 x 200 steps of
batch 128) with ``train.scheme=kshot`` (`tfnas.schemes.kshot`): K = 4 dictionaries (the
paper's default is 8, Table 9 sweeps 1-12; the K sweep is --config.supernet.num_kernels),
a warm-up of half an epoch at the uniform code (the paper: 5 of 120 epochs; longer here
because the run is short and the warm-up trains every dictionary at once), then supernet
and simplex steps alternate: after the warm-up the supernet gets every other step, so it
sees ~350 of the 600 batches -- an ablation "at equal budget" counts steps, and this is
the price of the alternation. The supernet step is a single uniform path (the paper's);
``--config.train.kshot.supernet_step=sandwich`` is the sandwich variant (not in the
paper). The simplex step runs m = 4 paths of 32 images each (the paper's m = 16 on batch
1024 gives 64 images a path). The ``tiny`` variant has no warm-up and m = 2, so its two
steps are one supernet step and one simplex step.
"""

from configs import fmnist_ranking
from tfnas import config_lib


def get_config(variant=None):
    """``variant``: None (the benchmark) or ``"tiny"`` (synthetic data, two steps)."""
    config = fmnist_ranking.get_config()
    config.name = "fmnist_kshot"
    config.supernet.num_kernels = 4
    config.train.scheme = "kshot"
    config.train.kshot.warmup_epochs = 0.5
    config.train.kshot.num_paths = 4
    if variant == "tiny":
        config.train.kshot.warmup_epochs = 0.0
        config.train.kshot.num_paths = 2
    return config_lib.finish(config, variant)

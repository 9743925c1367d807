"""Adapted Progressive Shrinking on ImageNet, the 2nd place of CVPR 2022 Track 1 (seed paper 001).

    bin/train --stage=oneshot --config=configs/imagenet_aps.py --workdir=workdirs/aps_in \\
        --config.train.strategy=mirrored
    bin/train --stage=oneshot --config=configs/imagenet_aps.py:v1 ...      # APS_v1, v2

The authors' APS stage (SCHEMES.md §3.1, §3.4): 70 epochs in six phases -- depth phases D1-D3
(5, 10, 15 epochs, every width digit 1) then width phases W1-W3 (5, 10, 25 epochs, largest
digits (3,3,3,3), (3,3,5,5), (3,3,5,7): the last is the competition's evaluated space) -- with
4 sampled subnets per step on the labels, flag learning rates 0.001/0.002/0.004 per phase
(cosine restarted per phase, no warm-up), momentum 0.9 reset at each phase, weight decay
3e-5. Their global batch was 2048 (256 x 8 GPUs) at effective rates x8; here the global
batch is 256 at the flag rates (the linear scaling rule). Not reproduced: the start from the
organisers' pretrained ResNet48 (not available; SCHEMES.md §3.5) and per-epoch LR stepping.
Then CPT and SSE: `configs/fmnist_cpt.py` and `configs/fmnist_sse.py` show the stages; on
ImageNet run them with ``--config=configs/imagenet.py`` and the same ``train`` overrides.
"""

from configs import fmnist_aps
from configs import imagenet
from tfnas import config_lib

OWN_VARIANTS = fmnist_aps.OWN_VARIANTS
IMAGENET_TRAIN = 1281167


def get_config(variant=None):
    """``variant``: None (APS_v3), ``"v1"``, ``"v2"`` or ``"tiny"``."""
    config = imagenet.get_config()
    config.name = "imagenet_aps" if variant in (None, "tiny") else f"imagenet_aps_{variant}"
    config.supernet.dropout = 0.0
    config.train.scheme = "multipath"
    config.train.num_paths = 4
    config.train.batch_size = 256
    config.train.epochs = 70
    config.train.steps_per_epoch = IMAGENET_TRAIN // 256
    config.train.warmup_epochs = 0.0
    config.train.learning_rate = 0.001
    config.train.nesterov = False
    config.train.weight_decay = 3e-5
    steps = config.train.epochs * config.train.steps_per_epoch
    version = variant if variant in OWN_VARIANTS else "v3"
    fmnist_aps.aps_phases(config, version, ((3, 3, 3, 3), (3, 3, 5, 5), (3, 3, 5, 7)), steps)
    return config_lib.finish(config, variant, OWN_VARIANTS)

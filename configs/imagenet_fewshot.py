"""Few-shot by group split on ImageNet, the 4th place of CVPR 2022 Track 1 (seed paper 000).

    bin/train --stage=oneshot --config=configs/imagenet_fewshot.py --workdir=workdirs/fs_in \\
        --config.train.strategy=mirrored
    bin/train --stage=fewshot --config=configs/imagenet_fewshot.py --workdir=workdirs/fs_in \\
        --config.train.strategy=mirrored

The paper's recipe (seed paper 000 §3.1, with the authors' code where they differ,
SCHEMES.md §2.4): one-shot sandwich for 100 epochs, batch 128, SGD momentum 0.9 (Nesterov,
as their config), peak learning rate 0.1 after 5 warm-up epochs, cosine to 0, weight decay
1e-5 and dropout 0.2 on the largest subnet, label smoothing 0.1 on the largest; then G = 2..7
groups, 20 epochs each, no warm-up, base learning rate 0.001 (0.002 at G=3), per-group
learning rates in the code's direction. The ranking monitor (Kendall tau after every epoch,
seed paper 000 §3.2) picks the checkpoint each G inherits: set
--config.train.monitor.ground_truth to the stand-alone accuracies of a few archs (their
30 archs on 1/20 of the validation set). Not reproduced: training at random resolutions
128-224 px (the space has one resolution; SCHEMES.md §2.8), weight decay on BN at G >= 2,
element-wise gradient clipping at 1.
"""

from configs import imagenet
from tfnas import config_lib


def get_config(variant=None):
    """``variant``: None (the full run) or ``"tiny"`` (synthetic 224x224 data, G = 2..3)."""
    config = imagenet.get_config()
    config.name = "imagenet_fewshot"
    config.train.batch_size = 128
    config.train.epochs = 100
    config.train.warmup_epochs = 5.0
    config.train.learning_rate = 0.1
    config.train.nesterov = True
    config.train.label_smoothing = 0.1
    config.fewshot.max_copies = 7
    config.fewshot.epochs = (20,)
    config.fewshot.learning_rate = (0.001, 0.002, 0.001, 0.001, 0.001, 0.001)
    config.fewshot.lr_mode = "code"
    if variant == "tiny":
        config.fewshot.max_copies = 3
        config.fewshot.learning_rate = (0.001, 0.002)
    return config_lib.finish(config, variant)

"""CIFAR-10 on the `cifar10` space (32x32x3 inputs, 3x3 stem).

    bin/train --stage=oneshot --config=configs/cifar10.py --workdir=workdirs/cifar10

Needs TFDS's ``cifar10`` prepared (see `tfnas.data`; ``--config.data.download=True`` with
internet). Sandwich training with SGD (momentum 0.9, linear warm-up then cosine decay to 0),
batch 128, peak learning rate 0.1, the usual CIFAR weight decay 5e-4 and dropout 0.1 on the
largest subnet only, 60 epochs; pad-crop and flip augmentation (the data defaults).
"""

from tfnas import config_lib


def get_config(variant=None):
    """``variant``: None (the full run) or ``"tiny"`` (synthetic data, two steps)."""
    config = config_lib.base_config("cifar10", space="cifar10", dataset="cifar10")
    config.supernet.dropout = 0.1
    config.train.batch_size = 128
    config.train.epochs = 60
    config.train.warmup_epochs = 2.0
    config.train.learning_rate = 0.1
    config.train.weight_decay = 5e-4
    config.standalone.epochs = 30
    config.standalone.warmup_epochs = 1.0
    config.standalone.weight_decay = 5e-4
    return config_lib.finish(config, variant)

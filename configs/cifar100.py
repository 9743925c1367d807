"""CIFAR-100 on the `cifar100` space (32x32x3 inputs, 3x3 stem, 100 classes).

    bin/train --stage=oneshot --config=configs/cifar100.py --workdir=workdirs/cifar100

Needs TFDS's ``cifar100`` prepared (see `tfnas.data`). The CIFAR-10 recipe (SGD, momentum
0.9, warm-up then cosine, batch 128, peak learning rate 0.1, weight decay 5e-4) with more
regularization for 100 classes: dropout 0.2 on the largest subnet, 80 epochs.
"""

from tfnas import config_lib


def get_config(variant=None):
    """``variant``: None (the full run) or ``"tiny"`` (synthetic data, two steps)."""
    config = config_lib.base_config("cifar100", space="cifar100", dataset="cifar100")
    config.supernet.dropout = 0.2
    config.train.batch_size = 128
    config.train.epochs = 80
    config.train.warmup_epochs = 2.0
    config.train.learning_rate = 0.1
    config.train.weight_decay = 5e-4
    config.standalone.epochs = 30
    config.standalone.warmup_epochs = 1.0
    config.standalone.weight_decay = 5e-4
    return config_lib.finish(config, variant)

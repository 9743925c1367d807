"""Fashion-MNIST on the `fmnist` space (28x28x1 inputs, 3x3 stem, widths 8..64): the demo.

    bin/train --stage=describe --config=configs/fmnist.py --workdir=workdirs/fmnist
    bin/train --stage=oneshot --config=configs/fmnist.py:tiny --workdir=/tmp/smoke

Sandwich training with the seed paper's optimizer (SGD, momentum 0.9, linear warm-up then
cosine decay to 0; weight decay and dropout on the largest subnet only), scaled to a small
dataset: batch 128, peak learning rate 0.1, weight decay 5e-5, dropout 0.1, 5 epochs of the
55,000 training images (5,000 are held out to score subnets).
"""

from tfnas import config_lib


def get_config(variant=None):
    """``variant``: None (the full run) or ``"tiny"`` (synthetic data, two steps)."""
    config = config_lib.base_config("fmnist", space="fmnist", dataset="fashion_mnist")
    config.supernet.dropout = 0.1
    config.train.batch_size = 128
    config.train.epochs = 5
    config.train.warmup_epochs = 1.0
    config.train.learning_rate = 0.1
    config.train.weight_decay = 5e-5
    config.evaluate.batch_size = 500
    config.evaluate.recalibration.batch_size = 128
    config.evaluate.recalibration.num_batches = 20
    return config_lib.finish(config, variant)

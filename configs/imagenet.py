"""ImageNet on the `imagenet` space: the CVPR 2022 Lightweight NAS Challenge, Track 1.

    bin/train --stage=oneshot --config=configs/imagenet.py --workdir=workdirs/imagenet \\
        --config.train.strategy=mirrored

Needs TFDS's ``imagenet2012`` prepared from the manual tars (see `tfnas.data`).

The seed paper's recipe (000, §3.1): SGD with momentum 0.9, the learning rate warmed up
linearly then decayed with a cosine to 0, weight decay 1e-5 and dropout 0.2 applied to the
largest subnet only (`tfnas.schemes.SandwichScheme`). Not from the paper but chosen here:
global batch 256 with peak learning rate 0.1 (the linear scaling rule's 0.1 per 256
images), 5 warm-up epochs, 120 epochs; change them with --config.train.* on the command line.
"""

from tfnas import config_lib


def get_config(variant=None):
    """``variant``: None (the full run) or ``"tiny"`` (synthetic 224x224 data, two steps)."""
    config = config_lib.base_config("imagenet", space="imagenet", dataset="imagenet2012")
    config.supernet.dropout = 0.2
    config.train.batch_size = 256
    config.train.epochs = 120
    config.train.warmup_epochs = 5.0
    config.train.learning_rate = 0.1
    config.train.momentum = 0.9
    config.train.weight_decay = 1e-5
    config.train.log_every_steps = 100
    # Sample (and take the sandwich's smallest from) the space the 45,000 competition codes
    # use: docs/SEARCH_SPACE.md, "Sampling"; SCHEMES.md §0.1 finding 1.
    config.train.bounds = "competition"
    config.evaluate.batch_size = 250
    config.evaluate.recalibration.batch_size = 128
    config.evaluate.recalibration.num_batches = 16
    config.standalone.batch_size = 256
    config.standalone.eval_batch_size = 250
    config.standalone.epochs = 90
    config.standalone.warmup_epochs = 5.0
    config.standalone.weight_decay = 1e-5
    config.standalone.dropout = 0.2
    return config_lib.finish(config, variant)

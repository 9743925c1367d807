"""Tests of tfnas.data.config: validation of the `data` section."""

import pytest

from tfnas import data

from .helpers import all_images


def test_config_errors():
    with pytest.raises(ValueError, match="unknown data.dataset 'mnist': use one of cifar10, "
                                         "cifar100, fashion_mnist, imagenet2012, imagenette, "
                                         "synthetic"):
        data.default_data_config("mnist")
    with pytest.raises(ValueError, match=r"unknown field\(s\) data.augment.cutout"):
        data.dataset_info({"dataset": "synthetic", "augment": {"cutout": 8}})
    with pytest.raises(ValueError, match="data.mean has 2 values but synthetic images have 1 "
                                         "channel"):
        data.dataset_info({"dataset": "synthetic", "mean": (0.5, 0.5)})
    with pytest.raises(ValueError, match="data.augment.color_jitter_prob must be a number in"):
        data.dataset_info({"dataset": "synthetic", "augment": {"color_jitter_prob": 2}})


def test_plain_dict_config_takes_defaults():
    ds = data.build_dataset({"dataset": "synthetic", "synthetic": {"num_train": 40},
                             "holdout_size": 8}, "train", 4, training=False)
    assert len(all_images(ds)) == 32

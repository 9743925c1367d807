"""Tests of tfnas.data.splits: the holdout is fixed, disjoint from train, and checked."""

import pytest

from tfnas import data

from .helpers import fingerprints
from .helpers import synthetic


def test_holdout_disjoint_from_train_and_fixed():
    cfg = synthetic()
    train = fingerprints(data.build_dataset(cfg, "train", 10, training=False))
    holdout = fingerprints(data.build_dataset(cfg, "holdout", 10, training=False))
    everything = fingerprints(data.build_dataset(synthetic(holdout_size=0), "train", 10,
                                                 training=False))
    assert len(everything) == 96  # synthetic images are distinct
    assert len(train) == 80 and len(holdout) == 16
    assert not train & holdout and train | holdout == everything
    # Fixed: the pipeline seed and train_subset do not move the holdout.
    again = fingerprints(data.build_dataset(cfg, "holdout", 7, training=False, seed=5))
    assert again == holdout
    subset_cfg = synthetic(train_subset=30)
    subset = fingerprints(data.build_dataset(subset_cfg, "train", 10, training=False))
    assert len(subset) == 30 and subset < train
    assert fingerprints(data.build_dataset(subset_cfg, "holdout", 10, training=False)) == holdout
    # data.split_seed picks another holdout.
    other = fingerprints(data.build_dataset(synthetic(split_seed=1), "holdout", 10,
                                            training=False))
    assert other != holdout and len(other) == 16
    info = data.dataset_info(subset_cfg)
    assert (info["num_train"], info["num_holdout"], info["num_test"]) == (30, 16, 24)


def test_split_errors():
    with pytest.raises(ValueError, match="split must be one of train, holdout, test, got 'val'"):
        data.build_dataset(synthetic(), "val", 8, training=False)
    with pytest.raises(ValueError, match="the holdout split is empty: set data.holdout_size > 0"):
        data.build_dataset(synthetic(holdout_size=0), "holdout", 8, training=False)
    with pytest.raises(ValueError, match="data.holdout_size=96 leaves no training images"):
        data.dataset_info(synthetic(holdout_size=96))
    with pytest.raises(ValueError, match="data.train_subset=81 is more than the 80 training"):
        data.build_dataset(synthetic(train_subset=81), "train", 8, training=False)

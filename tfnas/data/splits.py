"""Which images of the official training split are ``train`` and which are ``holdout``.

One permutation of the training split by ``data.split_seed`` (never by a pipeline's seed):
its first ``holdout_size`` entries are the holdout, the next ``train_subset`` (0: all the
rest) are ``train``. So the holdout is the same for every stage and training seed, does not
depend on ``train_subset``, and never overlaps ``train``.
"""

from __future__ import annotations

import numpy as np

from tfnas.data.config import DataConfig


def split_positions(cfg: DataConfig, num_train_total: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into the official training split) of `train` and `holdout`, sorted.

    Args:
      cfg: the resolved config (``holdout_size``, ``train_subset``, ``split_seed``).
      num_train_total: images in the official training split.

    Returns:
      ``(train, holdout)`` int arrays.

    Raises:
      ValueError: the holdout leaves no training images, or ``train_subset`` is larger than
        what is left.
    """
    if cfg.holdout_size >= num_train_total:
        raise ValueError(f"data.holdout_size={cfg.holdout_size} leaves no training images: "
                         f"{cfg.dataset} has {num_train_total} in its training split")
    rest = num_train_total - cfg.holdout_size
    if cfg.train_subset > rest:
        raise ValueError(f"data.train_subset={cfg.train_subset} is more than the "
                         f"{rest} training images left after data.holdout_size="
                         f"{cfg.holdout_size}: lower one of them (0 = all)")
    perm = np.random.default_rng([cfg.split_seed, 0x484F]).permutation(num_train_total)
    holdout = np.sort(perm[:cfg.holdout_size])
    end = cfg.holdout_size + (cfg.train_subset or rest)
    train = np.sort(perm[cfg.holdout_size:end])
    return train, holdout


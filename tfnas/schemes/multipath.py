"""Several sampled subnets per step on the labels: Adapted Progressive Shrinking's step
(seed paper 001 §2.2, §3.2; SCHEMES.md §3.1 step 3, §7.3).

APS is this scheme plus a phase table (``train.phases``): per-phase sampled spaces
(``width_hi``/``depth_lo``), peak learning rates (the cosine restarts per phase) and a
momentum reset at each boundary. ``configs/fmnist_aps.py`` and ``configs/imagenet_aps.py``
hold the paper's APS v1, v2 and v3 tables.
"""

from __future__ import annotations

from tfnas.schemes.base import Member
from tfnas.schemes.base import Scheme


class MultiPathScheme(Scheme):
    """``num_paths`` subnets sampled from the step's space, each on the labels, gradients summed.

    No sandwich and no distillation: the 2nd-place supernet forwards 4 archs per step with
    plain cross-entropy and sums their gradients (SCHEMES.md §3.1 step 3, §3.8 "Multi-path
    sum"). Weight decay is added once per step, on the first path (Paddle's L2 acts once per
    update, not once per path: SCHEMES.md §7.3).

    Args:
      space, seed, bounds, phase_bounds, codes_file: see `Scheme`.
      num_paths: sampled subnets per step (>= 1; the paper: 4).
      dropout: dropout rate of every path.
    """

    scheme_name = "multipath"

    def __init__(self, space, seed=0, num_paths=4, dropout=0.0, bounds=None, **kwargs):
        super().__init__(space, seed, bounds, **kwargs)
        if not isinstance(num_paths, int) or num_paths < 1:
            raise ValueError(
                f"MultiPathScheme: num_paths={num_paths!r}; expected an int >= 1 (the paper: "
                "4). Set --config.train.num_paths."
            )
        self.num_paths = num_paths
        self.draws_per_step = num_paths
        self.dropout = float(dropout)

    def members(self, step):
        return [
            Member(f"path{k + 1}", self.sample(step, k), "labels", False, self.dropout, k == 0)
            for k in range(self.num_paths)
        ]

    def get_config(self):
        config = super().get_config()
        config.update(num_paths=self.num_paths, dropout=self.dropout)
        return config

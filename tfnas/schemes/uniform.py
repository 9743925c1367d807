"""Single-path one-shot with uniform sampling (SPOS, Guo et al. 2020, §3.2)."""

from __future__ import annotations

from tfnas.schemes.base import Member
from tfnas.schemes.base import Scheme


class UniformScheme(Scheme):
    """One uniformly sampled subnet per step, on the labels, with weight decay.

    The baseline against which the sandwich rule's ranking gain is measured.

    Args:
      space, seed, bounds: see `Scheme`.
      dropout: dropout rate of the member.
    """

    scheme_name = "uniform"

    def __init__(self, space, seed=0, dropout=0.0, bounds=None, **kwargs):
        super().__init__(space, seed, bounds, **kwargs)
        self.dropout = float(dropout)

    def members(self, step):
        return [Member("random", self.sample(step, 0), "labels", False, self.dropout, True)]

    def get_config(self):
        config = super().get_config()
        config.update(dropout=self.dropout)
        return config

"""The sandwich rule with in-place distillation (BigNAS; seed paper 000, Algorithm 1)."""

from __future__ import annotations

from tfnas import sampling
from tfnas.schemes.base import Member
from tfnas.schemes.base import Scheme


class SandwichScheme(Scheme):
    """The largest subnet on the labels, the smallest and k random ones distilled from it.

    Each step trains the largest subnet on the labels (with dropout and weight decay, the
    regularizers BigNAS and seed paper 000 §3.1 apply to the largest subnet only), and the
    smallest plus ``num_random`` uniformly sampled subnets on the largest's logits: the
    largest is the teacher and bounds the family from above, the smallest from below (seed
    paper 000, Algorithm 1). With ``bounds`` the smallest is the bounded space's smallest
    (SCHEMES.md §0.1 item 1: the competition never evaluates the all-7 subnet).

    Args:
      space, seed, bounds: see `Scheme`.
      num_random: random members per step (0..`tfnas.sampling.MAX_MEMBERS` - 1).
      dropout: dropout rate of the largest member.
    """

    scheme_name = "sandwich"

    def __init__(self, space, seed=0, num_random=2, dropout=0.0, bounds=None, **kwargs):
        super().__init__(space, seed, bounds, **kwargs)
        if not 0 <= num_random < sampling.MAX_MEMBERS:
            raise ValueError(
                f"num_random_subnets must be in 0..{sampling.MAX_MEMBERS - 1} (distinct "
                f"sampling seeds per step), received {num_random}. Set "
                "--config.train.num_random_subnets."
            )
        self.num_random = int(num_random)
        self.draws_per_step = self.num_random
        self.dropout = float(dropout)
        self._largest = sampling.constant_arch(self.space.largest())
        self._smallest = sampling.constant_arch(self.space.smallest(bounds))

    def members(self, step):
        members = [
            Member("largest", self._largest, "labels", True, self.dropout, True),
            Member("smallest", self._smallest, "teacher"),
        ]
        for k in range(self.num_random):
            members.append(Member(f"random{k + 1}", self.sample(step, k), "teacher"))
        return members

    def get_config(self):
        config = super().get_config()
        config.update(num_random=self.num_random, dropout=self.dropout)
        return config

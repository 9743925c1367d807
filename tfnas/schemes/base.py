"""Training schemes: which subnets one step trains, and on what targets.

A scheme is a small object plugged into the single `tfnas.trainer.SupernetTrainer.train_step`.
Its `members(step)` returns the subnets of a step, in order, each a `Member` saying which
arch (an int32 [52] tensor, sampled statelessly from (seed, step)), whether it learns from
the labels or is distilled from the step's teacher, and which regularizers apply. The
trainer runs them, accumulates their gradients and makes one optimizer update.

Adding a scheme is adding a class and a registry row; nothing in the trainer changes.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from tfnas import sampling
from tfnas import search_space as ss


@dataclasses.dataclass(frozen=True)
class Member:
    """One subnet trained in a step.

    Attributes:
        name: used for its loss in logs and TensorBoard (``loss_<name>``).
        arch: int32 [52] digits.
        target: ``"labels"`` (cross-entropy) or ``"teacher"`` (KL to the logits of the
            step's teacher, which the trainer stops the gradient of).
        is_teacher: its logits become the teacher of the members after it.
        dropout: dropout rate before the classifier.
        regularize: weight decay is added to its loss.
    """

    name: str
    arch: tf.Tensor
    target: str = "labels"
    is_teacher: bool = False
    dropout: float = 0.0
    regularize: bool = False


class Scheme:
    """Base class. Subclasses implement `members`.

    ``bounds`` (a `search_space.Bounds`, None for the whole space) is the space the scheme
    samples from; `sample` draws member ``k``'s arch of a step from it.
    """

    name = "base"

    def __init__(self, space: ss.SearchSpace, seed: int = 0, bounds: ss.Bounds | None = None):
        self.space = space
        self.seed = seed
        self.bounds = bounds

    def sample(self, step: tf.Tensor, member: int) -> tf.Tensor:
        """Member ``member``'s arch at ``step``: a pure function of (seed, step, member)."""
        seed = sampling.member_seed(self.seed, step, member)
        if self.bounds is None:
            # The unbounded draws are those tfnas always made (runs stay reproducible).
            return sampling.uniform_arch(seed, self.space)
        return sampling.bounded_arch(seed, self.space, *sampling.bounds_tensors(self.bounds))

    def members(self, step: tf.Tensor) -> list[Member]:
        raise NotImplementedError


class SandwichScheme(Scheme):
    """The sandwich rule with in-place distillation (BigNAS, Yu et al. 2020, §3.1).

    Each step trains the largest subnet on the labels (with dropout and weight decay, the
    regularizers BigNAS and seed paper 000 §3.1 apply to the largest subnet only), and the
    smallest plus ``num_random`` uniformly sampled subnets on the largest's logits: the
    largest is the teacher and bounds the family from above, the smallest from below
    (seed paper 000, Algorithm 1).
    """

    name = "sandwich"

    def __init__(self, space, seed=0, num_random=2, dropout=0.0, bounds=None):
        super().__init__(space, seed, bounds)
        if not 0 <= num_random < sampling.MAX_MEMBERS:
            raise ValueError(
                f"num_random_subnets must be in 0..{sampling.MAX_MEMBERS - 1} (distinct "
                f"sampling seeds per step), received {num_random}. Set "
                "--config.train.num_random_subnets."
            )
        self.num_random = num_random
        self.dropout = dropout
        self._largest = sampling.constant_arch(space.largest())
        # The smallest of the sampled space: with the competition's bounds, the narrowest
        # subnet that is ever evaluated (not the all-7 subnet outside it).
        self._smallest = sampling.constant_arch(space.smallest(bounds))

    def members(self, step):
        members = [
            Member("largest", self._largest, "labels", True, self.dropout, True),
            Member("smallest", self._smallest, "teacher"),
        ]
        for k in range(self.num_random):
            members.append(Member(f"random{k + 1}", self.sample(step, k), "teacher"))
        return members


class UniformScheme(Scheme):
    """Single-path one-shot with uniform sampling (SPOS, Guo et al. 2020, §3.2).

    Each step trains one uniformly sampled subnet on the labels: the baseline against
    which the sandwich rule's ranking gain is measured.
    """

    name = "uniform"

    def __init__(self, space, seed=0, dropout=0.0, bounds=None):
        super().__init__(space, seed, bounds)
        self.dropout = dropout

    def members(self, step):
        return [Member("random", self.sample(step, 0), "labels", False, self.dropout, True)]


SCHEMES = {cls.name: cls for cls in (SandwichScheme, UniformScheme)}


def build_scheme(config) -> Scheme:
    """The scheme ``config.train.scheme`` with its arguments from the config."""
    name = config.train.scheme
    if name not in SCHEMES:
        raise ValueError(
            f"Unknown scheme {name!r}; expected one of {', '.join(sorted(SCHEMES))}. Set "
            "--config.train.scheme."
        )
    space = ss.get_space(config.space)
    dropout = config.supernet.dropout
    bounds = ss.BOUNDS_PRESETS[config.train.bounds]
    bounds = None if bounds == ss.FULL_BOUNDS else bounds
    if name == "sandwich":
        return SandwichScheme(
            space, config.seed, config.train.num_random_subnets, dropout, bounds=bounds
        )
    return SCHEMES[name](space, config.seed, dropout, bounds=bounds)

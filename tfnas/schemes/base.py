"""What a scheme is: the members of a step, and the state a scheme carries between steps.

A scheme plugs into the one `tfnas.trainer.SupernetTrainer.train_step`. Each step the
trainer calls ``scheme.members(step)`` and runs the returned `Member`s in order; after the
last member it calls ``scheme.update(step, context)`` so the scheme can update its state
variables. A new weight-sharing method is a subclass of `Scheme` in its own file of
`tfnas.schemes` plus a registry row; the trainer does not change.

The member list is static per trace: its length, names, targets and groups are Python
values fixed for a scheme. Everything that varies with the step (the archs, loss weights,
simplex codes, rank priors, the phase) is a tensor computed from ``step``, so one traced
graph serves the whole run.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfnas import codes as codes_lib
from tfnas import sampling
from tfnas import schedules
from tfnas import search_space as ss

# Member targets: what a member's loss compares its logits with.
#
# - ``labels``: cross-entropy with the (smoothed) labels.
# - ``teacher``: KL(p_teacher || p_member) to the logits of the step's in-place teacher (the
#   last earlier member with ``is_teacher``), gradient stopped (BigNAS §3.1).
# - ``labels+teacher``: ``(1 - alpha) * labels + alpha * teacher`` with ``alpha`` the
#   member's ``teacher_alpha``.
# - ``external_teacher`` / ``labels+external_teacher``: the same with the logits of the
#   trainer's frozen ``teacher_model`` (SSE's pretrained teacher, SCHEMES.md §0.1 item 3).
# - ``rank_hinge``: RD-NAS's pairwise term as shipped (SCHEMES.md §4.2): with ``L_b`` this
#   member's cross-entropy and ``L_a`` the detached cross-entropy of the earlier member
#   ``pair``, ``relu(sign * (L_b - sg(L_a)))``; ``sign`` (+1: b should be the better one) is
#   the member's ``rank_sign``. Only this member gets a gradient.
# - ``rank_margin``: the paper's margin ranking loss with both losses live (seed paper 003 §3;
#   SCHEMES.md §4.2 "a faithful version"): the member runs ``arch`` (b) and ``pair_arch`` (a)
#   in one tape and its loss is ``relu(margin - sign * (L_a - L_b))``.
# - ``none``: forward only (no gradient); its loss and logits are kept for later members.
TARGETS = (
    "labels",
    "teacher",
    "labels+teacher",
    "external_teacher",
    "labels+external_teacher",
    "rank_hinge",
    "rank_margin",
    "none",
)
# The variable group every scheme has: the supernet's weights.
SUPERNET_GROUP = "supernet"


class Untracked:
    """Holds a value where Keras's attribute tracking does not look: a model a scheme or
    the trainer only refers to (the supernet, a frozen teacher) is not part of its weights
    or checkpoints."""

    def __init__(self, value):
        self.value = value


@dataclasses.dataclass(frozen=True)
class Member:
    """One subnet run in a step.

    Attributes:
      name: names its loss in logs and TensorBoard (``loss_<name>``), and in the step's
        context for later members.
      arch: int32 [52] digits.
      target: one of `TARGETS`.
      is_teacher: its detached logits become the in-place teacher of later members.
      dropout: dropout rate before the classifier.
      regularize: the L2 penalty of the weights this member routes to is added to its
        loss (`tfnas.supernet.Supernet.l2_penalty`).
      weight: the loss weight, a float or a scalar tensor (e.g. a function of the step, as
        RD-NAS's lambda(e) or CPT's 0.5/0.05); 0 leaves the member's gradient exactly 0.
      l2_weight: the weight of the member's L2 penalty (with ``regularize``): None (the
        default) scales it with ``weight``, so a member at weight 0 moves nothing; a number
        applies the penalty at that weight whatever ``weight`` is (CPT and SSE: the
        authors' L2 acts once per update at full strength while the sampled arch's loss
        weighs 0.5 or 0.8, SCHEMES.md §3.2).
      teacher_alpha: the teacher's share for the ``labels+...`` targets.
      batch_slice: ``(k, m)``: the member sees the k-th of m equal slices of the
        (per-replica) batch (K-shot's simplex step: m paths on b/m images each).
      mix: the K-shot simplex code: None (the simplex-net's code of ``arch``),
        ``"uniform"`` (1/K each), ``"detached"`` (the simplex-net's code, gradient
        stopped) or a float [K] tensor.
      trains: the variable groups this member's gradient goes to (`Scheme.variable_groups`);
        ``()`` makes it forward only, as ``target="none"`` does.
      pair: for ``rank_hinge``, the name of the earlier member whose detached loss it reads.
      pair_arch: for ``rank_margin``, the other arch (a) of the pair.
      rank_sign: for the rank targets, +1.0 when the prior says this member (b) should be
        the better one, -1.0 when ``pair``/``pair_arch`` (a) should be (a scalar tensor).
      margin: for ``rank_margin``, the margin (a float or scalar tensor).
      skip_at_zero_weight: when ``weight`` is 0 at a step, the member's forward and
        backward do not run (a ``tf.cond`` around its computation, never around an update:
        its gradient is then the exact 0 the weight would have made it); its loss and
        logits in the step's context read 0. For alternations, where half the members are
        at weight 0 on every step (K-shot, seed paper 004 Alg. 2: without the skip a step
        costs a supernet step *and* a simplex step). A member that reads a skippable one
        (its in-place teacher or its ``pair``) must be skippable too, so it never reads the
        zeros; a scheme's `Scheme.update` must not read a skipped member's context.
      sequential: True (the default): the member starts after the previous member's
        gradients exist, so one member's activations are alive at a time (the trainer's
        ``sequential``). False lets it run alongside the previous members: for members on
        slices of one batch (K-shot's simplex paths), whose activations together are one
        batch's, so overlapping them costs no memory peak and saves the per-path wait.
    """

    name: str
    arch: tf.Tensor
    target: str = "labels"
    is_teacher: bool = False
    dropout: float = 0.0
    regularize: bool = False
    weight: Any = 1.0
    l2_weight: Any = None
    teacher_alpha: Any = 0.5
    batch_slice: tuple[int, int] | None = None
    mix: Any = None
    trains: tuple[str, ...] = (SUPERNET_GROUP,)
    pair: str | None = None
    pair_arch: tf.Tensor | None = None
    rank_sign: Any = 1.0
    margin: Any = 0.0
    skip_at_zero_weight: bool = False
    sequential: bool = True

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(
                f"Member {self.name!r} has target {self.target!r}; expected one of "
                f"{', '.join(TARGETS)}."
            )
        if self.target == "rank_hinge" and not self.pair:
            raise ValueError(
                f"Member {self.name!r} has target 'rank_hinge' but no pair; name the earlier "
                "member whose loss it is ranked against (pair='a')."
            )
        if self.target == "rank_margin" and self.pair_arch is None:
            raise ValueError(
                f"Member {self.name!r} has target 'rank_margin' but no pair_arch; pass the "
                "other arch of the pair."
            )
        if self.batch_slice is not None:
            k, m = self.batch_slice
            if not (isinstance(k, int) and isinstance(m, int) and 0 <= k < m):
                raise ValueError(
                    f"Member {self.name!r} has batch_slice {self.batch_slice!r}; expected "
                    "(k, m) with integers 0 <= k < m (the k-th of m equal slices)."
                )
        if isinstance(self.mix, str) and self.mix not in ("uniform", "detached"):
            raise ValueError(
                f"Member {self.name!r} has mix {self.mix!r}; expected None, 'uniform', "
                "'detached' or a float [K] tensor."
            )

    @property
    def forward_only(self) -> bool:
        return self.target == "none" or not self.trains


class Scheme(keras.layers.Layer):
    """Base class of the training schemes. Subclasses implement `members`.

    A scheme is a Keras layer so that the state it carries between steps (a pool of archs,
    a ring of recent ones, a pointer) is made of tracked variables: the trainer holds the
    scheme, so those variables are saved in every checkpoint with the supernet and the
    optimizers, and restored on resume. Create them with `add_state` in ``build``; update
    them in `update` unconditionally (``tf.where``, never ``tf.cond``). Every replica runs
    the same stateless samplers, so the updates agree across replicas
    (``aggregation="only_first_replica"`` writes one value).

    Args:
      space: a `tfnas.search_space.SearchSpace` or its name.
      seed: the sampling seed; member k's arch at step t derives from (seed, t, k).
      bounds: the (bounded) space the scheme samples (`search_space.Bounds`; None: the
        whole space).
      phase_bounds: ``(boundaries, rows)``: the sampled space of each training phase
        (progressive shrinking, seed paper 001 §2.2): phase p (`tfnas.schedules.phase_of`)
        samples the bounded space ``rows[p]`` (a `search_space.Bounds` each). None: ``bounds``
        throughout. The phase is a tensor function of the step: nothing retraces.
      codes_file: "" (the default: sample uniformly within the bounds) or a file of codes
        (`tfnas.codes.read_codes`) to draw the sampled archs from, without replacement within
        a pass (`tfnas.sampling.list_arch`). Drawing from the codes that will be scored is
        transductive (SCHEMES.md §0.1 item 2, §3.8): an explicit option, recorded in the run's
        config and the export metadata.
    """

    # The registry name (`tfnas.schemes.SCHEMES`); ``name`` is the Keras layer name.
    scheme_name = "base"
    # Members 0 .. draws_per_step - 1 are the step's sampled archs; from a code file they
    # walk the file's passes in order (draw index step * draws_per_step + member).
    draws_per_step = 1

    def __init__(
        self,
        space,
        seed: int = 0,
        bounds: ss.Bounds | None = None,
        phase_bounds=None,
        codes_file: str = "",
        **kwargs,
    ):
        kwargs.setdefault("name", f"scheme_{type(self).__name__.lower()}")
        kwargs.pop("trainable", None)  # always False (in get_config, so from_config has it)
        super().__init__(trainable=False, **kwargs)
        self.space = ss.get_space(space) if isinstance(space, str) else space
        self.seed = int(seed)
        self.bounds = bounds
        self.phase_bounds = None
        if phase_bounds is not None:
            boundaries, rows = phase_bounds
            boundaries = schedules.check_boundaries(boundaries, "phase_bounds boundaries")
            rows = tuple(r if isinstance(r, ss.Bounds) else ss.Bounds(*r) for r in rows)
            if len(rows) != len(boundaries) + 1:
                raise ValueError(
                    f"phase_bounds has {len(rows)} bounds for {len(boundaries) + 1} phases "
                    f"(boundaries {boundaries}); give one per phase."
                )
            self.phase_bounds = (boundaries, rows)
        self.codes_file = str(codes_file or "")
        self._codes = Untracked(None)
        if self.codes_file and self.phase_bounds is not None:
            raise ValueError(
                f"A scheme samples either from codes_file={self.codes_file!r} or from phase "
                "bounds, not both; unset --config.train.codes_file or the per-phase bounds "
                "(train.phases.width_hi/depth_lo)."
            )

    # -- what a step runs ----------------------------------------------------------------

    def bounds_at(self, step) -> tuple[tf.Tensor, tf.Tensor]:
        """(digit_hi int32 [5], depth_lo int32 [4]): the sampled space at ``step``."""
        if self.phase_bounds is None:
            return sampling.bounds_tensors(self.bounds or ss.FULL_BOUNDS)
        boundaries, rows = self.phase_bounds
        phase = schedules.phase_of(step, boundaries)
        hi = tf.constant([r.digit_hi for r in rows], tf.int32)
        lo = tf.constant([r.depth_lo for r in rows], tf.int32)
        return tf.gather(hi, phase), tf.gather(lo, phase)

    def code_table(self) -> np.ndarray | None:
        """int32 [N, 52]: the codes of ``codes_file`` (read once), or None without one."""
        if not self.codes_file:
            return None
        if self._codes.value is None:
            records = codes_lib.read_codes(self.codes_file)
            if not records:
                raise ValueError(
                    f"codes_file {self.codes_file!r} holds no codes; give a file of codes of "
                    f"the {self.space.name!r} space or unset --config.train.codes_file."
                )
            archs = ss.parse_many(self.space, [r.code for r in records])
            self._codes.value = np.stack([a.digits() for a in archs]).astype(np.int32)
        return self._codes.value

    def sample(self, step: tf.Tensor, member: int) -> tf.Tensor:
        """Member ``member``'s arch at ``step``: a pure function of (seed, step, member)."""
        seed = sampling.member_seed(self.seed, step, member)
        table = self.code_table()
        if table is not None:
            if member < self.draws_per_step:
                index = tf.cast(step, tf.int64) * self.draws_per_step + member
                return sampling.list_arch(self.seed, index, table)
            # Other draws (e.g. a constraint pool's) pick from the file with replacement.
            return sampling.choice_arch(seed, table)
        if self.bounds is None and self.phase_bounds is None:
            # The unbounded draws are those tfnas always made (runs stay reproducible).
            return sampling.uniform_arch(seed, self.space)
        return sampling.bounded_arch(seed, self.space, *self.bounds_at(step))

    def members(self, step: tf.Tensor) -> list[Member]:
        """The members of the step ``step`` (int64 scalar tensor), in the order they run."""
        raise NotImplementedError

    def variable_groups(self, supernet) -> dict[str, list]:
        """The trainable variables split into named groups, each with its own optimizer.

        The default is one group, `SUPERNET_GROUP`, with every trainable variable (the
        simplex-net too, when there is one). A scheme that trains the simplex-net apart
        (K-shot) returns two. The groups must cover every trainable variable exactly once.
        """
        return {SUPERNET_GROUP: list(supernet.trainable_variables)}

    def lr_multipliers(self, supernet) -> list | None:
        """Per-copy learning-rate multipliers, or None.

        A list of 6 sequences, one per weight location (stem, stages 1-4, classifier), each
        with one float per weight copy of that location: the gradient of copy j is scaled
        by it before the update. With SGD (momentum, Nesterov) and the L2 term in the loss
        this equals per-parameter-group learning rates (few-shot's per-group LRs, seed paper
        000 Table 2; SCHEMES.md §7.1 C).
        """
        return None

    def group_losses(self, step: tf.Tensor) -> dict:
        """Loss terms on a variable group that belong to no member, e.g. K-shot's
        contrastive regularizer on the simplex codes (seed paper 004 Eq. 15-16).

        ``{group: zero-argument function returning a scalar loss}``; the trainer runs each
        in its own tape after the members and adds its gradient to the group's (weight it
        by the step inside the function; 0 leaves the group's gradient as it was).
        """
        return {}

    # -- state ---------------------------------------------------------------------------

    def add_state(self, name: str, shape, dtype="int32", initializer="zeros"):
        """A non-trainable state variable, saved in checkpoints, one value on all replicas."""
        return self.add_weight(
            name=name,
            shape=shape,
            dtype=dtype,
            initializer=initializer,
            trainable=False,
            aggregation="only_first_replica",
        )

    def logs(self) -> dict:
        """Scalars of the scheme's state to log with the step's losses (TensorBoard), e.g. a
        constraint pool's diversity: ``{name: scalar tensor}``, read after `update`."""
        return {}

    def update(self, step: tf.Tensor, context: dict) -> None:
        """Updates the scheme's state after the step's members (default: nothing).

        ``context`` maps each member's name to a dict with its detached ``loss`` (the
        unweighted target loss) and ``logits``, and ``arch``.
        """
        # A statement, not only the docstring: AutoGraph cannot convert an empty body
        # and warns on every run.
        del step, context

    def build(self, input_shape=None):
        self.built = True

    def get_config(self):
        config = super().get_config()
        config.update(
            space=self.space.name,
            seed=self.seed,
            bounds=None
            if self.bounds is None
            else [list(self.bounds.digit_hi), list(self.bounds.depth_lo)],
            phase_bounds=None
            if self.phase_bounds is None
            else [
                list(self.phase_bounds[0]),
                [[list(r.digit_hi), list(r.depth_lo)] for r in self.phase_bounds[1]],
            ],
            codes_file=self.codes_file,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("bounds") is not None:
            hi, lo = config["bounds"]
            config["bounds"] = ss.Bounds(tuple(hi), tuple(lo))
        if config.get("phase_bounds") is not None:
            boundaries, rows = config["phase_bounds"]
            config["phase_bounds"] = (
                tuple(boundaries),
                tuple(ss.Bounds(tuple(hi), tuple(lo)) for hi, lo in rows),
            )
        return cls(**config)

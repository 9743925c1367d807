"""The one `train_step` every weight-sharing scheme runs through.

Usage::

    trainer = SupernetTrainer(supernet, scheme, weight_decay=1e-5, label_smoothing=0.1)
    trainer.compile(optimizer=optimizers.make_optimizer(config.train, steps, lazy=True))
    trainer.fit(train_ds, epochs=...)

A step asks the scheme for its members (`tfnas.schemes.Member`: subnets sampled statelessly
from the optimizer's step counter, so every replica and a resumed run trains the same
archs) and runs them in order, each in its own gradient tape, so that the activations of
one member at a time are alive. A member's loss is its target (labels, the in-place or an
external teacher, a ranking term against another member, or none: forward only) times its
weight (a tensor that may depend on the step), plus the L2 penalty of the weight copies it
routes to when it is regularized. Its gradient goes to the variable groups it trains. After
the last member the trainer scales each group's summed gradient by the scheme's per-copy
learning-rate multipliers and applies each group's optimizer once -- unconditionally: a
group (or a weight copy) no member touched gets an all-zero gradient, which `LazySGD`
skips, so nothing needs a ``tf.cond`` around an update (which fails under MirroredStrategy,
TF_NOTES.md). Then the scheme updates its state variables (`tfnas.schemes.Scheme.update`).

Loss scaling for replicas is `tfnas.distribute.scale_loss`, for float16 the optimizer's
``scale_loss`` (a `keras.optimizers.LossScaleOptimizer`); nothing here knows how many
replicas there are.
"""

from __future__ import annotations

import dataclasses
import functools
import re

import keras
import numpy as np
import tensorflow as tf

from tfnas import config_checks
from tfnas import distribute
from tfnas import grappler
from tfnas import optimizers as optimizers_lib
from tfnas import precision
from tfnas import sampling
from tfnas import schedules
from tfnas import schemes
from tfnas import search_space as ss
from tfnas.schemes import SUPERNET_GROUP
from tfnas.schemes import Member
from tfnas.schemes import Scheme
from tfnas.schemes.base import Untracked

# Kept importable from here for existing callers.
warmup_cosine = optimizers_lib.warmup_cosine
make_optimizer = optimizers_lib.make_optimizer

_EXTERNAL = ("external_teacher", "labels+external_teacher")
_INPLACE = ("teacher", "labels+teacher")


def l2_penalty(variables) -> tf.Tensor:
    """0.5 * sum of squares of the kernels (conv and dense; not BN, bias or simplex-net).

    With SGD this equals torch/Paddle ``weight_decay`` (gradient ``+= wd * w``). Whole
    variables: every copy. The trainer penalizes the routed copies only
    (`tfnas.supernet.Supernet.l2_penalty`); for one copy the two are equal.
    """
    kernels = [v for v in variables if v.path.endswith("kernel") and "simplex_net" not in v.path]
    return 0.5 * tf.add_n([tf.reduce_sum(tf.square(v.value)) for v in kernels])


def location_of(path: str) -> int | None:
    """The weight location (0 stem, 1-4 stages, 5 classifier) of a supernet variable path,
    or None for variables without a copy axis (the simplex-net)."""
    if "simplex_net" in path:
        return None
    if "/stem_" in path or path.startswith("stem_"):
        return 0
    if "/classifier/" in path or path.startswith("classifier/"):
        return 5
    match = re.search(r"(?:^|/)stage([1-4])/", path)
    return int(match.group(1)) if match else None


# The targets one program computes as (1 - alpha) * cross-entropy + alpha * KL(teacher),
# alpha a tensor: 0 for labels, 1 for a teacher alone. 1 * x + 0 * y is x exactly (y finite),
# so each target's loss and gradient are what its own formula gives.
_SUPERVISED = ("labels", "teacher", "labels+teacher", "external_teacher",
               "labels+external_teacher")


@dataclasses.dataclass(frozen=True)
class MemberKind:
    """What a member's traced program depends on as Python values. Members of one kind
    differ only in tensors (arch, batch, loss weight, teacher logits and share, dropout
    rate, whether L2 applies, simplex code, rank prior), so they share one trace
    (`SupernetTrainer._member_program`): all four sandwich members are one kind."""

    family: str  # "supervised", "rank_hinge", "rank_margin" or "none"
    trains: tuple[str, ...]
    forward_only: bool

    @classmethod
    def of(cls, member: Member) -> MemberKind:
        family = "supervised" if member.target in _SUPERVISED else member.target
        return cls(family, tuple(member.trains), member.forward_only)


def dropout_seed(seed: int, step, member: int, replica: int) -> tf.Tensor:
    """The stateless dropout seed of a member's step on a replica: int64 [2].

    Stateless, so a resumed run draws the masks it would have drawn; per replica, so the
    replicas' halves of the global batch get their own masks (as torch DDP's per-rank
    generators give). A stateful op would not do: each replica's member program is its own
    graph, and graphs number their op seeds from the same global seed, so every replica
    would draw the same mask.
    """
    mixed = ((int(seed) * 64 + int(member)) << 16) + int(replica)
    return tf.stack([tf.cast(step, tf.int64), tf.constant(mixed, tf.int64)])


def _add(total, part):
    """Gradient lists summed in a fixed order (None: nothing yet)."""
    return part if total is None else [a + b for a, b in zip(total, part)]


class SupernetTrainer(keras.Model):
    """Trains a `tfnas.supernet.Supernet` with a `tfnas.schemes.Scheme`.

    Args:
      supernet: the supernet (built).
      scheme: decides the members of each step, the variable groups and the per-copy
        learning-rate multipliers; its state variables are saved with the trainer.
      weight_decay: L2 coefficient, added to the loss of members with ``regularize``.
      label_smoothing: for the members trained on labels.
      teacher_model: a frozen model (images -> logits) for the ``external_teacher``
        targets; it is not trained and not saved with the trainer's checkpoints (its
        file is the reference).
      sequential: run the members strictly one after another (each starts when the
        previous one's gradients exist), so one member's activations are alive at a time.
        False lets the runtime overlap members: faster where memory is plentiful, at a
        peak that grows with the number of members (``benchmarks/train_step.py
        --bench=memory``).
      share_traces: members of one `MemberKind` call one traced program (the default):
        the step traces and optimizes once per kind instead of once per member, which is
        most of a run's start-up time and graph memory (``benchmarks/startup.py``). False
        inlines every member, as a plain Keras ``train_step`` would.

    `compile` takes the optimizer of the ``supernet`` group and, in ``group_optimizers``,
    one per further group of the scheme.
    """

    # The `tf.function` attributes of a shared member program (`_member_program`).
    # ``benchmarks/member_programs.py`` drops ``_noinline`` to time inlined calls.
    program_attributes = {"_noinline": True}

    def __init__(
        self,
        supernet,
        scheme: Scheme,
        weight_decay=0.0,
        label_smoothing=0.0,
        teacher_model=None,
        sequential=True,
        share_traces=True,
        **kw,
    ):
        super().__init__(**kw)
        self.supernet = supernet
        self.scheme = scheme
        self.weight_decay = float(weight_decay)
        self.label_smoothing = float(label_smoothing)
        self.sequential = bool(sequential)
        self.share_traces = bool(share_traces)
        # MemberKind, replica -> its traced program (held untracked: not a weight).
        self._program_cache = Untracked({})
        if teacher_model is not None:
            teacher_model.trainable = False
        # Held where Keras does not track it: a frozen reference model is not part of the
        # trainer's weights, so checkpoints do not store it (its own file is the reference)
        # and a checkpoint loads whether or not the run has a teacher.
        self._teacher = Untracked(teacher_model)
        if not supernet.built:
            supernet.build()
        members = scheme.members(tf.constant(0, tf.int64))
        self._check_members(members)
        self._member_names = [m.name for m in members]
        self.loss_trackers = {
            name: keras.metrics.Mean(name=f"loss_{name}") for name in self._member_names
        }
        self.total_tracker = keras.metrics.Mean(name="loss")
        self._groups = self._check_groups(scheme.variable_groups(supernet))
        self._multipliers = self._multiplier_tables(scheme.lr_multipliers(supernet))
        self.group_optimizers = {}
        self.build()

    # -- set-up --------------------------------------------------------------------------

    def build(self, input_shape=None):
        if not self.supernet.built:
            self.supernet.build()
        if not self.scheme.built:
            self.scheme.build()
        self.built = True

    @property
    def teacher_model(self):
        return self._teacher.value

    def _check_members(self, members: list[Member]) -> None:
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ValueError(f"The scheme's members need distinct names, received {names}.")
        seen, teacher = {}, None
        for m in members:
            if m.target in _INPLACE and teacher is None:
                raise ValueError(
                    f"Member {m.name!r} is distilled from the teacher, but no earlier member "
                    "of the scheme has is_teacher=True. Put the teacher first."
                )
            if m.target == "rank_hinge" and m.pair not in seen:
                raise ValueError(
                    f"Member {m.name!r} is ranked against {m.pair!r}, which is not an earlier "
                    f"member (earlier: {sorted(seen)}). Put the pair's first member before it."
                )
            # The member whose outputs this one reads: its in-place teacher or its rank pair.
            read = (teacher if m.target in _INPLACE
                    else seen[m.pair] if m.target == "rank_hinge" else None)
            if read is not None and read.skip_at_zero_weight and not m.skip_at_zero_weight:
                raise ValueError(
                    f"Member {m.name!r} reads member {read.name!r}, which has "
                    "skip_at_zero_weight=True, but is not skippable itself: at a step where "
                    f"{read.name!r} weighs 0 it would read zeros. Set skip_at_zero_weight=True "
                    f"on {m.name!r} too (with the same weight), or on neither."
                )
            if m.target in _EXTERNAL and self.teacher_model is None:
                raise ValueError(
                    f"Member {m.name!r} has target {m.target!r}, but the trainer has no "
                    "teacher_model; pass SupernetTrainer(..., teacher_model=model)."
                )
            seen[m.name] = m
            teacher = m if m.is_teacher else teacher

    def _check_groups(self, groups: dict) -> dict:
        if SUPERNET_GROUP not in groups:
            raise ValueError(
                f"A scheme's variable groups must include {SUPERNET_GROUP!r} (the supernet's "
                f"weights), received {sorted(groups)}."
            )
        ids = [id(v) for vs in groups.values() for v in vs]
        wanted = {id(v) for v in self.supernet.trainable_variables}
        if len(ids) != len(set(ids)) or set(ids) != wanted:
            raise ValueError(
                "A scheme's variable groups must cover every trainable variable of the "
                f"supernet exactly once; received {len(ids)} variables ({len(set(ids))} "
                f"distinct) for {len(wanted)}."
            )
        for m in self.scheme.members(tf.constant(0, tf.int64)):
            unknown = [g for g in m.trains if g not in groups]
            if unknown:
                raise ValueError(
                    f"Member {m.name!r} trains the groups {unknown}, which the scheme does not "
                    f"have (groups: {sorted(groups)})."
                )
        return {name: list(vs) for name, vs in groups.items()}

    def _multiplier_tables(self, multipliers) -> dict[int, tf.Tensor]:
        """{id(variable): [copies, 1, ...] constant} for the variables whose copies scale."""
        if multipliers is None:
            return {}
        if len(multipliers) != 6:
            raise ValueError(
                "lr_multipliers must list 6 locations (stem, stages 1-4, classifier), "
                f"received {len(multipliers)}."
            )
        tables = {}
        for v in self.supernet.trainable_variables:
            loc = location_of(v.path)
            if loc is None:
                continue
            values = np.asarray(multipliers[loc], np.float64)
            if values.shape != (v.shape[0],):
                raise ValueError(
                    f"lr_multipliers of location {loc} has {values.size} values, but "
                    f"{v.path} has {v.shape[0]} weight copies; give one per copy."
                )
            if np.all(values == 1.0):
                continue
            shape = [v.shape[0]] + [1] * (len(v.shape) - 1)
            tables[id(v)] = tf.constant(values.reshape(shape), v.dtype)
        return tables

    def compile(self, optimizer="sgd", group_optimizers=None, **kwargs):
        """Keras's compile; ``optimizer`` trains the ``supernet`` group and
        ``group_optimizers`` ({name: optimizer}) the scheme's other groups."""
        super().compile(optimizer=optimizer, **kwargs)
        group_optimizers = dict(group_optimizers or {})
        missing = sorted(set(self._groups) - {SUPERNET_GROUP} - set(group_optimizers))
        extra = sorted(set(group_optimizers) - set(self._groups))
        if missing or extra:
            raise ValueError(
                f"compile needs one optimizer per variable group other than "
                f"{SUPERNET_GROUP!r}: missing {missing}, unknown {extra} (the scheme's groups: "
                f"{sorted(self._groups)}). Pass group_optimizers={{name: optimizer}}."
            )
        if group_optimizers and isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            raise ValueError(
                "mixed_float16 loss scaling supports one optimizer; this scheme has the "
                f"groups {sorted(self._groups)}. Use --config.train.precision=mixed_bfloat16 "
                "or float32."
            )
        # Attributes (not a dict) so that Keras tracks them: checkpoints save their slots.
        self.group_optimizers = group_optimizers
        for name, opt in group_optimizers.items():
            setattr(self, f"optimizer_{name}", opt)
        for name, opt in self.optimizers_by_group().items():
            inner = getattr(opt, "inner_optimizer", opt)
            if isinstance(inner, optimizers_lib.LazySGD):
                inner.mark_copy_axis(
                    [v for v in self._groups[name] if location_of(v.path) is not None]
                )
        # Every optimizer's slots now, not in the first traced step. Keras builds only
        # `self.optimizer` before tracing; a group optimizer built by its first `apply`
        # creates variables inside the train function, so TF wraps that function in
        # `fn_with_cond` (a tf.cond on "variables initialized"), and under MirroredStrategy
        # the gradient all-reduce's call-time captures (collective instance keys) land in
        # its branches unfed: "You must feed a value for placeholder tensor
        # '.../cond/else/.../Placeholder'" (K-shot's simplex group). Built here, the main
        # optimizer also holds its group's slots with and without a strategy, as after a
        # restore (`build_optimizers`).
        with self.distribute_strategy.scope():
            self.build_optimizers()

    def optimizers_by_group(self) -> dict:
        """{group: optimizer}: the ``supernet`` group's (``optimizer``) and the others'."""
        return {SUPERNET_GROUP: self.optimizer, **self.group_optimizers}

    def build_optimizers(self) -> None:
        """Creates every optimizer's slots (before a restore, inside the strategy scope)."""
        for name, opt in self.optimizers_by_group().items():
            if not opt.built:
                opt.build(self._groups[name])

    @property
    def metrics(self):
        return [self.total_tracker, *self.loss_trackers.values()]

    def call(self, images, arch, training=False):
        return self.supernet(images, arch=arch, training=training)

    # -- one member ----------------------------------------------------------------------

    def _cross_entropy(self, labels, logits):
        num_classes = tf.shape(logits)[-1]
        onehot = tf.one_hot(labels, num_classes, dtype=logits.dtype)
        if self.label_smoothing:
            k = tf.cast(num_classes, logits.dtype)
            onehot = onehot * (1.0 - self.label_smoothing) + self.label_smoothing / k
        return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(onehot, logits))

    @staticmethod
    def _distillation(teacher, logits):
        # KL(p_teacher || p_student) (BigNAS in-place distillation, seed paper 000 §2.2).
        log_p_teacher = tf.nn.log_softmax(tf.cast(teacher, logits.dtype))
        return tf.reduce_mean(
            tf.reduce_sum(
                tf.exp(log_p_teacher) * (log_p_teacher - tf.nn.log_softmax(logits)), axis=-1
            )
        )

    def _mix(self, member: Member):
        if member.mix is None or self.supernet.num_kernels == 1:
            return None
        if isinstance(member.mix, str):
            if member.mix == "uniform":
                k = self.supernet.num_kernels
                return tf.fill([k], tf.cast(1.0 / k, self.supernet.compute_dtype))
            return tf.stop_gradient(self.supernet.mix(member.arch))
        return member.mix

    def _forward(self, arch, images, inputs):
        return self.supernet(
            images, arch=arch, training=True, dropout=inputs["dropout"], mix=inputs.get("mix"),
            dropout_seed=inputs["dropout_seed"],
        )

    def _member_inputs(self, member: Member, images, step_state) -> dict:
        """The tensors a member's program reads besides its arch and batch: everything
        that varies between the members of one `MemberKind`."""
        dtype = self.supernet.dtype
        inputs = {
            "weight": tf.cast(member.weight, dtype),
            "dropout": tf.constant(float(member.dropout), self.supernet.compute_dtype),
        }
        # The L2 coefficient carries the member's weight unless the member sets its own
        # (Member.l2_weight), so the penalty can be added after the loss is weighted.
        l2_weight = member.weight if member.l2_weight is None else member.l2_weight
        inputs["l2"] = (tf.cast(self.weight_decay if member.regularize else 0.0, dtype)
                        * tf.cast(l2_weight, dtype))
        mix = self._mix(member)
        if mix is not None:
            inputs["mix"] = mix
        target = member.target
        if target in _SUPERVISED:
            if target in _INPLACE:
                teacher = step_state["teacher"]
            elif target in _EXTERNAL:
                teacher = self._external_logits(images, member.batch_slice, step_state)
            else:  # labels: the teacher's share is 0, any finite logits do
                teacher = tf.zeros([tf.shape(images)[0], self.supernet.space.num_classes], dtype)
            alpha = {"labels": 0.0, "teacher": 1.0, "external_teacher": 1.0}.get(
                target, member.teacher_alpha
            )
            inputs["teacher"] = tf.cast(teacher, dtype)
            inputs["alpha"] = tf.cast(alpha, dtype)
        if target in ("rank_hinge", "rank_margin"):
            inputs["sign"] = tf.cast(member.rank_sign, dtype)
        if target == "rank_hinge":
            inputs["pair_loss"] = tf.cast(step_state["context"][member.pair]["loss"], dtype)
        if target == "rank_margin":
            inputs["pair_arch"] = member.pair_arch
            inputs["margin"] = tf.cast(member.margin, dtype)
        return inputs

    def _target_loss(self, kind: MemberKind, labels, logits, images, inputs):
        """(the member's loss to minimize, before its weight; its loss for the context)."""
        if kind.family in ("rank_hinge", "rank_margin"):
            loss_b = self._cross_entropy(labels, logits)
            sign = inputs["sign"]
            if kind.family == "rank_hinge":
                # As shipped (SCHEMES.md §4.2): margin 0, a's loss detached, so only b moves
                # -- and its loss is pushed *up* when the prior says a is the better one.
                return tf.nn.relu(sign * (loss_b - inputs["pair_loss"])), loss_b
            logits_a = self._forward(inputs["pair_arch"], images, inputs)
            loss_a = self._cross_entropy(labels, logits_a)
            return tf.nn.relu(inputs["margin"] - sign * (loss_a - loss_b)), loss_b
        ce = self._cross_entropy(labels, logits)
        if kind.family == "none":
            return ce, ce
        alpha = inputs["alpha"]
        kl = self._distillation(inputs["teacher"], logits)
        loss = (1.0 - alpha) * ce + alpha * kl
        return loss, loss

    def _run_member(self, kind: MemberKind, arch, images, labels, inputs):
        """One member: (its gradients for the variables of ``kind.trains``, in group
        order; its weighted loss; its loss for the step's context; its logits)."""
        if kind.forward_only:
            logits = self._forward(arch, images, inputs)
            _, context_loss = self._target_loss(kind, labels, logits, images, inputs)
            return [], tf.zeros([], logits.dtype), context_loss, logits
        variables = self._trained_variables(kind)
        with tf.GradientTape() as tape:
            logits = self._forward(arch, images, inputs)
            loss, context_loss = self._target_loss(kind, labels, logits, images, inputs)
            loss = loss * inputs["weight"]
            if self.weight_decay:
                # Only the weight copies this member routes to (SCHEMES.md §7.1 H): an
                # unrouted copy keeps an all-zero gradient, which LazySGD skips. The
                # coefficient is 0 for members without ``regularize`` and carries the
                # member's weight by default: at weight 0 (a group's off-step of an
                # alternation) the member's gradient is exactly 0, L2 included.
                loss += inputs["l2"] * tf.cast(self.supernet.l2_penalty(arch), loss.dtype)
            scaled = self.optimizer.scale_loss(distribute.scale_loss(loss))
        grads = [
            tf.zeros(v.shape, v.dtype) if d is None else tf.convert_to_tensor(d)
            for d, v in zip(tape.gradient(scaled, variables), variables)
        ]
        return grads, loss, context_loss, logits

    def _member_program(self, member: Member):
        """`_run_member` for ``member``'s kind, traced once and called by every member of
        that kind (the sandwich's two random members and its smallest share one).

        Tracing a member and grappler's optimization of it dominate the start-up of a
        run (``benchmarks/startup.py``): with one inlined copy per member, both grew with
        the member count. The program is marked ``_noinline``, so the step's graph calls
        one optimized function instead of holding a copy per member, which also cuts the
        memory that building and optimizing the graph takes (`program_attributes`). One
        program per replica: each captures its replica's component of the mirrored
        variables.
        """
        kind = MemberKind.of(member)
        key = (kind, distribute.replica_key())
        programs = self._program_cache.value
        if key not in programs:
            programs[key] = tf.function(
                functools.partial(self._run_member, kind),
                autograph=False,
                experimental_attributes=dict(self.program_attributes),
            )
        return programs[key]

    def _trained_variables(self, kind: MemberKind) -> list:
        """The variables of ``kind.trains``, in group order: a member's gradient list."""
        return [v for g in kind.trains for v in self._groups[g]]

    def _gated(self, member: Member, run, images, weight):
        """``run()``, or for a `Member.skip_at_zero_weight` member at weight 0 what it
        would have given without running: zero gradients (exactly what the weight makes
        them), a zero loss, context loss and logits.

        The ``tf.cond`` holds the member's computation only, never an optimizer update or a
        mirrored-variable assignment (which fail inside it under MirroredStrategy,
        TF_NOTES.md): its BN statistics are per-replica (`ElasticBatchNorm`), and the
        gradients leave the cond before the groups' one update. Every replica takes the
        same branch: the weight derives from the step.
        """
        static = tf.get_static_value(weight)
        if not member.skip_at_zero_weight or static is not None and static != 0:
            return run()
        kind = MemberKind.of(member)
        dtype = self.supernet.dtype

        def skipped():
            variables = [] if kind.forward_only else self._trained_variables(kind)
            zero = tf.zeros([], dtype)
            logits = tf.zeros([tf.shape(images)[0], self.supernet.space.num_classes], dtype)
            return [tf.zeros(v.shape, v.dtype) for v in variables], zero, zero, logits

        if static is not None:  # weight 0 at every step: nothing to run
            return skipped()
        return tf.cond(tf.not_equal(weight, 0), run, skipped)

    def _external_logits(self, images, batch_slice, step_state):
        cache = step_state["external"]
        if batch_slice not in cache:
            cache[batch_slice] = tf.stop_gradient(self.teacher_model(images, training=False))
        return cache[batch_slice]

    @staticmethod
    def _slice(batch_slice, *tensors):
        if batch_slice is None:
            return tensors
        k, m = batch_slice
        size = tf.shape(tensors[0])[0] // m
        return tuple(t[k * size : (k + 1) * size] for t in tensors)

    # -- the step ------------------------------------------------------------------------

    # Not converted by AutoGraph: the step has no Python control flow on tensors (a scheme
    # computes everything that varies as tensors, with tf.where), and converting it and
    # every function it calls took seconds of each run's start-up (benchmarks/startup.py).
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        # (images, labels), as fit yields it, or with a sample weight, as train_on_batch
        # passes it (weights are not used: every member's loss is a plain mean).
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        step = self.optimizer.iterations
        grads = {name: None for name in self._groups}
        step_state = {"teacher": None, "context": {}, "external": {}}
        total = 0.0
        previous = []
        for index, member in enumerate(self.scheme.members(step)):
            # A member starts after the previous one's gradients exist. Without the edge, the
            # graph lets every member's forward pass run first (none depends on another's
            # gradient), so all their activations are alive at once: the memory peak.
            wait = self.sequential and member.sequential
            with tf.control_dependencies(previous if wait else []):
                x, y = (tf.identity(t) for t in self._slice(member.batch_slice, images, labels))
            inputs = self._member_inputs(member, x, step_state)
            inputs["dropout_seed"] = dropout_seed(
                self.scheme.seed, step, index, distribute.replica_key() or 0
            )
            if self.share_traces:
                run = self._member_program(member)
            else:
                run = functools.partial(self._run_member, MemberKind.of(member))
            member_grads, loss, context_loss, logits = self._gated(
                member, functools.partial(run, member.arch, x, y, inputs), x, inputs["weight"]
            )
            if not member.forward_only:
                start = 0
                for g in member.trains:
                    n = len(self._groups[g])
                    grads[g] = _add(grads[g], member_grads[start : start + n])
                    start += n
                previous = [t for g in member.trains for t in grads[g]]
            else:
                previous = [logits]
            if member.is_teacher:
                step_state["teacher"] = tf.stop_gradient(logits)
            step_state["context"][member.name] = dict(
                loss=tf.stop_gradient(context_loss),
                logits=tf.stop_gradient(logits),
                arch=member.arch,
            )
            self.loss_trackers[member.name].update_state(loss)
            total += loss
        for name, loss_fn in self.scheme.group_losses(step).items():
            variables = self._groups[name]
            with tf.control_dependencies(previous if self.sequential else []):
                with tf.GradientTape() as tape:
                    loss = loss_fn()
                    scaled = self.optimizer.scale_loss(distribute.scale_loss(loss))
            part = [
                tf.zeros_like(v) if d is None else tf.convert_to_tensor(d)
                for d, v in zip(tape.gradient(scaled, variables), variables)
            ]
            grads[name] = _add(grads[name], part)
            total += loss
        for name, opt in self.optimizers_by_group().items():
            variables = self._groups[name]
            group_grads = grads[name] or [tf.zeros_like(v) for v in variables]
            group_grads = [
                g * self._multipliers[id(v)] if id(v) in self._multipliers else g
                for g, v in zip(group_grads, variables)
            ]
            opt.apply(group_grads, variables)
        self.scheme.update(step, step_state["context"])
        self.total_tracker.update_state(total)
        results = {m.name: m.result() for m in self.metrics}
        results.update(self.scheme.logs())
        results["learning_rate"] = self.optimizer.learning_rate
        for name, opt in self.group_optimizers.items():
            results[f"learning_rate_{name}"] = opt.learning_rate
        return results


# -------------------------------------------------------------------- the config section

CONFIG_FIELDS = (
    "scheme",
    "batch_size",
    "epochs",
    "steps_per_epoch",
    "learning_rate",
    "momentum",
    "nesterov",
    "weight_decay",
    "warmup_epochs",
    "label_smoothing",
    "num_random_subnets",
    "bounds",
    "strategy",
    "log_every_steps",
    "checkpoint_every_epochs",
    "verbose",
    "deterministic",
    "lazy_updates",
    "precision",
    "grappler",
    "phases",
    "monitor",
    "rdnas",
    "kshot",
    "num_paths",
    "cpt",
    "sse",
    "teacher",
    "codes_file",
)
# What keras.Model.fit accepts as its `verbose`.
VERBOSITIES = ("auto", 0, 1, 2)


def check_optimizer_recipe(fields: config_checks.Section) -> None:
    """Checks the fields `make_optimizer` reads from a recipe section (``train`` or
    ``standalone``): ``epochs`` (int >= 1), ``warmup_epochs`` (a number >= 0, fewer than
    ``epochs``: the learning rate decays after the warm-up), ``learning_rate`` (> 0, the
    peak), ``momentum`` in [0, 1), ``nesterov`` (bool).

    Args:
      fields: the section, wrapped by `tfnas.config_checks.Section`.
    """
    epochs = fields.integer("epochs", 1)
    warmup = fields.number("warmup_epochs", 0.0)
    if warmup >= epochs and warmup > 0:
        raise fields.fail(
            "warmup_epochs",
            warmup,
            f"fewer than {fields.path}.epochs={epochs} (the learning rate decays after the "
            "warm-up)",
            f"lower --config.{fields.path}.warmup_epochs or raise --config.{fields.path}.epochs",
        )
    fields.number("learning_rate", 0.0, low_open=True)
    fields.number("momentum", 0.0, 1.0, high_open=True)
    fields.boolean("nesterov")


def validate_config(section) -> None:
    """Checks the ``train`` section of an experiment config (`tfnas.config_lib`).

    Fields (the ``oneshot`` stage trains the supernet with them):

    - ``scheme``: which subnets a step trains, one of `tfnas.schemes.SCHEMES`
      (``sandwich``: the largest on the labels, the smallest and ``num_random_subnets``
      random ones distilled from it; ``uniform``: one random subnet on the labels).
    - ``batch_size``: the global batch (int >= 1), split between the replicas.
    - ``epochs`` (int >= 1) and ``steps_per_epoch`` (int >= 0; 0: one pass over the
      training split).
    - ``learning_rate``: the peak (> 0), reached after a linear warm-up of
      ``warmup_epochs`` (>= 0, fewer than ``epochs``), then cosine decay to 0
      (`warmup_cosine`).
    - ``momentum`` in [0, 1) and ``nesterov`` (bool): SGD's (`make_optimizer`).
    - ``weight_decay`` (>= 0): L2 coefficient on the loss of the largest subnet only (the
      members with ``regularize``, `SupernetTrainer`).
    - ``label_smoothing`` in [0, 1): for the members trained on the labels.
    - ``num_random_subnets``: random members of a sandwich step (int in
      0..`tfnas.sampling.MAX_MEMBERS` - 1).
    - ``bounds``: the (bounded) space the scheme samples from and takes its smallest subnet
      from, one of `tfnas.search_space.BOUNDS_PRESETS`: ``full`` (every digit 1..7), or
      ``competition`` (digits 1-3, 1-3, 1-3, 1-5, 1-7: the space of the 45,000 CVPR 2022
      codes, which the ``imagenet`` configs use).
    - ``strategy``: the tf.distribute strategy, one of `tfnas.distribute.STRATEGIES`.
    - ``log_every_steps`` (int >= 1): TensorBoard's update frequency, in steps.
    - ``checkpoint_every_epochs`` (int >= 1).
    - ``verbose``: Keras ``fit`` verbosity, one of `VERBOSITIES`.
    - ``deterministic`` (bool): seed everything from ``config.seed`` and turn on TensorFlow's
      op determinism, so that a rerun gives the same weights bit for bit (slower;
      `tfnas.distribute.configure_determinism`).
    - ``lazy_updates`` (bool): update with `tfnas.optimizers.LazySGD`, which leaves every
      weight copy (and variable) that no member of the step touched exactly as it was,
      momentum included (Paddle's and PyTorch >= 2.0's behaviour); False: Keras's SGD, whose
      momentum keeps moving them. Alternating variable groups need it.
    - ``precision``: ``float32``, ``mixed_bfloat16`` or ``mixed_float16`` (with loss
      scaling; one variable group only), `tfnas.precision`.
    - ``grappler``: grappler options of the process (option -> bool or None), applied by
      the supernet-training stages before they build the step (`tfnas.grappler`); the
      default turns the function optimizer off, which halved the first step's time
      (README, "Start-up and graph memory").
    - ``phases``: phase boundaries (optimizer steps), the peak learning rate of each phase
      (a multiple of ``learning_rate``; the cosine restarts at each boundary), per-phase
      warm-ups and an optional momentum reset at each boundary (`tfnas.schedules`).
    - ``rdnas``: the ranking-distillation term of the ``rdnas`` scheme
      (`tfnas.schemes.rdnas.validate_config`).
    - ``kshot``: the K-shot scheme's warm-up, paths, regularizer and simplex-net optimizer
      (`tfnas.schemes.kshot.validate_config`).
    - ``num_paths``: sampled subnets per step of the ``multipath`` scheme (APS's 4; int >= 1).
    - ``cpt`` / ``sse``: the constraint pool and loss weights of the ``cpt`` and ``sse`` schemes
      (`tfnas.schemes.cpt.validate_config`, `tfnas.schemes.sse.validate_config`).
    - ``teacher``: the frozen teacher of the ``external_teacher`` targets (SSE's
      distillation): ``""`` (none), ``"init_largest"`` (a snapshot of the largest subnet of
      ``supernet.init_from``), ``"standalone_largest"`` (the largest subnet trained from
      scratch with the ``standalone`` recipe) or the path of a saved Keras model
      (``.keras``, images -> logits); `tfnas.teacher`.
    - ``codes_file``: ``""`` (sample uniformly within the bounds, the default) or a file of
      codes to draw the trained archs from (`tfnas.schemes.Scheme`); drawing from the codes
      that will be scored is transductive, so it is off by default and recorded in the
      export metadata.
    - ``monitor``: the ranking monitor during training, its own section
      (`tfnas.monitor.validate_config`; `tfnas.config_lib.validate_config` checks it).

    Raises:
      ValueError: naming ``config.train.<field>``, the value, what is expected and how to
        fix it; also for a missing or unknown field.
    """
    fields = config_checks.Section(
        section, "train", CONFIG_FIELDS, owner="tfnas.trainer.validate_config"
    )
    fields.choice("scheme", schemes.SCHEMES)
    fields.integer("batch_size", 1)
    fields.integer("steps_per_epoch", 0)
    check_optimizer_recipe(fields)
    fields.number("weight_decay", 0.0)
    fields.number("label_smoothing", 0.0, 1.0, high_open=True)
    fields.integer("num_random_subnets", 0, sampling.MAX_MEMBERS - 1)
    fields.choice("bounds", tuple(ss.BOUNDS_PRESETS))
    fields.choice("strategy", distribute.STRATEGIES)
    fields.integer("log_every_steps", 1)
    fields.integer("checkpoint_every_epochs", 1)
    fields.choice("verbose", VERBOSITIES)
    fields.boolean("deterministic")
    fields.boolean("lazy_updates")
    precision.validate_config(fields)
    grappler.validate_config(section)
    schedules.validate_config(
        section["phases"], warmup_epochs=section["warmup_epochs"], bounds=section["bounds"]
    )
    schemes.rdnas.validate_config(section["rdnas"])
    fields.integer("num_paths", 1)
    schemes.cpt.validate_config(section["cpt"])
    sse = section["scheme"] == schemes.SSEScheme.scheme_name
    schemes.sse.validate_config(
        section["sse"], num_phases=len(section["phases"]["boundaries"]) + 1 if sse else None
    )
    teacher = fields.string("teacher")
    if sse and section["sse"]["distill_weight"] > 0 and not teacher:
        raise fields.fail(
            "teacher", teacher,
            "a frozen teacher for SSE's distillation (train.sse.distill_weight="
            f"{section['sse']['distill_weight']}): 'init_largest', 'standalone_largest' or a "
            "saved model's path",
            "set --config.train.teacher=init_largest, or --config.train.sse.distill_weight=0",
        )
    fields.string("codes_file")
    # The K-shot section's fields always; its fit with the run only when it is the scheme.
    kshot = section["scheme"] == schemes.KShotScheme.scheme_name
    schemes.kshot.validate_config(
        section["kshot"],
        batch_size=section["batch_size"] if kshot else None,
        epochs=section["epochs"] if kshot else None,
    )

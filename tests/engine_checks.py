"""Checks of the training engine's mechanisms, run in a float64 process by test_trainer.py.

Each check builds a small trainer, runs one (or a few) steps and compares the update with a
hand-written reference: for SGD with momentum, the first update is exactly -LR x gradient,
so a reference loss written out in one tape pins every mechanism (targets, weights, slices,
simplex codes, groups, per-copy multipliers, masked L2). Run as a script, it prints one
JSON dict {check: result}.
"""

import gc
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

if __name__ == "__main__":
    keras.config.set_floatx("float64")
    if "--replicas" in sys.argv:
        # Before any op runs: the CPU is split into 2 logical devices.
        from tfnas import distribute

        distribute.split_cpu(2)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfnas import optimizers  # noqa: E402
from tfnas import sampling  # noqa: E402
from tfnas import schemes  # noqa: E402
from tfnas import search_space as ss  # noqa: E402
from tfnas import supernet as supernet_lib  # noqa: E402
from tfnas import trainer as trainer_lib  # noqa: E402
from tfnas.schemes import Member  # noqa: E402

SPACE = ss.get_space("fmnist")
LR = 0.125
WD = 0.01
LARGEST = sampling.constant_arch(SPACE.largest())
SMALLEST = sampling.constant_arch(SPACE.smallest())


class ListScheme(schemes.Scheme):
    """A scheme whose members come from a function of the step (tests only)."""

    def __init__(self, make_members, groups=None, multipliers=None, ring=0, **kwargs):
        super().__init__(SPACE, seed=5, **kwargs)
        self.make_members = make_members
        self.groups = groups
        self.multipliers = multipliers
        self.ring = ring

    def arch(self, step, k):
        return self.sample(step, k)

    def members(self, step):
        return self.make_members(self, step)

    def variable_groups(self, supernet):
        if self.groups is None:
            return super().variable_groups(supernet)
        return self.groups(supernet)

    def lr_multipliers(self, supernet):
        return self.multipliers

    def build(self, input_shape=None):
        if self.ring:
            # Scheme state: the last `ring` archs of member 0 and a pointer.
            self.recent = self.add_state("recent", (self.ring, ss.CODE_LENGTH))
            self.pointer = self.add_state("pointer", ())
        self.built = True

    def update(self, step, context):
        if not self.ring:
            return
        first = next(iter(context.values()))["arch"]
        slot = tf.math.floormod(self.pointer, self.ring)
        self.recent.assign(tf.tensor_scatter_nd_update(self.recent, [[slot]], first[None]))
        self.pointer.assign(self.pointer + 1)


def kshot_groups(net):
    simplex = [v for v in net.trainable_variables if "simplex_net" in v.path]
    rest = [v for v in net.trainable_variables if "simplex_net" not in v.path]
    return {"supernet": rest, "simplex": simplex}


def batch(n=8, seed=1):
    rng = np.random.default_rng(seed)
    images = tf.constant(rng.normal(size=(n, 28, 28, 1)), keras.config.floatx())
    labels = tf.constant(rng.integers(0, 10, n), tf.int32)
    return images, labels


def make_net(**kwargs):
    keras.utils.set_random_seed(0)
    net = supernet_lib.Supernet(space="fmnist", zero_init_residual=False, **kwargs)
    net.build()
    return net


def make_trainer(net, scheme, lazy=True, group_lrs=None, teacher_model=None, wd=WD):
    trainer = trainer_lib.SupernetTrainer(net, scheme, weight_decay=wd, teacher_model=teacher_model)
    cls = optimizers.LazySGD if lazy else keras.optimizers.SGD
    groups = {name: cls(lr, momentum=0.9) for name, lr in (group_lrs or {}).items()}
    trainer.compile(optimizer=cls(LR, momentum=0.9), group_optimizers=groups, jit_compile=False)
    return trainer


def ce(labels, logits):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))


def kl(teacher, logits):
    p = tf.nn.softmax(teacher)
    return tf.reduce_mean(
        tf.reduce_sum(p * (tf.nn.log_softmax(teacher) - tf.nn.log_softmax(logits)), axis=-1)
    )


def grads_of(net, loss_fn, variables=None):
    variables = variables or net.trainable_variables
    with tf.GradientTape() as tape:
        loss = loss_fn()
    grads = tape.gradient(loss, variables)
    return [np.zeros(v.shape) if g is None else tf.convert_to_tensor(g).numpy()
            for g, v in zip(grads, variables)]


def step_error(net, trainer, images, labels, ref_grads, lr=LR, variables=None):
    """max |delta + lr * g| over the variables after one train step, and how many moved."""
    variables = variables or net.trainable_variables
    before = [v.numpy().copy() for v in variables]
    trainer.train_on_batch(images, labels)
    err, moved = 0.0, 0
    for w0, g, v in zip(before, ref_grads, variables):
        delta = v.numpy() - w0
        err = max(err, float(np.abs(delta + lr * g).max()))
        moved += int(np.any(delta != 0))
    return dict(error=err, moved=moved)


def l2_of(net, arch):
    return net.l2_penalty(arch)


# -- the checks ---------------------------------------------------------------------------


def check_weight_by_step():
    """weight(step) = 0.5 + step/2: the first update is half the CE step; and a member
    whose weight is 0 at step 0 leaves every weight bitwise unchanged."""
    images, labels = batch()
    net = make_net()
    scheme = ListScheme(lambda s, step: [Member(
        "m", LARGEST, "labels", weight=0.5 + tf.cast(step, tf.float64) / 2)])
    trainer = make_trainer(net, scheme, wd=0.0)
    ref = grads_of(net, lambda: 0.5 * ce(labels, net(images, arch=LARGEST, training=True)))
    out = step_error(net, trainer, images, labels, ref)
    net0 = make_net()
    zero = ListScheme(lambda s, step: [Member("m", LARGEST, "labels",
                                              weight=tf.cast(step, tf.float64))])
    trainer0 = make_trainer(net0, zero, wd=0.0)
    before = [v.numpy().copy() for v in net0.trainable_variables]
    trainer0.train_on_batch(images, labels)
    out["zero_weight_moved"] = sum(
        int(np.any(v.numpy() != w)) for v, w in zip(net0.trainable_variables, before))
    return out


def check_l2_weight():
    """A member at weight 0.5 with ``l2_weight=1``: the first update is the gradient of
    0.5 CE + WD * L2 (the penalty at full strength); with the default (None), of
    0.5 (CE + WD * L2)."""
    images, labels = batch()
    out = {}
    for name, l2_weight, l2_scale in (("own", 1.0, 1.0), ("default", None, 0.5)):
        net = make_net()
        scheme = ListScheme(lambda s, step, w=l2_weight: [Member(
            "m", LARGEST, "labels", regularize=True, weight=0.5, l2_weight=w)])
        trainer = make_trainer(net, scheme)
        ref = grads_of(net, lambda net=net, c=l2_scale: (
            0.5 * ce(labels, net(images, arch=LARGEST, training=True))
            + c * WD * l2_of(net, LARGEST)))
        out[name] = step_error(net, trainer, images, labels, ref)
    return out


def check_labels_plus_teacher():
    images, labels = batch()
    net = make_net()
    scheme = ListScheme(lambda s, step: [
        Member("largest", LARGEST, "labels", is_teacher=True),
        Member("small", SMALLEST, "labels+teacher", teacher_alpha=0.25),
    ])
    trainer = make_trainer(net, scheme, wd=0.0)

    def loss():
        t = net(images, arch=LARGEST, training=True)
        s = net(images, arch=SMALLEST, training=True)
        return ce(labels, t) + 0.75 * ce(labels, s) + 0.25 * kl(tf.stop_gradient(t), s)

    return step_error(net, trainer, images, labels, grads_of(net, loss))


def check_external_teacher():
    images, labels = batch()
    net = make_net()
    keras.utils.set_random_seed(7)
    teacher = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(10, name="t")], name="teacher")
    t_before = [w.numpy().copy() for w in teacher.weights]
    scheme = ListScheme(lambda s, step: [
        Member("a", LARGEST, "external_teacher"),
        Member("b", SMALLEST, "labels+external_teacher", teacher_alpha=0.5),
    ])
    trainer = make_trainer(net, scheme, teacher_model=teacher, wd=0.0)

    def loss():
        t = tf.stop_gradient(teacher(images))
        a = net(images, arch=LARGEST, training=True)
        b = net(images, arch=SMALLEST, training=True)
        return kl(t, a) + 0.5 * ce(labels, b) + 0.5 * kl(t, b)

    out = step_error(net, trainer, images, labels, grads_of(net, loss))
    out["teacher_moved"] = sum(int(np.any(w.numpy() != b)) for w, b in
                               zip(teacher.weights, t_before))
    out["teacher_in_trainer_weights"] = any("teacher" in w.path for w in trainer.weights)
    return out


def check_rank_hinge():
    """b's loss relu(sign * (L_b - sg(L_a))); a is forward only. Both signs: one is active
    (the step follows the reference), the other leaves every weight as it was."""
    images, labels = batch()
    out = {}
    for sign in (1.0, -1.0):
        net = make_net()
        scheme = ListScheme(lambda s, step, sign=sign: [
            Member("a", LARGEST, "none"),
            Member("b", SMALLEST, "rank_hinge", pair="a", rank_sign=sign),
        ])
        trainer = make_trainer(net, scheme, wd=0.0)

        def loss(stop=True, sign=sign, net=net):
            la = ce(labels, net(images, arch=LARGEST, training=True))
            lb = ce(labels, net(images, arch=SMALLEST, training=True))
            return tf.nn.relu(sign * (lb - (tf.stop_gradient(la) if stop else la)))

        ref = grads_of(net, loss)
        wrong = grads_of(net, lambda sign=sign, net=net: loss(False, sign, net))
        active = bool(float(loss()) > 0)
        res = step_error(net, trainer, images, labels, ref)
        res["active"] = active
        res["differ_without_stop"] = sum(int(np.abs(a - b).max() > 1e-9) for a, b in
                                         zip(ref, wrong))
        out[f"sign{int(sign):+d}"] = res
    return out


def check_rank_margin():
    images, labels = batch()
    net = make_net()
    a_arch = sampling.constant_arch(SPACE.parse(SPACE.sample(np.random.default_rng(3)).code))
    scheme = ListScheme(lambda s, step: [
        Member("pair", SMALLEST, "rank_margin", pair_arch=a_arch, rank_sign=-1.0, margin=0.5),
    ])
    trainer = make_trainer(net, scheme, wd=0.0)

    def loss():
        la = ce(labels, net(images, arch=a_arch, training=True))
        lb = ce(labels, net(images, arch=SMALLEST, training=True))
        return tf.nn.relu(0.5 + (la - lb))

    out = {"loss": float(loss())}  # before the step: the margin term is active
    out.update(step_error(net, trainer, images, labels, grads_of(net, loss)))
    return out


def check_forward_only_and_slice():
    """A forward-only member changes nothing; a member on slice (1, 2) learns from the
    second half of the batch only."""
    images, labels = batch()
    net = make_net()
    scheme = ListScheme(lambda s, step: [
        Member("look", LARGEST, "none"),
        Member("half", SMALLEST, "labels", batch_slice=(1, 2)),
    ])
    trainer = make_trainer(net, scheme, wd=0.0)
    ref = grads_of(net, lambda: ce(labels[4:], net(images[4:], arch=SMALLEST, training=True)))
    return step_error(net, trainer, images, labels, ref)


def check_mix():
    """K = 2: mix 'uniform' trains the kernels at (1/2, 1/2) and gives the simplex-net no
    gradient; 'detached' uses the simplex-net's code without training it."""
    images, labels = batch()
    out = {}
    for mix in ("uniform", "detached"):
        net = make_net(num_kernels=2)
        scheme = ListScheme(lambda s, step, mix=mix: [Member("m", LARGEST, "labels", mix=mix)])
        trainer = make_trainer(net, scheme, wd=0.0)
        code = (tf.constant([0.5, 0.5], tf.float64) if mix == "uniform"
                else tf.stop_gradient(net.mix(LARGEST)))
        ref = grads_of(net, lambda code=code, net=net: ce(
            labels, net(images, arch=LARGEST, training=True, mix=code)))
        simplex = [i for i, v in enumerate(net.trainable_variables) if "simplex_net" in v.path]
        before = [net.trainable_variables[i].numpy().copy() for i in simplex]
        res = step_error(net, trainer, images, labels, ref)
        res["simplex_moved"] = sum(int(np.any(net.trainable_variables[i].numpy() != b))
                                   for i, b in zip(simplex, before))
        out[mix] = res
    return out


def alternating_scheme(ring=0, skip=False, overlap=False):
    """K-shot-like alternation: even steps train the weights at the uniform code, odd steps
    the simplex-net on half the batch; each member's weight is 0 on the other steps (where
    with ``skip`` it does not run)."""
    def members(s, step):
        odd = tf.cast(tf.math.floormod(step, 2), tf.float64)
        return [
            Member("weights", s.arch(step, 0), "labels", mix="uniform", weight=1.0 - odd,
                   regularize=True, skip_at_zero_weight=skip),
            Member("simplex", s.arch(step, 1), "labels", batch_slice=(0, 2), weight=odd,
                   trains=("simplex",), skip_at_zero_weight=skip, sequential=not overlap),
        ]
    return ListScheme(members, groups=kshot_groups, ring=ring)


def check_groups_alternate():
    images, labels = batch()
    net = make_net(num_kernels=2)
    scheme = alternating_scheme()
    trainer = make_trainer(net, scheme, group_lrs={"simplex": 2 * LR})
    groups = kshot_groups(net)
    out = {}
    for step in range(3):
        before = {g: [v.numpy().copy() for v in vs] for g, vs in groups.items()}
        logs = trainer.train_on_batch(images, labels, return_dict=True)
        moved = {g: sum(int(np.any(v.numpy() != b)) for v, b in zip(vs, before[g]))
                 for g, vs in groups.items()}
        out[f"step{step}"] = moved
    out["learning_rates"] = [float(logs["learning_rate"]), float(logs["learning_rate_simplex"])]
    out["iterations"] = [int(trainer.optimizer.iterations.numpy()),
                         int(trainer.optimizer_simplex.iterations.numpy())]
    out["sizes"] = {g: len(vs) for g, vs in groups.items()}
    return out


def check_skip_at_zero_weight():
    """`Member.skip_at_zero_weight`: the off members of an alternation do not run, and the
    weights come out bitwise as when they run at weight 0; a member that is not
    ``sequential`` changes no bit either."""
    images, labels = batch()
    out = {}
    # (1) 4 alternating steps, with and without the skip (and with the simplex member not
    # waiting for the other): the same bits (dropout 0, a stateless sampler: the same archs
    # and computations but the skipped ones, summed in the same order).
    finals = {}
    for variant in ((False, False), (True, False), (True, True)):
        net = make_net(num_kernels=2)
        scheme = alternating_scheme(skip=variant[0], overlap=variant[1])
        trainer = make_trainer(net, scheme, group_lrs={"simplex": 2 * LR})
        for _ in range(4):
            trainer.train_on_batch(images, labels)
        finals[variant] = [v.numpy() for v in trainer.weights]
        finals[variant] += [v.numpy() for o in trainer.optimizers_by_group().values()
                            for v in o.variables]
    plain = finals[(False, False)]
    out["count"] = len(plain)
    out["bitwise_diff"] = sum(int(np.any(a != b)) for a, b in zip(plain, finals[(True, False)]))
    out["overlap_bitwise_diff"] = sum(
        int(np.any(a != b)) for a, b in zip(plain, finals[(True, True)]))
    # (2) The skipped member's forward does not run: fed a NaN simplex code at weight 0 (a
    # tensor of the step, so not known at trace time), it would make every weight it
    # routes to NaN (0 * NaN); skipped, the weights stay finite and move by the other member.
    nan_code = tf.constant([np.nan, np.nan], tf.float64)
    for skip in (False, True):
        def members(s, step, skip=skip):
            off = tf.cast(step, tf.float64) * 0.0  # 0, but only at run time
            return [Member("on", s.arch(step, 0), "labels", mix="uniform"),
                    Member("off", s.arch(step, 1), "labels", mix=nan_code, weight=off,
                           skip_at_zero_weight=skip)]
        net = make_net(num_kernels=2)
        trainer = make_trainer(net, ListScheme(members, groups=kshot_groups),
                               group_lrs={"simplex": LR})
        before = [v.numpy().copy() for v in net.trainable_variables]
        trainer.train_on_batch(images, labels)
        out[f"nan_skip{int(skip)}"] = dict(
            nan=sum(int(np.any(np.isnan(v.numpy()))) for v in net.trainable_variables),
            moved=sum(int(np.any(v.numpy() != b))
                      for v, b in zip(net.trainable_variables, before)),
        )
    return out


def check_checkpoint_state(tmp):
    """Scheme state and both optimizers' slots are saved and restored with the trainer."""
    images, labels = batch()
    net = make_net(num_kernels=2)
    scheme = alternating_scheme(ring=3)
    trainer = make_trainer(net, scheme, group_lrs={"simplex": 2 * LR})
    for _ in range(4):
        trainer.train_on_batch(images, labels)
    expected = [scheme.arch(tf.constant(t, tf.int64), 0).numpy().tolist() for t in (3, 1, 2)]
    recent = scheme.recent.numpy().tolist()
    path = os.path.join(tmp, "t.weights.h5")
    trainer.save_weights(path)
    net2 = make_net(num_kernels=2)
    keras.utils.set_random_seed(99)
    scheme2 = alternating_scheme(ring=3)
    trainer2 = make_trainer(net2, scheme2, group_lrs={"simplex": 2 * LR})
    trainer2.build_optimizers()
    trainer2.load_weights(path)
    same = lambda a, b: all(np.array_equal(x, y) for x, y in zip(a, b))  # noqa: E731
    return dict(
        ring_ok=recent == expected,
        pointer=int(scheme.pointer.numpy()),
        restored_state=same([scheme.recent.numpy(), scheme.pointer.numpy()],
                            [scheme2.recent.numpy(), scheme2.pointer.numpy()]),
        restored_weights=same([v.numpy() for v in net.weights], [v.numpy() for v in net2.weights]),
        restored_simplex_slots=same(
            [v.numpy() for v in trainer.optimizer_simplex.variables],
            [v.numpy() for v in trainer2.optimizer_simplex.variables]),
        simplex_slots_nonzero=any(np.any(v.numpy() != 0) for v in
                                  trainer.optimizer_simplex.momentums),
        restored_main_slots=same([v.numpy() for v in trainer.optimizer.variables],
                                 [v.numpy() for v in trainer2.optimizer.variables]),
    )


def two_copy_net():
    return make_net(num_copies=2, routing="stage_width")


def check_copies_multipliers_and_masked_l2():
    """2 copies (stage_width: digit 1 -> copy 0, digit 7 -> copy 1). The largest (copy 0
    everywhere) with L2, and the smallest (copy 1) at multiplier 0.5: copy 1 moves by
    -LR x 0.5 x its gradient, copy 0 by -LR x its gradient, and the L2 term reaches
    copy 0 only. Then training copy 0 alone leaves copy 1 bitwise unchanged."""
    images, labels = batch()
    net = two_copy_net()
    copies = net.copies(LARGEST).numpy().tolist(), net.copies(SMALLEST).numpy().tolist()
    mult = [[1.0, 0.5]] * 6
    scheme = ListScheme(lambda s, step: [
        Member("largest", LARGEST, "labels", regularize=True),
        Member("smallest", SMALLEST, "labels"),
    ], multipliers=mult)
    trainer = make_trainer(net, scheme)

    def loss():
        return (ce(labels, net(images, arch=LARGEST, training=True)) + WD * net.l2_penalty(LARGEST)
                + ce(labels, net(images, arch=SMALLEST, training=True)))

    ref = grads_of(net, loss)
    ref = [g * np.array([1.0, 0.5]).reshape([2] + [1] * (g.ndim - 1))
           if trainer_lib.location_of(v.path) is not None else g
           for g, v in zip(ref, net.trainable_variables)]
    out = step_error(net, trainer, images, labels, ref)
    out["copies"] = copies
    # Copy 0 only, for 3 steps, with L2 and momentum: copy 1 stays bitwise.
    net2 = two_copy_net()
    only0 = ListScheme(lambda s, step: [Member("largest", LARGEST, "labels", regularize=True)])
    trainer2 = make_trainer(net2, only0)
    before = [v.numpy()[1].copy() for v in net2.trainable_variables]
    for _ in range(3):
        trainer2.train_on_batch(images, labels)
    out["copy1_changed"] = sum(int(np.any(v.numpy()[1] != b))
                               for v, b in zip(net2.trainable_variables, before))
    out["copy0_changed"] = sum(int(np.any(v.numpy()[0] != 0)) for v in net2.trainable_variables)
    return out


def check_old_engine():
    """The sandwich and uniform schemes on the new engine give the weights of the old one
    (tests/reference_trainer.py) after 3 steps: sandwich with LazySGD (the largest member
    uses every variable, so nothing is skipped), uniform with Keras's SGD. Uniform with
    LazySGD differs by design: blocks deeper than a step's single path keep their weights
    and momentum instead of drifting."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import reference_trainer

    rng = np.random.default_rng(2)
    images = rng.normal(size=(24, 28, 28, 1))
    labels = rng.integers(0, 10, 24).astype("int32")

    def run(make_scheme, new, lazy):
        net = make_net()
        schedule = optimizers.warmup_cosine(0.1, epochs=2, warmup_epochs=1, steps_per_epoch=2)
        if new:
            trainer = trainer_lib.SupernetTrainer(net, make_scheme(), weight_decay=WD)
            cls = optimizers.LazySGD if lazy else keras.optimizers.SGD
        else:
            trainer = reference_trainer.ReferenceTrainer(net, make_scheme(), weight_decay=WD)
            cls = keras.optimizers.SGD
        trainer.compile(optimizer=cls(schedule, momentum=0.9), jit_compile=False)
        ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
        trainer.fit(ds, epochs=1, verbose=0)
        return [v.numpy() for v in net.trainable_variables]

    def diff(a, b):
        return max(float(np.abs(x - y).max()) for x, y in zip(a, b))

    sandwich = lambda: schemes.SandwichScheme(SPACE, seed=3, num_random=1)  # noqa: E731
    uniform = lambda: schemes.UniformScheme(SPACE, seed=3)  # noqa: E731
    old_uniform = run(uniform, False, False)
    return dict(
        sandwich=diff(run(sandwich, True, True), run(sandwich, False, False)),
        uniform=diff(run(uniform, True, False), old_uniform),
        uniform_lazy=diff(run(uniform, True, True), old_uniform),
    )


def check_shared_traces():
    """Members of one kind call one traced program: the sandwich (largest on labels with
    L2 and dropout, three students on the teacher) traces it once over 3 steps, and gives
    the weights of the same run with every member inlined (``share_traces=False``): the
    dropout masks are stateless, from the same seeds in both."""
    rng = np.random.default_rng(5)
    images = rng.normal(size=(24, 28, 28, 1))
    labels = rng.integers(0, 10, 24).astype("int32")

    def run(share):
        net = make_net()
        scheme = schemes.SandwichScheme(SPACE, seed=3, num_random=2, dropout=0.3)
        trainer = trainer_lib.SupernetTrainer(net, scheme, weight_decay=WD,
                                              share_traces=share)
        trainer.compile(optimizer=optimizers.LazySGD(LR, momentum=0.9), jit_compile=False)
        ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
        trainer.fit(ds, epochs=1, verbose=0)
        programs = list(trainer._program_cache.value.values())
        traces = [p.experimental_get_tracing_count() for p in programs]
        return [v.numpy() for v in net.trainable_variables], len(programs), traces

    shared, programs, traces = run(True)
    inlined, none, _ = run(False)
    return dict(
        diff=max(float(np.abs(a - b).max()) for a, b in zip(shared, inlined)),
        programs=programs,
        traces=traces,
        inlined_programs=none,
    )


def replica_schemes():
    """Every mechanism, in two schemes (one would make a graph too big for a test machine):
    targets (in-place, external, ranking, forward only) and the K-shot-like alternation
    (groups, slices, simplex codes, per-copy multipliers, scheme state, members skipped at
    weight 0, a member not sequential)."""
    def targets(s, step):
        return [
            Member("largest", LARGEST, "labels", is_teacher=True, regularize=True,
                   weight=1.0 + tf.cast(step, tf.float64) / 4),
            Member("ext", s.arch(step, 1), "labels+external_teacher"),
            Member("a", s.arch(step, 2), "none"),
            Member("b", s.arch(step, 3), "rank_hinge", pair="a", rank_sign=1.0),
            Member("m", s.arch(step, 4), "rank_margin", pair_arch=s.arch(step, 5),
                   rank_sign=-1.0, margin=0.1),
        ]

    def alternation(s, step):
        odd = tf.cast(tf.math.floormod(step, 2), tf.float64)
        return [
            Member("largest", LARGEST, "labels", is_teacher=True, regularize=True,
                   mix="uniform", weight=1.0 - odd),
            Member("small", s.arch(step, 0), "labels+teacher", mix="uniform", weight=1.0 - odd,
                   skip_at_zero_weight=True),
            Member("simplex", s.arch(step, 6), "labels", batch_slice=(0, 2), weight=odd,
                   trains=("simplex",), skip_at_zero_weight=True, sequential=False),
        ]

    # (scheme, supernet arguments, variable-group learning rates)
    return {
        "targets": (lambda: ListScheme(targets, ring=2), {}, {}),
        "alternation": (
            lambda: ListScheme(alternation, groups=kshot_groups, multipliers=[[1.0, 0.5]] * 6,
                               ring=2),
            dict(num_kernels=2, num_copies=2, routing="stage_width"),
            {"simplex": 2 * LR},
        ),
    }


def check_replicas():
    """2 replicas (MirroredStrategy, 2 logical CPUs) train like 1 device with every
    mechanism: weights, scheme state and both optimizers' slots after 4 steps."""
    from tfnas import distribute

    rng = np.random.default_rng(4)
    quarter = 2
    # Every global batch is [B; B; B; B]: a replica's batch is [B; B] and any half of it is
    # B, so BN statistics, slices and means agree with 1 device up to round-off.
    batches = []
    for _ in range(4):
        b = rng.normal(size=(quarter, 28, 28, 1))
        y = rng.integers(0, 10, quarter)
        batches.append((np.concatenate([b] * 4), np.concatenate([y] * 4).astype("int32")))
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])

    def train(strategy, make_scheme, net_args, group_lrs):
        ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4 * quarter)
        with strategy.scope():
            net = make_net(**net_args)
            keras.utils.set_random_seed(7)
            teacher = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                        keras.layers.Dense(10)], name="teacher")
            scheme = make_scheme()
            trainer = make_trainer(net, scheme, group_lrs=group_lrs, teacher_model=teacher)
        trainer.fit(ds, epochs=1, verbose=0)
        values = [v.numpy() for v in trainer.weights]
        for opt in trainer.optimizers_by_group().values():
            values += [v.numpy() for v in opt.variables]
        return values, scheme.recent.numpy().tolist()

    mirrored = distribute.make_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    out = {"replicas": mirrored.num_replicas_in_sync}
    for name, (make_scheme, net_args, group_lrs) in replica_schemes().items():
        two, ring2 = train(mirrored, make_scheme, net_args, group_lrs)
        one, ring1 = train(distribute.make_strategy("default"), make_scheme, net_args, group_lrs)
        out[name] = dict(
            diff=max(float(np.abs(a - b).max()) for a, b in zip(one, two)),
            count=[len(one), len(two)],
            same_ring=ring1 == ring2,
            steps=int(np.max(ring1)) > 0,
        )
        print(name, json.dumps(out[name]), file=sys.stderr, flush=True)
    return out


CHECKS = {
    "old_engine": check_old_engine,
    "weight_by_step": check_weight_by_step,
    "l2_weight": check_l2_weight,
    "labels_plus_teacher": check_labels_plus_teacher,
    "external_teacher": check_external_teacher,
    "rank_hinge": check_rank_hinge,
    "rank_margin": check_rank_margin,
    "forward_only_and_slice": check_forward_only_and_slice,
    "mix": check_mix,
    "groups_alternate": check_groups_alternate,
    "skip_at_zero_weight": check_skip_at_zero_weight,
    "copies_multipliers_and_masked_l2": check_copies_multipliers_and_masked_l2,
    "shared_traces": check_shared_traces,
}

if __name__ == "__main__":
    tmp = sys.argv[1]
    if "--replicas" in sys.argv:
        print(json.dumps({"replicas": check_replicas()}))
        sys.exit(0)
    names = sys.argv[2].split(",") if len(sys.argv) > 2 else list(CHECKS) + ["checkpoint_state"]
    results = {}
    for name in names:
        check = CHECKS.get(name) or (lambda: check_checkpoint_state(tmp))
        results[name] = check()
        # Each check's nets and traced steps are garbage now; without this the process
        # keeps every one of them (Keras's global state) and grows by GBs.
        keras.backend.clear_session()
        gc.collect()
        print(name, json.dumps(results[name]), file=sys.stderr, flush=True)
    print(json.dumps(results))

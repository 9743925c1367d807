"""Training-step cost of the one-graph supernet against plain Keras models of the same archs.

    .venv/bin/python benchmarks/train_step.py --bench=step       # issue: elastic supernet
    .venv/bin/python benchmarks/train_step.py --bench=sandwich   # issue: one-shot stage
    .venv/bin/python benchmarks/train_step.py --bench=memory     # peak RSS, sandwich vs plain
    .venv/bin/python benchmarks/train_step.py --bench=copies     # few-shot: G=7 vs G=1 step
    .venv/bin/python benchmarks/train_step.py --bench=kernels    # K-shot: K=8 vs K=1 step
    .venv/bin/python benchmarks/train_step.py --bench=schemes    # APS/CPT/SSE vs sandwich

``step``: one SGD step of the supernet for an arch (one trace for all archs) against one
step of the static model of that arch, for the largest, the smallest and the median-FLOPs
arch (of 2,000 uniform samples), on ``fmnist`` (batch 128, 28 px) and ``imagenet`` (batch
32, 64 px). ``sandwich``: one sandwich step (largest + smallest + 2 random, one update)
against the sum of the 4 static steps of the same archs. Times are medians over
``--steps`` steps after warm-up, same process, same data.
``memory``: peak resident memory of a process training the sandwich against one training
the largest plain model (each in its own subprocess; CPU RSS, since this machine has no GPU).
``--precision`` (`tfnas.precision.POLICIES`) sets the Keras dtype policy of every model
built, e.g. ``--bench=sandwich --precision=mixed_bfloat16``; ``mixed_float16`` also wraps
each optimizer for loss scaling. ``precision``: the sandwich step in float32 against
mixed_bfloat16 in one process, steps alternating (``--spaces=fmnist``: one space).
``--grappler=tfnas`` (the default) applies `tfnas.grappler.DEFAULTS`, as ``bin/train``
does; ``--grappler=tf`` keeps TensorFlow's defaults. ``--share-traces=False`` inlines
every sandwich member (``SupernetTrainer(share_traces=False)``). The memory children inherit
the environment, so ``LD_PRELOAD=<another malloc> ... --bench=memory`` measures under that
allocator. ``--tensor-stats`` adds TensorFlow's own count of the tensors' bytes (built /
peak / growth): the part of the growth a GPU's device memory would hold (the children then
allocate with TF's BFC allocator, as on a GPU, instead of malloc). ``copies``: few-shot's
sandwich step at G = 7 weight copies against G = 1 (`bench_copies`). ``kernels``: K-shot's
training step at K = 8 and K = 2 dictionaries against K = 1, as one-shot and as K-shot's
alternation at K = 1 (`bench_kernels`), with each one's peak memory. ``schemes``: the
steps of APS, CPT and SSE against the sandwich rule (`bench_schemes`).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfnas import grappler  # noqa: E402
from tfnas import optimizers  # noqa: E402
from tfnas import precision  # noqa: E402
from tfnas import schemes  # noqa: E402
from tfnas import search_space as ss  # noqa: E402
from tfnas import static  # noqa: E402
from tfnas import supernet as supernet_lib  # noqa: E402
from tfnas import trainer as trainer_lib  # noqa: E402
from tfnas.schemes import kshot  # noqa: E402

SETTINGS = {"fmnist": (128, 28), "imagenet": (32, 64)}
# Set from the flags in main (the memory children get them passed on).
GRAPPLER = ["tfnas"]
SHARE_TRACES = [True]
TENSOR_STATS = [False]


def median_flops_arch(space, n=2000, seed=0):
    archs = space.sample_many(n, seed)
    flops = np.array([space.flops(a) for a in archs])
    return archs[int(np.argsort(flops)[n // 2])]


def data(space, batch, size, seed=0):
    rng = np.random.default_rng(seed)
    images = tf.constant(rng.normal(size=(batch, size, size, space.in_channels)), tf.float32)
    labels = tf.constant(rng.integers(0, space.num_classes, batch), tf.int32)
    return images, labels


def timed(fn, steps, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def alternating_medians(fns: dict, steps: int) -> dict:
    """{name: median seconds} of ``steps`` rounds, each running every function of ``fns``
    once in turn: on a shared host the load then hits all of them alike."""
    times = {name: [] for name in fns}
    for _ in range(steps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def sgd():
    """SGD with momentum, loss-scaled when the global policy is mixed_float16."""
    return precision.wrap_optimizer(
        keras.optimizers.SGD(0.01, momentum=0.9), keras.config.dtype_policy().name
    )


def static_step_fn(model, images, labels):
    opt = sgd()
    opt.build(model.trainable_variables)

    @tf.function(jit_compile=False)
    def step():
        with tf.GradientTape() as tape:
            logits = tf.cast(model(images, training=True), tf.float32)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            )
            scaled = opt.scale_loss(loss)
        opt.apply(tape.gradient(scaled, model.trainable_variables), model.trainable_variables)
        return loss

    return lambda: step().numpy()


def supernet_step_fn(net, images, labels):
    opt = sgd()
    opt.build(net.trainable_variables)

    @tf.function(jit_compile=False)
    def step(arch):
        with tf.GradientTape() as tape:
            logits = tf.cast(net(images, arch=arch, training=True), tf.float32)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            )
            scaled = opt.scale_loss(loss)
        opt.apply(tape.gradient(scaled, net.trainable_variables), net.trainable_variables)
        return loss

    return lambda arch: step(arch).numpy()


def bench_step(steps):
    rows = []
    for name, (batch, size) in SETTINGS.items():
        space = ss.get_space(name)
        images, labels = data(space, batch, size)
        net = supernet_lib.Supernet(name)
        net.build()
        super_step = supernet_step_fn(net, images, labels)
        for label, arch in (
            ("largest", space.largest()),
            ("median FLOPs", median_flops_arch(space)),
            ("smallest", space.smallest()),
        ):
            arch_t = supernet_lib.arch_tensor(arch)
            t_super = timed(lambda arch_t=arch_t, fn=super_step: fn(arch_t), steps)
            model = static.build_static_model(space, arch, image_size=size)
            t_static = timed(static_step_fn(model, images, labels), steps)
            rows.append((name, batch, size, label, t_super, t_static))
    print("| space | batch | px | arch | supernet step (ms) | plain step (ms) | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, batch, size, label, t_super, t_static in rows:
        print(
            f"| {name} | {batch} | {size} | {label} | {t_super * 1e3:.1f} | "
            f"{t_static * 1e3:.1f} | {t_super / t_static:.2f} |"
        )


class FixedSandwich(schemes.SandwichScheme):
    """The sandwich with its random members fixed, so static models can match them."""

    def __init__(self, space, randoms):
        super().__init__(space, num_random=len(randoms))
        self._randoms = [supernet_lib.arch_tensor(a) for a in randoms]

    def members(self, step):
        members = super().members(step)[:2]
        return members + [
            schemes.Member(f"random{i + 1}", a, "teacher") for i, a in enumerate(self._randoms)
        ]


def bench_sandwich(steps):
    print("| space | batch | px | sandwich step (ms) | sum of 4 plain steps (ms) | ratio |")
    print("|---|---|---|---|---|---|")
    for name, (batch, size) in SETTINGS.items():
        space = ss.get_space(name)
        images, labels = data(space, batch, size)
        randoms = space.sample_many(2, seed=1)
        net = supernet_lib.Supernet(name)
        net.build()
        trainer = trainer_lib.SupernetTrainer(
            net, FixedSandwich(space, randoms), share_traces=SHARE_TRACES[0]
        )
        trainer.compile(optimizer=sgd(), jit_compile=False)
        trainer.optimizer.build(net.trainable_variables)
        step = tf.function(trainer.train_step, jit_compile=False)
        step_data = (images, labels)
        t_sandwich = timed(lambda step=step, d=step_data: step(d)["loss"].numpy(), steps)
        t_static = 0.0
        for arch in [space.largest(), space.smallest(), *randoms]:
            model = static.build_static_model(space, arch, image_size=size)
            t_static += timed(static_step_fn(model, images, labels), steps)
        print(
            f"| {name} | {batch} | {size} | {t_sandwich * 1e3:.1f} | {t_static * 1e3:.1f} | "
            f"{t_sandwich / t_static:.2f} |"
        )


def bench_copies(steps):
    """Few-shot's cost: the sandwich step of a supernet with G = 7 weight copies
    (``stage_width_nested`` routing, the `fewshot` scheme's per-copy learning rates, lazy
    SGD, as ``--stage=fewshot`` trains at G_max) against G = 1, same members and data. Both
    are built and traced first, then their steps alternate (this host is shared)."""
    print("| space | batch | px | G=1 (ms) | G=7 (ms) | G=7 / G=1 | params G=1 | params G=7 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (batch, size) in SETTINGS.items():
        space = ss.get_space(name)
        images, labels = data(space, batch, size)
        fns, params = {}, {}
        for g in (1, 7):
            keras.utils.set_random_seed(0)
            net = supernet_lib.Supernet(
                name, num_copies=g, routing="shared" if g == 1 else "stage_width_nested"
            )
            net.build()
            trainer = trainer_lib.SupernetTrainer(
                net, schemes.FewShotScheme(space), share_traces=SHARE_TRACES[0]
            )
            trainer.compile(
                optimizer=optimizers.LazySGD(learning_rate=0.01, momentum=0.9),
                jit_compile=False,
            )
            step = tf.function(trainer.train_step, jit_compile=False)
            fns[g] = lambda step=step, d=(images, labels): step(d)["loss"].numpy()
            params[g] = net.count_params()
            for _ in range(3):  # trace and warm up
                fns[g]()
        medians = alternating_medians(fns, steps)
        t1, t7 = medians[1], medians[7]
        print(
            f"| {name} | {batch} | {size} | {t1 * 1e3:.1f} | {t7 * 1e3:.1f} | {t7 / t1:.2f} | "
            f"{params[1]:,} | {params[7]:,} |", flush=True,
        )


def config_step(config, name, scheme=None):
    """One training step of ``config`` on space ``name`` as the one-shot stage builds it
    (scheme, optimizers, group optimizers; a frozen teacher when the config distils: the
    fresh supernet's largest subnet, what ``train.teacher=init_largest`` snapshots).
    ``scheme``: a function of the space giving the scheme instead of the config's.
    Returns (a function running one step on a fixed batch, parameter count)."""
    config.space = name
    keras.utils.set_random_seed(0)
    net = supernet_lib.build_supernet(config.supernet, config.space)
    teacher = None
    if config.train.teacher:
        teacher = static.extract_subnet(net, net.space.largest(), name="teacher")
        teacher.trainable = False
    steps = int(config.train.steps_per_epoch)
    trainer = trainer_lib.SupernetTrainer(
        net,
        schemes.build_scheme(config, steps_per_epoch=steps) if scheme is None
        else scheme(net.space),
        weight_decay=config.train.weight_decay, share_traces=SHARE_TRACES[0],
        teacher_model=teacher,
    )
    trainer.compile(
        optimizer=optimizers.make_optimizer(config.train, steps, lazy=config.train.lazy_updates),
        group_optimizers=schemes.build_group_optimizers(config, steps), jit_compile=False,
    )
    batch, size = SETTINGS[name]
    images, labels = data(net.space, batch, size)
    step = tf.function(trainer.train_step, jit_compile=False)
    return (lambda: step((images, labels))["loss"].numpy()), net.count_params()


class KShotAlternationAtK1(schemes.Scheme):
    """K-shot's alternation at K = 1, the K = 1 column of seed paper 004's Table 1.

    Table 1 times one epoch of the same method at K = 1, 2, 4, 8, 12 (2.27, 2.28, 2.32,
    2.37, 2.43 GPU h): the smooth rise says its K = 1 runs the same alternation, simplex
    steps included, so its +4% is what the dictionaries cost. At K = 1 the code is
    softmax of one logit, the constant 1, so the simplex step trains nothing but still runs
    its m paths' forward and backward (autograd reaches the code through every layer).
    tfnas builds no simplex-net at K = 1 (`tfnas.schemes.kshot` needs K > 1), so this
    benchmark scheme stands in for it: even steps one uniform path on the batch (the
    supernet step), odd steps ``num_paths`` paths on b/m images each (the simplex step's
    shape: the same slices, skip and overlap options), on the labels, which trains the
    supernet instead of a code: the same forward and backward per layer (a code's gradient
    needs the merged kernel's), plus an update of the K = 1 supernet's 0.5M parameters
    that the real simplex step would not make.
    """

    scheme_name = "kshot_at_k1_benchmark"

    def __init__(self, space, num_paths):
        super().__init__(space)
        self.num_paths = int(num_paths)

    def members(self, step):
        w = tf.cast(tf.equal(tf.math.floormod(tf.cast(step, tf.int64), 2), 1), tf.float32)
        members = [
            schemes.Member("path", self.sample(step, 0), "labels", False, 0.0, True, 1.0 - w,
                           skip_at_zero_weight=True)
        ]
        for j in range(self.num_paths):
            members.append(schemes.Member(
                f"simplex{j + 1}", self.sample(step, kshot.PATH_SEED_OFFSET + j), "labels",
                weight=w, batch_slice=(j, self.num_paths), skip_at_zero_weight=True,
                sequential=False,
            ))
        return members


def kshot_trainer(name, k, alternation=False):
    """The training step of `configs/fmnist_kshot.py` at K = ``k`` dictionaries (alternation
    from step 0: no warm-up), or at K = 1 the one-shot baseline of the K-shot ablation (a
    uniform single path, ``benchmarks/kshot_ablation.py``), or with ``alternation`` K-shot's
    alternation at K = 1 (`KShotAlternationAtK1`); see `config_step`."""
    from configs import fmnist_kshot

    config = fmnist_kshot.get_config()
    config.supernet.num_kernels = k
    config.train.kshot.warmup_epochs = 0.0
    if k == 1:
        config.train.scheme = "uniform"
    if alternation:
        paths = config.train.kshot.num_paths
        return config_step(config, name, lambda space: KShotAlternationAtK1(space, paths))
    return config_step(config, name)


def scheme_configs() -> dict:
    """The steps `bench_schemes` compares: the sandwich rule (`configs/fmnist_ranking.py`)
    and seed paper 001's three stages (`configs/fmnist_aps.py`, ``fmnist_cpt.py``,
    ``fmnist_sse.py``: 4 paths; 1 + 10 pool paths; 1 + 7 pool paths and a teacher)."""
    from configs import fmnist_aps
    from configs import fmnist_cpt
    from configs import fmnist_ranking
    from configs import fmnist_sse

    return {"sandwich": fmnist_ranking.get_config(), "aps": fmnist_aps.get_config(),
            "cpt": fmnist_cpt.get_config(), "sse": fmnist_sse.get_config()}


def bench_schemes(steps):
    """Cost per step of APS (4 paths), CPT (11 paths) and SSE (8 paths and a teacher
    forward) against the sandwich rule (4 members), same batch, steps alternating in one
    process; medians over ``steps`` rounds after 3 warm-up steps (SCHEMES.md §3.8 "Cost":
    CPT's 11 and SSE's 8 passes make about 3x APS's cost per epoch)."""
    names = list(scheme_configs())
    print("| space | batch | " + " | ".join(f"{n} (ms)" for n in names) + " | "
          + " | ".join(f"{n} / sandwich" for n in names[1:]) + " |")
    print("|---|---|" + "---|" * (2 * len(names) - 1))
    for name in SETTINGS:
        fns = {}
        for scheme, config in scheme_configs().items():
            fns[scheme], _ = config_step(config, name)
            for _ in range(3):
                fns[scheme]()
        t = alternating_medians(fns, steps)
        print(f"| {name} | {SETTINGS[name][0]} | "
              + " | ".join(f"{t[n] * 1e3:.1f}" for n in names) + " | "
              + " | ".join(f"{t[n] / t['sandwich']:.2f}" for n in names[1:]) + " |",
              flush=True)


def bench_kernels(steps):
    """K-shot's cost (seed paper 004, Table 1: +4% at K = 8 over K = 1): the training step
    at K = 8 and K = 2 against two K = 1 baselines, same batch.

    K-shot alternates a supernet step and a simplex step (m paths on b/m images each); the
    members of the off kind are skipped (`Member.skip_at_zero_weight`), so a step runs one
    kind. Each cell gives the supernet step, the simplex step and their mean (the cost of a
    step over training). The baselines: ``one-shot``, the uniform single path (the K = 1
    arm of ``benchmarks/kshot_ablation.py``), whose "two kinds" are two identical steps;
    and ``K=1 alternation`` (`KShotAlternationAtK1`), the same alternation at K = 1, which
    is what Table 1's K = 1 column times. K = 8 against the alternation at K = 1 is what
    the dictionaries cost (Table 1's question); against one-shot, what the whole method
    costs, simplex steps included. The steps of the four alternate in one process (this
    host is shared), each trainer's two kinds in turn; medians over ``steps`` rounds, after
    2 warm-up steps each (both kinds traced). Each one's peak RSS is measured first, in its
    own process (4 steps)."""
    kinds = ("1", "1alt", "2", "8")
    print("| space | batch | K=1 one-shot (ms) | K=1 alternation supernet / simplex / mean "
          "(ms) | K=2 supernet / simplex / mean (ms) | K=8 supernet / simplex / mean (ms) | "
          "K=8 / K=1 alternation | K=8 / one-shot | K=8 / K=2 | params K=1 / K=8 | "
          "peak RSS MiB K=1 / K=1 alt. / K=2 / K=8 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    # Memory first, while this process is small: Linux carries a parent's peak RSS over
    # fork + exec into the child's ru_maxrss.
    peaks = {}
    for name in SETTINGS:
        for k in kinds:
            out = subprocess.run(
                [sys.executable, __file__, "--memory-child", f"kshot{k}", "--space", name,
                 "--steps", "4", f"--share-traces={SHARE_TRACES[0]}"],
                check=True, capture_output=True, text=True,
            ).stdout.split()
            peaks.setdefault(name, []).append(float(out[-1]))
    for name in SETTINGS:
        fns, params = {}, {}
        for k in kinds:
            step, params[k] = _kshot_kind(name, k)
            for _ in range(2):
                step()
            # Steps 2, 4, ... are supernet steps, 3, 5, ... simplex steps (no warm-up).
            fns[(k, "supernet")] = fns[(k, "simplex")] = step
        t = alternating_medians(fns, steps)
        mean = {k: (t[(k, "supernet")] + t[(k, "simplex")]) / 2 for k in kinds}

        cell = {k: " / ".join(f"{v * 1e3:.1f}" for v in
                              (t[(k, "supernet")], t[(k, "simplex")], mean[k])) for k in kinds}
        print(
            f"| {name} | {SETTINGS[name][0]} | {mean['1'] * 1e3:.1f} | {cell['1alt']} | "
            f"{cell['2']} | {cell['8']} | {mean['8'] / mean['1alt']:.2f} | "
            f"{mean['8'] / mean['1']:.2f} | {mean['8'] / mean['2']:.2f} | "
            f"{params['1']:,} / {params['8']:,} | "
            f"{' / '.join(f'{p:.0f}' for p in peaks[name])} |",
            flush=True,
        )


def _kshot_kind(name, kind: str):
    """`kshot_trainer` of a `bench_kernels` kind: "1", "1alt", "2", "8"."""
    if kind == "1alt":
        return kshot_trainer(name, 1, alternation=True)
    return kshot_trainer(name, int(kind))


def bench_precision(steps):
    """The sandwich step in float32 against mixed_bfloat16 (and float16), in one process.

    Both trainers are built and traced first; then their steps alternate, so that both
    precisions see the same machine load (this host is shared).
    """
    policies = ("float32", "mixed_bfloat16")
    print("| space | batch | px | " + " | ".join(f"{p} (ms)" for p in policies)
          + " | bf16 / fp32 |")
    print("|---|---|---|" + "---|" * len(policies) + "---|")
    for name, (batch, size) in SETTINGS.items():
        space = ss.get_space(name)
        images, labels = data(space, batch, size)
        randoms = space.sample_many(2, seed=1)
        steps_fn = {}
        for policy in policies:
            with precision.policy_scope(policy):
                keras.utils.set_random_seed(0)
                net = supernet_lib.Supernet(name)
                net.build()
                trainer = trainer_lib.SupernetTrainer(
                    net, FixedSandwich(space, randoms), share_traces=SHARE_TRACES[0]
                )
                trainer.compile(optimizer=sgd(), jit_compile=False)
                trainer.optimizer.build(net.trainable_variables)
            step = tf.function(trainer.train_step, jit_compile=False)
            batch_data = (images, labels)
            steps_fn[policy] = lambda step=step, d=batch_data: step(d)["loss"].numpy()
            for _ in range(3):  # trace and warm up
                steps_fn[policy]()
        by_policy = alternating_medians({p: steps_fn[p] for p in policies}, steps)
        medians = [by_policy[p] for p in policies]
        print(
            f"| {name} | {batch} | {size} | "
            + " | ".join(f"{m * 1e3:.1f}" for m in medians)
            + f" | {medians[1] / medians[0]:.2f} |"
        )


def _rss_mib() -> float:
    """The process's current resident memory (Linux /proc)."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def memory_child(kind, name, steps):
    batch, size = SETTINGS[name]
    space = ss.get_space(name)
    images, labels = data(space, batch, size)
    if kind.startswith("kshot"):
        run, _ = _kshot_kind(name, kind[len("kshot"):])
        built = _rss_mib()
        tensors_built = _tensor_memory_mib()["built"]
    elif kind in ("sandwich", "overlap"):
        net = supernet_lib.Supernet(name)
        net.build()
        trainer = trainer_lib.SupernetTrainer(
            net, schemes.SandwichScheme(space), sequential=kind == "sandwich",
            share_traces=SHARE_TRACES[0],
        )
        trainer.compile(optimizer=sgd(), jit_compile=False)
        trainer.optimizer.build(net.trainable_variables)
        step = tf.function(trainer.train_step, jit_compile=False)
        built = _rss_mib()
        tensors_built = _tensor_memory_mib()["built"]
        run = lambda: step((images, labels))  # noqa: E731
    else:
        model = static.build_static_model(space, space.largest(), image_size=size)
        fn = static_step_fn(model, images, labels)
        built = _rss_mib()
        tensors_built = _tensor_memory_mib()["built"]
        run = fn
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The step time beside the memory: the median of the steps after the first (tracing).
    ms = statistics.median(times[1:] or times) * 1e3
    print(ms, tensors_built, _tensor_memory_mib()["peak"], built, peak)


def _tensor_memory_mib() -> dict:
    """TensorFlow's own count of the CPU tensors' bytes (current and peak, MiB): only with
    ``TF_CPU_ALLOCATOR_USE_BFC=true``; NaN otherwise."""
    try:
        info = tf.config.experimental.get_memory_info("CPU:0")
    except ValueError:
        return {"built": float("nan"), "peak": float("nan")}
    return {"built": info["current"] / 2**20, "peak": info["peak"] / 2**20}


def bench_memory(steps, spaces=None):
    """Peak RSS and its growth over the built state (weights, optimizer slots, data):
    ``sandwich`` runs its members one after another (the default), ``overlap`` lets the
    runtime overlap them (``SupernetTrainer(sequential=False)``), ``plain`` trains the
    largest plain model. Each cell ends with the child's median step time after its first
    step (the memory children run one after another; on a shared host, time the steps with
    ``--bench=sandwich``, which alternates nothing but measures in one process)."""
    kinds = ("sandwich", "overlap", "plain")
    print("| space | " + " | ".join(f"{k}: built / peak / growth (MiB), step" for k in kinds)
          + " |")
    print("|---|" + "---|" * len(kinds))
    for name in spaces or SETTINGS:
        cells = []
        for kind in kinds:
            env = dict(os.environ)  # e.g. LD_PRELOAD of another malloc reaches the children
            if TENSOR_STATS[0]:
                env["TF_CPU_ALLOCATOR_USE_BFC"] = "true"
            out = subprocess.run(
                [sys.executable, __file__, "--memory-child", kind, "--space", name,
                 "--steps", str(steps), "--precision", keras.config.dtype_policy().name,
                 "--grappler", GRAPPLER[0], f"--share-traces={SHARE_TRACES[0]}"],
                check=True, capture_output=True, text=True, env=env,
            ).stdout.split()
            ms, t_built, t_peak, built, peak = (float(x) for x in out[-5:])
            cell = f"{built:.0f} / {peak:.0f} / {peak - built:.0f}, {ms:.0f} ms"
            if TENSOR_STATS[0]:
                cell += f" (tensors {t_built:.0f} / {t_peak:.0f} / {t_peak - t_built:.0f})"
            cells.append(cell)
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--bench",
        choices=["step", "sandwich", "memory", "precision", "copies", "kernels", "schemes"],
        default="step",
    )
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--memory-child",
                        choices=["sandwich", "overlap", "plain", "kshot1", "kshot1alt", "kshot2",
                                 "kshot8"])
    parser.add_argument("--space", default="fmnist")
    parser.add_argument("--precision", choices=precision.POLICIES, default="float32")
    parser.add_argument("--grappler", choices=["tfnas", "tf"], default="tfnas")
    parser.add_argument("--share-traces", choices=["True", "False"], default="True")
    parser.add_argument(
        "--tensor-stats", action="store_true",
        help="memory: also TensorFlow's count of the tensors' bytes (children run with "
        "TF_CPU_ALLOCATOR_USE_BFC=true, TF's GPU allocator on the CPU)",
    )
    parser.add_argument(
        "--spaces", default=",".join(SETTINGS), help="comma-separated spaces to benchmark"
    )
    args = parser.parse_args()
    precision.apply_policy(args.precision)
    GRAPPLER[0] = args.grappler
    TENSOR_STATS[0] = args.tensor_stats
    SHARE_TRACES[0] = args.share_traces == "True"
    if args.grappler == "tfnas":
        grappler.apply(grappler.DEFAULTS)
    for name in list(SETTINGS):
        if name not in args.spaces.split(","):
            del SETTINGS[name]
    print(f"precision: {args.precision}, grappler: {args.grappler}, "
          f"share_traces: {SHARE_TRACES[0]}")
    if args.memory_child:
        memory_child(args.memory_child, args.space, args.steps)
        return
    benches = dict(
        step=bench_step, sandwich=bench_sandwich, memory=bench_memory, precision=bench_precision,
        copies=bench_copies, kernels=bench_kernels, schemes=bench_schemes,
    )
    benches[args.bench](args.steps)


if __name__ == "__main__":
    main()

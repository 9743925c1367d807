"""K-shot supernets trained in alternation with their simplex-net (seed paper 004, Alg. 1-2).

Usage (``bin/train --stage=oneshot`` with ``--config.train.scheme=kshot`` and
``--config.supernet.num_kernels=K`` > 1; fields in ``config.train.kshot``, see
`validate_config`; ``configs/fmnist_kshot.py`` is a ready config)::

    scheme = schemes.build_scheme(config, steps_per_epoch)
    trainer = SupernetTrainer(supernet, scheme, ...)
    trainer.compile(optimizer=..., group_optimizers=kshot.group_optimizers(config, steps))

Every convolution holds K weight dictionaries merged per arch by the simplex code
``lambda = pi(a)`` of the `tfnas.elastic.SimplexNet` (seed paper 004 §2.2, §3). The steps:

- **Warm-up** (``warmup_epochs`` = T_w): every step trains the supernet at the uniform code
  1/K (Alg. 1), exactly: the code is selected, not computed by the simplex-net.
- **Then alternate** (Alg. 2, App. F; by step parity after the warm-up):

  - *supernet step* (Eq. 9): the simplex-net frozen, its code detached; the members of
    ``supernet_step``: ``single_path`` (the paper: one uniform path on the labels, with
    weight decay) or ``sandwich`` (largest on the labels, smallest and
    ``train.num_random_subnets`` random ones distilled from it: *not* in the paper, SCHEMES.md
    §5.8 "K-shot + sandwich" -- a new method, labelled so).
  - *simplex step* (Eq. 8): the supernet frozen; ``num_paths`` (m) paths, path j on the j-th
    of m slices of the batch (b/m images), each with its live code, gradients to the
    simplex-net only; plus ``alpha * r_c`` (Eq. 15-17, `contrastive_regularizer`).

  The two kinds of members are in every step; the off kind has loss weight 0, so its
  gradient is exactly 0 and `tfnas.optimizers.LazySGD` leaves its whole variable group
  (momentum included) bitwise as it was -- no ``tf.cond`` around an update (TF_NOTES.md).
  Every member is ``skip_at_zero_weight``: the off kind's forward and backward do not run
  (a ``tf.cond`` around the member's computation only), so a step costs one kind's
  compute, not both kinds'. (Table 1's +4% is K = 8 against the same alternation at K =
  1; ``benchmarks/train_step.py --bench=kernels`` measures both that and one-shot.) The m
  simplex paths are not ``sequential``: they run alongside each other (their activations
  together are one batch's), which saves the per-path wait of m small members.

The m paths are m/2 pairs: each pair shares its resolution and depths (the paper's "same
architecture", §4) and draws its widths independently, so r_c has same-architecture
width pairs to compare (SCHEMES.md §5.8 suggestion).

**r_c and the engine.** r_c is a loss on the codes of the m paths, not on any member's
logits, so no member target expresses it. `KShotScheme.group_losses` returns it as
``{"simplex": fn}``, and `tfnas.trainer.SupernetTrainer.train_step` adds its gradient to the
simplex group's. ``alpha=0`` gives the ablation row "+ channel branch" without r_c.

**Merged-weight learning rate** (SCHEMES.md §0.1 item 8, §5.8). A dictionary merge moves
the merged kernel by ``lr * |lambda|^2 * g``: lr/K at the uniform code, and K independently
drawn dictionaries merged uniformly have 1/K of one kernel's initial variance. Decision:
*no compensation* in this scheme, which is the paper's setting (its remedy is "more epochs
for larger K", §5.3, Fig. 7), so the K sweep measures the method as published. A
compensation needs two things the scheme does not own: a per-*variable* learning-rate
multiplier (`Scheme.lr_multipliers` scales per weight copy and location, BN and classifier
included, so a factor K there would also speed up the non-merged variables) and a
``sqrt(K)`` init scale in `tfnas.elastic.ElasticConv2D`. Both are recorded as follow-ups.
Measured (``benchmarks/kshot_ablation.py``, arm ``lr_k``: the whole supernet's learning rate
x K = 4, the closest available knob): mean subnet accuracy 0.814 against 0.765, Kendall tau
+0.087 against +0.012, paired difference +0.075 [-0.215, +0.363] (p = 0.60, n = 40): the
compensation recovers accuracy but changes the ranking by less than the noise, so the
default stays as published.
"""

from __future__ import annotations

import keras
import ml_collections
import tensorflow as tf

from tfnas import config_checks
from tfnas import optimizers as optimizers_lib
from tfnas import sampling
from tfnas import search_space as ss
from tfnas.schemes.base import SUPERNET_GROUP
from tfnas.schemes.base import Member
from tfnas.schemes.base import Scheme
from tfnas.schemes.base import Untracked

SIMPLEX_GROUP = "simplex"
SUPERNET_STEPS = ("single_path", "sandwich")
# The simplex step's paths take member seeds from here on (the supernet step's members
# take 0..num_random+1), so the two kinds never share a draw.
PATH_SEED_OFFSET = sampling.MAX_MEMBERS // 2

# The defaults of ``config.train.kshot`` (`tfnas.config_lib.base_config`).
DEFAULTS = dict(
    warmup_epochs=1.0,
    supernet_step="single_path",
    num_paths=4,
    learning_rate=0.01,
    momentum=0.9,
    nesterov=True,
    alpha=1.0,
    temperature=0.3,
    distance_threshold=2.25,
)


# ---------------------------------------------------------------------- the regularizer

def width_distance(archs) -> tf.Tensor:
    """float32 [n, n]: the l1 distance of the width digits of two archs, per active digit.

    ``d(c_i, c_k) = sum_p |c_i[p] - c_k[p]| / #{p active in c_i or c_k}`` over the width
    positions (stem to the last slot; an inactive slot is 0). Dividing by the active count
    keeps one threshold meaningful for shallow and deep archs; for two independent uniform
    widths it is about 16/7 = 2.29 (the mean of ``|u - v|`` for u, v uniform on 1..7).
    """
    widths = tf.cast(tf.convert_to_tensor(archs)[:, ss.STEM_POS :], tf.float32)
    diff = tf.reduce_sum(tf.abs(widths[:, None, :] - widths[None, :, :]), axis=-1)
    active = tf.cast((widths[:, None, :] > 0) | (widths[None, :, :] > 0), tf.float32)
    return diff / tf.maximum(tf.reduce_sum(active, axis=-1), 1.0)


def contrastive_regularizer(codes, archs, temperature=0.3, threshold=2.25) -> tf.Tensor:
    """r_c, the contrastive regularizer on width codes (seed paper 004 §4, Eq. 15-16).

    For an anchor i and a positive k -- another arch with the same resolution and depths
    (the paper's "same architecture") whose `width_distance` is below ``threshold`` (the
    paper's m) -- ``-log P(c_i | c_k)`` with

        P(c_i | c_k) = exp(l_i.l_k / tau) / sum_{j != i} exp(l_i.l_j / tau)

    over the n codes of the batch: the standard InfoNCE, the positive once in the
    denominator (SCHEMES.md §5.2, §5.8: Eq. 15 as printed counts it twice and the anchor
    itself). r_c is the mean over all positive (i, k) pairs, 0 when there is none.

    Args:
      codes: float [n, K] simplex codes (live: the gradient reaches the simplex-net).
      archs: int32 [n, 52] the archs of the codes.
      temperature: tau (the paper: 0.3).
      threshold: the width-distance threshold.
    """
    # float32 for float32 and mixed-policy (float16/bfloat16) codes, float64 for float64
    # ones: r_c is a group loss, added to the members' losses in their dtype.
    dtype = tf.float64 if codes.dtype == tf.float64 else tf.float32
    codes = tf.cast(codes, dtype)
    archs = tf.convert_to_tensor(archs)
    n = tf.shape(codes)[0]
    heads = archs[:, : ss.STEM_POS]
    same = tf.reduce_all(tf.equal(heads[:, None, :], heads[None, :, :]), axis=-1)
    others = ~tf.eye(n, dtype=tf.bool)
    positive = same & others & (width_distance(archs) < threshold)
    logits = tf.matmul(codes, codes, transpose_b=True) / temperature
    masked = tf.where(others, logits, tf.fill(tf.shape(logits), tf.constant(-1e9, dtype)))
    log_p = logits - tf.reduce_logsumexp(masked, axis=1, keepdims=True)
    weights = tf.cast(positive, dtype)
    count = tf.reduce_sum(weights)
    return tf.math.divide_no_nan(-tf.reduce_sum(weights * log_p), count)


# --------------------------------------------------------------------------- the scheme

def same_depth_arch(anchor, seed, space: ss.SearchSpace, bounds: ss.Bounds | None = None):
    """An arch with ``anchor``'s resolution and depths and freshly drawn widths.

    The widths are uniform in the (bounded) digit ranges, from the stateless ``seed``, so
    the simplex step's pairs are a pure function of (seed, step) like every member.
    """
    bounds = bounds or ss.FULL_BOUNDS
    parts = sampling._bounded_parts(seed, space, *sampling.bounds_tensors(bounds))
    _, _, stem, outs, mids = parts
    anchor = tf.convert_to_tensor(anchor)
    depths = anchor[ss.DEPTH_POS[0] : ss.DEPTH_POS[-1] + 1]
    return sampling._assemble(anchor[ss.RES_POS], depths, stem, outs, mids)


class KShotScheme(Scheme):
    """K-shot NAS: warm-up at the uniform code, then supernet and simplex steps alternate.

    See the module docstring for the algorithm. The scheme needs a supernet with
    ``num_kernels`` > 1 and `tfnas.optimizers.LazySGD` for both groups (an all-zero group
    gradient must leave the group untouched).

    Args:
      space, seed, bounds: see `Scheme`.
      warmup_steps: steps at the uniform code (T_w epochs x steps per epoch).
      supernet_step: one of `SUPERNET_STEPS`.
      num_paths: m, the simplex step's paths (even: m/2 same-depth pairs), each on b/m
        images; the per-replica batch must be divisible by it.
      num_random: random members of a ``sandwich`` supernet step.
      dropout: dropout of the supernet step's labelled member.
      alpha, temperature, distance_threshold: r_c's weight, tau and threshold.
    """

    scheme_name = "kshot"

    def __init__(
        self,
        space,
        seed=0,
        bounds=None,
        warmup_steps=0,
        supernet_step=DEFAULTS["supernet_step"],
        num_paths=DEFAULTS["num_paths"],
        num_random=2,
        dropout=0.0,
        alpha=DEFAULTS["alpha"],
        temperature=DEFAULTS["temperature"],
        distance_threshold=DEFAULTS["distance_threshold"],
        **kwargs,
    ):
        super().__init__(space, seed, bounds, **kwargs)
        if supernet_step not in SUPERNET_STEPS:
            raise ValueError(
                f"KShotScheme: supernet_step={supernet_step!r}; expected one of "
                f"{', '.join(SUPERNET_STEPS)}. Set --config.train.kshot.supernet_step."
            )
        if num_paths < 2 or num_paths % 2:
            raise ValueError(
                f"KShotScheme: num_paths={num_paths}; expected an even number >= 2 (m/2 "
                "same-depth pairs for r_c). Set --config.train.kshot.num_paths."
            )
        if not 0 <= num_random < PATH_SEED_OFFSET - 2:
            raise ValueError(
                f"KShotScheme: num_random={num_random}; expected 0..{PATH_SEED_OFFSET - 3}. "
                "Set --config.train.num_random_subnets."
            )
        self.warmup_steps = int(warmup_steps)
        self.supernet_step = supernet_step
        self.num_paths = int(num_paths)
        self.num_random = int(num_random)
        self.dropout = float(dropout)
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.distance_threshold = float(distance_threshold)
        self._largest = sampling.constant_arch(self.space.largest())
        self._smallest = sampling.constant_arch(self.space.smallest(bounds))
        # The supernet whose simplex-net computes the codes, bound by `variable_groups`
        # (the trainer calls it once, at construction). Untracked: the trainer saves the
        # supernet; the scheme must not save it a second time.
        self._net = Untracked(None)

    # -- the phase -----------------------------------------------------------------------

    def phase(self, step):
        """(warm, simplex): bool scalars -- in the warm-up; a simplex step (Alg. 2)."""
        step = tf.cast(step, tf.int64)
        warm = step < self.warmup_steps
        odd = tf.equal(tf.math.floormod(step - self.warmup_steps, 2), 1)
        return warm, tf.logical_and(tf.logical_not(warm), odd)

    def step_weights(self, step):
        """(supernet step weight, simplex step weight): float32 0/1, summing to 1.

        Not named ``weights``: that is Keras's `Layer.weights` property, which the
        trainer's ``weights`` (and ``fit``'s last call, ``trainable_weights``) reads from
        every sublayer, the scheme included.
        """
        _, simplex = self.phase(step)
        w = tf.cast(simplex, tf.float32)
        return 1.0 - w, w

    # -- codes ---------------------------------------------------------------------------

    def _net_or_fail(self):
        if self._net.value is None:
            raise ValueError(
                "KShotScheme has no supernet yet: call scheme.variable_groups(supernet) "
                "(SupernetTrainer does) before asking for codes."
            )
        return self._net.value

    def supernet_code(self, step, arch):
        """The supernet step's code of ``arch``: 1/K (exactly) in the warm-up, then the
        simplex-net's code, detached (Eq. 9: the simplex-net is frozen)."""
        net = self._net_or_fail()
        code = tf.stop_gradient(net.mix(arch))
        k = net.num_kernels
        uniform = tf.fill([k], tf.cast(1.0 / k, code.dtype))
        warm, _ = self.phase(step)
        return tf.where(warm, uniform, code)

    def path_archs(self, step) -> tf.Tensor:
        """int32 [m, 52]: the simplex step's paths, m/2 pairs sharing resolution and depths."""
        archs = []
        for i in range(self.num_paths // 2):
            anchor = self.sample(step, PATH_SEED_OFFSET + 2 * i)
            seed = sampling.member_seed(self.seed, step, PATH_SEED_OFFSET + 2 * i + 1)
            archs += [anchor, same_depth_arch(anchor, seed, self.space, self.bounds)]
        return tf.stack(archs)

    def regularizer(self, step) -> tf.Tensor:
        """alpha * r_c of the step's paths (live codes), times the simplex step's weight."""
        net = self._net_or_fail()
        archs = self.path_archs(step)
        codes = net.simplex_net(net.encode(archs))
        r_c = contrastive_regularizer(codes, archs, self.temperature, self.distance_threshold)
        return self.alpha * tf.cast(self.step_weights(step)[1], r_c.dtype) * r_c

    # -- the scheme contract -------------------------------------------------------------

    def _code(self, step, arch):
        # Before the trainer binds the supernet (its first members() call checks names and
        # targets only) the member carries the warm-up's string code.
        return "uniform" if self._net.value is None else self.supernet_code(step, arch)

    def members(self, step):
        w_net, w_simplex = self.step_weights(step)
        if self.supernet_step == "single_path":
            arch = self.sample(step, 0)
            members = [
                Member("path", arch, "labels", False, self.dropout, True, w_net,
                       mix=self._code(step, arch), skip_at_zero_weight=True),
            ]
        else:
            members = [
                Member("largest", self._largest, "labels", True, self.dropout, True, w_net,
                       mix=self._code(step, self._largest), skip_at_zero_weight=True),
                Member("smallest", self._smallest, "teacher", weight=w_net,
                       mix=self._code(step, self._smallest), skip_at_zero_weight=True),
            ]
            for k in range(self.num_random):
                arch = self.sample(step, k)
                members.append(Member(f"random{k + 1}", arch, "teacher", weight=w_net,
                                      mix=self._code(step, arch), skip_at_zero_weight=True))
        archs = self.path_archs(step)
        for j in range(self.num_paths):
            # mix=None: the trainer runs the simplex-net inside the member's tape, so the
            # gradient reaches it; trains only the simplex group (Eq. 8: supernet frozen).
            members.append(
                Member(f"simplex{j + 1}", archs[j], "labels", weight=w_simplex,
                       batch_slice=(j, self.num_paths), mix=None, trains=(SIMPLEX_GROUP,),
                       skip_at_zero_weight=True, sequential=False)
            )
        return members

    def variable_groups(self, supernet):
        if supernet.simplex_net is None:
            raise ValueError(
                f"The kshot scheme needs K > 1 weight dictionaries, received a supernet with "
                f"num_kernels={supernet.num_kernels}. Set --config.supernet.num_kernels=4 "
                "(or another K > 1)."
            )
        self._net.value = supernet
        simplex = {id(v) for v in supernet.simplex_net.trainable_variables}
        return {
            SUPERNET_GROUP: [v for v in supernet.trainable_variables if id(v) not in simplex],
            SIMPLEX_GROUP: list(supernet.simplex_net.trainable_variables),
        }

    def group_losses(self, step) -> dict:
        """{group: zero-argument loss function} added to a group's loss (the engine hook
        this scheme needs for r_c; see the module docstring)."""
        return {SIMPLEX_GROUP: lambda: self.regularizer(step)}

    def get_config(self):
        config = super().get_config()
        config.update(
            warmup_steps=self.warmup_steps,
            supernet_step=self.supernet_step,
            num_paths=self.num_paths,
            num_random=self.num_random,
            dropout=self.dropout,
            alpha=self.alpha,
            temperature=self.temperature,
            distance_threshold=self.distance_threshold,
        )
        return config


# --------------------------------------------------------------- config and optimizers

def _steps_per_epoch(config, steps_per_epoch):
    if steps_per_epoch is None:
        steps_per_epoch = int(config.train.steps_per_epoch)
        if steps_per_epoch < 1:
            raise ValueError(
                "The kshot scheme needs the steps per epoch for its warm-up: received "
                "steps_per_epoch=None and config.train.steps_per_epoch=0 (one pass). Pass "
                "build_scheme(config, steps_per_epoch=...) or set "
                "--config.train.steps_per_epoch."
            )
    return int(steps_per_epoch)


def _check_lazy(config):
    if not config.train.lazy_updates:
        raise ValueError(
            "The kshot scheme alternates its two variable groups by zero gradients, which "
            "only tfnas.optimizers.LazySGD skips; received config.train.lazy_updates=False "
            "(Keras's SGD would keep moving the frozen group with its momentum). Set "
            "--config.train.lazy_updates=True."
        )


def scheme_from_config(config, space, seed, dropout, bounds, steps_per_epoch=None, **common):
    """The `KShotScheme` of an experiment config (`tfnas.schemes.build_scheme` calls it;
    ``common``: the `Scheme` arguments every scheme takes, e.g. ``phase_bounds``)."""
    _check_lazy(config)
    section = config.train.kshot
    steps = _steps_per_epoch(config, steps_per_epoch)
    return KShotScheme(
        space,
        seed,
        bounds,
        warmup_steps=int(round(section.warmup_epochs * steps)),
        supernet_step=section.supernet_step,
        num_paths=section.num_paths,
        num_random=config.train.num_random_subnets,
        dropout=dropout,
        alpha=section.alpha,
        temperature=section.temperature,
        distance_threshold=section.distance_threshold,
        **common,
    )


def simplex_optimizer(section, epochs: int, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The simplex-net's own optimizer: `tfnas.optimizers.LazySGD` with ``section``'s
    ``learning_rate``, ``momentum`` and ``nesterov``, cosine-decayed over the run without a
    warm-up ramp (its own warm-up is T_w: it gets no gradient before). The KU code uses a
    second SGD with the supernet's recipe (SCHEMES.md §5.4); the paper does not say. No
    weight decay: the trainer's L2 never covers the simplex-net."""
    recipe = ml_collections.ConfigDict(
        dict(
            learning_rate=section.learning_rate,
            epochs=epochs,
            warmup_epochs=0.0,
            momentum=section.momentum,
            nesterov=section.nesterov,
        )
    )
    return optimizers_lib.make_optimizer(recipe, steps_per_epoch, lazy=True)


def group_optimizers(config, steps_per_epoch: int) -> dict:
    """``SupernetTrainer.compile``'s ``group_optimizers`` for ``config``: ``{"simplex":
    optimizer}`` for the kshot scheme, ``{}`` for every other scheme."""
    if config.train.scheme != KShotScheme.scheme_name:
        return {}
    _check_lazy(config)
    return {
        SIMPLEX_GROUP: simplex_optimizer(
            config.train.kshot, int(config.train.epochs), int(steps_per_epoch)
        )
    }


def validate_config(section, batch_size=None, epochs=None) -> None:
    """Checks ``config.train.kshot``, the K-shot scheme's fields (``train.scheme=kshot``).

    Fields (defaults: `DEFAULTS`; the module docstring explains each mechanism):

    - ``warmup_epochs`` (>= 0, at most ``train.epochs``): T_w, epochs at the uniform
      code (the paper: 5 of 120); equal to ``train.epochs``: lambda = 1/K fixed for the
      whole run, the simplex-net never trains (the ablation row of Table 5).
    - ``supernet_step``: ``single_path`` (the paper) or ``sandwich`` (a new combination).
    - ``num_paths``: m, the simplex step's paths (even, >= 2; the paper: 16), each on b/m
      images: ``train.batch_size`` must be divisible by it (per replica as well).
    - ``learning_rate`` (> 0), ``momentum`` in [0, 1), ``nesterov`` (bool): the simplex-net's
      SGD (`simplex_optimizer`).
    - ``alpha`` (>= 0): r_c's weight (the paper: 1); ``temperature`` (> 0): tau (0.3);
      ``distance_threshold`` (> 0): the width distance below which two same-depth paths are
      positives (`width_distance`; about 2.29 for two independent uniform widths).

    Args:
      section: ``config.train.kshot``.
      batch_size, epochs: ``config.train``'s, for the cross-field checks (None: skipped).

    Raises:
      ValueError: naming ``config.train.kshot.<field>``, the value, what is expected and how
        to fix it; also for a missing or unknown field.
    """
    fields = config_checks.Section(
        section, "train.kshot", tuple(DEFAULTS), owner="tfnas.schemes.kshot.validate_config"
    )
    warmup = fields.number("warmup_epochs", 0.0)
    # warmup_epochs == epochs is allowed: the whole run at lambda = 1/K, the ablation row
    # "K-shot with fixed lambda" (seed paper 004 Table 5); beyond it is a typo.
    if epochs is not None and warmup > epochs:
        raise fields.fail(
            "warmup_epochs",
            warmup,
            f"at most config.train.epochs={epochs} (the alternation follows the warm-up; "
            "equal: lambda = 1/K for the whole run)",
            "lower --config.train.kshot.warmup_epochs or raise --config.train.epochs",
        )
    fields.choice("supernet_step", SUPERNET_STEPS)
    paths = fields.integer("num_paths", 2, PATH_SEED_OFFSET // 2)
    if paths % 2:
        raise fields.fail(
            "num_paths", paths, "an even number (m/2 same-depth pairs for r_c)",
            "set --config.train.kshot.num_paths to an even number",
        )
    if batch_size is not None and batch_size % paths:
        raise fields.fail(
            "num_paths",
            paths,
            f"a divisor of config.train.batch_size={batch_size} (each path gets b/m images)",
            "change --config.train.kshot.num_paths or --config.train.batch_size",
        )
    fields.number("learning_rate", 0.0, low_open=True)
    fields.number("momentum", 0.0, 1.0, high_open=True)
    fields.boolean("nesterov")
    fields.number("alpha", 0.0)
    fields.number("temperature", 0.0, low_open=True)
    fields.number("distance_threshold", 0.0, low_open=True)

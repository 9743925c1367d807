"""Zero-cost proxies: scores of an arch's plain model at initialization, and in-graph priors.

A zero-cost proxy ranks archs without training them (SCHEMES.md §4.4; the zero-shot rows
of seed paper 003, Fig. 1). Each model proxy is a function ``proxy(model, batch, **options)
-> float`` of a Keras model and one batch ``(images, labels)``, higher = better, so it can
be tried on a hand-made model::

    from tfnas import proxies, static

    model = static.build_static_model("fmnist", code)     # fresh initialization
    proxies.snip(model, (images, labels))                 # or grad_norm, grasp, naswot ...
    proxies.synflow(model, (images, labels))              # uses only the images' shape
    proxies.zen(model, (images, labels), repeats=4, gamma=0.01, seed=0)

`score_arch` computes the configured proxies of one arch on its static model
(`tfnas.static.build_static_model`) under a fixed seed, for the ``proxies`` stage;
`proxy_batch` draws the fixed batch of a config. FLOPs and params come from the search space.

The in-graph priors `flops_tensor` and `params_tensor` are TF functions of int32 ``[..., 52]``
digit tensors, equal to `SearchSpace.flops` / `SearchSpace.params` (SCHEMES.md §7.1 L): a
ranking term inside a train step orders its subnets by them without leaving the graph.

Conventions shared by the model proxies (SCHEMES.md §4.4):

- the weights scored are the kernels of every convolution and dense layer (not biases or
  BN), each proxy summing its per-weight array over all of them (the plain sum, not
  PicoNAS's 2024 depth weighting);
- the loss is the mean sparse softmax cross-entropy of the logits;
- BN runs in training mode (batch statistics), as the PyTorch reference code does on a
  freshly built (train-mode) network. Calling a proxy may therefore update the model's BN
  moving statistics; the trainable weights are never changed.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfnas import search_space as ss

__all__ = [
    "MODEL_PROXIES",
    "PROXIES",
    "fingerprint",
    "flops_tensor",
    "grad_norm",
    "grasp",
    "naswot",
    "params_tensor",
    "proxy_batch",
    "score_arch",
    "snip",
    "synflow",
    "validate_config",
    "zen",
    "zen_once",
]

# Bump when a proxy's definition changes: scores of another version must not mix (the
# stage's fingerprint includes it).
VERSION = 1


# ------------------------------------------------------------------------ in-graph priors


def _cost_tensors(space: ss.SearchSpace | str, digits) -> tuple[tf.Tensor, tf.Tensor]:
    """(flops, params) int64 [...] of int32 [..., 52] digits: `SearchSpace._compute_cost`
    with gathers on the width table instead of Python loops over the blocks."""
    space = ss.get_space(space)
    d = tf.convert_to_tensor(digits)
    if d.dtype not in (tf.int32, tf.int64) or d.shape.rank is None or d.shape[-1] != 52:
        raise ValueError(
            f"digits must be an int32 tensor [..., {ss.CODE_LENGTH}] (one row per arch, e.g. "
            f"tf.constant(arch.digits())); received {d.dtype.name} of shape {d.shape}"
        )
    d = tf.cast(d, tf.int64)
    table = tf.constant(space.width_table(), tf.int64)  # [5, 7]

    def width(row: int, digit):
        # Inactive slots hold digit 0; clamp the gather, their terms are masked out below.
        return tf.gather(table[row], tf.maximum(digit - 1, 0))

    # Spatial sizes per resolution index: [stem, stage 1..4] (padding "same").
    sizes = [space._spatial(r + 1) for r in range(len(space.resolutions))]
    spatial = tf.constant([[stem, *stages] for stem, stages in sizes], tf.int64)
    hw = tf.gather(spatial, d[..., ss.RES_POS] - 1)
    k = 7 if space.imagenet_stem else 3
    c = width(0, d[..., ss.STEM_POS])
    flops = hw[..., 0] ** 2 * (k * k * space.in_channels) * c
    params = k * k * space.in_channels * c + 4 * c
    for i in range(ss.NUM_STAGES):
        blocks = ss.MAX_DEPTHS[i]
        out = width(i + 1, d[..., ss.slot_positions(i, 0)[1]])
        hw2 = hw[..., 1 + i] ** 2
        mid_pos = [ss.slot_positions(i, b)[0] for b in range(blocks)]
        mids = width(i + 1, tf.gather(d, mid_pos, axis=-1))  # [..., blocks]
        active = tf.cast(tf.range(blocks, dtype=tf.int64) < d[..., 1 + i, None], tf.int64)
        # Block 1 sees the previous width and projects where stride or width changes
        # (block 1 of stages 2-4; in stage 1 only if the width differed, never for a valid code).
        project = tf.ones_like(c) if i > 0 else tf.cast(c != out, tf.int64)
        m = mids[..., 0]
        w = 9 * c * m + 9 * m * out + project * c * out
        params += w + 4 * m + 4 * out + project * 4 * out
        flops += hw2 * w
        rest = mids[..., 1:] * active[..., 1:]
        w = 18 * out[..., None] * rest
        params += tf.reduce_sum(w + 4 * rest + 4 * out[..., None] * active[..., 1:], axis=-1)
        flops += hw2 * tf.reduce_sum(w, axis=-1)
        c = out
    flops += c * space.num_classes
    params += c * space.num_classes + space.num_classes
    return flops, params


def flops_tensor(space: ss.SearchSpace | str, digits) -> tf.Tensor:
    """Multiply-accumulates of archs given as digits, in-graph: int64 ``[...]``.

    Args:
      space: the `SearchSpace` (or its name) whose codes ``digits`` holds.
      digits: int32 ``[..., 52]`` valid codes (e.g. a sampler's output, or a batch of them).

    Returns:
      ``space.flops(arch)`` of each row (the same convention: conv and dense MACs at the
      arch's resolution), computed with gathers on ``space.width_table()``; usable inside
      ``tf.function``, e.g. as the FLOPs teacher of a ranking term (SCHEMES.md §4.1, §7.4).
    """
    return _cost_tensors(space, digits)[0]


def params_tensor(space: ss.SearchSpace | str, digits) -> tf.Tensor:
    """Parameter counts of archs given as digits, in-graph: int64 ``[...]``, equal to
    ``space.params(arch)`` (``count_params()`` of the static model); see `flops_tensor`."""
    return _cost_tensors(space, digits)[1]


# --------------------------------------------------------------------------- model proxies


def _kernels(model: keras.Model) -> list:
    """The kernel variables of every convolution and dense layer of ``model``."""
    kinds = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense)
    kernels = [layer.kernel for layer in model.layers if isinstance(layer, kinds)]
    if not kernels:
        raise ValueError(
            f"model {model.name!r} has no Conv or Dense layer: a zero-cost proxy scores their "
            "kernels; pass a functional model of Conv2D/Dense layers (tfnas.static models are)"
        )
    return kernels


def _unpack(batch) -> tuple[tf.Tensor, tf.Tensor]:
    try:
        images, labels = batch
    except (TypeError, ValueError):
        raise ValueError(
            f"batch must be a pair (images, labels); received {type(batch).__name__}"
        ) from None
    return tf.convert_to_tensor(images, tf.float32), tf.convert_to_tensor(labels, tf.int32)


def _loss(model: keras.Model, images, labels) -> tf.Tensor:
    logits = model(images, training=True)
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )


def _gradients(model: keras.Model, batch) -> tuple[list, list]:
    images, labels = _unpack(batch)
    kernels = _kernels(model)
    with tf.GradientTape() as tape:
        loss = _loss(model, images, labels)
    return kernels, tape.gradient(loss, kernels)


def grad_norm(model: keras.Model, batch) -> float:
    """``sum_l ||dL/dW_l||_F``: the Frobenius norm of each kernel's gradient, summed.

    Args:
      model: a Keras model mapping images to logits (e.g. a fresh static model).
      batch: ``(images, labels)``.
    """
    _, grads = _gradients(model, batch)
    return float(tf.add_n([tf.norm(g) for g in grads]))


def snip(model: keras.Model, batch) -> float:
    """SNIP (Lee et al. 2019): ``sum |W * dL/dW|`` over every kernel weight.

    The gradient of the loss with respect to a multiplicative mask fixed at 1 is
    ``W * dL/dW``, so this is the saliency of every connection, summed (SCHEMES.md §4.4).
    Arguments as `grad_norm`.
    """
    kernels, grads = _gradients(model, batch)
    return float(tf.add_n([tf.reduce_sum(tf.abs(w * g)) for w, g in zip(kernels, grads)]))


class _ExactBatchNorm(keras.layers.BatchNormalization):
    """Training-mode BN whose batch variance keeps its path through the batch mean.

    Keras's ``moments`` computes the variance with the mean under ``stop_gradient``, which
    is exact for first derivatives but drops a term of the second: GraSP's Hessian-gradient
    product of the layers before a BN came out 3-5% off central finite differences with it,
    and matches them with this layer (``tests/test_proxies.py``).
    """

    def call(self, inputs, training=None, mask=None):
        if not training:
            return super().call(inputs, training=training, mask=mask)
        rank = len(inputs.shape)
        axes = [i for i in range(rank) if i != self.axis % rank]
        shape = [1] * rank
        shape[self.axis % rank] = inputs.shape[self.axis]
        mean = tf.reduce_mean(inputs, axes, keepdims=True)
        variance = tf.reduce_mean(tf.square(inputs - mean), axes, keepdims=True)
        outputs = (inputs - mean) * tf.math.rsqrt(variance + self.epsilon)
        if self.scale:
            outputs *= tf.reshape(tf.cast(self.gamma, outputs.dtype), shape)
        if self.center:
            outputs += tf.reshape(tf.cast(self.beta, outputs.dtype), shape)
        return outputs


def _same_layer_kind(layer):
    if isinstance(layer, keras.layers.BatchNormalization):
        return _ExactBatchNorm.from_config(layer.get_config())
    return layer.__class__.from_config(layer.get_config())


def _copy(model: keras.Model, transform=None, **clone_kwargs) -> keras.Model:
    """`keras.models.clone_model(model, **clone_kwargs)` carrying ``model``'s weights (each
    through ``transform``), matched by layer name; ``model`` is not changed."""
    copy = keras.models.clone_model(model, **clone_kwargs)
    for layer in copy.layers:
        if layer.weights:
            weights = model.get_layer(layer.name).get_weights()
            layer.set_weights([transform(w) for w in weights] if transform else weights)
    return copy


def grasp(model: keras.Model, batch) -> float:
    """GraSP (Wang et al. 2020): ``-sum W * (H g)`` with ``g = dL/dW``.

    ``H g`` is a Hessian-gradient product by double backpropagation:
    ``d/dW <stop_gradient(g), dL/dW>``. The leading minus sign is kept, as in the PicoNAS and
    zero-cost-NAS code (SCHEMES.md §4.4). It is computed on a copy of ``model`` whose BN
    layers differentiate exactly to second order (`_ExactBatchNorm`). Arguments as
    `grad_norm`.
    """
    images, labels = _unpack(batch)
    copy = _copy(model, clone_function=_same_layer_kind)
    kernels = _kernels(copy)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            loss = _loss(copy, images, labels)
        grads = inner.gradient(loss, kernels)
        dot = tf.add_n([tf.reduce_sum(tf.stop_gradient(g) * g) for g in grads])
    hg = outer.gradient(dot, kernels)
    # A kernel with no second-order path to the loss has H g = 0.
    hg = [tf.zeros_like(w) if h is None else h for w, h in zip(kernels, hg)]
    return float(-tf.add_n([tf.reduce_sum(w * h) for w, h in zip(kernels, hg)]))


def _float64_layer(layer):
    config = layer.get_config()
    config["dtype"] = "float64"
    return layer.__class__.from_config(config)


def _skip_batch_norm(layer, *args, **kwargs):
    if isinstance(layer, keras.layers.BatchNormalization):
        return args[0]
    return layer(*args, **kwargs)


def synflow(model: keras.Model, batch=None) -> float:
    """SynFlow (Tanaka et al. 2020): ``sum |W * dR/dW|``, ``R`` = the sum of the outputs of
    the model with every parameter replaced by its absolute value, fed one all-ones input.

    As in SCHEMES.md §4.4: BN is removed (every BatchNormalization is the identity) and the
    network runs in float64: the products of |W| over the layers reach 1e50 on the fmnist
    space, past float32's 3e38. Labels and data are not used: ``batch`` is ignored (it may be
    None; the input shape is the model's), so the score is the same for every batch.
    ``model`` is left untouched: the score is computed on a float64 copy.
    """
    del batch  # SynFlow is data-free.
    (source,) = model.inputs
    inputs = keras.Input(batch_shape=source.shape, dtype="float64", name=source.name)
    copy = _copy(
        model,
        lambda w: np.abs(w).astype(np.float64),
        input_tensors=inputs,
        clone_function=_float64_layer,
        call_function=_skip_batch_norm,
    )
    kernels = _kernels(copy)
    ones = tf.ones([1, *source.shape[1:]], tf.float64)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(copy(ones, training=False))
    grads = tape.gradient(total, kernels)
    return float(tf.add_n([tf.reduce_sum(tf.abs(w * g)) for w, g in zip(kernels, grads)]))


def _relu_layers(model: keras.Model) -> list:
    relus = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.ReLU) or (
            isinstance(layer, keras.layers.Activation)
            and getattr(layer.activation, "__name__", "") == "relu"
        ):
            relus.append(layer)
    if not relus:
        raise ValueError(
            f"model {model.name!r} has no ReLU layer (keras.layers.ReLU or Activation('relu')): "
            "NASWOT reads the activation pattern of each ReLU's input"
        )
    return relus


def naswot(model: keras.Model, batch) -> float:
    """NASWOT (Mellor et al. 2021): ``log |det K_H|`` of the ReLU agreement kernel.

    For every ReLU layer, each image gets the binary code ``c = [pre-activation > 0]`` of
    all its units (flattened); ``K_H[i, j]`` counts the units, over every ReLU, on which
    images i and j agree (``C C^T + (1 - C)(1 - C)^T`` summed over the layers). Labels are
    not used. Two images with identical codes make ``K_H`` singular: the score is then -inf.

    Args:
      model: a Keras model whose ReLUs are ``keras.layers.ReLU`` (or Activation('relu'))
        layers, as in the static models.
      batch: ``(images, labels)`` with at least 2 images.
    """
    images, _ = _unpack(batch)
    if images.shape[0] is not None and images.shape[0] < 2:
        raise ValueError(
            f"NASWOT compares images pairwise: the batch needs at least 2 images, received "
            f"{images.shape[0]}; raise config.proxies.batch_size"
        )
    taps = keras.Model(model.inputs, [layer.input for layer in _relu_layers(model)])
    kernel = 0.0
    for pre in taps(images, training=True):
        # Counts of up to millions of units: exact in float64.
        codes = tf.cast(tf.reshape(pre, [tf.shape(pre)[0], -1]) > 0, tf.float64)
        kernel += tf.matmul(codes, codes, transpose_b=True)
        kernel += tf.matmul(1.0 - codes, 1.0 - codes, transpose_b=True)
    sign, logdet = tf.linalg.slogdet(kernel)
    return float(logdet) if float(sign) != 0.0 else -math.inf


def _zen_probe(model: keras.Model) -> keras.Model:
    """A copy of ``model`` for Zen: no residual shortcuts, no head, BN inputs as outputs.

    The head is everything from the first GlobalAveragePooling2D on (the model's output when
    it has none). A residual ``Add`` is replaced by its first input, the residual branch (the
    static models add ``[branch, shortcut]``), so the shortcut (with its projection) drops
    out of the graph. The copy carries ``model``'s weights; outputs: ``[features, input of
    each BN layer]``.
    """
    pools = [y for y in model.layers if isinstance(y, keras.layers.GlobalAveragePooling2D)]
    trunk = keras.Model(model.inputs, pools[0].input if pools else model.outputs[0])

    def call(layer, *args, **kwargs):
        if isinstance(layer, keras.layers.Add):
            return args[0][0]
        return layer(*args, **kwargs)

    copy = _copy(trunk, call_function=call)
    norms = [y for y in copy.layers if isinstance(y, keras.layers.BatchNormalization)]
    return keras.Model(copy.inputs, [copy.outputs[0], *[y.input for y in norms]])


def _zen_outputs(probe: keras.Model, images) -> list:
    outputs = probe(images, training=True)
    # A model of one output (no BN layer) returns a tensor, not a list.
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _zen_value(probe: keras.Model, images, noise, gamma: float) -> float:
    features = _zen_outputs(probe, images)[0]
    mixed = _zen_outputs(probe, images + gamma * noise)
    delta = tf.reduce_mean(
        tf.reduce_sum(tf.abs(features - mixed[0]), axis=list(range(1, features.shape.rank)))
    )
    # Zen-NAS's BN term from the formula: the channel mean of each BN input's *batch*
    # variance in the mixup forward. The reference code (R3 compute_zen_score.py, after
    # Alibaba's) reads BN's running variance after two forwards instead, which with torch's
    # momentum 0.1 is still mostly its initial 1 (SCHEMES.md §4.4, "Zen pitfall").
    log_scale = 0.0
    for x in mixed[1:]:
        variance = tf.math.reduce_variance(x, axis=list(range(x.shape.rank - 1)))
        log_scale += 0.5 * tf.math.log(tf.reduce_mean(tf.cast(variance, tf.float64)))
    return float(tf.math.log(tf.cast(delta, tf.float64)) + log_scale)


def zen_once(model: keras.Model, images, noise, gamma: float = 0.01) -> float:
    """One Zen-score term with ``model``'s own weights and given inputs (no re-initialization).

    ``log(Delta) + sum_BN log sqrt(mean_c sigma^2)``, where ``Delta = mean_n sum_{c,h,w}
    |f(x) - f(x + gamma * noise)|`` and ``f`` is ``model`` without residual shortcuts and
    head (`_zen_probe`), BN in training mode, and ``sigma^2`` each BN input's batch variance
    per channel in the forward of ``x + gamma * noise`` (SCHEMES.md §4.4).

    Args:
      model: a Keras model (e.g. a static model, or a hand-made one).
      images, noise: float32 tensors of the model's input shape.
      gamma: the perturbation scale.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    noise = tf.convert_to_tensor(noise, tf.float32)
    return _zen_value(_zen_probe(model), images, noise, gamma)


def _gaussian_init(model: keras.Model, generator: tf.random.Generator) -> None:
    """Zen-NAS's initialization: conv and dense kernels N(0, 1), biases 0, BN scale 1 and
    shift 0 (statistics are not used in training mode)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.gamma.assign(tf.ones_like(layer.gamma))
            layer.beta.assign(tf.zeros_like(layer.beta))
        elif hasattr(layer, "kernel"):
            layer.kernel.assign(generator.normal(layer.kernel.shape, dtype=layer.kernel.dtype))
            if getattr(layer, "bias", None) is not None:
                layer.bias.assign(tf.zeros_like(layer.bias))


def zen(
    model: keras.Model, batch, *, repeats: int = 4, gamma: float = 0.01, seed: int = 0
) -> float:
    """Zen-score (Lin et al. 2021; SCHEMES.md §4.4), the mean of ``repeats`` `zen_once` terms.

    Each repeat re-initializes the copy's weights (`_gaussian_init`) and draws standard
    normal images and noise of the batch's shape, all from ``(seed, repeat)``: the score
    depends on the architecture and the seed only, not on ``model``'s weights or on the
    data (only the batch's shape is used). ``model`` is left untouched.

    Args:
      model: a Keras model (shortcuts and head are removed on a copy).
      batch: ``(images, labels)``; only ``images.shape`` is used.
      repeats: terms averaged (R3 uses 32 at batch 16).
      gamma: the perturbation scale (0.01 in Zen-NAS and R3).
      seed: seeds the weights and inputs of every repeat.
    """
    images, _ = _unpack(batch)
    probe = _zen_probe(model)
    values = []
    for r in range(int(repeats)):
        generator = tf.random.Generator.from_seed(int(seed) * 100_003 + r)
        _gaussian_init(probe, generator)
        x = generator.normal(images.shape)
        noise = generator.normal(images.shape)
        values.append(_zen_value(probe, x, noise, gamma))
    return float(np.mean(values))


# ------------------------------------------------------------------------ scoring an arch

# name -> function(model, batch, **options); FLOPs and params need no model.
_MODEL_PROXY_FNS: dict[str, Callable[..., float]] = {
    "grad_norm": grad_norm,
    "snip": snip,
    "grasp": grasp,
    "synflow": synflow,
    "naswot": naswot,
    "zen": zen,
}
MODEL_PROXIES = tuple(_MODEL_PROXY_FNS)
PROXIES = ("flops", "params", *MODEL_PROXIES)


def score_arch(
    space: ss.SearchSpace | str,
    arch: ss.Arch | str,
    batch,
    names: Sequence[str] = PROXIES,
    *,
    seed: int = 0,
    zen_repeats: int = 4,
    zen_gamma: float = 0.01,
) -> tuple[dict[str, float | None], dict[str, float]]:
    """The proxies ``names`` of one arch, on its static model built under ``seed``.

    The model is built after `keras.utils.set_random_seed(seed)`, so an arch's scores do not
    depend on which archs were scored before it (resume and shards agree). Images of another
    size than the arch's resolution are resized to it.

    Returns:
      ``(scores, seconds)``: ``{name: value}`` (a non-finite value, e.g. NASWOT's -inf on a
      singular kernel, is None) and ``{"build" and each name: wall-clock seconds}``.
    """
    space = ss.get_space(space)
    arch = space.parse(arch if isinstance(arch, str) else arch.code)
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise ValueError(f"unknown proxies {unknown}; known: {', '.join(PROXIES)}")
    scores: dict[str, float | None] = {}
    seconds: dict[str, float] = {}
    model = None
    if any(n in _MODEL_PROXY_FNS for n in names):
        start = time.perf_counter()
        keras.utils.set_random_seed(int(seed))
        from tfnas import static  # deferred: static imports the layers only stages need

        model = static.build_static_model(space, arch)
        size = space.resolution(arch)
        images, labels = _unpack(batch)
        if images.shape[1] != size or images.shape[2] != size:
            images = tf.image.resize(images, (size, size))
        batch = (images, labels)
        seconds["build"] = time.perf_counter() - start
    for name in names:
        start = time.perf_counter()
        if name == "flops":
            value = float(space.flops(arch))
        elif name == "params":
            value = float(space.params(arch))
        elif name == "zen":
            value = zen(model, batch, repeats=zen_repeats, gamma=zen_gamma, seed=seed)
        else:
            value = _MODEL_PROXY_FNS[name](model, batch)
        scores[name] = value if math.isfinite(value) else None
        seconds[name] = time.perf_counter() - start
    return scores, seconds


def proxy_batch(config) -> tuple[tf.Tensor, tf.Tensor]:
    """The fixed batch of ``config.proxies``: ``batch_size`` images of ``split``, drawn
    without augmentation in an order shuffled by ``seed`` (the same for every arch)."""
    from tfnas import data as data_lib

    section = config.proxies
    dataset = data_lib.build_dataset(
        config.data,
        section.split,
        int(section.batch_size),
        training=False,
        shuffle=True,
        seed=int(section.seed),
        repeat=False,
        drop_remainder=True,
    )
    for images, labels in dataset.take(1):
        return images, labels
    raise ValueError(
        f"config.proxies.batch_size={section.batch_size} is larger than the "
        f"{section.split!r} split; lower it or pick another config.proxies.split"
    )


def fingerprint(config) -> str:
    """16 hex digits of SHA-256 over what decides a proxy score: the ``proxies`` section
    (except ``log_every``), the data section, the space and `VERSION`. Rows of another
    fingerprint must not be mixed with this run's."""
    section = {k: v for k, v in config.proxies.to_dict().items() if k != "log_every"}
    spec = {"version": VERSION, "space": config.space, "proxies": section}
    spec["data"] = config.data.to_dict()
    text = json.dumps(spec, sort_keys=True, default=str).encode()
    return hashlib.sha256(text).hexdigest()[:16]


# -------------------------------------------------------------------- the config section

CONFIG_FIELDS = ("names", "batch_size", "split", "seed", "zen_repeats", "zen_gamma", "log_every")


def validate_config(section, *, holdout_size: int) -> None:
    """Checks the ``proxies`` section of an experiment config (`tfnas.config_lib`).

    Fields (the ``proxies`` stage, `score_arch`):

    - ``names``: the proxies scored, a non-empty tuple of `PROXIES` names (``flops``,
      ``params``, ``grad_norm``, ``snip``, ``grasp``, ``synflow``, ``naswot``, ``zen``).
    - ``batch_size`` (int >= 2): images of the fixed batch (NASWOT compares them pairwise).
    - ``split``: the split it is drawn from, one of `tfnas.data.SPLITS`.
    - ``seed`` (int >= 0): seeds the batch's draw, every arch's initialization and Zen's
      Gaussian weights and inputs.
    - ``zen_repeats`` (int >= 1): Zen terms averaged per arch; ``zen_gamma`` (> 0): its
      perturbation scale.
    - ``log_every`` (int >= 1): print progress every so many archs.

    Args:
      section: ``config.proxies``.
      holdout_size: ``config.data.holdout_size``, to check the split.

    Raises:
      ValueError: naming ``config.proxies.<field>``, the value, what is expected and how to
        fix it; also for a missing or unknown field.
    """
    from tfnas import config_checks
    from tfnas import evaluation

    fields = config_checks.Section(
        section, "proxies", CONFIG_FIELDS, owner="tfnas.proxies.validate_config"
    )
    names = fields["names"]
    if (
        not isinstance(names, (tuple, list))
        or not names
        or any(n not in PROXIES for n in names)
        or len(set(names)) != len(names)
    ):
        raise fields.fail(
            "names",
            names,
            f"a non-empty tuple of distinct proxy names from {', '.join(PROXIES)}",
            "fix it with e.g. --config.proxies.names='(\"snip\", \"zen\")' or in the config file",
        )
    fields.integer("batch_size", 2)
    evaluation.check_split(fields, "split", holdout_size)
    fields.integer("seed", 0)
    fields.integer("zen_repeats", 1)
    fields.number("zen_gamma", 0.0, low_open=True)
    fields.integer("log_every", 1)

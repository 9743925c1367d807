"""Plain (static) Keras models of single archs, and subnet extraction from a supernet.

Usage::

    from tfnas import search_space as ss
    from tfnas import static

    space = ss.get_space("fmnist")
    model = static.build_static_model(space, space.largest())          # or a code string
    assert model.count_params() == space.params(space.largest())
    logits = model(images)                                           # [batch, num_classes]

The layer names follow `docs/DESIGN.md` ("Static model naming"); the supernet uses the same
names for its elastic sublayers so that `extract_subnet` can copy weights by name.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfnas import search_space as ss

# BN settings of every static model (DESIGN.md): torch's defaults in Keras terms
# (Keras momentum = 1 - torch momentum).
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def _conv(filters: int, kernel: int, stride: int, name: str) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=name
    )


def _bn(name: str, gamma_initializer="ones") -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(
        epsilon=BN_EPSILON, momentum=BN_MOMENTUM, gamma_initializer=gamma_initializer, name=name
    )


def build_static_model(
    space: ss.SearchSpace | str,
    arch: ss.Arch | str,
    *,
    dropout: float = 0.0,
    name: str | None = None,
    image_size: int | None = None,
    zero_init_residual: bool = False,
) -> keras.Model:
    """Builds the plain functional Keras model of one arch (stock layers only).

    Args:
        space: the `SearchSpace` (or its registered name).
        arch: an `Arch` or a 52-digit code (validated against ``space``).
        dropout: dropout rate before the classifier; the ``dropout`` layer exists only when
            it is > 0.
        name: model name; defaults to ``"{space.name}_{code}"``.
        image_size: input height and width; defaults to the arch's resolution. The network
            is fully convolutional, so another size (e.g. ImageNet at 64 px for tests and
            benchmarks) changes FLOPs but not the weights.
        zero_init_residual: initialize the scale of each residual branch's last BN
            (``bn2``) to zero, so every block starts as the identity (Goyal et al. 2017,
            §5.1; the same trick the supernet uses, BigNAS §3.2). Stand-alone ground-truth
            training turns it on with ``standalone.zero_init_residual``.

    Returns:
        A functional `keras.Model` (freshly initialised weights) mapping ``images`` of shape
        ``(H, W, in_channels)`` (H = W = ``image_size`` or the arch's resolution) to logits of shape
        ``(num_classes,)``; its ``count_params()`` equals ``space.params(arch)``.

    Raises:
        ValueError: for an invalid code or arch, or a dropout outside [0, 1).
    """
    space = ss.get_space(space)
    arch = space.parse(arch) if not isinstance(arch, ss.Arch) else space.parse(arch.code)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1); received {dropout}.")
    widths = space.widths(arch)
    size = image_size or space.resolutions[arch.resolution - 1]

    inputs = keras.Input((size, size, space.in_channels), name="images")
    # Stem: 7x7/2 + 3x3/2 max-pool on ImageNet, a 3x3/1 conv on small images.
    kernel, stride = (7, 2) if space.imagenet_stem else (3, 1)
    x = _conv(widths["stem"], kernel, stride, "stem_conv")(inputs)
    x = _bn("stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    if space.imagenet_stem:
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    channels = widths["stem"]

    for s in range(ss.NUM_STAGES):
        out = widths["outs"][s]
        for b, mid in enumerate(widths["mids"][s]):
            prefix = f"stage{s + 1}_block{b + 1}_"
            stride = 2 if b == 0 and s > 0 else 1
            y = _conv(mid, 3, stride, prefix + "conv1")(x)
            y = _bn(prefix + "bn1")(y)
            y = keras.layers.ReLU(name=prefix + "relu1")(y)
            y = _conv(out, 3, 1, prefix + "conv2")(y)
            y = _bn(prefix + "bn2", "zeros" if zero_init_residual else "ones")(y)
            # Identity shortcut only when the shape is unchanged; else a 1x1 projection.
            shortcut = x
            if stride != 1 or channels != out:
                shortcut = _conv(out, 1, stride, prefix + "shortcut_conv")(x)
                shortcut = _bn(prefix + "shortcut_bn")(shortcut)
            x = keras.layers.Add(name=prefix + "add")([y, shortcut])
            x = keras.layers.ReLU(name=prefix + "relu")(x)
            channels = out

    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(space.num_classes, name="classifier")(x)
    return keras.Model(inputs, outputs, name=name or f"{space.name}_{arch.code}")


# ------------------------------------------------------------------------------------------
# Subnet extraction from a supernet.
# ------------------------------------------------------------------------------------------


# -- extraction ---------------------------------------------------------------------------


def extract_subnet(supernet, arch, *, dropout=0.0, name=None, image_size=None) -> keras.Model:
    """A plain Keras model of ``arch`` carrying the supernet's weights for it.

    The result is built by `build_static_model` (stock Conv2D, BatchNormalization, Dense
    layers) and receives, layer by layer, the slices of the supernet's shared weights the
    subnet uses: the weight copy its routing selects, K-shot kernels already merged with
    its simplex code, and the BN moving statistics of its active channels. In inference
    mode its logits equal the supernet's for ``arch``.

    Args:
        supernet: a built `tfnas.supernet.Supernet`.
        arch: an `Arch` or a code of the supernet's space.
        dropout: dropout rate of the static model's head (training only).
        name: the model's name.
        image_size: input size of the model (default: the arch's resolution).
    """
    space = supernet.space
    if isinstance(arch, str):
        arch = space.parse(arch)
    model = build_static_model(space, arch, dropout=dropout, name=name, image_size=image_size)
    digits = tf.constant(arch.digits(), tf.int32)
    copies = [int(c) for c in supernet.copies(digits).numpy()]
    mix = supernet.mix(digits)
    widths = space.widths(arch)

    def conv(src, dst, cin, cout, copy):
        kernel = src.merged_kernel(cin, cout, copy, mix)
        model.get_layer(dst).set_weights([kernel.numpy()])

    def bn(src, dst, channels, copy):
        model.get_layer(dst).set_weights(
            [
                np.asarray(v)[copy, :channels]
                for v in (src.gamma, src.beta, src.moving_mean, src.moving_variance)
            ]
        )

    conv(supernet.stem_conv, "stem_conv", space.in_channels, widths["stem"], copies[0])
    bn(supernet.stem_bn, "stem_bn", widths["stem"], copies[0])
    in_width = widths["stem"]
    for s, stage in enumerate(supernet.stages):
        copy = copies[s + 1]
        out = widths["outs"][s]
        for b, mid in enumerate(widths["mids"][s]):
            block = stage.blocks[b]
            prefix = f"stage{s + 1}_block{b + 1}_"
            conv(block.conv1, prefix + "conv1", in_width, mid, copy)
            bn(block.bn1, prefix + "bn1", mid, copy)
            conv(block.conv2, prefix + "conv2", mid, out, copy)
            bn(block.bn2, prefix + "bn2", out, copy)
            if block.projection:
                conv(block.shortcut_conv, prefix + "shortcut_conv", in_width, out, copy)
                bn(block.shortcut_bn, prefix + "shortcut_bn", out, copy)
            in_width = out
    head = supernet.classifier
    model.get_layer("classifier").set_weights(
        [np.asarray(head.kernel)[copies[5], :in_width], np.asarray(head.bias)[copies[5]]]
    )
    return model

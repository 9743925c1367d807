"""The elastic ResNet48 supernet: one Keras model, one traced graph for every subnet.

Usage::

    from tfnas import supernet as supernet_lib
    net = supernet_lib.Supernet(space="fmnist")
    arch = supernet_lib.arch_tensor("1252233313...")        # int32 [52], the code's digits
    logits = net(images, arch=arch, training=False)

The arch enters ``call`` as an int32 tensor of the code's 52 digits. Widths, depths and the
per-stage weight source are decoded from it *inside* the graph with small lookup tables, so
a ``tf.function`` with a fixed input signature traces once for all archs.

Weight source per arch -- the one switch shared by the weight-sharing schemes:

* ``routing="shared"``: one copy of the weights (the one-shot supernet).
* ``routing="stage_width"``: each stage owns ``num_copies`` groups; the stage's ``out``
  width digit selects one (few-shot by group split, CVPR22 Track-1 4th place). The stem
  and stage 1 follow the stem digit, the classifier stage 4's ``out``.
* ``routing="depth34"``: ``num_copies`` sub-supernets keyed by the depths of stages 3 and 4
  (Sub-supernet Enhancing, CVPR22 Track-1 2nd place).

Kernel composition: with ``num_kernels=K > 1`` every convolution holds K dictionaries
merged by a per-arch simplex code from the `SimplexNet` (K-shot NAS, ICML 2021), or by
the ``mix`` passed to ``call``.
"""

from __future__ import annotations

import json
import os
import zipfile

import keras
import numpy as np
import tensorflow as tf

from tfnas import config_checks
from tfnas import elastic
from tfnas import search_space as ss

ROUTINGS = ("shared", "stage_width", "depth34")
# One copy index per weight location: stem, stages 1-4, classifier.
NUM_LOCATIONS = 6


def arch_tensor(arch, space: ss.SearchSpace | None = None) -> tf.Tensor:
    """The int32 [52] tensor of an arch's digits, from an `Arch`, a code or digits.

    A code string is validated (against ``space`` when given, else the space-independent
    rules); a tensor is passed through.
    """
    if isinstance(arch, tf.Tensor):
        if arch.shape.rank is not None and arch.shape != [ss.CODE_LENGTH]:
            raise ValueError(
                f"An arch tensor must hold the {ss.CODE_LENGTH} digits of a code, received "
                f"shape {arch.shape}. Use tfnas.supernet.arch_tensor(code)."
            )
        return tf.cast(arch, tf.int32)
    if isinstance(arch, str):
        arch = space.parse(arch) if space is not None else ss.Arch.from_code(arch)
    if isinstance(arch, ss.Arch):
        return tf.constant(arch.digits(), dtype=tf.int32)
    digits = np.asarray(arch)
    if digits.shape != (ss.CODE_LENGTH,):
        raise ValueError(
            f"An arch must be an Arch, a {ss.CODE_LENGTH}-digit code or {ss.CODE_LENGTH} "
            f"digits; received {type(arch).__name__} of shape {digits.shape}."
        )
    # Validate: an out-of-range digit would gather silently wrong widths on GPUs.
    code = "".join(str(int(d)) if 0 <= int(d) <= 9 else "?" for d in digits)
    arch = space.parse(code) if space is not None else ss.Arch.from_code(code)
    return tf.constant(arch.digits(), dtype=tf.int32)


def arch_tensors(archs, space: ss.SearchSpace | None = None) -> tf.Tensor:
    """int32 [N, 52] digits of several archs or codes."""
    return tf.stack([arch_tensor(a, space) for a in archs])


def routing_table(routing: str, num_copies: int) -> np.ndarray:
    """The lookup table from routing key to copy index.

    ``stage_width`` is keyed by a width digit (index 0..6): the digits are split into
    ``num_copies`` contiguous groups, widest first. ``depth34`` is keyed by
    ``(d3 - 2) * 4 + (d4 - 2)`` (28 pairs) split the same way. ``shared`` has one entry.
    """
    if routing not in ROUTINGS:
        raise ValueError(
            f"Unknown routing {routing!r}; expected one of {', '.join(ROUTINGS)}. Set "
            "--config.supernet.routing."
        )
    keys = {"shared": 1, "stage_width": 7, "depth34": 28}[routing]
    if routing == "shared" and num_copies != 1:
        raise ValueError(
            f"routing='shared' uses one weight copy, received num_copies={num_copies}. Use "
            "routing='stage_width' or 'depth34' for several copies, or num_copies=1."
        )
    if not 1 <= num_copies <= keys:
        raise ValueError(
            f"routing={routing!r} has {keys} keys, so num_copies must be in 1..{keys}; "
            f"received {num_copies}."
        )
    return (np.arange(keys) * num_copies // keys).astype(np.int32)


@keras.saving.register_keras_serializable(package="tfnas")
class Supernet(keras.Model):
    """The supernet of one search-space variant.

    Args:
        space: search-space variant name (`tfnas.search_space.SPACES`).
        num_copies: weight copies per location (groups or sub-supernets); 1 for one-shot.
        routing: how an arch selects its copy (`ROUTINGS`).
        num_kernels: K-shot dictionaries per convolution; 1 for one-shot.
        simplex_hidden: hidden width of the simplex-net (used when ``num_kernels > 1``).
        bn_momentum: running-statistics momentum during training (1.0: none, recalibrate).
        bn_epsilon: BN epsilon (1e-5, as the static model).
        zero_init_residual: start every residual branch at zero (BigNAS §3.2); the
            training configs turn it on (``supernet.zero_init_residual``).
    """

    def __init__(
        self,
        space="fmnist",
        num_copies=1,
        routing="shared",
        num_kernels=1,
        simplex_hidden=64,
        bn_momentum=1.0,
        bn_epsilon=1e-5,
        zero_init_residual=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.space_name = space
        self.space = ss.get_space(space)
        self.num_copies = num_copies
        self.routing = routing
        self.num_kernels = num_kernels
        self.simplex_hidden = simplex_hidden
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        self.zero_init_residual = bool(zero_init_residual)
        self._routing = routing_table(routing, num_copies)
        self._widths = self.space.width_table().astype(np.int32)

        sp = self.space
        widest = [int(self._widths[i].max()) for i in range(5)]
        conv = dict(num_copies=num_copies, num_kernels=num_kernels)
        bn = dict(num_copies=num_copies, momentum=bn_momentum, epsilon=bn_epsilon)
        stem_kernel, stem_stride = (7, 2) if sp.imagenet_stem else (3, 1)
        self.stem_conv = elastic.ElasticConv2D(
            sp.in_channels, widest[0], stem_kernel, stem_stride, name="stem_conv", **conv
        )
        self.stem_bn = elastic.ElasticBatchNorm(widest[0], name="stem_bn", **bn)
        self.stages = []
        in_channels = widest[0]
        for s in range(4):
            self.stages.append(
                elastic.ElasticStage(
                    in_channels,
                    widest[s + 1],
                    widest[s + 1],
                    ss.MIN_DEPTHS[s],
                    ss.MAX_DEPTHS[s],
                    strides=1 if s == 0 else 2,
                    bn_momentum=bn_momentum,
                    bn_epsilon=bn_epsilon,
                    zero_init_residual=zero_init_residual,
                    name=f"stage{s + 1}",
                    **conv,
                )
            )
            in_channels = widest[s + 1]
        self.classifier = elastic.ElasticDense(
            in_channels, sp.num_classes, num_copies=num_copies, name="classifier"
        )
        self.simplex_net = (
            elastic.SimplexNet(num_kernels, simplex_hidden, name="simplex_net")
            if num_kernels > 1
            else None
        )

    # -- building -----------------------------------------------------------------------

    def build(self, input_shape=None):
        for layer in [self.stem_conv, self.stem_bn, *self.stages, self.classifier]:
            layer.build()
        if self.simplex_net is not None:
            self.simplex_net.build((None, ss.CODE_LENGTH))
        self.built = True

    def input_shape_for(self, resolution_index: int = 1) -> tuple[int, int, int]:
        """(H, W, C) of the images for a resolution index of the space."""
        size = self.space.resolutions[resolution_index - 1]
        return (size, size, self.space.in_channels)

    # -- decoding an arch tensor --------------------------------------------------------

    def decode(self, arch) -> dict:
        """Widths, depths and copy indices of an int32 [52] arch, as tensors."""
        digits = tf.cast(arch, tf.int32)
        table = tf.constant(self._widths)
        # Inactive slots hold 0; clamp so that their (unused) widths stay valid indices.
        index = tf.maximum(digits - 1, 0)
        stages = []
        for s in range(4):
            first = 6 + 2 * ss.SLOT_OFFSETS[s]
            mid_index = index[first : first + 2 * ss.MAX_DEPTHS[s] : 2]
            stages.append(
                dict(
                    depth=digits[1 + s],
                    mids=tf.gather(table[s + 1], mid_index),
                    out=table[s + 1, index[first + 1]],
                )
            )
        return dict(stem=table[0, index[5]], stages=stages, copies=self.copies(digits))

    def copies(self, arch) -> tf.Tensor:
        """int32 [6]: the weight copy of the stem, stages 1-4 and classifier for ``arch``."""
        digits = tf.cast(arch, tf.int32)
        table = tf.constant(self._routing)
        if self.routing == "shared":
            return tf.zeros([NUM_LOCATIONS], tf.int32)
        if self.routing == "stage_width":
            outs = [digits[5]] + [digits[7 + 2 * ss.SLOT_OFFSETS[s]] for s in range(1, 4)]
            keys = tf.stack([outs[0], outs[0], outs[1], outs[2], outs[3], outs[3]]) - 1
            return tf.gather(table, keys)
        key = (digits[3] - 2) * 4 + (digits[4] - 2)
        return tf.fill([NUM_LOCATIONS], table[key])

    def encode(self, arch) -> tf.Tensor:
        """float [52] encoding of an arch for the simplex-net (digits / 7)."""
        return tf.cast(arch, self.compute_dtype) / 7.0

    def mix(self, arch):
        """The K-shot simplex code of ``arch`` (``None`` when K = 1)."""
        if self.simplex_net is None:
            return None
        return self.simplex_net(self.encode(arch)[None])[0]

    # -- the forward pass ---------------------------------------------------------------

    def call(self, images, arch, training=False, mix=None, dropout=0.0, bn_momentum=None):
        """Logits of the subnet ``arch`` for ``images``.

        Args:
            images: float [B, H, W, C], preprocessed as `tfnas.data` yields them.
            arch: int32 [52] digits of the code (`arch_tensor`).
            training: BN uses batch statistics (and dropout applies) when true.
            mix: optional K-shot simplex code, overriding the simplex-net.
            dropout: dropout rate before the classifier (training only).
            bn_momentum: optional momentum override for running-statistic updates (BN
                recalibration passes ``n / (n + 1)``).
        """
        arch = arch_tensor(arch, self.space)
        d = self.decode(arch)
        copies = d["copies"]
        if mix is None:
            mix = self.mix(arch)
        bn = dict(training=training, momentum=bn_momentum)
        x = self.stem_conv(images, filters=d["stem"], copy=copies[0], mix=mix)
        x = tf.nn.relu(self.stem_bn(x, copy=copies[0], **bn))
        if self.space.imagenet_stem:
            x = tf.nn.max_pool2d(x, 3, 2, "SAME")
        for s, stage in enumerate(self.stages):
            st = d["stages"][s]
            x = stage(
                x,
                st["depth"],
                st["mids"],
                st["out"],
                copy=copies[s + 1],
                mix=mix,
                training=training,
                bn_momentum=bn_momentum,
            )
        x = tf.reduce_mean(x, axis=[1, 2])
        if training and dropout:
            x = tf.nn.dropout(x, rate=dropout)
        return self.classifier(x, copy=copies[5])

    def get_config(self):
        config = super().get_config()
        config.update(
            space=self.space_name,
            num_copies=self.num_copies,
            routing=self.routing,
            num_kernels=self.num_kernels,
            simplex_hidden=self.simplex_hidden,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            zero_init_residual=self.zero_init_residual,
        )
        return config


def build_supernet(supernet_config, space: str) -> Supernet:
    """Builds (and creates the weights of) the supernet a config section describes.

    This is the one place where config fields become layer arguments; the section's fields
    (see `validate_config`) are the `Supernet` arguments of the same names, plus
    ``dropout``, which the training scheme applies.
    """
    net = Supernet(
        space=space,
        num_copies=supernet_config.num_copies,
        routing=supernet_config.routing,
        num_kernels=supernet_config.num_kernels,
        simplex_hidden=supernet_config.simplex_hidden,
        bn_momentum=supernet_config.bn_momentum,
        bn_epsilon=supernet_config.bn_epsilon,
        zero_init_residual=supernet_config.zero_init_residual,
        name="supernet",
    )
    net.build()
    return net


# -------------------------------------------------------------------- the config section

# One name for the number of weight copies everywhere (config, layers, saved .keras files,
# export metadata): ``num_copies``. The few-shot paper calls the copies "groups", but in
# Keras `groups` means grouped convolution (Conv2D, GroupNormalization), and "copies" also
# covers the depth34 sub-supernets. K-shot NAS's K dictionaries merged per arch are another
# axis and keep their own name, ``num_kernels``. The config's names are the `Supernet`
# arguments'.
CONFIG_FIELDS = (
    "num_copies",
    "routing",
    "num_kernels",
    "simplex_hidden",
    "bn_momentum",
    "bn_epsilon",
    "zero_init_residual",
    "dropout",
)
# Old config names, so that an old config file is told the new one.
_RENAMED = {"groups": "num_copies", "kernels": "num_kernels"}


def validate_config(section) -> None:
    """Checks the ``supernet`` section of an experiment config (`tfnas.config_lib`).

    Fields (`build_supernet` passes all but ``dropout`` to `Supernet`):

    - ``num_copies``: weight copies per location (int >= 1; 1 for one-shot). Several copies
      need a ``routing`` that tells which subnets use which copy, and at most as many copies
      as it has keys (``stage_width`` 7, ``depth34`` 28; `routing_table`).
    - ``routing``: how an arch selects its copy, one of `ROUTINGS`: ``shared`` (one copy),
      ``stage_width`` (few-shot group split by each stage's out width), ``depth34``
      (sub-supernets keyed by the depths of stages 3 and 4).
    - ``num_kernels``: K-shot weight dictionaries per convolution (int >= 1; 1: none).
    - ``simplex_hidden``: hidden width of the simplex-net that merges them (int >= 1).
    - ``bn_momentum``: Keras BN momentum in [0, 1] during supernet training; 1.0 keeps the
      running statistics as they are (they are recalibrated per subnet before evaluation,
      as the CVPR22 teams did).
    - ``bn_epsilon``: BN epsilon, in (0, 1].
    - ``zero_init_residual``: the last BN of every residual branch starts with scale 0, so
      each block starts as its shortcut (BigNAS §3.2).
    - ``dropout``: rate in [0, 1) before the classifier, largest subnet only
      (`tfnas.schemes`).

    Raises:
      ValueError: naming ``config.supernet.<field>``, the value, what is expected and how
        to fix it; also for a missing or unknown field.
    """
    fields = config_checks.Section(
        section,
        "supernet",
        CONFIG_FIELDS,
        owner="tfnas.supernet.validate_config",
        renamed=_RENAMED,
    )
    num_copies = fields.integer("num_copies", 1)
    routing = fields.choice("routing", ROUTINGS)
    if routing == "shared" and num_copies != 1:
        raise fields.fail(
            "num_copies",
            num_copies,
            "1 with supernet.routing='shared' (one weight copy)",
            "set --config.supernet.routing=stage_width (or depth34) for several weight "
            "copies, or --config.supernet.num_copies=1",
        )
    keys = len(routing_table(routing, 1))
    if num_copies > keys:
        raise fields.fail(
            "num_copies",
            num_copies,
            f"at most {keys} with supernet.routing={routing!r} (it has {keys} keys to split "
            "between the copies)",
            f"lower --config.supernet.num_copies to {keys} or less",
        )
    fields.integer("num_kernels", 1)
    fields.integer("simplex_hidden", 1)
    fields.number("bn_momentum", 0.0, 1.0)
    fields.number("bn_epsilon", 0.0, 1.0, low_open=True)
    fields.boolean("zero_init_residual")
    fields.number("dropout", 0.0, 1.0, high_open=True)


def check_supernet_file(path, space: str, origin: str = "--config.evaluate.supernet") -> str:
    """Checks, without loading weights, that ``path`` is a saved tfnas supernet of ``space``.

    Reads the ``config.json`` inside the ``.keras`` zip, so a stage can check its input
    before it writes anything, and skip the load when it has nothing to do.

    Args:
      path: the ``.keras`` file.
      space: the config's search-space variant; a supernet of another space is refused
        before it meets data of the wrong shape.
      origin: where ``path`` came from, named in error messages.

    Returns:
      ``path`` as a string.

    Raises:
      ValueError: no such file, not a saved tfnas supernet, or one of another space.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise ValueError(
            f"supernet {path} (from {origin}) does not exist: train one with --stage=oneshot "
            "in this --workdir, or point the config at a supernet.keras file"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            saved = json.loads(archive.read("config.json"))
        name, saved_space = saved.get("registered_name"), saved["config"]["space"]
    except (OSError, zipfile.BadZipFile, KeyError, TypeError, json.JSONDecodeError):
        name = saved_space = None
    if name != "tfnas>Supernet":
        raise ValueError(
            f"{path} (from {origin}) is not a saved tfnas supernet; pass the supernet.keras "
            "written by --stage=oneshot"
        )
    if saved_space != space:
        raise ValueError(
            f"supernet {path} is of the {saved_space!r} space but config.space is {space!r}; "
            f"use the config it was trained with (e.g. --config.space={saved_space} and its "
            "dataset)"
        )
    return path


def load_supernet(path, space: str, origin: str = "--config.evaluate.supernet") -> Supernet:
    """`check_supernet_file`, then ``keras.saving.load_model``: the supernet, ready to score."""
    return keras.saving.load_model(check_supernet_file(path, space, origin))


def weight_arrays(path) -> dict[str, np.ndarray]:
    """Every array of a saved weights file, by its path in the file, to compare two runs.

    ``path`` is a ``.keras`` model (its ``model.weights.h5`` is read) or a ``.weights.h5``
    checkpoint (with the optimizer's variables).
    """
    import io

    import h5py

    path = str(path)
    source = path
    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as archive:
            source = io.BytesIO(archive.read("model.weights.h5"))
    arrays = {}
    with h5py.File(source, "r") as f:
        f.visititems(
            lambda name, obj: arrays.__setitem__(name, obj[()])
            if isinstance(obj, h5py.Dataset)
            else None
        )
    return arrays

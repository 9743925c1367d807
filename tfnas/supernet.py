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
* ``routing="stage_width_nested"``: the few-shot split as the 4th place coded it (seed paper
  000 §2.2; SCHEMES.md §2.1 step 6): keyed by each location's output *channel value*; at
  G = ``num_copies`` the G-1 widest distinct values own a copy each and the rest share one,
  so G -> G+1 splits exactly one value off (`nested_parent_map`). The stem keeps one copy.
* ``routing="depth34_table"``: explicit buckets of (d3, d4) pairs, one copy each, plus one
  copy for the pairs no bucket names (SSE, seed paper 001 §2.3; SCHEMES.md §3.1 step 8).

Every routing is data: an int32 table ``[6, keys]`` (`location_table`) from routing key to
copy index for each location (stem, stages 1-4, classifier), so each location has its own
number of copies (``copy_counts``); ``copies(arch)`` looks an arch up in it, in-graph.
Weights move between supernets of different routings with `tfnas.transfer`.

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

ROUTINGS = ("shared", "stage_width", "depth34", "stage_width_nested", "depth34_table")
# One copy index per weight location: stem, stages 1-4, classifier.
LOCATIONS = ("stem", "stage1", "stage2", "stage3", "stage4", "classifier")
NUM_LOCATIONS = len(LOCATIONS)
# What each routing reads from an arch, and how many values that key has: nothing; the out
# width digit of the location (7; the stem and stage 1 read the stem digit, the classifier
# stage 4's); or the pair (d3, d4) as (d3 - 2) * 4 + (d4 - 2) (28).
KEY_KINDS = {
    "shared": "none",
    "stage_width": "width",
    "stage_width_nested": "width",
    "depth34": "depth34",
    "depth34_table": "depth34",
}
NUM_KEYS = {"none": 1, "width": 7, "depth34": 28}
# The sub-supernet buckets of SSE (seed paper 001 §2.3; R2 get_supernet_idx, SCHEMES.md §3.1
# step 8): the "edges" of the (d3, d4) grid, one bucket each; the 10 other pairs share a
# fifth copy. Written d3 d4 as in R2's key strings.
SSE_BUCKETS = "22,23,24;32,42,52,62,72,82;83,84,85;25,35,45,55,65,75"


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
    """The lookup table from routing key to copy index of the routings split evenly.

    The same for every location (`location_table` holds one row per location).
    ``stage_width`` is keyed by a width digit (index 0..6): the digits are split into
    ``num_copies`` contiguous groups, widest first. ``depth34`` is keyed by
    ``(d3 - 2) * 4 + (d4 - 2)`` (28 pairs) split the same way. ``shared`` has one entry.
    """
    if routing not in ROUTINGS:
        raise ValueError(
            f"Unknown routing {routing!r}; expected one of {', '.join(ROUTINGS)}. Set "
            "--config.supernet.routing."
        )
    if routing not in ("shared", "stage_width", "depth34"):
        raise ValueError(
            f"routing={routing!r} depends on the space or on buckets and differs per "
            "location: use tfnas.supernet.location_table."
        )
    keys = NUM_KEYS[KEY_KINDS[routing]]
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


def depth34_key(d3: int, d4: int) -> int:
    """The routing key of the depths of stages 3 and 4: ``(d3 - 2) * 4 + (d4 - 2)``
    (ints, or int32 tensors inside the graph)."""
    return (d3 - ss.MIN_DEPTHS[2]) * (ss.MAX_DEPTHS[3] - ss.MIN_DEPTHS[3] + 1) + (
        d4 - ss.MIN_DEPTHS[3]
    )


def parse_rows(text: str, what: str) -> list[list[int]]:
    """``"0,1,1;0,2"`` -> ``[[0, 1, 1], [0, 2]]``: rows separated by ';', ints by ','.

    The config's notation for per-location tables, parent maps and depth buckets (strings,
    so that a command-line flag can set them).
    """
    rows = []
    for row in str(text).split(";"):
        try:
            rows.append([int(x) for x in row.split(",")])
        except ValueError:
            raise ValueError(
                f"{what}={text!r} is not rows of integers: expected e.g. '0,1,1;0,1' (rows "
                "separated by ';', integers by ',')"
            ) from None
    return rows


def parse_depth34_buckets(buckets) -> list[list[int]]:
    """The (d3, d4) buckets as lists of `depth34_key`s, checked.

    ``buckets``: a string in the config's notation (``"22,23,24;32,42"``: each pair written
    d3 d4, buckets separated by ';'), or a list of buckets of ``(d3, d4)`` pairs.
    """
    if isinstance(buckets, str):
        buckets = [
            [divmod(p, 10) for p in row] for row in parse_rows(buckets, "depth34_buckets")
        ]
    keys, seen = [], set()
    for bucket in buckets:
        row = []
        for pair in bucket:
            d3, d4 = (int(d) for d in pair)
            if not (
                ss.MIN_DEPTHS[2] <= d3 <= ss.MAX_DEPTHS[2]
                and ss.MIN_DEPTHS[3] <= d4 <= ss.MAX_DEPTHS[3]
            ):
                raise ValueError(
                    f"depth34_buckets: ({d3}, {d4}) is not a pair of depths of stages 3 and 4 "
                    f"(d3 in {ss.MIN_DEPTHS[2]}..{ss.MAX_DEPTHS[2]}, d4 in "
                    f"{ss.MIN_DEPTHS[3]}..{ss.MAX_DEPTHS[3]}); write each pair as d3 d4, e.g. "
                    f"'{SSE_BUCKETS}'"
                )
            if (d3, d4) in seen:
                raise ValueError(
                    f"depth34_buckets: the pair ({d3}, {d4}) is in two buckets; each pair "
                    "routes to one copy, so list it once"
                )
            seen.add((d3, d4))
            row.append(depth34_key(d3, d4))
        if not row:
            raise ValueError("depth34_buckets: a bucket is empty; give each bucket a pair")
        keys.append(row)
    if not keys:
        raise ValueError(
            f"depth34_buckets is empty; give at least one bucket, e.g. {SSE_BUCKETS!r}"
        )
    return keys


def _nested_width_row(widths: np.ndarray, num_copies: int) -> np.ndarray:
    """Copy per digit: the ``num_copies - 1`` widest distinct channel values own a copy each,
    the rest share the last (capped at the number of distinct values)."""
    distinct = sorted({int(w) for w in widths}, reverse=True)
    count = min(num_copies, len(distinct))
    return np.array([min(distinct.index(int(w)), count - 1) for w in widths], np.int32)


def location_table(
    routing: str,
    num_copies: int,
    space: ss.SearchSpace | str,
    *,
    depth34_buckets=None,
    split_stem: bool = False,
    table=None,
) -> np.ndarray:
    """int32 ``[6, keys]``: the copy of each location (stem, stages 1-4, classifier) by key.

    The key is the routing's (`KEY_KINDS`): nothing (``shared``); the location's out width
    digit minus 1 (``stage_width*``); `depth34_key` (``depth34*``). A location has
    ``table[location].max() + 1`` copies.

    * ``shared``, ``stage_width``, ``depth34``: every row is `routing_table` (as before: the
      stem is split too).
    * ``stage_width_nested``: keyed by the location's channel value (``space.width_table()``):
      at G = ``num_copies`` each of the G-1 widest distinct values owns a copy and the rest
      share one; a location has at most as many copies as distinct values (seed paper 000
      §2.2, R4 ``get_max_channel_per_stage``; SCHEMES.md §2.1 step 6). The classifier
      follows stage 4. The stem has one copy unless ``split_stem``.
    * ``depth34_table``: copy b for the pairs of bucket b of ``depth34_buckets`` (default
      `SSE_BUCKETS`), one more copy for every other pair; the stem has one copy unless
      ``split_stem`` (SSE's sub-supernets are whole copies: set it to reproduce them).

    ``table`` (rows of ints, e.g. `parse_rows` of ``supernet.routing_table``) replaces the
    derived table; it must have 6 rows of the routing's key count.
    """
    if routing not in ROUTINGS:
        raise ValueError(
            f"Unknown routing {routing!r}; expected one of {', '.join(ROUTINGS)}. Set "
            "--config.supernet.routing."
        )
    space = ss.get_space(space) if isinstance(space, str) else space
    keys = NUM_KEYS[KEY_KINDS[routing]]
    if table is not None:
        rows = np.asarray(table)
        if rows.shape != (NUM_LOCATIONS, keys) or not np.issubdtype(rows.dtype, np.integer):
            raise ValueError(
                f"routing_table for routing={routing!r} must be {NUM_LOCATIONS} rows (stem, "
                f"stages 1-4, classifier) of {keys} copy indices, one per key; received "
                f"{table!r}"
            )
        if rows.min() < 0:
            raise ValueError(f"routing_table holds a negative copy index: {table!r}")
        return rows.astype(np.int32)
    if routing in ("shared", "stage_width", "depth34"):
        return np.tile(routing_table(routing, num_copies), (NUM_LOCATIONS, 1))
    if routing == "stage_width_nested":
        if not 1 <= num_copies <= keys:
            raise ValueError(
                f"routing='stage_width_nested' splits at most {keys} width values, so "
                f"num_copies must be in 1..{keys}; received {num_copies}."
            )
        widths = space.width_table()
        rows = [_nested_width_row(widths[min(loc, 4)], num_copies) for loc in range(6)]
    else:
        buckets = parse_depth34_buckets(
            SSE_BUCKETS if depth34_buckets is None else depth34_buckets
        )
        row = np.full(keys, len(buckets), np.int32)
        for b, bucket in enumerate(buckets):
            row[bucket] = b
        count = int(row.max()) + 1
        if num_copies != count:
            raise ValueError(
                f"routing='depth34_table' with {len(buckets)} buckets"
                f"{' and the other pairs' if count > len(buckets) else ''} has {count} "
                f"copies, received num_copies={num_copies}; set num_copies={count}."
            )
        rows = [row] * NUM_LOCATIONS
    rows = np.stack(rows).astype(np.int32)
    if not split_stem:
        rows[0] = 0
    return rows


def copy_counts(table) -> tuple[int, ...]:
    """Copies per location of a `location_table`."""
    return tuple(int(row.max()) + 1 for row in np.asarray(table))


def parent_map(src_table, dst_table) -> list[list[int]]:
    """For each location, the copy of the source that each copy of the destination starts as.

    Copy ``j`` of a location in ``dst_table`` serves a set of keys; its parent is the one
    source copy that served all of them. That exists when the destination's partition
    refines the source's: G -> G+1 with ``stage_width_nested``, 1 -> N (every parent 0), the
    same table (identity). Used by `tfnas.transfer.grow_copies` (seed paper 000 §2.2, R4
    ``init_weights``: a new group starts from the old group that held all of its values).

    Raises:
      ValueError: a copy's keys came from several source copies (not nested), or it serves
        no key; pass an explicit parent map (``supernet.init_parent``) instead.
    """
    src, dst = np.asarray(src_table), np.asarray(dst_table)
    if src.shape[0] != NUM_LOCATIONS or dst.shape[0] != NUM_LOCATIONS:
        raise ValueError("parent_map: both tables need one row per location (6)")
    if src.shape[1] == 1:  # one key: broadcast
        src = np.repeat(src, dst.shape[1], axis=1)
    if src.shape != dst.shape:
        raise ValueError(
            f"parent_map: the two routings read different keys ({src.shape[1]} and "
            f"{dst.shape[1]} per location), so no copy is nested in another; pass an explicit "
            "parent map (--config.supernet.init_parent)"
        )
    parents = []
    for loc in range(NUM_LOCATIONS):
        row = []
        for j in range(int(dst[loc].max()) + 1):
            sources = sorted({int(c) for c in src[loc][dst[loc] == j]})
            if len(sources) != 1:
                found = f"copies {sources} of the source" if sources else "no key"
                raise ValueError(
                    f"parent_map: copy {j} of {LOCATIONS[loc]} serves keys of {found}, so it "
                    "has no single parent (the routings are not nested); pass an explicit "
                    "parent map (--config.supernet.init_parent)"
                )
            row.append(sources[0])
        parents.append(row)
    return parents


def nested_parent_map(space, num_copies: int, split_stem: bool = False) -> list[list[int]]:
    """The parent map of ``stage_width_nested`` from ``num_copies`` to ``num_copies + 1``.

    Per location: the new copies of the widest values keep their index, the value that
    splits off and the new rest group both start as the old rest group.
    """
    def table(g):
        return location_table("stage_width_nested", g, space, split_stem=split_stem)

    return parent_map(table(num_copies), table(num_copies + 1))


@keras.saving.register_keras_serializable(package="tfnas")
class Supernet(keras.Model):
    """The supernet of one search-space variant.

    Args:
        space: search-space variant name (`tfnas.search_space.SPACES`).
        num_copies: weight copies per location (groups or sub-supernets); 1 for one-shot.
        routing: how an arch selects its copy (`ROUTINGS`).
        num_kernels: K-shot dictionaries per convolution; 1 for one-shot.
        simplex_hidden: hidden width of the simplex-net (used when ``num_kernels > 1``).
        simplex_channel_branch: give the simplex-net its channel branch (seed paper 004 §4);
            False: the architecture branch alone (the paper's Table 5 ablation row).
        bn_momentum: running-statistics momentum during training (1.0: none, recalibrate).
        bn_epsilon: BN epsilon (1e-5, as the static model).
        zero_init_residual: start every residual branch at zero (BigNAS §3.2); the
            training configs turn it on (``supernet.zero_init_residual``).
        depth34_buckets: the (d3, d4) buckets of ``routing="depth34_table"`` (lists of
            pairs, or the config's string; default `SSE_BUCKETS`).
        split_stem: give the stem its own copies with the new routings
            (``stage_width_nested``, ``depth34_table``); the old ones always split it.
        routing_table: explicit ``[6][keys]`` copy indices replacing the routing's table
            (`location_table`).

    ``copy_counts`` holds the copies of each location; `copies` maps an arch to them.
    """

    def __init__(
        self,
        space="fmnist",
        num_copies=1,
        routing="shared",
        num_kernels=1,
        simplex_hidden=64,
        simplex_channel_branch=True,
        bn_momentum=1.0,
        bn_epsilon=1e-5,
        zero_init_residual=False,
        depth34_buckets=None,
        split_stem=False,
        routing_table=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.space_name = space
        self.space = ss.get_space(space)
        self.num_copies = num_copies
        self.routing = routing
        self.num_kernels = num_kernels
        self.simplex_hidden = simplex_hidden
        self.simplex_channel_branch = bool(simplex_channel_branch)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        self.zero_init_residual = bool(zero_init_residual)
        # Plain lists, so that get_config round-trips through JSON unchanged.
        self.depth34_buckets = (
            depth34_buckets
            if depth34_buckets is None or isinstance(depth34_buckets, str)
            else [[[int(d) for d in pair] for pair in bucket] for bucket in depth34_buckets]
        )
        self.split_stem = bool(split_stem)
        self.routing_table = (
            None if routing_table is None else [[int(c) for c in row] for row in routing_table]
        )
        self._routing = location_table(
            routing,
            num_copies,
            self.space,
            depth34_buckets=self.depth34_buckets,
            split_stem=self.split_stem,
            table=self.routing_table,
        )
        self.copy_counts = copy_counts(self._routing)
        self._widths = self.space.width_table().astype(np.int32)

        sp = self.space
        widest = [int(self._widths[i].max()) for i in range(5)]
        counts = self.copy_counts
        conv = dict(num_copies=counts[0], num_kernels=num_kernels)
        bn = dict(num_copies=counts[0], momentum=bn_momentum, epsilon=bn_epsilon)
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
                    num_copies=counts[s + 1],
                    num_kernels=num_kernels,
                )
            )
            in_channels = widest[s + 1]
        self.classifier = elastic.ElasticDense(
            in_channels, sp.num_classes, num_copies=counts[5], name="classifier"
        )
        self.simplex_net = (
            elastic.SimplexNet(
                num_kernels,
                simplex_hidden,
                arch_features=self.encoding_sizes()[0],
                channel_branch=self.simplex_channel_branch,
                name="simplex_net",
            )
            if num_kernels > 1
            else None
        )

    # -- building -----------------------------------------------------------------------

    def build(self, input_shape=None):
        for layer in [self.stem_conv, self.stem_bn, *self.stages, self.classifier]:
            layer.build()
        if self.simplex_net is not None:
            self.simplex_net.build((None, sum(self.encoding_sizes())))
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

    @property
    def location_table(self) -> np.ndarray:
        """int32 ``[6, keys]``: the routing as data (`location_table`)."""
        return self._routing.copy()

    def copies(self, arch) -> tf.Tensor:
        """int32 [6]: the weight copy of the stem, stages 1-4 and classifier for ``arch``.

        In-graph: the routing key of each location is read from the digits and looked up
        in the `location_table`, so one trace serves every arch.
        """
        digits = tf.cast(arch, tf.int32)
        kind = KEY_KINDS[self.routing]
        if kind == "none":
            return tf.zeros([NUM_LOCATIONS], tf.int32)
        if kind == "width":
            # The stem and stage 1 read the stem digit (stage 1's out equals it), the
            # classifier stage 4's out.
            outs = [digits[5]] + [digits[7 + 2 * ss.SLOT_OFFSETS[s]] for s in range(1, 4)]
            keys = tf.stack([outs[0], outs[0], outs[1], outs[2], outs[3], outs[3]]) - 1
        else:
            keys = tf.fill([NUM_LOCATIONS], depth34_key(digits[3], digits[4]))
        index = tf.stack([tf.range(NUM_LOCATIONS), keys], axis=1)
        return tf.gather_nd(tf.constant(self._routing), index)

    def location_layers(self) -> list[tuple[int, keras.layers.Layer]]:
        """(location, layer) of every elastic layer that holds weight copies on axis 0."""
        return [
            (0, self.stem_conv),
            (0, self.stem_bn),
            *[(s + 1, stage) for s, stage in enumerate(self.stages)],
            (5, self.classifier),
        ]

    def l2_penalty(self, arch) -> tf.Tensor:
        """0.5 * sum of squares of the conv and dense kernels of the copies ``arch`` uses.

        Masked L2 (SCHEMES.md §0.1 item 10, §7.1 H.1): each location contributes the kernels
        of its routed copy (all K dictionaries of it), so copies no member routes are not
        decayed and get a zero gradient from it; BN, biases and the simplex-net are not
        decayed. The whole routed copy counts, not only the arch's active channels. With one
        copy it equals ``tfnas.trainer.l2_penalty(supernet.trainable_variables)``.
        """
        copies = self.copies(arch_tensor(arch, self.space))
        location = {}
        for loc, layer in self.location_layers():
            for v in layer.trainable_variables:
                location[id(v)] = loc
        terms = [
            tf.reduce_sum(tf.square(v.value[copies[location[id(v)]]]))
            for v in self.trainable_variables
            if v.path.endswith("kernel") and id(v) in location
        ]
        return 0.5 * tf.add_n(terms)

    def encoding_sizes(self) -> tuple[int, int]:
        """(architecture features, channel features) of `encode`."""
        arch = len(self.space.resolutions) + sum(
            hi - lo + 1 for lo, hi in zip(ss.MIN_DEPTHS, ss.MAX_DEPTHS)
        )
        return arch, (ss.CODE_LENGTH - ss.STEM_POS) * ss.NUM_WIDTHS

    def encode(self, arch) -> tf.Tensor:
        """float [..., F] encoding of int32 [..., 52] archs for the `elastic.SimplexNet`.

        The search space has no operation choices, so the paper's one-hot "architecture"
        encoding (seed paper 004 §3) becomes the one-hot resolution index and the one-hot
        depth of each stage (`encoding_sizes`[0] features: the architecture branch), and its
        "channel" encoding (§4) the one-hot width digit (1..7) of every width position, stem
        to the last slot, all zeros for an inactive slot (47 x 7 features: the channel
        branch). One-hot rather than ordinal, so each width of each layer gets its own
        simplex-net weights, as each operation does in the paper (SCHEMES.md §5.8).
        """
        digits = tf.cast(arch, tf.int32)
        parts = [tf.one_hot(digits[..., ss.RES_POS] - 1, len(self.space.resolutions))]
        for s, (lo, hi) in enumerate(zip(ss.MIN_DEPTHS, ss.MAX_DEPTHS)):
            parts.append(tf.one_hot(digits[..., ss.DEPTH_POS[s]] - lo, hi - lo + 1))
        # Digit 0 (an inactive slot) gives index -1: an all-zero one-hot row.
        widths = tf.one_hot(digits[..., ss.STEM_POS :] - 1, ss.NUM_WIDTHS)
        parts.append(tf.reshape(widths, tf.concat([tf.shape(digits)[:-1], [-1]], axis=0)))
        return tf.cast(tf.concat(parts, axis=-1), self.compute_dtype)

    def mix(self, arch):
        """The K-shot simplex code of ``arch`` (``None`` when K = 1)."""
        if self.simplex_net is None:
            return None
        return self.simplex_net(self.encode(arch)[None])[0]

    # -- the forward pass ---------------------------------------------------------------

    def call(
        self, images, arch, training=False, mix=None, dropout=0.0, bn_momentum=None,
        dropout_seed=None,
    ):
        """Logits of the subnet ``arch`` for ``images``.

        Args:
            images: float [B, H, W, C], preprocessed as `tfnas.data` yields them.
            arch: int32 [52] digits of the code (`arch_tensor`).
            training: BN uses batch statistics (and dropout applies) when true.
            mix: optional K-shot simplex code, overriding the simplex-net.
            dropout: dropout rate before the classifier (training only), a float or a
                scalar tensor.
            dropout_seed: optional int [2] seed: the dropout is then stateless
                (`tf.nn.experimental.stateless_dropout`), the same mask for the same seed.
            bn_momentum: optional momentum override for running-statistic updates (BN
                recalibration passes ``n / (n + 1)``).
        """
        arch = arch_tensor(arch, self.space)
        d = self.decode(arch)
        copies = d["copies"]
        if mix is None:
            mix = self.mix(arch)
        bn = dict(training=training, momentum=bn_momentum)
        x = elastic.conv_bn(
            self.stem_conv, self.stem_bn, images, d["stem"], copy=copies[0], mix=mix, **bn
        )
        x = tf.nn.relu(x)
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
        # A tensor rate (the trainer passes one, so members with and without dropout share
        # a trace) always runs the op: at rate 0 it keeps every unit and scales by 1.
        if training and (tf.is_tensor(dropout) or dropout):
            if dropout_seed is None:
                x = tf.nn.dropout(x, rate=dropout)
            else:
                x = tf.nn.experimental.stateless_dropout(x, rate=dropout, seed=dropout_seed)
        # Logits in the variable dtype (float32 under a mixed policy), as Keras's
        # mixed-precision models return them: losses and softmax stay in full precision.
        return tf.cast(self.classifier(x, copy=copies[5]), self.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            space=self.space_name,
            num_copies=self.num_copies,
            routing=self.routing,
            num_kernels=self.num_kernels,
            simplex_hidden=self.simplex_hidden,
            simplex_channel_branch=self.simplex_channel_branch,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            zero_init_residual=self.zero_init_residual,
            # Plain JSON values (Keras wraps list attributes in tracking lists).
            depth34_buckets=json.loads(json.dumps(self.depth34_buckets)),
            split_stem=self.split_stem,
            routing_table=json.loads(json.dumps(self.routing_table)),
        )
        return config


def build_supernet(supernet_config, space: str) -> Supernet:
    """Builds (and creates the weights of) the supernet a config section describes.

    This is the one place where config fields become layer arguments; the section's fields
    (see `validate_config`) are the `Supernet` arguments of the same names, plus
    ``dropout``, which the training scheme applies, and ``init_from``/``init_parent``, which
    `tfnas.transfer.init_from_config` applies to a run without a checkpoint of its own.
    """
    table = supernet_config.routing_table
    net = Supernet(
        space=space,
        num_copies=supernet_config.num_copies,
        routing=supernet_config.routing,
        num_kernels=supernet_config.num_kernels,
        simplex_hidden=supernet_config.simplex_hidden,
        simplex_channel_branch=supernet_config.simplex_channel_branch,
        bn_momentum=supernet_config.bn_momentum,
        bn_epsilon=supernet_config.bn_epsilon,
        zero_init_residual=supernet_config.zero_init_residual,
        depth34_buckets=supernet_config.depth34_buckets or None,
        split_stem=supernet_config.split_stem,
        routing_table=parse_rows(table, "routing_table") if table else None,
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
    "simplex_channel_branch",
    "bn_momentum",
    "bn_epsilon",
    "zero_init_residual",
    "dropout",
    "split_stem",
    "depth34_buckets",
    "routing_table",
    "init_from",
    "init_parent",
)
# Old config names, so that an old config file is told the new one.
_RENAMED = {"groups": "num_copies", "kernels": "num_kernels"}


def validate_config(section) -> None:
    """Checks the ``supernet`` section of an experiment config (`tfnas.config_lib`).

    Fields (`build_supernet` passes all but ``dropout``, ``init_from`` and ``init_parent`` to
    `Supernet`):

    - ``num_copies``: weight copies per location (int >= 1; 1 for one-shot). Several copies
      need a ``routing`` that tells which subnets use which copy, and at most as many copies
      as it has keys (``stage_width*`` 7, ``depth34`` 28; `location_table`). With
      ``stage_width_nested`` it is the few-shot G (a location has at most its number of
      distinct channel values); with ``depth34_table`` the buckets plus one for the rest.
    - ``routing``: how an arch selects its copy, one of `ROUTINGS`: ``shared`` (one copy),
      ``stage_width`` (few-shot group split by each stage's out width digit, contiguous),
      ``depth34`` (sub-supernets keyed by the depths of stages 3 and 4, contiguous),
      ``stage_width_nested`` (seed paper 000's nested split by channel value),
      ``depth34_table`` (SSE's explicit (d3, d4) buckets).
    - ``split_stem``: the stem gets copies too under ``stage_width_nested`` and
      ``depth34_table`` (default False: one stem copy, as the 4th place kept it).
    - ``depth34_buckets``: the buckets of ``depth34_table``: pairs written d3 d4, ',' between
      pairs, ';' between buckets; "" for `SSE_BUCKETS`.
    - ``routing_table``: "" (the routing's table) or 6 rows (stem, stages 1-4, classifier)
      separated by ';' of one copy index per key of the routing (1, 7 or 28), e.g. for
      ``stage_width``: ``"0,0,0,0,0,0,0;0,0,1,1,1,1,1;..."``; then ``num_copies`` is the most
      copies of a location.
    - ``init_from``: "" or a saved supernet to start from when the run has no checkpoint of
      its own: a ``.keras`` file (``oneshot/supernet.keras``, ``monitor/best_tau.keras``) or
      a directory holding ``best_tau.keras`` (`tfnas.transfer.init_from`).
    - ``init_parent``: "" (derived: identity, broadcast from one copy, or the nesting of the
      two routings, `parent_map`) or the source copy of each copy: one row for every location
      (``"0,0,0,0,0"``: broadcast) or 6 rows separated by ';'.
    - ``num_kernels``: K-shot weight dictionaries per convolution (int >= 1; 1: none).
    - ``simplex_hidden``: hidden width of the simplex-net that merges them (int >= 1).
    - ``simplex_channel_branch`` (bool): the simplex-net's channel branch, which reads the
      width digits (seed paper 004 §4); False drops it (the ablation of its Table 5).
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
    fields.boolean("split_stem")
    table_text = fields.string("routing_table")
    if routing == "shared" and num_copies != 1 and not table_text:
        raise fields.fail(
            "num_copies",
            num_copies,
            "1 with supernet.routing='shared' (one weight copy)",
            "set --config.supernet.routing=stage_width (or depth34) for several weight "
            "copies, or --config.supernet.num_copies=1",
        )
    keys = NUM_KEYS[KEY_KINDS[routing]]
    if num_copies > keys and not table_text:
        raise fields.fail(
            "num_copies",
            num_copies,
            f"at most {keys} with supernet.routing={routing!r} (it has {keys} keys to split "
            "between the copies)",
            f"lower --config.supernet.num_copies to {keys} or less",
        )
    fields.integer("num_kernels", 1)
    fields.integer("simplex_hidden", 1)
    fields.boolean("simplex_channel_branch")
    fields.number("bn_momentum", 0.0, 1.0)
    fields.number("bn_epsilon", 0.0, 1.0, low_open=True)
    fields.boolean("zero_init_residual")
    fields.number("dropout", 0.0, 1.0, high_open=True)
    buckets = fields.string("depth34_buckets")
    if buckets:
        try:
            parse_depth34_buckets(buckets)
        except ValueError as err:
            raise fields.fail(
                "depth34_buckets",
                buckets,
                f"buckets of (d3, d4) pairs written d3 d4, e.g. {SSE_BUCKETS!r} ({err})",
                "fix --config.supernet.depth34_buckets, or set it to '' for SSE's buckets",
            ) from None
    if table_text:
        try:
            table = location_table(
                routing, 1, "fmnist", table=parse_rows(table_text, "routing_table")
            )
        except ValueError as err:
            raise fields.fail(
                "routing_table",
                table_text,
                f"6 rows separated by ';' of {keys} copy indices for routing={routing!r} "
                f"({err})",
                "fix --config.supernet.routing_table, or set it to '' for the routing's own",
            ) from None
        most = max(copy_counts(table))
        if num_copies != most:
            raise fields.fail(
                "num_copies",
                num_copies,
                f"{most}, the most copies a location has in supernet.routing_table",
                f"set --config.supernet.num_copies={most}",
            )
    elif routing == "depth34_table":
        listed = parse_depth34_buckets(buckets or SSE_BUCKETS)
        count = len(listed) + (sum(map(len, listed)) < keys)
        if num_copies != count:
            raise fields.fail(
                "num_copies",
                num_copies,
                f"{count} with supernet.routing='depth34_table': one copy per bucket of "
                f"supernet.depth34_buckets ({len(listed)})"
                + (" and one for the other pairs" if count > len(listed) else ""),
                f"set --config.supernet.num_copies={count}",
            )
    fields.string("init_from")
    parent = fields.string("init_parent")
    if parent:
        try:
            rows = parse_rows(parent, "init_parent")
        except ValueError as err:
            rows = str(err)
        if isinstance(rows, str) or len(rows) not in (1, NUM_LOCATIONS) or min(map(min, rows)) < 0:
            raise fields.fail(
                "init_parent",
                parent,
                "the source copy of each copy: one row of copy indices >= 0 for every location "
                "or 6 rows separated by ';' (stem, stages 1-4, classifier)",
                "fix --config.supernet.init_parent, or set it to '' to derive it",
            )


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

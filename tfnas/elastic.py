"""Elastic Keras layers: one set of shared weights, any subnet's widths per call.

Every layer here owns the weights of the *largest* subnet and, on each call, uses the
first ``c`` input and output channels (OFA-style weight sharing, Cai et al. 2020 §3.2).
The active widths arrive as arguments of ``call`` -- scalar int tensors inside compiled
code -- so a single traced graph serves every subnet and no layer keeps mutable
"active subnet" state.

Two more axes of the weights exist for the weight-sharing schemes, and the plain one-shot
supernet runs through the same code with both of size 1:

* ``num_copies``: independent copies of every weight. The supernet picks one copy per
  stage and arch (``copy`` argument): few-shot group split (CVPR22 Track-1, 4th place)
  keys it by a stage's output width, sub-supernets (2nd place) by the depths of stages 3
  and 4.
* ``num_kernels`` (K, convolutions only): K weight dictionaries merged by a per-arch simplex
  code ``mix`` (a K-vector on the simplex) *before* the convolution, as in K-shot NAS
  (Su et al., ICML 2021, §3.2: ``W = sum_k lambda_k W_k``).

Usage::

    conv = ElasticConv2D(in_channels=16, filters=32, kernel_size=3, name="conv1")
    y = conv(x, filters=tf.constant(24))      # uses kernel[..., :x.channels, :24]

Width changes are done by slicing with tensor sizes: it was bit-exact against extracted
static models and the fastest option measured (masks always pay the largest subnet's cost).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfnas import distribute


def _check_positive(layer: str, **values) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f"{layer}: `{name}` must be a positive int, received {value!r}. "
                f"Pass the largest subnet's size for it."
            )


@tf.custom_gradient
def active_slice(weights, begin, size):
    """``tf.slice(weights, begin, size)`` whose gradient is a zero pad of the incoming one.

    Same values and gradients as slicing, but TF's generic ``StridedSliceGrad`` took 2-4x
    as long as ``Pad`` for a [1, 1, 3, 3, 512, 512] kernel on CPU, and the backward pass
    of every elastic layer writes a full-size gradient: it was the largest overhead of
    small subnets over plain models in the ImageNet-space step benchmark.
    """
    out = tf.slice(weights, begin, size)

    def grad(upstream):
        full = tf.shape(weights, out_type=begin.dtype)
        taken = tf.shape(upstream, out_type=begin.dtype)
        return tf.pad(upstream, tf.stack([begin, full - begin - taken], axis=1)), None, None

    return out, grad


def _mix_or_default(mix, num_kernels: int, dtype):
    """The simplex code used to merge K kernels; the K=1 case is the constant [1.0]."""
    if mix is None:
        if num_kernels != 1:
            raise ValueError(
                f"This layer has num_kernels={num_kernels} weight dictionaries but no `mix` "
                "was passed. Pass the arch's simplex code, a float vector of length "
                f"{num_kernels} (the supernet computes it with its simplex-net)."
            )
        return tf.ones([1], dtype=dtype)
    return tf.cast(mix, dtype)


def _conv2d(inputs, kernel, strides):
    """``tf.nn.conv2d(..., padding="SAME")`` whose output always has the kernel's channels.

    oneDNN's CPU convolution (on in the scoring stages, `tfnas.runtime`, and by default in
    some TensorFlow builds) returns the input's channel count for an empty batch
    (TF_NOTES.md), which a replica gets as its share of a short final batch; the reshape
    (metadata only) restores the true shape.
    """
    out = tf.nn.conv2d(inputs, kernel, strides=strides, padding="SAME")
    shape = tf.shape(out)
    return tf.reshape(out, tf.stack([shape[0], shape[1], shape[2], tf.shape(kernel)[-1]]))


@keras.saving.register_keras_serializable(package="tfnas")
class ElasticConv2D(keras.layers.Layer):
    """A 2-D convolution (no bias) that uses the first channels of its shared kernel.

    The kernel variable has shape ``(num_copies, num_kernels, kh, kw, in_channels,
    filters)``. A call uses copy ``copy``, merges the ``num_kernels`` dictionaries with
    ``mix`` and slices ``[:, :, :c_in, :filters]`` where ``c_in`` is the channel count of
    the inputs.

    Args:
        in_channels: the largest number of input channels.
        filters: the largest number of output channels.
        kernel_size: int, square kernel.
        strides: int.
        num_copies: independent weight copies (few-shot groups / sub-supernets).
        num_kernels: K-shot weight dictionaries merged per call.
        kernel_initializer: initializer of one ``(kh, kw, in, out)`` kernel; every copy and
            dictionary is drawn with the fan-in of a single kernel.
    """

    def __init__(
        self,
        in_channels,
        filters,
        kernel_size,
        strides=1,
        num_copies=1,
        num_kernels=1,
        kernel_initializer="he_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_positive(
            type(self).__name__,
            in_channels=in_channels,
            filters=filters,
            kernel_size=kernel_size,
            strides=strides,
            num_copies=num_copies,
            num_kernels=num_kernels,
        )
        self.in_channels = in_channels
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.num_copies = num_copies
        self.num_kernels = num_kernels
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape=None):
        k = self.kernel_size
        copies = self.num_copies * self.num_kernels

        def init(shape, dtype=None):
            # Draw `copies` kernels of shape (k, k, in, out) at once: the fan-in is that of
            # one kernel (k*k*in), not of the stacked variable.
            flat = self.kernel_initializer(
                (k, k, self.in_channels, copies * self.filters), dtype=dtype
            )
            flat = tf.reshape(
                flat, (k, k, self.in_channels, self.num_copies, self.num_kernels, self.filters)
            )
            return tf.transpose(flat, (3, 4, 0, 1, 2, 5))

        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.num_copies, self.num_kernels, k, k, self.in_channels, self.filters),
            initializer=init,
        )
        self.built = True

    def merged_kernel(self, in_channels, filters, copy=0, mix=None):
        """The ``(kh, kw, in_channels, filters)`` kernel a call with these sizes sees."""
        if mix is None and self.num_kernels == 1:
            # The 1-simplex is the point [1]: merging is the identity. Skipping its matmul
            # saves a pass over every kernel forward and backward (~6% of an ImageNet-space
            # step on CPU).
            return tf.squeeze(self._active_kernel(copy, 1, in_channels, filters), axis=0)
        kernel = self._active_kernel(copy, self.num_kernels, in_channels, filters)
        mix = _mix_or_default(mix, self.num_kernels, kernel.dtype)
        return tf.tensordot(mix, kernel, axes=1)

    def _active_kernel(self, copy, num_kernels, in_channels, filters):
        """``kernel[copy, :num_kernels, :, :, :in_channels, :filters]`` (K, kh, kw, in, out)."""
        k = self.kernel_size
        begin = tf.stack([tf.cast(copy, tf.int32), 0, 0, 0, 0, 0])
        size = tf.stack(
            [1, num_kernels, k, k, tf.cast(in_channels, tf.int32), tf.cast(filters, tf.int32)]
        )
        return tf.squeeze(active_slice(tf.convert_to_tensor(self.kernel), begin, size), axis=0)

    def call(self, inputs, filters=None, copy=0, mix=None):
        filters = self.filters if filters is None else filters
        kernel = self.merged_kernel(tf.shape(inputs)[-1], filters, copy, mix)
        return _conv2d(inputs, kernel, self.strides)

    def get_config(self):
        config = super().get_config()
        config.update(
            in_channels=self.in_channels,
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            num_copies=self.num_copies,
            num_kernels=self.num_kernels,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="tfnas")
class ElasticBatchNorm(keras.layers.Layer):
    """Batch normalization over the first channels of shared per-channel parameters.

    In training mode the active channels are normalized with the batch statistics. The
    moving statistics of the active channels (and only those) are updated with
    ``momentum`` (Keras convention: ``moving = momentum * moving + (1 - momentum) * batch``)
    when it is below 1, or with the ``momentum`` passed to ``call`` -- BN recalibration
    passes ``n / (n + 1)`` for an exact cumulative average. ``momentum=1.0`` means no
    running-statistic updates during supernet training, as the CVPR22 Track-1 teams did
    (torch momentum 0): the statistics of a subnet come from recalibration instead.

    The moving statistics are ON_READ variables with MEAN aggregation: under a
    multi-replica strategy each replica updates its own copy (which works inside the
    ``tf.cond`` of elastic depth, where cross-replica calls cannot run) and reading them
    outside a replica context gives the mean over replicas.

    Args:
        num_features: the largest number of channels.
        num_copies: independent parameter copies (selected by ``copy`` in ``call``).
        momentum: moving-average momentum, 1.0 for no updates.
        epsilon: added to the variance.
        gamma_initializer: initializer of the scale (``"zeros"`` for the last BN of a
            residual branch when zero-initializing residual blocks).
    """

    def __init__(
        self,
        num_features,
        num_copies=1,
        momentum=1.0,
        epsilon=1e-5,
        gamma_initializer="ones",
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_positive(type(self).__name__, num_features=num_features, num_copies=num_copies)
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(
                f"ElasticBatchNorm: momentum must be in [0, 1] (Keras convention), received "
                f"{momentum!r}. Use 1.0 for no running-statistic updates."
            )
        self.num_features = num_features
        self.num_copies = num_copies
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)

    def build(self, input_shape=None):
        shape = (self.num_copies, self.num_features)
        self.gamma = self.add_weight(name="gamma", shape=shape, initializer=self.gamma_initializer)
        self.beta = self.add_weight(name="beta", shape=shape, initializer="zeros")
        self.moving_mean = self._moving("moving_mean", shape, "zeros")
        self.moving_variance = self._moving("moving_variance", shape, "ones")
        self.built = True

    def _moving(self, name, shape, initializer):
        return keras.Variable(
            initializer=keras.initializers.get(initializer),
            shape=shape,
            dtype=self.variable_dtype,
            trainable=False,
            name=name,
            synchronization="on_read",
            aggregation="mean",
        )

    def call(self, inputs, copy=0, training=False, momentum=None):
        if inputs.dtype in (tf.float16, tf.bfloat16):
            # As Keras's BatchNormalization: statistics and normalization in float32 under a
            # mixed policy (float16 variances overflow; running statistics stay float32).
            return tf.cast(
                self.call(tf.cast(inputs, tf.float32), copy, training, momentum), inputs.dtype
            )
        channels = tf.shape(inputs)[-1]
        dtype = inputs.dtype
        gamma = tf.cast(self.gamma[copy, :channels], dtype)
        beta = tf.cast(self.beta[copy, :channels], dtype)
        if training:
            mean, variance = distribute.local_moments(inputs, axes=[0, 1, 2])
            if momentum is None and self.momentum < 1.0:
                momentum = self.momentum
            if momentum is not None:
                self._update_moving(copy, channels, mean, variance, momentum)
        else:
            mean = tf.cast(self.moving_mean[copy, :channels], dtype)
            variance = tf.cast(self.moving_variance[copy, :channels], dtype)
        return tf.nn.batch_normalization(inputs, mean, variance, beta, gamma, self.epsilon)

    def inference_affine(self, copy, channels):
        """(scale, shift) of the first ``channels`` in inference: ``bn(x) = x * scale + shift``.

        `conv_bn` folds ``scale`` into the preceding convolution's kernel.
        """
        inv = tf.math.rsqrt(self.moving_variance[copy, :channels] + self.epsilon)
        scale = inv * self.gamma[copy, :channels]
        return scale, self.beta[copy, :channels] - self.moving_mean[copy, :channels] * scale

    def _update_moving(self, copy, channels, mean, variance, momentum):
        for var, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            old = tf.convert_to_tensor(var.value)
            row = old[copy]
            m = tf.cast(momentum, row.dtype)
            active = m * row[:channels] + (1.0 - m) * tf.cast(batch, row.dtype)
            new_row = tf.concat([active, row[channels:]], axis=0)
            var.assign(tf.tensor_scatter_nd_update(old, [[copy]], new_row[None]))

    def get_config(self):
        config = super().get_config()
        config.update(
            num_features=self.num_features,
            num_copies=self.num_copies,
            momentum=self.momentum,
            epsilon=self.epsilon,
            gamma_initializer=keras.initializers.serialize(self.gamma_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="tfnas")
class ElasticDense(keras.layers.Layer):
    """A dense layer on the first input features of a shared ``(in, units)`` kernel.

    Args:
        in_features: the largest number of input features.
        units: output units (the number of classes: not elastic).
        num_copies: independent weight copies (selected by ``copy`` in ``call``).
    """

    def __init__(self, in_features, units, num_copies=1, **kwargs):
        super().__init__(**kwargs)
        _check_positive(
            type(self).__name__, in_features=in_features, units=units, num_copies=num_copies
        )
        self.in_features = in_features
        self.units = units
        self.num_copies = num_copies

    def build(self, input_shape=None):
        glorot = keras.initializers.GlorotUniform()

        def init(shape, dtype=None):
            return tf.stack([glorot(shape[1:], dtype=dtype) for _ in range(shape[0])])

        self.kernel = self.add_weight(
            name="kernel", shape=(self.num_copies, self.in_features, self.units), initializer=init
        )
        self.bias = self.add_weight(
            name="bias", shape=(self.num_copies, self.units), initializer="zeros"
        )
        self.built = True

    def call(self, inputs, copy=0):
        kernel = self.kernel[copy, : tf.shape(inputs)[-1], :]
        return tf.matmul(inputs, tf.cast(kernel, inputs.dtype)) + tf.cast(
            self.bias[copy], inputs.dtype
        )

    def get_config(self):
        config = super().get_config()
        config.update(in_features=self.in_features, units=self.units, num_copies=self.num_copies)
        return config


def conv_bn(conv, bn, inputs, filters, copy=0, mix=None, training=False, momentum=None):
    """``bn(conv(inputs, filters), training=training)``, with the same arguments as the two calls.

    In inference (float32) BN is an affine map of the convolution's output, so its scale is
    folded into the (sliced) kernel and its shift becomes a bias: one convolution and a bias
    add instead of a convolution, a multiply and an add over the activations. Scoring a
    Fashion-MNIST subnet took about 0.93x the time (oneDNN kernels, `tfnas.runtime`) with the
    same accuracies (README, "Evaluating and ranking"). Training, and mixed precision (whose
    BN computes in float32), take the two calls as written.
    """
    if training or inputs.dtype != tf.float32:
        out = conv(inputs, filters=filters, copy=copy, mix=mix)
        return bn(out, copy=copy, training=training, momentum=momentum)
    kernel = conv.merged_kernel(tf.shape(inputs)[-1], filters, copy, mix)
    scale, shift = bn.inference_affine(copy, tf.shape(kernel)[-1])
    return tf.nn.bias_add(_conv2d(inputs, kernel * scale, conv.strides), shift)


@keras.saving.register_keras_serializable(package="tfnas")
class ElasticResidualBlock(keras.layers.Layer):
    """The basic residual block of the space with elastic ``mid`` and ``out`` widths.

    conv1 3x3 (``strides``) -> BN -> ReLU -> conv2 3x3 -> BN, plus the shortcut (identity,
    or 1x1 conv -> BN when ``projection``), add, ReLU. Whether a block projects does not
    depend on the arch in this space: only the first block of stages 2-4 changes shape.

    Args:
        in_channels, mid_channels, out_channels: the largest widths.
        strides: stride of conv1 and of the shortcut.
        projection: use a 1x1 conv + BN shortcut.
        num_copies, num_kernels: see `ElasticConv2D`.
        bn_momentum, bn_epsilon: see `ElasticBatchNorm`.
        zero_init_residual: initialize the scale of the branch's last BN to 0, so that the
            block starts as its shortcut (BigNAS §3.2, "Initialization": without it, training
            big and small subnets together is unstable).
    """

    def __init__(
        self,
        in_channels,
        mid_channels,
        out_channels,
        strides=1,
        projection=False,
        num_copies=1,
        num_kernels=1,
        bn_momentum=1.0,
        bn_epsilon=1e-5,
        zero_init_residual=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not projection and (strides != 1 or in_channels != out_channels):
            raise ValueError(
                f"ElasticResidualBlock {self.name}: an identity shortcut needs strides=1 and "
                f"in_channels == out_channels, received strides={strides}, "
                f"in_channels={in_channels}, out_channels={out_channels}. "
                "Pass projection=True."
            )
        self.in_channels = in_channels
        self.mid_channels = mid_channels
        self.out_channels = out_channels
        self.strides = strides
        self.projection = bool(projection)
        self.num_copies = num_copies
        self.num_kernels = num_kernels
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        self.zero_init_residual = bool(zero_init_residual)
        conv = dict(num_copies=num_copies, num_kernels=num_kernels)
        bn = dict(num_copies=num_copies, momentum=bn_momentum, epsilon=bn_epsilon)
        self.conv1 = ElasticConv2D(in_channels, mid_channels, 3, strides, name="conv1", **conv)
        self.bn1 = ElasticBatchNorm(mid_channels, name="bn1", **bn)
        self.conv2 = ElasticConv2D(mid_channels, out_channels, 3, 1, name="conv2", **conv)
        self.bn2 = ElasticBatchNorm(
            out_channels,
            name="bn2",
            gamma_initializer="zeros" if self.zero_init_residual else "ones",
            **bn,
        )
        if self.projection:
            self.shortcut_conv = ElasticConv2D(
                in_channels, out_channels, 1, strides, name="shortcut_conv", **conv
            )
            self.shortcut_bn = ElasticBatchNorm(out_channels, name="shortcut_bn", **bn)

    def build(self, input_shape=None):
        for layer in self._sublayers():
            layer.build()
        self.built = True

    def _sublayers(self):
        layers = [self.conv1, self.bn1, self.conv2, self.bn2]
        if self.projection:
            layers += [self.shortcut_conv, self.shortcut_bn]
        return layers

    def call(self, inputs, mid, out, copy=0, mix=None, training=False, bn_momentum=None):
        args = dict(copy=copy, mix=mix, training=training, momentum=bn_momentum)
        x = tf.nn.relu(conv_bn(self.conv1, self.bn1, inputs, mid, **args))
        x = conv_bn(self.conv2, self.bn2, x, out, **args)
        if self.projection:
            shortcut = conv_bn(self.shortcut_conv, self.shortcut_bn, inputs, out, **args)
        else:
            shortcut = inputs
        return tf.nn.relu(x + shortcut)

    def get_config(self):
        config = super().get_config()
        config.update(
            in_channels=self.in_channels,
            mid_channels=self.mid_channels,
            out_channels=self.out_channels,
            strides=self.strides,
            projection=self.projection,
            num_copies=self.num_copies,
            num_kernels=self.num_kernels,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            zero_init_residual=self.zero_init_residual,
        )
        return config


@keras.saving.register_keras_serializable(package="tfnas")
class ElasticStage(keras.layers.Layer):
    """A stage of ``max_depth`` residual blocks of which the first ``depth`` run.

    Blocks past ``min_depth`` run under ``tf.cond`` on the depth tensor, so a shallow
    subnet does not pay for the skipped blocks (measured fastest: masks always pay the
    deepest subnet's cost). In graph mode the untaken branch gives zero gradients.

    Args:
        in_channels: the largest input width (the previous stage's, or the stem's).
        mid_channels, out_channels: the largest widths of this stage.
        min_depth, max_depth: the depth range.
        strides: stride of the first block.
        num_copies, num_kernels, bn_momentum, bn_epsilon, zero_init_residual: passed to
            every block.
    """

    def __init__(
        self,
        in_channels,
        mid_channels,
        out_channels,
        min_depth,
        max_depth,
        strides=1,
        num_copies=1,
        num_kernels=1,
        bn_momentum=1.0,
        bn_epsilon=1e-5,
        zero_init_residual=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 1 <= min_depth <= max_depth:
            raise ValueError(
                f"ElasticStage {self.name}: need 1 <= min_depth <= max_depth, received "
                f"min_depth={min_depth}, max_depth={max_depth}."
            )
        self.in_channels = in_channels
        self.mid_channels = mid_channels
        self.out_channels = out_channels
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.strides = strides
        self.num_copies = num_copies
        self.num_kernels = num_kernels
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        self.zero_init_residual = bool(zero_init_residual)
        # The first block projects when it changes the shape; the largest widths decide,
        # which is right for this space: stage 1 keeps the stem width (identity), stages
        # 2-4 stride (projection) whatever the arch.
        first_projects = strides != 1 or in_channels != out_channels
        self.blocks = [
            ElasticResidualBlock(
                in_channels if i == 0 else out_channels,
                mid_channels,
                out_channels,
                strides=strides if i == 0 else 1,
                projection=first_projects and i == 0,
                num_copies=num_copies,
                num_kernels=num_kernels,
                bn_momentum=bn_momentum,
                bn_epsilon=bn_epsilon,
                zero_init_residual=zero_init_residual,
                name=f"block{i + 1}",
            )
            for i in range(max_depth)
        ]

    def build(self, input_shape=None):
        for block in self.blocks:
            block.build()
        self.built = True

    def call(self, inputs, depth, mids, out, copy=0, mix=None, training=False, bn_momentum=None):
        """Runs the first ``depth`` blocks; ``mids`` holds ``max_depth`` mid widths."""
        x = inputs
        for i, block in enumerate(self.blocks):
            kwargs = dict(copy=copy, mix=mix, training=training, bn_momentum=bn_momentum)

            def run(block=block, x=x, i=i, kwargs=kwargs):
                return block(x, mids[i], out, **kwargs)

            if i < self.min_depth:
                x = run()
            else:
                x = tf.cond(i < depth, run, lambda x=x: tf.identity(x))
        return x

    def get_config(self):
        config = super().get_config()
        config.update(
            in_channels=self.in_channels,
            mid_channels=self.mid_channels,
            out_channels=self.out_channels,
            min_depth=self.min_depth,
            max_depth=self.max_depth,
            strides=self.strides,
            num_copies=self.num_copies,
            num_kernels=self.num_kernels,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            zero_init_residual=self.zero_init_residual,
        )
        return config


@keras.saving.register_keras_serializable(package="tfnas")
class SimplexNet(keras.layers.Layer):
    """Maps an arch encoding to a K-shot simplex code (K-shot NAS, seed paper 004 §3, §4).

    Two branches, each a two-layer MLP (``hidden`` ReLU units, then K logits), as the
    paper's simplex-net (seed paper 004 §5.1: "a two-layer MLP for both encodings"; more
    layers did not help): the *architecture branch* reads the first ``arch_features``
    features of the encoding, the *channel branch* the rest (§4, Fig. 2). The branches are
    merged by adding their logits, and a softmax over K puts the code on the simplex.

    Usage::

        net = SimplexNet(num_kernels=4, hidden=64, arch_features=20)
        codes = net(encodings)            # float [n, arch_features + c] -> [n, 4]

    `tfnas.supernet.Supernet.encode` documents the encoding of the ResNet space (one-hot
    resolution and depths for the architecture branch, one-hot width digits per position
    for the channel branch). Both last layers start at zero, so every arch starts at the
    uniform code 1/K (the paper's warm-up state). The weights are trainable variables of
    the supernet; the K-shot scheme (`tfnas.schemes.kshot`) puts them in their own variable
    group, trained in alternation with the kernels (seed paper 004 §3, Alg. 2).

    Args:
        num_kernels: K, the length of the code.
        hidden: width of each branch's hidden layer.
        arch_features: how many leading features of the encoding feed the architecture
            branch; the rest feed the channel branch. 0: no split, one branch reads the
            whole encoding.
        channel_branch: False drops the channel branch (the paper's ablation without it,
            Table 5): the code then depends on the architecture features only.
    """

    def __init__(self, num_kernels, hidden=64, arch_features=0, channel_branch=True, **kwargs):
        super().__init__(**kwargs)
        _check_positive(type(self).__name__, num_kernels=num_kernels, hidden=hidden)
        if not isinstance(arch_features, int) or isinstance(arch_features, bool) or (
            arch_features < 0
        ):
            raise ValueError(
                f"SimplexNet: `arch_features` must be an int >= 0, received {arch_features!r}. "
                "Pass how many leading encoding features the architecture branch reads (0: "
                "all of them)."
            )
        self.num_kernels = num_kernels
        self.hidden = hidden
        self.arch_features = arch_features
        self.channel_branch = bool(channel_branch)
        self.arch_hidden = keras.layers.Dense(hidden, activation="relu", name="arch_hidden")
        # Zero-initialized logits give the uniform code 1/K at the start.
        self.arch_logits = keras.layers.Dense(
            num_kernels, kernel_initializer="zeros", name="arch_logits"
        )
        self.split = arch_features > 0 and self.channel_branch
        if self.split:
            self.channel_hidden = keras.layers.Dense(
                hidden, activation="relu", name="channel_hidden"
            )
            self.channel_logits = keras.layers.Dense(
                num_kernels, kernel_initializer="zeros", name="channel_logits"
            )

    def _arch_width(self, features: int) -> int:
        return self.arch_features if self.arch_features else features

    def build(self, input_shape):
        features = int(input_shape[-1])
        if self.arch_features and features <= self.arch_features:
            raise ValueError(
                f"SimplexNet {self.name}: the encoding has {features} features, but "
                f"arch_features={self.arch_features} leaves none for the channel branch. Pass "
                "the encoding's architecture part size (Supernet.encoding_sizes)."
            )
        batch = tuple(input_shape[:-1])
        self.arch_hidden.build(batch + (self._arch_width(features),))
        self.arch_logits.build(batch + (self.hidden,))
        if self.split:
            self.channel_hidden.build(batch + (features - self.arch_features,))
            self.channel_logits.build(batch + (self.hidden,))
        self.built = True

    def call(self, encoding):
        width = self._arch_width(encoding.shape[-1])
        logits = self.arch_logits(self.arch_hidden(encoding[..., :width]))
        if self.split:
            logits += self.channel_logits(self.channel_hidden(encoding[..., width:]))
        return tf.nn.softmax(logits, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_kernels=self.num_kernels,
            hidden=self.hidden,
            arch_features=self.arch_features,
            channel_branch=self.channel_branch,
        )
        return config

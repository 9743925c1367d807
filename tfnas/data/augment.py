"""Augmentation and preprocessing, batched and driven by per-example uniforms.

Every random choice of an example's augmentation is a column of a row ``u`` of
`NUM_UNIFORMS` uniforms drawn from ``(seed, AUGMENT_TAG)``, the example's index and the
epoch (stateless ops), so it does not depend on the order or the batch the example lands in.
`make_batch_fn` turns a batch of raw images (and their ``u``) into model inputs;
`make_example_fn` decodes and crops the variable-size images of streamed sources first.
"""

from __future__ import annotations

import math

import tensorflow as tf

from tfnas.data.config import DataConfig

# Colour jitter strengths (on the [0, 1] pixel scale) used when `augment.color_jitter_prob` fires.
COLOR_JITTER_BRIGHTNESS = 0.2
COLOR_JITTER_CONTRAST = (0.8, 1.2)
# Random-resized-crop ranges (as torchvision) and the ImageNet-style eval crop: the central
# 0.875 of the shorter side (224 of 256), resized to S, whatever S is.
RRC_AREA_RANGE = (0.08, 1.0)
RRC_ASPECT_RANGE = (3.0 / 4.0, 4.0 / 3.0)
EVAL_CROP_FRACTION = 0.875

# Tag mixed into the augmentation seed so that it never coincides with the shuffle's
# (`tfnas.data.pipeline`, another tag).
AUGMENT_TAG = 0x4155


# Columns of the per-example uniform random numbers `u` in [0, 1) that drive augmentation.
_U_ANGLE, _U_SHIFT_X, _U_SHIFT_Y, _U_FLIP, _U_JITTER, _U_BRIGHTNESS, _U_CONTRAST = range(7)
_U_CROP_Y, _U_CROP_X = 7, 8
_RRC_ATTEMPTS = 10
_U_AREA = 9  # _RRC_ATTEMPTS columns of crop areas, then as many of log aspect ratios
_U_RATIO = _U_AREA + _RRC_ATTEMPTS
NUM_UNIFORMS = _U_RATIO + _RRC_ATTEMPTS


def _rrc_boxes(u: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Random-resized-crop boxes: torchvision's sampler, vectorised over a batch.

    Up to `_RRC_ATTEMPTS` draws of (area in `RRC_AREA_RANGE` of the image, log-uniform aspect
    ratio in `RRC_ASPECT_RANGE`); the first that fits is used, else a central crop of the
    whole image clamped to the aspect range.

    Args:
      u: float32 [B, NUM_UNIFORMS] uniforms.
      height, width: image sizes, scalars or [B].

    Returns:
      float32 [B, 4] boxes (y1, x1, y2, x2) for `tf.image.crop_and_resize`.
    """
    batch = tf.shape(u)[:1]
    h = tf.broadcast_to(tf.cast(height, tf.float32), batch)
    w = tf.broadcast_to(tf.cast(width, tf.float32), batch)
    lo, hi = RRC_AREA_RANGE
    r_lo, r_hi = math.log(RRC_ASPECT_RANGE[0]), math.log(RRC_ASPECT_RANGE[1])
    target = (h * w)[:, None] * (lo + (hi - lo) * u[:, _U_AREA:_U_AREA + _RRC_ATTEMPTS])
    ratio = tf.exp(r_lo + (r_hi - r_lo) * u[:, _U_RATIO:_U_RATIO + _RRC_ATTEMPTS])
    crop_w = tf.round(tf.sqrt(target * ratio))
    crop_h = tf.round(tf.sqrt(target / ratio))
    fits = ((crop_w >= 1) & (crop_w <= w[:, None]) & (crop_h >= 1) & (crop_h <= h[:, None]))
    first = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)
    found = tf.reduce_any(fits, axis=1)
    # Fallback: the whole image, cut centrally to the nearest allowed aspect ratio.
    aspect = w / h
    fallback_w = tf.where(aspect > RRC_ASPECT_RANGE[1], tf.round(h * RRC_ASPECT_RANGE[1]), w)
    fallback_h = tf.where(aspect < RRC_ASPECT_RANGE[0], tf.round(w / RRC_ASPECT_RANGE[0]), h)
    crop_w = tf.where(found, tf.gather(crop_w, first, batch_dims=1), fallback_w)
    crop_h = tf.where(found, tf.gather(crop_h, first, batch_dims=1), fallback_h)
    top = tf.where(found, tf.floor(u[:, _U_CROP_Y] * (h - crop_h + 1)),
                   tf.floor((h - crop_h) / 2))
    left = tf.where(found, tf.floor(u[:, _U_CROP_X] * (w - crop_w + 1)),
                    tf.floor((w - crop_w) / 2))
    # crop_and_resize maps box coordinate y to pixel y * (h - 1).
    h_span, w_span = tf.maximum(h - 1, 1), tf.maximum(w - 1, 1)
    return tf.stack([top / h_span, left / w_span,
                     (top + crop_h - 1) / h_span, (left + crop_w - 1) / w_span], axis=1)


def _affine_transforms(u: tf.Tensor, size: int, max_angle: float, pad: int,
                       flip: bool) -> tf.Tensor:
    """Per-image [B, 8] projective transforms doing rotation, then pad-crop, then flip.

    Composing the three into one output->input pixel map lets one batched
    `ImageProjectiveTransformV3` do them all. Pad-crop (pad `pad` pixels, random crop back) is
    a zero-filled integer shift of -pad..pad pixels per axis; the rotation is
    `keras.layers.RandomRotation`'s (about the centre, zero fill).
    """
    batch = tf.shape(u)[0]
    zeros = tf.zeros([batch])
    ones = tf.ones([batch])
    extent = float(size - 1)
    if max_angle > 0:
        angle = (2.0 * u[:, _U_ANGLE] - 1.0) * max_angle
        cos, sin = tf.cos(angle), tf.sin(angle)
    else:
        cos, sin = ones, zeros
    # Rotation (output -> input): x' = cos x - sin y + x0, y' = sin x + cos y + y0.
    x0 = (extent - (cos * extent - sin * extent)) / 2.0
    y0 = (extent - (sin * extent + cos * extent)) / 2.0
    if pad > 0:
        shift_x = tf.floor(u[:, _U_SHIFT_X] * (2 * pad + 1)) - pad
        shift_y = tf.floor(u[:, _U_SHIFT_Y] * (2 * pad + 1)) - pad
    else:
        shift_x = shift_y = zeros
    if flip:
        flipped = u[:, _U_FLIP] < 0.5
        sign = tf.where(flipped, -ones, ones)
        flip_offset = tf.where(flipped, extent * ones, zeros)
    else:
        sign, flip_offset = ones, zeros
    # Output pixel p -> flip -> shift -> rotation -> input pixel.
    x1 = flip_offset + shift_x
    return tf.stack([cos * sign, -sin, cos * x1 - sin * shift_y + x0,
                     sin * sign, cos, sin * x1 + cos * shift_y + y0, zeros, zeros], axis=1)


def _center_crop_resize(image: tf.Tensor, size: int) -> tf.Tensor:
    """The central `EVAL_CROP_FRACTION` of the shorter side, resized to `size`.

    Works on [H, W, C] or [B, H, W, C] images (one crop for the whole batch).
    """
    shape = tf.shape(image)
    h, w = shape[-3], shape[-2]
    side = tf.cast(tf.cast(tf.minimum(h, w), tf.float32) * EVAL_CROP_FRACTION, tf.int32)
    side = tf.maximum(side, 1)
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[..., top:top + side, left:left + side, :]
    return tf.image.resize(crop, (size, size), method="bilinear")


def make_example_fn(cfg: DataConfig, training: bool, seed: int):
    """fn(epoch, index, encoded, label) -> (float32 [S, S, C] in [0, 1], u, label).

    For streamed sources, whose images differ in size: decode, then random-resized-crop (when
    training with `augment.random_resized_crop`) or centre-crop to S, so that they batch.
    """
    size = cfg.image_size
    channels = cfg.spec.source_shape[2]
    rrc = training and cfg.augment.random_resized_crop
    aug_seed = tf.constant([seed, AUGMENT_TAG], tf.int64)

    def example_fn(epoch, index, encoded, label):
        image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
        image.set_shape([None, None, channels])
        u = tf.zeros([NUM_UNIFORMS])
        if training:
            example_seed = tf.random.experimental.stateless_fold_in(aug_seed, index)
            example_seed = tf.random.experimental.stateless_fold_in(example_seed, epoch)
            u = tf.random.stateless_uniform([NUM_UNIFORMS], example_seed)
        if rrc:
            shape = tf.shape(image)
            boxes = _rrc_boxes(u[None], shape[0], shape[1])
            image = tf.image.crop_and_resize(image[None], boxes, [0], (size, size))[0]
        else:
            image = _center_crop_resize(tf.image.convert_image_dtype(image, tf.float32), size)
        image = tf.ensure_shape(image / 255.0 if rrc else image, [size, size, channels])
        return image, u, label

    return example_fn


def make_batch_fn(cfg: DataConfig, training: bool, sized: bool):
    """fn(images [B, h, w, C] uint8 or float in [0, 1], u [B, K] or None, labels) -> batch.

    Args:
      cfg: the resolved config.
      training: apply the augmentation of `cfg.augment`.
      sized: the images are already S x S (streamed sources, cropped per example).
    """
    size = cfg.image_size
    src_h, src_w, channels = cfg.spec.source_shape
    aug = cfg.augment
    needs_resize = not sized and (src_h, src_w) != (size, size)
    max_angle = math.radians(aug.rotation_degrees)
    any_affine = max_angle > 0 or aug.pad_crop > 0 or aug.flip
    mean = tf.constant(cfg.mean, tf.float32)
    std = tf.constant(cfg.std, tf.float32)

    def batch_fn(images, u, labels):
        images = tf.image.convert_image_dtype(images, tf.float32)  # uint8 -> [0, 1]
        if needs_resize:
            if training and aug.random_resized_crop:
                boxes = _rrc_boxes(u, src_h, src_w)
                images = tf.image.crop_and_resize(
                    images, boxes, tf.range(tf.shape(images)[0]), (size, size))
            elif aug.random_resized_crop:  # ImageNet-style evaluation
                images = _center_crop_resize(images, size)
            else:  # small images of another size: plain resize, train and eval alike
                images = tf.image.resize(images, (size, size), method="bilinear")
        if training and any_affine:
            images = tf.raw_ops.ImageProjectiveTransformV3(
                images=images,
                transforms=_affine_transforms(u, size, max_angle, aug.pad_crop, aug.flip),
                output_shape=tf.constant([size, size]), fill_value=tf.constant(0.0),
                interpolation="BILINEAR", fill_mode="CONSTANT")
        if training and aug.color_jitter_prob > 0:
            # Brightness then contrast (as tf.image.adjust_contrast: around each image's
            # per-channel mean), on the images whose draw says so.
            brightness = (2.0 * u[:, _U_BRIGHTNESS] - 1.0) * COLOR_JITTER_BRIGHTNESS
            c_lo, c_hi = COLOR_JITTER_CONTRAST
            contrast = c_lo + (c_hi - c_lo) * u[:, _U_CONTRAST]
            jittered = images + brightness[:, None, None, None]
            centre = tf.reduce_mean(jittered, axis=[1, 2], keepdims=True)
            jittered = (jittered - centre) * contrast[:, None, None, None] + centre
            jittered = tf.clip_by_value(jittered, 0.0, 1.0)
            apply = u[:, _U_JITTER] < aug.color_jitter_prob
            images = tf.where(apply[:, None, None, None], jittered, images)
        images = tf.ensure_shape((images - mean) / std, [None, size, size, channels])
        return images, tf.cast(labels, tf.int32)

    return batch_fn


"""Tests of tfnas.data.augment: what each augmentation does to an image, and its seeding."""

import numpy as np
import pytest
import tensorflow as tf

from tfnas import data

from .helpers import ALL_AUGMENT
from .helpers import NO_AUGMENT
from .helpers import all_images
from .helpers import synthetic
from .helpers import take


def test_augmentation_differs_per_epoch_not_per_order():
    cfg = synthetic(augment=ALL_AUGMENT)
    ds = data.build_dataset(cfg, "train", 80, training=True, seed=0, shuffle=False, repeat=2)
    epoch1, epoch2 = [x for x, _ in take(ds, 2)]
    assert not np.array_equal(epoch1, epoch2)  # fresh augmentation in the second epoch
    # An example's augmentation depends on (seed, index, epoch), not on its batch.
    small = data.build_dataset(cfg, "train", 8, training=True, seed=0, shuffle=False, repeat=1)
    np.testing.assert_array_equal(all_images(small), epoch1)


def test_flip_only_mirrors_or_keeps_each_image():
    plain = all_images(data.build_dataset(synthetic(augment=NO_AUGMENT), "train", 80,
                                          training=False))
    cfg = synthetic(augment={**NO_AUGMENT, "flip": True})
    flipped = all_images(data.build_dataset(cfg, "train", 80, training=True, shuffle=False,
                                            repeat=1))
    same = np.all(flipped == plain, axis=(1, 2, 3))
    mirrored = np.all(flipped == plain[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored)
    assert 20 < mirrored.sum() < 60


def test_pad_crop_is_a_zero_filled_shift():
    cfg = synthetic(augment={**NO_AUGMENT, "pad_crop": 3})
    plain = all_images(data.build_dataset(cfg, "train", 80, training=False))
    shifted = all_images(data.build_dataset(cfg, "train", 80, training=True, shuffle=False,
                                            repeat=1))
    fill = (0.0 - 0.5) / 0.25  # a zero pixel, normalised
    seen = set()
    for original, out in zip(plain, shifted):
        matches = []
        for dy in range(-3, 4):
            for dx in range(-3, 4):
                padded = np.pad(original, [(3, 3), (3, 3), (0, 0)], constant_values=fill)
                crop = padded[3 + dy:3 + dy + 28, 3 + dx:3 + dx + 28]
                if np.allclose(crop, out, atol=1e-5):
                    matches.append((dy, dx))
        assert matches, "augmented image is not a shift of its original by <= 3 px"
        seen.update(matches)
    assert len(seen) > 10


def test_rotation_and_jitter_change_images_mildly():
    plain = all_images(data.build_dataset(synthetic(augment=NO_AUGMENT), "train", 80,
                                          training=False))
    for augment in ({**NO_AUGMENT, "rotation_degrees": 15.0},
                    {**NO_AUGMENT, "color_jitter_prob": 1.0}):
        out = all_images(data.build_dataset(synthetic(augment=augment), "train", 80,
                                            training=True, shuffle=False, repeat=1))
        assert out.shape == plain.shape and np.all(np.isfinite(out))
        changed = ~np.all(np.isclose(out, plain, atol=1e-4), axis=(1, 2, 3))
        assert changed.mean() > 0.9
        corr = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(out, plain)]
        assert np.median(corr) > 0.5  # still the same picture
    # With probability 0.5 about half the images are jittered.
    half = synthetic(augment={**NO_AUGMENT, "color_jitter_prob": 0.5})
    out = all_images(data.build_dataset(half, "train", 80, training=True, shuffle=False,
                                        repeat=1))
    changed = ~np.all(out == plain, axis=(1, 2, 3))
    assert 20 < changed.sum() < 60


@pytest.mark.parametrize("shape, image_size, augment", [
    ((28, 28, 1), 28, ALL_AUGMENT),                                   # Fashion-MNIST-like
    ((32, 32, 3), 32, {"pad_crop": 4, "flip": True}),                 # CIFAR-like
    ((20, 20, 1), 24, ALL_AUGMENT),                                   # small, resized
    ((48, 40, 3), 32, {"random_resized_crop": True, "flip": True,     # ImageNet-style
                       "color_jitter_prob": 0.5}),
])


def test_augmentation_shapes_and_dtypes(shape, image_size, augment):
    cfg = synthetic(synthetic={"image_shape": shape}, image_size=image_size,
                    augment=augment)
    channels = shape[2]
    info = data.dataset_info(cfg)
    assert info["image_shape"] == (image_size, image_size, channels)
    for split, training in (("train", True), ("holdout", False), ("test", False)):
        ds = data.build_dataset(cfg, split, 8, training=training)
        images, labels = next(iter(ds))
        assert images.shape == (8, image_size, image_size, channels)
        assert images.dtype == tf.float32 and labels.dtype == tf.int32
        assert labels.shape == (8,)
        assert np.all(np.isfinite(images.numpy()))
        assert set(labels.numpy()) <= set(range(10))

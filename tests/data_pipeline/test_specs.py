"""Tests of tfnas.data.specs: the dataset table and the default `data` sections."""

import json

from tfnas import data

# `default_data_config("fashion_mnist").to_json_best_effort()` as tfnas.data (one module)
# wrote it before it became a package. Ground-truth files hash this JSON (the `data` section
# of a config), so a change of a field, value or order would orphan every existing file.
FASHION_MNIST_JSON = (
    '{"dataset": "fashion_mnist", "data_dir": "/usr/share/datasets/fashion-mnist", '
    '"tfds_data_dir": "", "manual_dir": "", "download": false, "image_size": 28, '
    '"holdout_size": 5000, "train_subset": 0, "split_seed": 0, "mean": [0.28604], '
    '"std": [0.35302], "shuffle_buffer": 60000, "augment": {"pad_crop": 2, "flip": true, '
    '"random_resized_crop": false, "color_jitter_prob": 0.5, "rotation_degrees": 15.0}, '
    '"synthetic": {"num_train": 512, "num_test": 128, "image_shape": [28, 28, 1], '
    '"num_classes": 10}}')


def test_default_config_fields():
    cfg = data.default_data_config("fashion_mnist")
    assert set(cfg.keys()) == {
        "dataset", "data_dir", "tfds_data_dir", "manual_dir", "download", "image_size",
        "holdout_size", "train_subset", "split_seed", "mean", "std", "shuffle_buffer",
        "augment", "synthetic"}
    assert set(cfg.augment.keys()) == {"pad_crop", "flip", "random_resized_crop",
                                       "color_jitter_prob", "rotation_degrees"}
    assert set(cfg.synthetic.keys()) == {"num_train", "num_test", "image_shape", "num_classes"}
    assert cfg.data_dir == "/usr/share/datasets/fashion-mnist" and cfg.download is False
    assert cfg.augment.color_jitter_prob == 0.5 and cfg.augment.rotation_degrees == 15.0
    for name in data.DATASETS:
        section = data.default_data_config(name)
        info = data.dataset_info(section)
        assert info["num_classes"] == data.DATASETS[name].num_classes
        assert len(section.mean) in (1, info["image_shape"][2])
    assert data.default_data_config("imagenet2012").augment.random_resized_crop
    assert data.default_data_config("imagenette/160px-v2").image_size == 160


def test_fashion_mnist_json_is_pinned():
    assert data.default_data_config("fashion_mnist").to_json_best_effort() == FASHION_MNIST_JSON


def test_every_dataset_has_the_same_fields_in_the_same_order():
    """The field order of every dataset's JSON is Fashion-MNIST's (pinned above)."""
    def order(section):
        return [(k, order(v) if isinstance(v, dict) else None) for k, v in section.items()]

    expected = order(json.loads(FASHION_MNIST_JSON))
    for name in [*data.DATASETS, "imagenette/160px-v2"]:
        section = json.loads(data.default_data_config(name).to_json_best_effort())
        assert order(section) == expected, name
        assert section["dataset"] == name
    # Values of another dataset, from the table in tfnas.data.specs.
    cifar = json.loads(data.default_data_config("cifar10").to_json_best_effort())
    assert cifar["mean"] == [0.4914, 0.4822, 0.4465] and cifar["std"] == [0.247, 0.2435, 0.2616]
    assert cifar["augment"] == {"pad_crop": 4, "flip": True, "random_resized_crop": False,
                                "color_jitter_prob": 0.0, "rotation_degrees": 0.0}
    assert cifar["synthetic"] == {"num_train": 512, "num_test": 128, "image_shape": [32, 32, 3],
                                  "num_classes": 10}
    assert (cifar["data_dir"], cifar["image_size"], cifar["holdout_size"]) == ("", 32, 5000)

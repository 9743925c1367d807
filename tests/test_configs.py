"""configs/*.py and tfnas.config_lib: every config loads and validates; bad fields are named."""

import importlib
import json
from pathlib import Path

import pytest

from tfnas import config_lib

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIG_NAMES = sorted(p.stem for p in CONFIG_DIR.glob("*.py") if p.stem != "__init__")


def _load(name, variant=None):
    return importlib.import_module(f"configs.{name}").get_config(variant)


def _set(config, field, value):
    *parents, leaf = field.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[leaf] = value


def test_every_space_has_a_config():
    assert set(CONFIG_NAMES) >= {"fmnist", "cifar10", "cifar100", "imagenet"}


@pytest.mark.parametrize("variant", [None, "tiny"])
@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_config_loads_and_validates(name, variant):
    config = _load(name, variant)
    assert config_lib.validate_config(config) is config
    # Every section of the schema is there, and the config serializes (run_stage writes it).
    for section in ("data", "supernet", "train", "evaluate", "export"):
        assert section in config, section
    assert json.loads(config.to_json_best_effort(sort_keys=True))["space"] == config.space


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_tiny_variant_is_tiny(name):
    config = _load(name, "tiny")
    assert config.data.dataset == "synthetic"
    assert 8 <= config.train.batch_size <= 32
    assert config.train.epochs == 1
    assert 1 <= config.train.steps_per_epoch <= 10
    full = _load(name)
    # Same space, same input shape and classes as the full config: a drop-in smoke run.
    assert config.space == full.space
    assert config.data.image_size == full.data.image_size
    assert config.data.synthetic.image_shape[:2] == (full.data.image_size,) * 2


def test_unknown_variant_names_the_choices():
    with pytest.raises(ValueError, match="unknown config variant 'huge'.*'tiny'"):
        _load("fmnist", "huge")


def test_imagenet_follows_the_seed_paper_recipe():
    config = _load("imagenet")
    assert config.space == "imagenet" and config.data.dataset == "imagenet2012"
    assert config.data.image_size == 224
    assert config.train.scheme == "sandwich"
    assert config.train.momentum == 0.9 and not config.train.nesterov
    assert config.train.weight_decay == 1e-5
    assert config.supernet.dropout == 0.2
    assert config.train.warmup_epochs > 0
    assert config.supernet.bn_momentum == 1.0 and config.supernet.bn_epsilon == 1e-5


def test_supernet_defaults():
    config = config_lib.base_config()
    assert config.supernet.groups == 1 and config.supernet.kernels == 1
    assert config.supernet.bn_momentum == 1.0
    assert config.train.steps_per_epoch == 0 and config.train.strategy == "default"
    assert config.train.num_random_subnets == 2 and config.train.label_smoothing == 0.0
    assert config.export.root == "saved_models" and config.export.overwrite is False
    # Stand-alone training is stock by default; the ranking benchmark opts in.
    assert config.standalone.zero_init_residual is False
    assert _load("fmnist_ranking").standalone.zero_init_residual is True


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("train.batch_size", 0, "config.train.batch_size=0 is invalid: expected an integer >= 1"),
        ("train.strategy", "tpu", "config.train.strategy='tpu' is invalid: expected one of"),
        ("train.scheme", "greedy", "config.train.scheme='greedy' is invalid: expected one of"),
        ("supernet.groups", 0, "config.supernet.groups=0 is invalid"),
        ("supernet.kernels", 0, "config.supernet.kernels=0 is invalid"),
        ("supernet.groups", 2, "config.supernet.groups=2 is invalid: expected 1 with"),
        ("space", "resnet", "config.space='resnet' is invalid"),
        ("data.image_size", 32, "config.data.image_size=32 is invalid"),
        ("data.dataset", "cifar10", "config.data.dataset='cifar10' is invalid"),
        ("data.dataset", "mnist", "data.dataset 'mnist'"),
        ("train.warmup_epochs", 9.0, "config.train.warmup_epochs=9.0 is invalid"),
        ("evaluate.recalibration.mode", "x", "config.evaluate.recalibration.mode='x'"),
        ("seed", -1, "config.seed=-1 is invalid"),
        (
            "standalone.zero_init_residual",
            None,
            "config.standalone.zero_init_residual=None is invalid",
        ),
    ],
)
def test_bad_field_is_named(field, value, expected):
    config = _load("fmnist")
    _set(config, field, value)
    with pytest.raises(ValueError) as info:
        config_lib.validate_config(config)
    message = str(info.value)
    assert expected in message
    if "is invalid" in expected:
        assert "expected" in message and "--config." in message  # what, and how to fix it


def test_missing_section_is_named():
    config = _load("fmnist")
    del config["train"]
    with pytest.raises(ValueError, match=r"config\.train\.scheme is missing"):
        config_lib.validate_config(config)


def test_holdout_split_needs_a_holdout():
    config = _load("fmnist")
    config.data.holdout_size = 0
    with pytest.raises(ValueError, match=r"config\.evaluate\.split='holdout'"):
        config_lib.validate_config(config)


def test_name_lists_match_the_modules():
    """config_lib keeps TF-free copies of the names; they must agree with the modules."""
    from tfnas import data
    from tfnas import distribute
    from tfnas import evaluation
    from tfnas import schemes
    from tfnas import search_space as ss
    from tfnas import supernet

    assert set(config_lib.SCHEMES) == set(schemes.SCHEMES)
    assert tuple(config_lib.STRATEGIES) == tuple(distribute.STRATEGIES)
    assert tuple(config_lib.ROUTINGS) == tuple(supernet.ROUTINGS)
    assert tuple(config_lib.RECALIBRATION_MODES) == tuple(evaluation.RECALIBRATION_MODES)
    assert tuple(config_lib.SPLITS) == tuple(data.SPLITS)
    assert set(config_lib.SPACE_DATASETS) == set(ss.SPACES)

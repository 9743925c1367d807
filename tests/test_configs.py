"""configs/*.py and the config schema: every config validates; each section's validator
(in the module that owns the section) names bad, missing and unknown fields."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tfnas import config_lib
from tfnas import evaluation
from tfnas import export
from tfnas import monitor
from tfnas import ranking
from tfnas import schemes
from tfnas import search_space as ss
from tfnas import standalone
from tfnas import supernet
from tfnas import trainer

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"
CONFIG_NAMES = sorted(p.stem for p in CONFIG_DIR.glob("*.py") if p.stem != "__init__")
# Variants a config file defines besides the default and :tiny (OWN_VARIANTS).
OWN_VARIANTS = [
    (name, variant)
    for name in CONFIG_NAMES
    for variant in getattr(importlib.import_module(f"configs.{name}"), "OWN_VARIANTS", ())
]

# Each section of the schema and the validator that documents and checks it.
VALIDATORS = {
    "supernet": supernet.validate_config,
    "train": trainer.validate_config,
    "train.monitor": monitor.validate_config,
    "evaluate": evaluation.validate_config,
    "standalone": standalone.validate_config,
    "rank": ranking.validate_config,
    "export": export.validate_config,
}


def _load(name, variant=None):
    return importlib.import_module(f"configs.{name}").get_config(variant)


def _node(config, path):
    node = config
    for part in path.split(".") if path else ():
        node = node[part]
    return node


def _set(config, field, value):
    """Sets a field, of any type: ConfigDict refuses a value of another type, but a config
    file can still hold one (a plain dict section, a replaced section)."""
    *parents, leaf = field.split(".")
    parent = _node(config, ".".join(parents))
    with parent.ignore_type():
        parent[leaf] = value


def _error(config) -> str:
    with pytest.raises(ValueError) as info:
        config_lib.validate_config(config)
    return str(info.value)


# ------------------------------------------------------------------------- the config files


def test_every_space_has_a_config():
    assert set(CONFIG_NAMES) >= {"fmnist", "cifar10", "cifar100", "imagenet"}


@pytest.mark.parametrize("variant", [None, "tiny"])
@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_config_loads_and_validates(name, variant):
    config = _load(name, variant)
    assert config_lib.validate_config(config) is config
    assert set(config) == set(config_lib.FIELDS)
    # The config serializes (run_stage writes it as config.json).
    assert json.loads(config.to_json_best_effort(sort_keys=True))["space"] == config.space


@pytest.mark.parametrize(("name", "variant"), OWN_VARIANTS)
def test_own_variant_loads_and_validates(name, variant):
    config = _load(name, variant)
    assert config_lib.validate_config(config) is config
    assert set(config) == set(config_lib.FIELDS)


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="variant"):
        _load("fmnist_aps", "v9")


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


@pytest.mark.parametrize("space", sorted(ss.SPACES))
def test_base_config_of_every_space_validates(space):
    """Every search-space variant has a default dataset that fits it."""
    config = config_lib.base_config(space, space=space)
    assert config_lib.validate_config(config).data.dataset == config_lib.SPACE_DATASETS[space]


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


def test_defaults():
    config = config_lib.base_config()
    assert config.supernet.num_copies == 1 and config.supernet.num_kernels == 1
    assert config.supernet.routing == "shared" and config.supernet.bn_momentum == 1.0
    assert config.train.steps_per_epoch == 0 and config.train.strategy == "default"
    assert config.train.num_random_subnets == 2 and config.train.label_smoothing == 0.0
    assert config.train.deterministic is False
    assert config.export.root == "saved_models" and config.export.overwrite is False
    assert config.export.allow_untrained is False  # export needs a trained supernet
    assert tuple(config.rank.ks) == (5, 10, 0.1, 0.25, 0.5) and config.rank.bootstrap == 1000
    # Stand-alone training is stock by default; the ranking benchmark opts in.
    assert config.standalone.zero_init_residual is False
    assert _load("fmnist_ranking").standalone.zero_init_residual is True


def test_config_lib_imports_without_tensorflow():
    code = "import sys, tfnas.config_lib; print('tensorflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- one bad value per family


@pytest.mark.parametrize(
    "field, value, expected",
    [
        # top level
        ("name", "", "a non-empty string"),
        ("seed", -1, "an integer >= 0"),
        ("space", "resnet", "one of the search-space variants cifar10, cifar100, fmnist"),
        # data: it must fit the space
        ("data.image_size", 32, "one of the input resolutions of the 'fmnist' space (28)"),
        ("data.dataset", "cifar10", "a dataset with 1-channel images and 10 classes"),
        # supernet
        ("supernet.num_copies", 0, "an integer >= 1"),
        ("supernet.routing", "groups", "one of 'shared', 'stage_width', 'depth34'"),
        ("supernet.num_kernels", 0, "an integer >= 1"),
        ("supernet.simplex_hidden", 2.5, "an integer >= 1"),
        ("supernet.bn_momentum", 1.5, "a number in [0.0, 1.0]"),
        ("supernet.bn_epsilon", 0.0, "a number in (0.0, 1.0]"),
        ("supernet.zero_init_residual", 1, "True or False"),
        ("supernet.dropout", 1.0, "a number in [0.0, 1.0)"),
        # train
        ("train.scheme", "greedy", "one of 'sandwich', 'uniform'"),
        ("train.batch_size", 0, "an integer >= 1"),
        ("train.epochs", 0, "an integer >= 1"),
        ("train.steps_per_epoch", -1, "an integer >= 0"),
        ("train.learning_rate", 0.0, "a number in (0.0, inf]"),
        ("train.momentum", 1.0, "a number in [0.0, 1.0)"),
        ("train.nesterov", "yes", "True or False"),
        ("train.weight_decay", -1e-5, "a number in [0.0, inf]"),
        ("train.label_smoothing", True, "a number in [0.0, 1.0)"),
        ("train.num_random_subnets", 1024, "an integer in 0..1023"),
        ("train.strategy", "tpu", "one of 'default', 'one_device', 'mirrored', 'multi_worker'"),
        ("train.log_every_steps", 0, "an integer >= 1"),
        ("train.checkpoint_every_epochs", 0, "an integer >= 1"),
        ("train.verbose", 3, "one of 'auto', 0, 1, 2"),
        ("train.verbose", True, "one of 'auto', 0, 1, 2"),
        ("train.deterministic", 0, "True or False"),
        ("train.monitor.enabled", "no", "True or False"),
        ("train.monitor.ground_truth", None, "a string"),
        ("train.monitor.every_epochs", 0, "an integer >= 1"),
        ("train.monitor.max_archs", 2, "0 (all archs) or at least 3"),
        # evaluate
        ("evaluate.codes", None, "a string"),
        ("evaluate.supernet", 3, "a string"),
        ("evaluate.split", "validation", "one of 'train', 'holdout', 'test'"),
        ("evaluate.batch_size", 0, "an integer >= 1"),
        ("evaluate.num_batches", -1, "an integer >= 0"),
        ("evaluate.log_every", 0, "an integer >= 1"),
        ("evaluate.recalibration.split", "val", "one of 'train', 'holdout', 'test'"),
        ("evaluate.recalibration.batch_size", 0, "an integer >= 1"),
        ("evaluate.recalibration.num_batches", 0, "an integer >= 1"),
        ("evaluate.recalibration.augment", None, "True or False"),
        ("evaluate.recalibration.mode", "x", "one of 'cumulative', 'ema'"),
        ("evaluate.recalibration.ema_momentum", 2.0, "a number in [0.0, 1.0]"),
        # standalone
        ("standalone.seed", -1, "an integer >= 0"),
        ("standalone.train_subset", -1, "an integer >= 0"),
        ("standalone.split", "dev", "one of 'train', 'holdout', 'test'"),
        ("standalone.eval_batch_size", 0, "an integer >= 1"),
        ("standalone.epochs", 0, "an integer >= 1"),
        ("standalone.learning_rate", -0.1, "a number in (0.0, inf]"),
        ("standalone.nesterov", None, "True or False"),
        ("standalone.dropout", -0.1, "a number in [0.0, 1.0)"),
        ("standalone.zero_init_residual", None, "True or False"),
        # rank
        ("rank.ks", (0,), "a tuple of arch counts (integers >= 1) and fractions"),
        ("rank.ks", (1.5,), "a tuple of arch counts (integers >= 1) and fractions"),
        ("rank.ks", "5,10", "a tuple of arch counts (integers >= 1) and fractions"),
        ("rank.bootstrap", -1, "an integer >= 0"),
        ("rank.seed", 0.5, "an integer >= 0"),
        ("rank.drop_unmatched_pred", "no", "True or False"),
        # export
        ("export.root", "", "a non-empty string"),
        ("export.run", None, "a string"),
        ("export.overwrite", 1, "True or False"),
        ("export.supernet", None, "a string"),
        ("export.allow_untrained", "yes", "True or False"),
        ("export.codes", 7, "a string"),
        ("export.top_k", 0, "an integer >= 1"),
        ("export.recalibrate", "yes", "True or False"),
    ],
)
def test_bad_value_is_named(field, value, expected):
    config = _load("fmnist")
    _set(config, field, value)
    message = _error(config)
    # What was received, what is expected, and how to fix it.
    received = _node(config, field)  # as stored (ConfigDict turns ints into floats)
    assert message.startswith(f"config.{field}={received!r} is invalid: expected {expected}")
    assert "--config." in message


def test_bad_data_section_is_named_by_tfnas_data():
    config = _load("fmnist")
    config.data.dataset = "mnist"
    assert _error(config).startswith("invalid config.data section:")
    assert "data.dataset 'mnist'" in _error(config)


# ------------------------------------------------------------------------ cross-field rules


@pytest.mark.parametrize(
    "routing, num_copies, expected",
    [
        ("shared", 1, None),
        ("shared", 2, "1 with supernet.routing='shared' (one weight copy)"),
        ("stage_width", 7, None),
        ("stage_width", 8, "at most 7 with supernet.routing='stage_width'"),
        ("depth34", 28, None),
        ("depth34", 29, "at most 28 with supernet.routing='depth34'"),
    ],
)
def test_num_copies_fit_the_routing(routing, num_copies, expected):
    config = _load("fmnist")
    config.supernet.routing = routing
    config.supernet.num_copies = num_copies
    if expected is None:
        config_lib.validate_config(config)
    else:
        message = _error(config)
        assert message.startswith(f"config.supernet.num_copies={num_copies} is invalid")
        assert expected in message and "--config.supernet." in message


@pytest.mark.parametrize("section", ["train", "standalone"])
@pytest.mark.parametrize(
    "epochs, warmup, ok", [(3, 2.9, True), (3, 3.0, False), (1, 0.0, True), (2, 5.0, False)]
)
def test_warmup_is_shorter_than_training(section, epochs, warmup, ok):
    config = _load("fmnist")
    config[section].epochs = epochs
    config[section].warmup_epochs = warmup
    if ok:
        config_lib.validate_config(config)
    else:
        message = _error(config)
        assert message.startswith(
            f"config.{section}.warmup_epochs={warmup!r} is invalid: expected fewer than "
            f"{section}.epochs={epochs}"
        )
        assert f"raise --config.{section}.epochs" in message


@pytest.mark.parametrize(
    "field", ["evaluate.split", "evaluate.recalibration.split", "standalone.split"]
)
def test_holdout_split_needs_a_holdout(field):
    config = _load("fmnist")
    config.evaluate.split = "test"
    _set(config, field, "holdout")
    config_lib.validate_config(config)
    config.data.holdout_size = 0
    message = _error(config)
    assert message.startswith(f"config.{field}='holdout' is invalid")
    assert "data.holdout_size is 0" in message and f"--config.{field}=test" in message


def test_monitor_needs_ground_truth_when_enabled():
    config = _load("fmnist")
    config.train.monitor.enabled = True
    message = _error(config)
    assert message.startswith("config.train.monitor.ground_truth='' is invalid")
    assert "--config.train.monitor.enabled=False" in message
    config.train.monitor.ground_truth = "gt.json"  # read when training starts, not here
    config_lib.validate_config(config)


# ---------------------------------------------------------------- unknown and missing fields


@pytest.mark.parametrize(
    "path, stray, suggestion",
    [
        ("", "seeds", "config.seed"),
        ("supernet", "routings", "config.supernet.routing"),
        ("train", "epoch", "config.train.epochs"),
        ("train.monitor", "max_arch", "config.train.monitor.max_archs"),
        ("evaluate", "batchsize", "config.evaluate.batch_size"),
        ("evaluate.recalibration", "ema", None),
        ("standalone", "learning_rates", "config.standalone.learning_rate"),
        ("rank", "k", None),
        ("export", "top_k_archs", "config.export.top_k"),
    ],
)
def test_unknown_field_is_named_with_the_known_ones(path, stray, suggestion):
    """A stray field in a config file (config_flags catches them on the command line)."""
    config = _load("fmnist")
    section = _node(config, path)
    known = list(section)
    section[stray] = 1
    message = _error(config)
    name = f"config.{path}.{stray}" if path else f"config.{stray}"
    assert message.startswith(f"{name} is not a field of the config")
    listed = message.split(" has only ", 1)[1].split(" (see ", 1)[0]
    assert sorted(listed.split(", ")) == sorted(known)
    if suggestion:
        assert f"did you mean {suggestion}?" in message


def test_renamed_supernet_fields_name_the_new_ones():
    for old, new in [("groups", "num_copies"), ("kernels", "num_kernels")]:
        config = _load("fmnist")
        config.supernet[old] = 2
        del config.supernet[new]
        message = _error(config)
        assert f"config.supernet.{new} is missing" in message
        config.supernet[new] = 1
        assert f"config.supernet.{old} is not a field" in _error(config)
        assert f"it was renamed config.supernet.{new}" in _error(config)


@pytest.mark.parametrize(
    "path, field",
    [("", "train"), ("train", "scheme"), ("evaluate", "recalibration"), ("export", "top_k")],
)
def test_missing_field_is_named(path, field):
    config = _load("fmnist")
    del _node(config, path)[field]
    name = f"config.{path}.{field}" if path else f"config.{field}"
    assert _error(config).startswith(f"{name} is missing")


def test_section_that_is_not_a_section_is_named():
    config = _load("fmnist")
    _set(config, "evaluate.recalibration", "cumulative")
    assert _error(config).startswith("config.evaluate.recalibration is a str: expected a section")


# ------------------------------------------------------------ the validators, one by one


@pytest.mark.parametrize("path", sorted(VALIDATORS))
def test_each_validator_checks_its_section_alone(path):
    """A section validator takes its section (and explicit cross-checks), nothing else."""
    validate = VALIDATORS[path]
    extra = {"holdout_size": 5000} if path in ("evaluate", "standalone") else {}
    config = config_lib.base_config()
    section = _node(config, path)
    assert validate(section, **extra) is None
    first = sorted(section)[0]
    _set(config, f"{path}.{first}", object())
    with pytest.raises(ValueError, match=rf"^config\.{path}\.{first}=<object"):
        validate(section, **extra)


def test_split_validators_take_the_holdout_size_explicitly():
    config = config_lib.base_config()
    assert config.evaluate.split == "holdout" and config.evaluate.recalibration.split == "train"
    evaluation.validate_config(config.evaluate, holdout_size=1)
    with pytest.raises(ValueError, match=r"^config\.evaluate\.split='holdout' is invalid"):
        evaluation.validate_config(config.evaluate, holdout_size=0)
    config.standalone.split = "holdout"
    standalone.validate_config(config.standalone, holdout_size=1)
    with pytest.raises(ValueError, match=r"^config\.standalone\.split='holdout' is invalid"):
        standalone.validate_config(config.standalone, holdout_size=0)


@pytest.mark.parametrize("path", sorted(VALIDATORS) + ["evaluate.recalibration"])
def test_each_validator_documents_every_field(path):
    """The schema's doc lives with its validator: every default field is described there."""
    doc = VALIDATORS.get(path, evaluation.validate_config).__doc__
    for field in _node(config_lib.base_config(), path):
        assert f"``{field}``" in doc, f"{path}.{field} is not documented"


def test_scheme_names_come_from_the_scheme_registry(monkeypatch):
    """No copy of the registry: a scheme added to tfnas.schemes is a valid config value."""
    config = _load("fmnist")
    config.train.scheme = "greedy"
    assert "config.train.scheme='greedy' is invalid" in _error(config)
    monkeypatch.setitem(schemes.SCHEMES, "greedy", schemes.UniformScheme)
    config_lib.validate_config(config)


def test_registry_names_are_still_exported():
    assert config_lib.SCHEMES == (
        "sandwich", "uniform", "rdnas", "fewshot", "kshot", "multipath", "cpt", "sse"
    )
    assert config_lib.STRATEGIES == ("default", "one_device", "mirrored", "multi_worker")
    assert config_lib.ROUTINGS == (
        "shared", "stage_width", "depth34", "stage_width_nested", "depth34_table"
    )
    assert config_lib.RECALIBRATION_MODES == ("cumulative", "ema")
    assert config_lib.SPLITS == ("train", "holdout", "test")
    with pytest.raises(AttributeError):
        config_lib.NOT_A_NAME  # noqa: B018

"""Stand-alone training: an arch trained from scratch as a plain Keras model, the ground truth.

    from tfnas import standalone
    acc, seconds, cpu_seconds = standalone.train_standalone(config, arch, seed=0)
    standalone.recipe(config)   # what the accuracy depends on besides the arch and seed

The ``standalone`` config section is the recipe (`validate_config` documents it); the
``standalone`` stage (`tfnas.stages.standalone`) drives it over a list of codes and writes
the ground-truth files (`tfnas.ground_truth`).
"""

from __future__ import annotations

import json
import time

import keras

from tfnas import data as data_lib
from tfnas import optimizers
from tfnas import search_space as ss
from tfnas import static
from tfnas import trainer as trainer_lib

SECTION = "standalone"


def recipe(config) -> dict:
    """Everything that determines a ground-truth accuracy besides the arch and seed."""
    return {
        "space": config.space,
        "data": json.loads(config.data.to_json_best_effort()),
        "standalone": {k: v for k, v in config.standalone.to_dict().items() if k != "seed"},
    }


def train_standalone(config, arch, seed: int) -> tuple[float, float, float]:
    """Trains ``arch`` from scratch.

    Returns:
      (accuracy on ``standalone.split``, wall seconds, CPU seconds of this process). The CPU
      time is what a recipe costs whatever else shares the machine.
    """
    return fit_standalone(config, arch, seed)[1:]


def fit_standalone(config, arch, seed: int) -> tuple[keras.Model, float, float, float]:
    """`train_standalone`, with the trained model first: (model, accuracy, wall seconds,
    CPU seconds). ``train.teacher=standalone_largest`` keeps the model (`tfnas.teacher`)."""
    sa = config.standalone
    space = ss.get_space(config.space)
    start = time.perf_counter()
    cpu_start = time.process_time()
    keras.utils.set_random_seed(seed)
    data_config = config.data.copy_and_resolve_references()
    with data_config.unlocked():
        data_config.train_subset = sa.train_subset
    train = data_lib.build_dataset(data_config, "train", sa.batch_size, training=True, seed=seed)
    test = data_lib.build_dataset(config.data, sa.split, sa.eval_batch_size, training=False)
    steps = data_lib.dataset_info(data_config)["num_train"] // sa.batch_size
    if steps < 1:
        raise ValueError(
            f"standalone.train_subset={sa.train_subset} images give no full batch of "
            f"standalone.batch_size={sa.batch_size}. Raise --config.standalone.train_subset "
            "or lower --config.standalone.batch_size."
        )
    model = static.build_static_model(
        space, arch, dropout=sa.dropout, zero_init_residual=sa.zero_init_residual
    )
    model.compile(
        optimizer=optimizers.make_optimizer(sa, steps, weight_decay=sa.weight_decay),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=False,
    )
    # The pipeline shuffles (statelessly, from the seed); Keras must not try to.
    model.fit(train, epochs=sa.epochs, steps_per_epoch=steps, shuffle=False, verbose=0)
    _, acc = model.evaluate(test, verbose=0)
    return model, float(acc), time.perf_counter() - start, time.process_time() - cpu_start


CONFIG_FIELDS = (
    "seed",
    "train_subset",
    "split",
    "batch_size",
    "eval_batch_size",
    "epochs",
    "warmup_epochs",
    "learning_rate",
    "momentum",
    "nesterov",
    "weight_decay",
    "dropout",
    "zero_init_residual",
)


def validate_config(section, *, holdout_size: int) -> None:
    """Checks the ``standalone`` section of an experiment config (`tfnas.config_lib`): the
    from-scratch recipe of the ground truth. Every field but ``seed`` is part of the recipe
    hash (`recipe`), so a ground-truth file never mixes recipes.

    Fields:

    - ``seed`` (int >= 0): the training seed, and the file's (``ground_truth.seed<S>``).
    - ``train_subset`` (int >= 0): a fixed subset of the training split (0: all of it).
    - ``split``: where the accuracy is measured, one of `tfnas.data.SPLITS` (``holdout``
      needs ``data.holdout_size`` > 0).
    - ``batch_size``, ``eval_batch_size`` (ints >= 1).
    - ``epochs``, ``warmup_epochs``, ``learning_rate``, ``momentum``, ``nesterov``: SGD
      with a linear warm-up and cosine decay (`tfnas.trainer.check_optimizer_recipe`).
    - ``weight_decay`` (>= 0): Keras's decoupled weight decay of every variable.
    - ``dropout`` in [0, 1): before the classifier.
    - ``zero_init_residual`` (bool): the last BN of every residual branch starts at 0.

    Args:
      section: ``config.standalone``.
      holdout_size: ``config.data.holdout_size``, to check the split.

    Raises:
      ValueError: naming ``config.standalone.<field>``, the value, what is expected and how
        to fix it; also for a missing or unknown field.
    """
    from tfnas import config_checks
    from tfnas import evaluation

    fields = config_checks.Section(
        section, SECTION, CONFIG_FIELDS, owner="tfnas.standalone.validate_config"
    )
    fields.integer("seed", 0)
    fields.integer("train_subset", 0)
    evaluation.check_split(fields, "split", holdout_size)
    fields.integer("batch_size", 1)
    fields.integer("eval_batch_size", 1)
    trainer_lib.check_optimizer_recipe(fields)
    fields.number("weight_decay", 0.0)
    fields.number("dropout", 0.0, 1.0, high_open=True)
    fields.boolean("zero_init_residual")

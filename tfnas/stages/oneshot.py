"""Stage ``oneshot``: train the supernet with a weight-sharing scheme.

    bin/train --stage=oneshot --config=configs/fmnist.py --workdir=/tmp/run

Writes to ``<workdir>/oneshot/``: ``config.json`` (resolved config), ``checkpoints/`` (the
last good epoch; the same command resumes from it after a crash), ``tensorboard/`` (each
sandwich member's loss, learning rate, images/s, step time), ``supernet.keras`` (the
trained supernet, self-describing) and ``manifest.json`` naming it -- later stages find
the supernet through ``config.evaluate.supernet`` or, when that is empty, this manifest.
At the end it reports the accuracy of the largest and smallest subnets after BN
recalibration (``report.json``). With ``train.monitor.enabled``, `tfnas.monitor.RankingMonitor`
logs Kendall tau against ``train.monitor.ground_truth`` every few epochs
(``tensorboard/ranking``) and keeps the best-tau supernet in ``monitor/best_tau.keras``.
A K-shot supernet (``supernet.num_kernels`` > 1) also logs the simplex codes of six fixed
archs every epoch (``tensorboard/simplex``, `tfnas.callbacks.SimplexCodes`).
"""

from __future__ import annotations

import json
from pathlib import Path

import keras

from tfnas import callbacks as callbacks_lib
from tfnas import data as data_lib
from tfnas import distribute
from tfnas import evaluation
from tfnas import grappler
from tfnas import optimizers
from tfnas import precision
from tfnas import schedules
from tfnas import schemes
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas import teacher as teacher_lib
from tfnas import trainer as trainer_lib
from tfnas.stages import registry

STAGE = "oneshot"


class TrainingDivergedError(ValueError):
    """The loss became NaN; the last good checkpoint is kept."""


def steps_per_epoch(config) -> int:
    """``train.steps_per_epoch``, or one pass over the training split when it is 0."""
    if config.train.steps_per_epoch:
        return int(config.train.steps_per_epoch)
    info = data_lib.dataset_info(config.data)
    return max(1, info["num_train"] // config.train.batch_size)


# Config fields that do not change the trained weights: a run may resume with other values.
# The strategy may change too (a preempted run may resume on another number of devices), and
# so may the deterministic mode (it picks kernels, not the recipe) and grappler's options
# (how the graph is optimized, not what it computes; and a run checkpointed before the field
# existed resumes).
_RESUMABLE_WITH_OTHER = ("verbose", "log_every_steps", "checkpoint_every_epochs", "monitor",
                         "strategy", "deterministic", "grappler")


def run_config(config) -> dict:
    """What determines the trained supernet: stored with its checkpoints, checked on resume.

    The seed, the space, the data, supernet and train sections, except the train fields of
    `_RESUMABLE_WITH_OTHER` (logging, checkpoint frequency, the ranking monitor, which only
    selects a checkpoint, and the strategy).
    """
    full = json.loads(config.to_json_best_effort())
    train = {k: v for k, v in full["train"].items() if k not in _RESUMABLE_WITH_OTHER}
    return {
        "seed": full["seed"],
        "space": full["space"],
        "data": full["data"],
        "supernet": full["supernet"],
        "train": train,
    }


def phase_schedule(train, steps: int):
    """The restarted cosine of ``train.phases`` (`tfnas.schedules.PhaseCosine`), or None
    when the phases ask for nothing beyond `tfnas.optimizers.warmup_cosine` (one phase at
    the peak ``train.learning_rate``), which then stays the schedule: runs from before
    phases existed reproduce bit for bit."""
    phases = train.phases
    if tuple(phases.boundaries) or tuple(phases.warmup_steps) or tuple(phases.peaks) != (1.0,):
        return schedules.learning_rate_from_config(train, steps)
    return None


def train_supernet(config, stage_dir: Path, strategy=None, *, overwrite: bool = False):
    """Builds, (re)stores and trains the supernet.

    Under multi-worker training only the chief writes into ``stage_dir``; every worker
    resumes from the chief's checkpoint (`tfnas.distribute.write_dir`). A checkpoint
    trained with another `run_config` is refused. With ``overwrite`` the chief moves an
    existing ``stage_dir`` aside (`registry.move_aside`) and every worker starts afresh.

    Returns:
        (trainer, initial_epoch): the `SupernetTrainer` (its ``supernet`` trained) and the
        epoch training resumed at (0 on a fresh run).
    """
    # First: op determinism is process-global and must precede anything traced or random.
    distribute.configure_determinism(config.train.deterministic, config.seed)
    # Also process-global, read when the step's graph is first optimized (tfnas.grappler).
    grappler.apply(config.train.grappler)
    strategy = strategy or distribute.make_strategy(config.train.strategy)
    distribute.check_global_batch(config.train.batch_size, strategy)
    steps = steps_per_epoch(config)
    if overwrite and distribute.is_chief(strategy):
        registry.move_aside(stage_dir)
    # The frozen teacher (SSE's distillation), written into the run once: a resumed run
    # reloads the same file (tfnas.teacher). Every worker prepares its own copy.
    out_dir = distribute.write_dir(stage_dir, strategy)
    teacher_path = teacher_lib.prepare(config, out_dir)
    keras.utils.set_random_seed(config.seed)
    # Layers read the dtype policy when they are built; the process's policy comes back
    # after (stages may share a process, e.g. in tests).
    with strategy.scope(), precision.policy_scope(config.train.precision):
        supernet = supernet_lib.build_supernet(config.supernet, config.space)
        trainer = trainer_lib.SupernetTrainer(
            supernet,
            schemes.build_scheme(config, steps_per_epoch=steps),
            weight_decay=config.train.weight_decay,
            label_smoothing=config.train.label_smoothing,
            teacher_model=teacher_lib.load(teacher_path) if teacher_path else None,
        )
        optimizer = optimizers.make_optimizer(
            config.train,
            steps,
            lazy=config.train.lazy_updates,
            schedule=phase_schedule(config.train, steps),
        )
        trainer.compile(
            optimizer=precision.wrap_optimizer(optimizer, config.train.precision),
            group_optimizers=schemes.build_group_optimizers(config, steps),
            jit_compile=False,  # slicing with tensor sizes recompiles per arch under XLA
        )
        guard = callbacks_lib.NanGuard()
        checkpoint = callbacks_lib.EpochCheckpoint(
            stage_dir / "checkpoints",
            guard,
            every_epochs=config.train.checkpoint_every_epochs,
            write_directory=out_dir / "checkpoints",
            run_config=run_config(config),
        )
        # Inside the scope: restoring builds the optimizer's slots, which must be mirrored.
        initial_epoch = 0 if overwrite else checkpoint.restore(trainer, steps)
        if not initial_epoch and config.supernet.init_from:
            # Only a run without a checkpoint of its own starts from another run's weights
            # (and with a fresh optimizer), so a crashed run resumes from its own.
            from tfnas import transfer

            parent = transfer.init_from_config(supernet, config.supernet)
            print(f"oneshot: initialized from {config.supernet.init_from} (parents {parent}).")
    if initial_epoch:
        print(f"oneshot: resuming from the checkpoint after epoch {initial_epoch}.")
    # A resumed run continues the data stream where the checkpointed run was: order and
    # augmentation derive from (seed, epoch, index), so the start is computed, not read.
    dataset = data_lib.build_dataset(
        config.data,
        "train",
        config.train.batch_size,
        training=True,
        seed=config.seed,
        num_replicas=strategy.num_replicas_in_sync,
        repeat=True,
        start_batch=initial_epoch * steps,
    )
    callbacks = [
        guard,
        callbacks_lib.Throughput(config.train.batch_size),
        checkpoint,
        keras.callbacks.TensorBoard(
            str(out_dir / "tensorboard"),
            update_freq=config.train.log_every_steps,
        ),
    ]
    if int(config.supernet.num_kernels) > 1:
        callbacks.insert(-1, callbacks_lib.SimplexCodes(trainer.supernet, out_dir / "tensorboard"))
    if config.train.phases.reset_momentum:
        # Eagerly, between steps: an in-graph reset of mirrored slots fails (TF_NOTES.md).
        callbacks.insert(
            1,
            callbacks_lib.MomentumReset(
                config.train.phases.boundaries, list(trainer.optimizers_by_group().values())
            ),
        )
    if config.train.monitor.enabled:
        from tfnas import monitor as monitor_lib

        # Before TensorBoard, which then also logs the ranking metrics it adds to the logs.
        callbacks.insert(
            -1,
            monitor_lib.RankingMonitor.from_config(
                config, out_dir, lambda net: evaluation.build_evaluator(config, net)
            ),
        )
    if initial_epoch < config.train.epochs:
        registry.write_config(config, out_dir)
        trainer.fit(
            dataset,
            epochs=config.train.epochs,
            steps_per_epoch=steps,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            shuffle=False,  # the pipeline shuffles, from (seed, epoch)
            verbose=config.train.verbose,
        )
    if guard.failed_at is not None:
        epoch, batch = guard.failed_at
        raise TrainingDivergedError(
            f"Training stopped: the loss became NaN or infinite at epoch {epoch + 1}, step "
            f"{batch + 1}. The last good checkpoint (after epoch "
            f"{checkpoint.completed_epochs()}) is kept in {checkpoint.directory}. Lower "
            "--config.train.learning_rate (or raise warmup_epochs) and run the same command "
            "again to resume from it."
        )
    return trainer, initial_epoch


def score_extremes(config, supernet) -> dict[str, float]:
    """Accuracy of the largest and smallest subnets after BN recalibration."""
    space = ss.get_space(config.space)
    evaluator = evaluation.build_evaluator(config, supernet)
    return {
        "largest": evaluator.accuracy(space.largest()),
        "smallest": evaluator.accuracy(space.smallest()),
    }


@registry.register(STAGE, help="Train the supernet (sandwich rule by default).")
def run(config, args: registry.StageArgs) -> int:
    stage_dir = Path(args.workdir) / STAGE
    strategy = distribute.make_strategy(config.train.strategy)
    trainer, initial_epoch = train_supernet(
        config, stage_dir, strategy, overwrite=args.overwrite
    )
    supernet = trainer.supernet
    # Every worker saves (a collective reads the replicated BN statistics); only the
    # chief's files land in the workdir.
    out_dir = distribute.write_dir(stage_dir, strategy)
    path = out_dir / "supernet.keras"
    finished = initial_epoch >= config.train.epochs
    if finished and path.exists() and (out_dir / "report.json").exists():
        # A finished run is not saved again: later stages fingerprint the supernet file, and
        # rerunning a pipeline must not make their results look stale.
        print(f"oneshot: already trained for {config.train.epochs} epochs; {path} is kept.")
        return 0
    supernet.save(path)
    scores = score_extremes(config, supernet)
    report = dict(
        accuracy=scores,
        split=config.evaluate.split,
        steps=int(trainer.optimizer.iterations.numpy()),
        resumed_from_epoch=initial_epoch,
        teacher=teacher_lib.read_record(out_dir),
    )
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    for name, acc in scores.items():
        print(f"{name} subnet accuracy ({config.evaluate.split}, BN recalibrated): {acc:.4f}")
    if distribute.is_chief(strategy):
        registry.write_manifest(
            args.workdir, STAGE, supernet=str(path), report=str(stage_dir / "report.json")
        )
    return 0

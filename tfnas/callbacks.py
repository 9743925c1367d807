"""Keras callbacks of the training stages: checkpoints with resume, NaN guard, throughput,
momentum reset at phase boundaries (`MomentumReset`), the K-shot simplex codes of a few
archs in TensorBoard (`SimplexCodes`).

Usage (what the one-shot stage does)::

    guard = NanGuard()
    ckpt = EpochCheckpoint(workdir / "checkpoints", guard)
    initial_epoch = ckpt.restore(trainer)            # 0 on a fresh run
    trainer.fit(ds, epochs=E, initial_epoch=initial_epoch,
                callbacks=[guard, Throughput(batch_size), ckpt, tensorboard])
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import keras
from absl import logging

from tfnas import schedules


class NanGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where it happened."""

    def __init__(self):
        super().__init__()
        self.failed_at: tuple[int, int] | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.failed_at = (self._epoch, batch)
            self.model.stop_training = True


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the trainer (weights and optimizer state) after every good epoch.

    Writes ``<directory>/last.weights.h5`` atomically (a temporary file, then a rename) and
    ``<directory>/state.json`` with the number of completed epochs. An epoch whose loss is
    not finite (see `NanGuard`) is never saved, so the last good checkpoint survives. After a
    crash -- even ``kill -9`` mid-epoch -- `restore` loads it and returns the epoch to resume
    from; the step counter comes back with the optimizer, so subnet sampling, which derives
    from it, continues where it was.

    ``write_directory`` (default ``directory``) is where saves go; multi-worker training
    gives non-chief workers a scratch directory (`tfnas.distribute.write_dir`) while every
    worker restores from ``directory``, the chief's.

    ``run_config`` (a JSON-ready dict: what determines the trained weights) is stored in
    ``state.json`` beside the weights; `restore` refuses a checkpoint whose record differs,
    naming the fields, so that a resumed run never continues another run's training (say,
    after ``train.epochs`` was changed, which changes the learning-rate schedule).
    """

    def __init__(
        self,
        directory,
        guard: NanGuard | None = None,
        every_epochs: int = 1,
        write_directory=None,
        run_config: dict | None = None,
    ):
        super().__init__()
        if every_epochs < 1:
            raise ValueError(
                f"checkpoint every_epochs must be >= 1, received {every_epochs}. Set "
                "--config.train.checkpoint_every_epochs."
            )
        self.directory = Path(directory)
        self.guard = guard
        self.every_epochs = int(every_epochs)
        self.write_directory = Path(write_directory) if write_directory else self.directory
        self.weights_path = self.directory / "last.weights.h5"
        self.state_path = self.directory / "state.json"
        self.run_config = run_config

    def completed_epochs(self) -> int:
        if not self.state_path.exists():
            return 0
        return int(json.loads(self.state_path.read_text())["epochs"])

    def check_run_config(self) -> None:
        """Raises ValueError if the checkpoint was trained with another ``run_config``."""
        if self.run_config is None or not self.state_path.exists():
            return
        saved = json.loads(self.state_path.read_text()).get("run_config")
        if saved is None:
            raise ValueError(
                f"the checkpoint in {self.directory} has no record of the config it was "
                "trained with (an older tfnas wrote it), so resuming could mix two runs; pass "
                "--overwrite to start over (the old run is moved aside), or use another --workdir"
            )
        differ = config_differences(saved, self.run_config)
        if differ:
            shown = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, a, b in differ[:8])
            more = f" (and {len(differ) - 8} more)" if len(differ) > 8 else ""
            raise ValueError(
                f"the checkpoint in {self.directory} was trained with another config: {shown}"
                f"{more}. Resuming would mix two runs: restore those values, pass --overwrite "
                "to start over (the old run is moved aside), or use another --workdir"
            )

    def restore(self, model, steps_per_epoch: int | None = None) -> int:
        """Loads the last checkpoint into ``model`` (if any); returns the epoch to start at.

        Call it inside the strategy's scope. With ``steps_per_epoch``, the epoch comes from
        the restored step counter, which is saved in the same file as the weights (so a kill
        between writing the weights and ``state.json`` cannot make them disagree).
        """
        epochs = self.completed_epochs()
        if not (epochs and self.weights_path.exists()):
            return 0
        self.check_run_config()
        if hasattr(model, "build_optimizers"):
            model.build_optimizers()  # every variable group's optimizer (SupernetTrainer)
        elif model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        try:
            model.load_weights(self.weights_path)
        except ValueError as err:
            raise ValueError(
                f"The checkpoint {self.weights_path} does not fit this model ({err}). It was "
                "written with another supernet or scheme config; use another --workdir or "
                "restore that config."
            ) from None
        if steps_per_epoch and model.optimizer is not None:
            return int(model.optimizer.iterations.numpy()) // steps_per_epoch
        return epochs

    def on_epoch_end(self, epoch, logs=None):
        if self.guard is not None and self.guard.failed_at is not None:
            return
        last = self.params.get("epochs") if self.params else None
        if (epoch + 1) % self.every_epochs and epoch + 1 != last:
            return
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return
        out = self.write_directory
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / "tmp.weights.h5"
        self.model.save_weights(tmp)
        os.replace(tmp, out / self.weights_path.name)
        tmp_state = out / "state.tmp.json"
        state = {"epochs": epoch + 1}
        if self.run_config is not None:
            state["run_config"] = self.run_config
        tmp_state.write_text(json.dumps(state, sort_keys=True))
        os.replace(tmp_state, out / self.state_path.name)


def _flatten(tree, prefix=""):
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def config_differences(old: dict, new: dict) -> list[tuple[str, object, object]]:
    """[(dotted field, old value, new value)] where two nested config dicts differ."""
    a, b = _flatten(old), _flatten(new)
    missing = object()
    rows = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            rows.append(
                (key, "<absent>" if va is missing else va, "<absent>" if vb is missing else vb)
            )
    return rows


class Throughput(keras.callbacks.Callback):
    """Adds ``images_per_sec`` and ``step_time`` to the batch logs, and logs the time from
    ``fit``'s start to the end of its first step (tracing, graph optimization and the
    first run: the start-up a run and every resume pays; ``first_step_seconds``).

    Put it before `keras.callbacks.TensorBoard` in the callback list: later callbacks see
    the same logs, so both values reach TensorBoard and the progress bar.
    """

    def __init__(self, global_batch_size: int):
        super().__init__()
        self.global_batch_size = global_batch_size
        self._start = None
        self._fit_start = None
        self.first_step_seconds = None

    def on_train_begin(self, logs=None):
        self._fit_start = time.perf_counter()
        self.first_step_seconds = None

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self._start is None or logs is None:
            return
        now = time.perf_counter()
        if self.first_step_seconds is None and self._fit_start is not None:
            self.first_step_seconds = now - self._fit_start
            logging.info(
                "first training step done %.1f s after fit started (tracing, graph "
                "optimization, first run)", self.first_step_seconds,
            )
        elapsed = max(now - self._start, 1e-9)
        logs["step_time"] = elapsed
        logs["images_per_sec"] = self.global_batch_size / elapsed


def momentum_slots(optimizer) -> list:
    """The momentum variables of ``optimizer``: what a new optimizer would start at zero.

    Keras's SGD (and `tfnas.optimizers.LazySGD`): ``momentums`` (empty without momentum).
    Adam-like optimizers: their first and second moments. A
    `keras.optimizers.LossScaleOptimizer` is looked through (its loss scale is not
    momentum and stays).

    Raises:
      ValueError: an optimizer whose slots this does not know (say which to reset).
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if isinstance(inner, keras.optimizers.SGD):
        return list(getattr(inner, "momentums", []))
    if hasattr(inner, "_momentums") and hasattr(inner, "_velocities"):
        return [*inner._momentums, *inner._velocities, *getattr(inner, "_velocity_hats", [])]
    raise ValueError(
        f"momentum reset does not know the slot variables of {type(inner).__name__}; it "
        "supports keras.optimizers.SGD (and subclasses such as tfnas.optimizers.LazySGD) and "
        "Adam-like optimizers. Use one of them, or set "
        "--config.train.phases.reset_momentum=False"
    )


def reset_momentum(optimizers) -> int:
    """Assigns zeros to every momentum slot of ``optimizers``; returns how many variables.

    Call it eagerly, outside the compiled step (a callback does). Under a tf.distribute
    strategy the assignment runs in cross-replica context, so it reaches every replica's
    copy; inside the step it would be a ``tf.cond`` around mirrored-variable assignments,
    which fails under MirroredStrategy (TF_NOTES.md).
    """
    count = 0
    for optimizer in optimizers:
        for slot in momentum_slots(optimizer):
            slot.assign(keras.ops.zeros(slot.shape, slot.dtype))
            count += 1
    return count


class MomentumReset(keras.callbacks.Callback):
    """Zeroes the momentum of the optimizers at the start of every phase.

    The 2nd-place CVPR22 supernet builds a new Momentum optimizer for each APS phase and
    each sub-supernet (SCHEMES.md §3.1 steps 2, 4, 9; `tfnas.schedules` has the phases). A
    new optimizer would also restart the step counter, which samples the subnets and drives
    the schedule; this keeps the counter and zeroes only the momentum (SCHEMES.md §7.1 E).

    Before the step that starts a phase -- when the step counter (``iterations`` of the
    first optimizer) equals a boundary -- every momentum slot of every optimizer
    (`momentum_slots`) is set to zero, eagerly in cross-replica context. A run resumed from
    a checkpoint taken at a boundary resets there again, as the uninterrupted run did.
    With float16 loss scaling a skipped step does not advance the counter; the reset then
    repeats on the retried step, where the momentum is still zero.

    Usage::

        trainer.fit(ds, callbacks=[callbacks.MomentumReset(config.train.phases.boundaries,
                                                           [opt_supernet, opt_simplex])])

    Args:
      boundaries: the optimizer steps where phases start (`tfnas.schedules.phase_of`).
      optimizers: the optimizers to reset; default: the model's ``optimizer``. The first
        one's ``iterations`` is the step.

    Attributes:
      resets: the steps at which the momentum was reset (this process).
    """

    def __init__(self, boundaries, optimizers=None):
        super().__init__()
        self.boundaries = frozenset(schedules.check_boundaries(boundaries, "MomentumReset"))
        self.optimizers = list(optimizers) if optimizers is not None else None
        if self.optimizers is not None and not self.optimizers:
            raise ValueError(
                "MomentumReset needs at least one optimizer, received an empty list; pass "
                "optimizers=None for the model's optimizer"
            )
        self.resets: list[int] = []

    def _targets(self) -> list:
        return self.optimizers if self.optimizers is not None else [self.model.optimizer]

    def on_train_begin(self, logs=None):
        per_call = getattr(self.model, "steps_per_execution", 1) or 1
        if int(per_call) > 1 and self.boundaries:
            raise ValueError(
                f"MomentumReset runs between calls of the train function, but the model runs "
                f"steps_per_execution={per_call} steps per call, so a boundary can fall inside "
                "one; compile with steps_per_execution=1"
            )

    def on_train_batch_begin(self, batch, logs=None):
        if not self.boundaries:
            return
        optimizers = self._targets()
        step = int(keras.ops.convert_to_numpy(optimizers[0].iterations))
        if step in self.boundaries:
            reset_momentum(optimizers)
            self.resets.append(step)


class SimplexCodes(keras.callbacks.Callback):
    """The K-shot simplex code lambda of a fixed set of archs, in TensorBoard after each epoch.

    Seed paper 004 §3 reads lambda as which weight dictionaries an arch uses; this shows how
    the simplex-net's codes move during training (uniform 1/K through the warm-up, then
    apart). Run ``simplex`` of ``log_dir``, step = completed epochs: a scalar
    ``simplex/<arch>/lambda<k>`` per arch and dictionary (the curves over training) and the
    image ``simplex/codes`` (archs x K). The archs: the largest, the smallest and
    ``num_random`` uniform ones drawn from ``seed``, the same in every run of a space.

    ``SimplexCodes(trainer.supernet, stage_dir / "tensorboard")`` (the one-shot stage adds it
    when ``supernet.num_kernels > 1``).
    """

    def __init__(self, supernet, log_dir, num_random: int = 4, seed: int = 0):
        super().__init__()
        space = supernet.space
        archs = {"largest": space.largest(), "smallest": space.smallest()}
        for i, arch in enumerate(space.sample_many(num_random, seed)):
            archs[f"random{i + 1}"] = arch
        self.supernet = supernet
        self.names = list(archs)
        self.codes = [a.code for a in archs.values()]
        self._digits = [list(a.digits()) for a in archs.values()]
        self.log_dir = Path(log_dir) / "simplex"
        self._writer = None

    def lambdas(self):
        """float [num archs, K]: the simplex code of each arch now."""
        import numpy as np
        import tensorflow as tf

        return np.stack([
            self.supernet.mix(tf.constant(d, tf.int32)).numpy() for d in self._digits
        ])

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        from tfnas import plotting

        values = self.lambdas()
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir))
        k = values.shape[1]
        with self._writer.as_default(step=epoch + 1):
            for name, row in zip(self.names, values):
                for j in range(k):
                    tf.summary.scalar(f"simplex/{name}/lambda{j + 1}", float(row[j]))
            figure = plotting.heatmap(values, self.names, [str(j + 1) for j in range(k)],
                                      title=f"simplex codes after epoch {epoch + 1}")
            description = "; ".join(f"{n}: {c}" for n, c in zip(self.names, self.codes))
            tf.summary.image("simplex/codes", plotting.to_rgb_array(figure)[None],
                             description=f"Rows: archs ({description}). Columns: lambda_k.")
        self._writer.flush()

"""Everything about tf.distribute lives here; model and scheme code stay strategy-agnostic.

How tfnas trains one subnet per step on every replica: the subnets are sampled *inside*
the compiled step with stateless RNG seeded by ``(seed, optimizer.iterations)``
(`tfnas.sampling`), so every replica draws the same arch without communication; a
stateful RNG would give each replica its own.

BN statistics during supernet training are per replica, like Keras BatchNormalization
under `MirroredStrategy` and torch DDP without SyncBN: a cross-replica all-reduce cannot
run inside the ``tf.cond`` of elastic depth (``merge_call called while defining a new
graph``). Running statistics are not trained at all by default (``bn_momentum=1.0``); BN
recalibration computes them per subnet, and its ON_READ/MEAN variables average the
replicas' estimates when read.

Files under MultiWorkerMirroredStrategy: every worker runs the same code, including the
saves (reading ON_READ variables needs a collective every worker joins), but only the
chief writes into the workdir; the others write to private scratch directories
(`write_dir`), and every worker resumes from the chief's checkpoint (the workdir must be
on a file system all workers see).

Loss scaling: Keras optimizers all-reduce gradients with SUM, so the single
`SupernetTrainer.train_step` scales its loss with `scale_loss` -- the only place where the
number of replicas enters a loss.

Reproducibility: `configure_determinism` (``train.deterministic``) makes a rerun of the same
command on the same machine and software give bitwise-identical weights.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker")


def make_strategy(name: str = "default", devices=None) -> tf.distribute.Strategy:
    """Returns the strategy for ``name``.

    Args:
        name: ``default`` (no distribution; whatever device TF picks), ``one_device``
            (the first GPU if any, else the CPU), ``mirrored`` (all local GPUs, or
            ``devices``), or ``multi_worker`` (MultiWorkerMirroredStrategy; the cluster
            comes from ``TF_CONFIG``).
        devices: optional device list for ``mirrored`` (e.g. ``["/cpu:0", "/cpu:1"]``).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "strategy 'multi_worker' needs the cluster in the TF_CONFIG environment "
                "variable, which is not set. Set TF_CONFIG on every worker (see "
                "https://www.tensorflow.org/guide/distributed_training) or use 'mirrored' "
                "for one host."
            )
        return _MultiWorkerMirroredStrategy()
    raise ValueError(
        f"Unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}. "
        "Set --config.train.strategy to one of them."
    )


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy whose `reduce` takes what Keras 3's ``fit`` gives it.

    Two Keras 3.15 calls fail under MultiWorkerMirroredStrategy (TF 2.21), with or without
    tfnas (keras-team/keras#20585): ``fit`` reduces its first batch, an ``(images, labels)``
    tuple of PerReplica values, in one ``reduce`` call ("Attempt to convert a value
    (PerReplica ...) with an unsupported type"), and it reduces every value a train step
    returns with ``axis=0``, scalars included ("Invalid reduction dimension 0 for input with
    0 dimensions"). Here each value of a nest is reduced on its own, as MirroredStrategy
    does, and a scalar is reduced across replicas only (the mean over the replicas' "axis
    0" of scalars is their mean).
    """

    def reduce(self, reduce_op, value, axis):
        parent = super()

        def one(v):
            local = self.experimental_local_results(v)[0]
            scalar = getattr(getattr(local, "shape", None), "rank", None) == 0
            return parent.reduce(reduce_op, v, None if scalar else axis)

        return tf.nest.map_structure(one, value)


def split_cpu(num_devices: int) -> None:
    """Splits the host CPU into ``num_devices`` logical devices (tests, CPU-only hosts).

    Must run before TF initializes its devices.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
    )


def num_replicas(strategy: tf.distribute.Strategy | None = None) -> int:
    """Replicas in sync for ``strategy`` (the current one by default)."""
    return (strategy or tf.distribute.get_strategy()).num_replicas_in_sync


def check_global_batch(global_batch_size: int, strategy=None) -> int:
    """Returns the per-replica batch size, or raises if the global one does not divide."""
    replicas = num_replicas(strategy)
    if global_batch_size % replicas:
        raise ValueError(
            f"The global batch size {global_batch_size} does not divide by the "
            f"{replicas} replicas in sync. Use a multiple of {replicas} for "
            "--config.train.batch_size."
        )
    return global_batch_size // replicas


def scale_loss(loss: tf.Tensor) -> tf.Tensor:
    """Scales a per-replica mean loss so that the SUM all-reduce of gradients is a mean."""
    replicas = tf.distribute.get_replica_context()
    count = replicas.num_replicas_in_sync if replicas is not None else 1
    if count == 1:
        return loss
    return loss / tf.cast(count, loss.dtype)


def local_moments(x: tf.Tensor, axes) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean and (biased) variance of ``x`` over ``axes`` on this replica.

    The biased variance is what Keras BatchNormalization normalizes with and tracks, so
    recalibrated statistics equal those of the extracted Keras model.
    """
    return tf.nn.moments(x, axes=axes)


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster.

    The chief is task ``chief``, or ``worker`` 0 in a cluster without a ``chief`` job (the
    MultiWorkerMirroredStrategy convention).
    """
    resolver = getattr(strategy or tf.distribute.get_strategy(), "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if not task_type:
        return True
    if task_type == "chief":
        return True
    jobs = resolver.cluster_spec().as_dict()
    return task_type == "worker" and int(resolver.task_id) == 0 and "chief" not in jobs


def write_dir(directory, strategy: tf.distribute.Strategy | None = None) -> Path:
    """Where this process writes the files meant for ``directory``.

    ``directory`` itself on the chief (and without multi-worker training); on the other
    workers a private scratch directory, so that workers never overwrite each other's (or
    the chief's) files while still executing the same save calls. The scratch directory is
    derived from the task and ``directory``, so every call for the same directory agrees.
    """
    if is_chief(strategy):
        return Path(directory)
    resolver = (strategy or tf.distribute.get_strategy()).cluster_resolver
    directory = Path(directory).resolve()
    key = hashlib.sha256(str(directory).encode()).hexdigest()[:12]
    task = f"tfnas-{resolver.task_type}{resolver.task_id}"
    out = Path(tempfile.gettempdir()) / task / f"{key}-{directory.name}"
    out.mkdir(parents=True, exist_ok=True)
    return out


def configure_determinism(enabled: bool, seed: int) -> bool:
    """Makes the training of this process reproducible bit for bit, when ``enabled``.

    Call it before building the datasets and the model (``oneshot`` does, from
    ``config.train.deterministic`` and ``config.seed``). With ``enabled`` it seeds Python,
    NumPy, TensorFlow and Keras (`keras.utils.set_random_seed`), turns on TensorFlow's op
    determinism (`tf.config.experimental.enable_op_determinism`: every op uses a
    deterministic kernel or raises ``UnimplementedError``, tf.data runs its maps in a fixed
    order) and turns off grappler's arithmetic optimizer (its AddN rewrite sums in an order
    set by thread timing; see the comment in the code). Two runs of the same command on the
    same hardware, TensorFlow version, device count and strategy then give the same weights
    to the last bit; other hardware or another thread count may still give other bits.

    Without it, runs differ: three runs of 50 fmnist steps
    (``benchmarks/run_to_run.py``) ended 0.13 apart in some weight, their largest subnets
    at 0.3336-0.3374 and smallest at 0.3074-0.3120 holdout accuracy, where three
    deterministic runs gave 0.3402 and 0.3060 each time and identical weights.

    Cost: no slowdown was measurable there (deterministic runs took 154-196 s, default runs
    192-239 s on two shared cores); op determinism can make tf.data maps with stateful ops
    serial, but tfnas's pipelines use stateless random ops only. It is process-global and
    cannot be switched off again: set it once at start-up.

    Args:
        enabled: turn the deterministic mode on; False changes nothing (a process that
            already turned it on stays deterministic).
        seed: the seed of every random generator (the config's ``seed``).

    Returns:
        Whether op determinism is on in this process.

    Raises:
        ValueError: ``seed`` is not an integer >= 0.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(
            f"configure_determinism: seed must be an integer >= 0, received {seed!r}. Set "
            "--config.seed to a non-negative integer."
        )
    if enabled:
        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
        # Op determinism is not enough on CPU: grappler's arithmetic optimizer turns chains
        # of adds (the sum of the sandwich members' gradients) into AddN, and the AddN kernel
        # adds its inputs starting from whichever input buffer it may reuse, which depends on
        # which other ops have finished (thread timing): ((a + b) + c) + d one run,
        # ((c + b) + a) + d the next. Measured: two runs of 10 fmnist steps differed by up to
        # 8e-4 in a weight with op determinism alone, and not at all without that rewrite.
        tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
    return is_deterministic()


def is_deterministic() -> bool:
    """Whether TensorFlow's op determinism is on in this process."""
    from tensorflow.python.framework import config as tf_config  # no public getter

    return bool(tf_config.is_op_determinism_enabled())


def replica_key():
    """A hashable naming the replica whose function is being traced (None outside a
    replica context, or with one replica).

    A function traced inside a replica's step captures that replica's components of the
    mirrored variables, so a nested `tf.function` needs one trace per replica.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return None
    # get_static_value gives a 0-d numpy array, which is not hashable: a dict key needs int.
    replica = tf.get_static_value(ctx.replica_id_in_sync_group)
    return None if replica is None else int(replica)

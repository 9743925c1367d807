"""SavedModel export of single subnets: a serving signature plus a metadata file.

Usage::

    from tfnas import export

    metadata = {
        "preprocessing": export.preprocessing_metadata(config.data),
        "source": export.source_metadata("/tmp/run/oneshot/supernet.keras"),
        "metrics": {"acc": 0.91},
    }
    evaluator.recalibrate(code)          # BN statistics of this subnet (see below)
    path = export.export_subnet(supernet, code, "saved_models/fmnist/" + code,
                                metadata=metadata)

    # Serving, in any TensorFlow process (no tfnas or Keras needed):
    model = tf.saved_model.load(str(path))
    out = model.signatures["serving_default"](images=images)   # float32 [B, H, W, C]
    out["logits"], out["probabilities"]                        # float32 [B, num_classes]

What an export directory holds:

* a SavedModel (``saved_model.pb``, ``variables/``) of the plain Keras model of the arch
  (`tfnas.static.extract_subnet`: stock Conv2D / BatchNormalization / Dense layers carrying the
  supernet's weights for the arch). It is saved with ``tf.saved_model.save`` of a small
  ``tf.Module`` that tracks the subnet's variables once (``keras.Model.export`` stores every
  variable twice, see ../shared/TF_NOTES.md) and one function, the signature
  ``serving_default``: ``images`` float32 ``[None, H, W, C]`` -> ``{"logits": float32
  [None, num_classes], "probabilities": softmax(logits)}``. Only the arch's slices of the
  weights are stored, so an export grows with the subnet.
* ``tfnas_metadata.json`` (`METADATA_FILE`): the arch (code, space variant, depths, widths),
  the supernet's routing and the weight copy each location of the arch was taken from
  (``weight_copies``: a few-shot supernet's group per stage), FLOPs (multiply-accumulates)
  and params, input shape, the preprocessing the signature expects, the signature, the
  source supernet (checkpoint path and sha256, or "freshly initialized"), how that supernet
  was trained (``training``, `training_metadata`: config, seed, scheme, steps, the teacher
  and whether training drew only from a codes file, which makes the ranking of those codes
  transductive), metrics when known, tfnas/TensorFlow/Keras versions and the creation time.

Preprocessing: ``images`` must be preprocessed exactly as `tfnas.data.build_dataset` yields
evaluation batches (``training=False``): pixels scaled to [0, 1] (``x / 255``), resized /
centre-cropped to ``H = W = image_size`` as that pipeline does for the dataset, then
normalised per channel as ``(x / 255 - mean) / std`` with the ``mean`` and ``std`` of the
config's ``data`` section; the metadata's ``preprocessing`` records all of it
(`preprocessing_metadata`).

BN statistics: the export holds the supernet's BN moving statistics of the arch as they are.
A supernet trained without running statistics (``supernet.bn_momentum=1.0``, the default)
has none that fit a subnet: recalibrate BN for the arch first
(`tfnas.evaluation.SubnetEvaluator.recalibrate`; the ``export`` stage does).

Numerics: loading the SavedModel lets Grappler fuse conv + BN (and oneDNN pick other
kernels), so its outputs differ from the supernet's at float32 round-off (~1e-7 relative
per layer, measured), not bit for bit.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import tensorflow as tf

import tfnas
from tfnas import search_space as ss
from tfnas import static
from tfnas import supernet as supernet_lib

__all__ = [
    "METADATA_FILE",
    "SIGNATURE_KEY",
    "ServingModule",
    "check_target",
    "directory_size",
    "export_subnet",
    "file_sha256",
    "preprocessing_metadata",
    "read_metadata",
    "source_metadata",
]

METADATA_FILE = "tfnas_metadata.json"
SIGNATURE_KEY = "serving_default"
# The name of the exported Keras model: it prefixes every op name in the saved graph, so a
# short one keeps saved_model.pb small (the default "<space>_<52-digit code>" doubled it).
_MODEL_NAME = "subnet"


class ServingModule(tf.Module):
    """The exported object: the subnet's variables (tracked once) and ``serve``.

    ``serve(images)`` runs the Keras model in inference mode (BN moving statistics, no
    dropout) and returns ``{"logits", "probabilities"}``.
    """

    def __init__(self, model, image_shape: tuple[int, int, int]):
        super().__init__(name="tfnas_subnet")
        # The underlying tf.Variables, not the Keras model: tracking the model also saves
        # its Keras object graph (a larger saved_model.pb), which serving does not use.
        self.subnet_variables = [v.value if hasattr(v, "value") else v for v in model.weights]
        spec = tf.TensorSpec([None, *image_shape], tf.float32, name="images")

        @tf.function(input_signature=[spec])
        def serve(images):
            logits = model(images, training=False)
            return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}

        self.serve = serve


def file_sha256(path: str | os.PathLike, suffix: bytes = b"") -> str:
    """Hex sha256 of a file's bytes, followed by ``suffix`` (e.g. what else a digest covers)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    digest.update(suffix)
    return digest.hexdigest()


def source_metadata(checkpoint: str | os.PathLike | None, *, seed: int | None = None) -> dict:
    """The ``source`` entry of the metadata: where the supernet's weights came from.

    Args:
      checkpoint: the supernet file (e.g. ``<workdir>/oneshot/supernet.keras``), or None for
        a freshly initialized (untrained) supernet.
      seed: the initialization seed of a fresh supernet (recorded).
    """
    if checkpoint is None:
        description = "freshly initialized"
        if seed is not None:
            description += f" (seed {seed})"
        return {"checkpoint": None, "sha256": None, "description": description + ", untrained"}
    path = Path(checkpoint).resolve()
    return {
        "checkpoint": str(path),
        "sha256": file_sha256(path),
        "description": "trained supernet checkpoint",
    }


def training_metadata(checkpoint: str | os.PathLike) -> dict | None:
    """The ``training`` entry of the metadata: how the supernet in ``checkpoint`` was trained.

    Read from the stage directory that wrote it (``config.json``, and ``teacher.json`` when
    the run distilled a frozen teacher): the checkpoint's directory, or its parent for the
    ranking monitor's ``best/`` checkpoint. None when the checkpoint sits elsewhere (a file
    copied out of its run), since nothing then says how it was trained.

    ``transductive`` is true when the run drew its subnets only from ``train.codes_file``
    (`tfnas.schemes.Scheme`): scores of those same codes then come from archs the supernet
    was trained on, which a ranking against stand-alone accuracies must say.
    """
    path = Path(checkpoint).resolve()
    stage_dir = next((d for d in (path.parent, path.parent.parent)
                      if (d / "config.json").is_file()), None)
    if stage_dir is None:
        return None
    config = json.loads((stage_dir / "config.json").read_text())
    train = config.get("train", {})
    codes_file = train.get("codes_file") or None
    steps = None
    if "epochs" in train and "steps_per_epoch" in train:
        steps = int(train["epochs"]) * int(train["steps_per_epoch"])
    teacher_path = stage_dir / "teacher.json"
    return {
        "config": str(stage_dir / "config.json"),
        "config_name": config.get("name"),
        "seed": config.get("seed"),
        "scheme": train.get("scheme"),
        "steps": steps,
        "teacher": json.loads(teacher_path.read_text()) if teacher_path.is_file() else None,
        "codes_file": codes_file,
        "transductive": codes_file is not None,
    }


def _lookup(node: Any, *keys: str, default: Any = None) -> Any:
    for key in keys:
        try:
            node = node[key]
        except (KeyError, TypeError, AttributeError):
            return default
    return node


def preprocessing_metadata(data_config: Any) -> dict:
    """The ``preprocessing`` entry of the metadata for a config's ``data`` section.

    Describes what `tfnas.data.build_dataset(data_config, split, batch, training=False)`
    does to a raw uint8 image before the network sees it; `export_subnet` adds the
    export's ``image_size``.
    """
    from tfnas import data as data_lib  # heavier module, only needed here

    info = data_lib.dataset_info(data_config)
    size = int(info["image_shape"][0])
    source = info["source_shape"]
    try:
        default_rrc = data_lib.default_data_config(info["dataset"]).augment.random_resized_crop
    except (KeyError, ValueError, AttributeError):
        default_rrc = False
    rrc = bool(_lookup(data_config, "augment", "random_resized_crop", default=default_rrc))
    if source[0] is None or rrc:
        fraction = data_lib.EVAL_CROP_FRACTION
        resize = f"centre crop of {fraction} of the shorter side, bilinear resize to image_size"
    elif tuple(source[:2]) != (size, size):
        resize = "bilinear resize to image_size"
    else:
        resize = "none (the images are image_size x image_size)"
    return {
        "dataset": info["dataset"],
        "image_size": size,
        "channels": int(info["image_shape"][2]),
        "mean": [float(m) for m in info["mean"]],
        "std": [float(s) for s in info["std"]],
        "scale": "x / 255 (uint8 pixels to [0, 1])",
        "resize": resize,
        "formula": "images = (x / 255 - mean) / std, per channel, float32 NHWC",
        "pipeline": "tfnas.data.build_dataset(config.data, split, batch_size, training=False)",
    }


def check_target(directory: str | os.PathLike, overwrite: bool) -> Path:
    """``directory`` as a Path; refuses an existing one unless ``overwrite``.

    Raises:
      ValueError: ``directory`` exists and ``overwrite`` is False.
    """
    target = Path(directory)
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise ValueError(
            f"export directory {target} already exists; pass --overwrite (or "
            "--config.export.overwrite=True; overwrite=True in Python) to replace it, or "
            "choose another --config.export.root / --config.export.run"
        )
    return target


def directory_size(directory: str | os.PathLike) -> int:
    """Total bytes of the files under ``directory``."""
    total = 0
    for root, _, files in os.walk(directory):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def read_metadata(directory: str | os.PathLike) -> dict:
    """The ``tfnas_metadata.json`` of an export directory."""
    return json.loads((Path(directory) / METADATA_FILE).read_text())


def _supernet_metadata(supernet) -> dict:
    return {
        "class": type(supernet).__name__,
        "space": supernet.space.name,
        "routing": getattr(supernet, "routing", "shared"),
        "num_copies": int(getattr(supernet, "num_copies", 1)),
        "num_kernels": int(getattr(supernet, "num_kernels", 1)),
        "bn_epsilon": float(getattr(supernet, "bn_epsilon", static.BN_EPSILON)),
    }


def _copies_metadata(supernet, arch) -> dict:
    """Which weight copy (few-shot group, sub-supernet) of each location the arch's weights
    came from: ``{"stem": i, "stage1": i, ..., "classifier": i}``, all 0 for a one-shot
    supernet (`tfnas.supernet.Supernet.copies`, the routing the supernet trained with)."""
    if not hasattr(supernet, "copies"):
        return {}
    copies = supernet.copies(supernet_lib.arch_tensor(arch, supernet.space)).numpy()
    return {name: int(c) for name, c in zip(_LOCATION_NAMES, copies)}


_LOCATION_NAMES = ("stem", "stage1", "stage2", "stage3", "stage4", "classifier")


def _check_preprocessing(metadata: dict, channels: int) -> dict:
    prep = metadata.get("preprocessing")
    problem = None
    if not isinstance(prep, dict) or "mean" not in prep or "std" not in prep:
        problem = "has no 'preprocessing' entry with 'mean' and 'std'"
    elif not all(len(prep[k]) in (1, channels) for k in ("mean", "std")):
        problem = (
            f"has preprocessing mean {prep['mean']} / std {prep['std']}: expected 1 or "
            f"{channels} values (one per image channel)"
        )
    if problem:
        raise ValueError(
            f"export metadata {problem}; pass metadata={{'preprocessing': "
            "tfnas.export.preprocessing_metadata(config.data), ...}: the serving signature "
            "takes normalised images and the metadata must say how to make them"
        )
    return dict(prep)


def export_subnet(
    supernet,
    arch,
    directory: str | os.PathLike,
    *,
    metadata: dict,
    overwrite: bool = False,
    image_size: int | None = None,
) -> Path:
    """Exports ``arch`` of ``supernet`` as a SavedModel with ``tfnas_metadata.json``.

    The directory is written under a temporary name beside it and renamed when complete,
    so an interrupted export leaves no half-written ``directory``; with ``overwrite`` the old
    directory is replaced only after the new one is complete.

    Args:
      supernet: a built `tfnas.supernet.Supernet` (BN statistics recalibrated for ``arch``
        when it was trained without running statistics; see the module docstring).
      arch: an `Arch` or a code of the supernet's space.
      directory: the export directory (its parent is created).
      metadata: the caller's facts, written into the metadata file: ``preprocessing``
        (required: `preprocessing_metadata`), and e.g. ``source`` (`source_metadata`;
        recorded as unknown when missing), ``metrics`` (``{}`` when missing), anything else
        JSON-serializable. The arch's own facts (code, space, FLOPs, params, input, signature,
        versions, created) are added and take precedence.
      overwrite: replace an existing ``directory``.
      image_size: input height and width of the signature (default: the arch's resolution).

    Returns:
      The export directory.

    Raises:
      ValueError: ``directory`` exists and ``overwrite`` is False (the message names it and
        ``--overwrite``); invalid arch; metadata without preprocessing mean/std.
    """
    target = check_target(directory, overwrite)
    space = supernet.space
    arch = space.parse(arch.code if isinstance(arch, ss.Arch) else arch)
    size = int(image_size or space.resolutions[arch.resolution - 1])
    image_shape = (size, size, space.in_channels)
    preprocessing = _check_preprocessing(metadata, space.in_channels)
    preprocessing["image_size"] = size

    model = static.extract_subnet(supernet, arch, name=_MODEL_NAME, image_size=image_size)
    module = ServingModule(model, image_shape)
    widths = space.widths(arch)
    facts = {
        "format": "tfnas SavedModel export, version 1",
        "code": arch.code,
        "space": space.name,
        "supernet": _supernet_metadata(supernet),
        "weight_copies": _copies_metadata(supernet, arch),
        "resolution": arch.resolution,
        "depths": list(arch.depths),
        "widths": {
            "stem": widths["stem"],
            "mids": [list(m) for m in widths["mids"]],
            "outs": list(widths["outs"]),
        },
        "flops": int(space.flops(arch)),
        "params": int(space.params(arch)),
        "num_classes": int(space.num_classes),
        "input_shape": list(image_shape),
        "preprocessing": preprocessing,
        "signature": {
            "key": SIGNATURE_KEY,
            "inputs": {"images": {"dtype": "float32", "shape": [None, *image_shape]}},
            "outputs": {
                "logits": {"dtype": "float32", "shape": [None, space.num_classes]},
                "probabilities": {
                    "dtype": "float32",
                    "shape": [None, space.num_classes],
                    "note": "softmax(logits)",
                },
            },
        },
        "tfnas_version": tfnas.__version__,
        "tensorflow_version": tf.__version__,
        "keras_version": _keras_version(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    record = dict(facts)
    record.update(
        source={"checkpoint": None, "sha256": None, "description": "unknown (not recorded)"},
        metrics={},
    )
    record.update({k: v for k, v in metadata.items() if k not in facts})

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    moved = False
    try:
        with _quiet_tf_logging():
            tf.saved_model.save(module, str(tmp), signatures={SIGNATURE_KEY: module.serve})
        (tmp / METADATA_FILE).write_text(json.dumps(record, indent=2) + "\n")
        if target.exists() or target.is_symlink():
            check_target(target, overwrite)  # it may have appeared meanwhile
            if target.is_dir() and not target.is_symlink():
                os.replace(target, old)
                moved = True
            else:
                target.unlink()
        os.replace(tmp, target)
    except BaseException:
        if moved and not target.exists():
            os.replace(old, target)  # keep the previous export when the new one failed
            moved = False
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if moved:
            shutil.rmtree(old, ignore_errors=True)
    return target


@contextlib.contextmanager
def _quiet_tf_logging():
    """Hides TF's INFO lines while saving (asset paths, renamed resource inputs)."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _keras_version() -> str:
    import keras

    return keras.__version__


# -------------------------------------------------------------------- the config section

CONFIG_FIELDS = (
    "root",
    "run",
    "overwrite",
    "supernet",
    "allow_untrained",
    "codes",
    "top_k",
    "recalibrate",
)


def validate_config(section) -> None:
    """Checks the ``export`` section of an experiment config (`tfnas.config_lib`).

    Fields (the ``export`` stage):

    - ``root``: directory of the exports (non-empty; relative to the current directory).
    - ``run``: its sub-directory (empty: ``config.name``); each arch is exported to
      ``<root>/<run>/<code>/``.
    - ``overwrite`` (bool): replace existing exports (as ``--overwrite`` does).
    - ``supernet``: the ``supernet.keras`` whose weights are exported (empty: the
      ``oneshot`` stage's manifest in the same workdir).
    - ``allow_untrained`` (bool): without a trained supernet, export subnets of a freshly
      initialized one (seed ``config.seed``; for smoke tests) instead of failing.
    - ``codes``: the default of ``--codes``; both empty: the ``top_k`` (int >= 1) most
      accurate archs of the ``evaluate`` stage's results.
    - ``recalibrate`` (bool): recalibrate each arch's BN statistics before export, as
      ``evaluate.recalibration`` says.

    Raises:
      ValueError: naming ``config.export.<field>``, the value, what is expected and how to
        fix it; also for a missing or unknown field.
    """
    from tfnas import config_checks

    fields = config_checks.Section(
        section, "export", CONFIG_FIELDS, owner="tfnas.export.validate_config"
    )
    fields.string("root", allow_empty=False)
    fields.string("run")
    fields.boolean("overwrite")
    fields.string("supernet")
    fields.boolean("allow_untrained")
    fields.string("codes")
    fields.integer("top_k", 1)
    fields.boolean("recalibrate")

"""The frozen teacher of the ``external_teacher`` targets (SSE's distillation).

The 2nd-place SSE distilled every sub-supernet from the organisers' pretrained ResNet48, a
separate frozen network (SCHEMES.md §0.1 item 3, §3.8). tfnas has no such network for its
spaces, so ``config.train.teacher`` names one of this project's models:

- ``"init_largest"``: a snapshot of the largest subnet of the supernet the run starts from
  (``supernet.init_from``, e.g. the CPT run): its BN statistics recalibrated as the
  ``evaluate`` stage does, then extracted as a plain Keras model (`tfnas.static`);
- ``"standalone_largest"``: the largest subnet trained from scratch with the run's
  ``standalone`` recipe (the ground truth's, `tfnas.standalone`; seed ``standalone.seed``),
  the nearest this project has to the authors' separately trained teacher;
- a path to a saved Keras model (a ``.keras`` file, images -> logits, this dataset's classes),
  e.g. a subnet of another run extracted with `tfnas.static.extract_subnet` and saved with
  ``model.save(path)``.

Usage (the ``oneshot`` stage)::

    path = teacher.prepare(config, stage_dir)     # teacher.keras + teacher.json, once per run
    with strategy.scope():
        model = teacher.load(path)                # frozen, mirrored on the replicas

`prepare` writes the teacher into the run's stage directory with a record of what it is
(``teacher.json``): a resumed run reloads the same file, so the teacher never changes inside
a run, and the record says which teacher a run used.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras

from tfnas import search_space as ss

TEACHER_FILE = "teacher.keras"
RECORD_FILE = "teacher.json"
INIT_LARGEST = "init_largest"
STANDALONE_LARGEST = "standalone_largest"


def prepare(config, stage_dir) -> Path | None:
    """Writes ``stage_dir/teacher.keras`` and ``teacher.json`` for ``config.train.teacher``
    (once: an existing pair is kept) and returns the model's path; None without a teacher.

    Raises:
      ValueError: ``init_largest`` without ``supernet.init_from``, a missing file, or a
        model whose logits do not have the space's class count.
    """
    spec = config.train.teacher
    if not spec:
        return None
    stage_dir = Path(stage_dir)
    path, record_path = stage_dir / TEACHER_FILE, stage_dir / RECORD_FILE
    if path.exists() and record_path.exists():
        return path
    from tfnas import export  # sha256 of files

    space = ss.get_space(config.space)
    if spec == INIT_LARGEST:
        model, record = _init_largest(config, space)
    elif spec == STANDALONE_LARGEST:
        model, record = _standalone_largest(config, space)
    else:
        source = Path(spec)
        if not source.is_file():
            raise ValueError(
                f"config.train.teacher={spec!r}: no such file; expected {INIT_LARGEST!r}, "
                f"{STANDALONE_LARGEST!r} or the path of a saved Keras model (a .keras file, "
                "images -> logits), e.g. a subnet extracted with tfnas.static.extract_subnet "
                "and saved with model.save(path)"
            )
        model = keras.saving.load_model(source)
        record = {"kind": "file", "source": str(source.resolve()),
                  "sha256": export.file_sha256(source)}
    classes = model.output_shape[-1]
    if classes != space.num_classes:
        raise ValueError(
            f"config.train.teacher={spec!r} gives {classes} logits, but the {space.name!r} space "
            f"has {space.num_classes} classes; use a teacher of this dataset"
        )
    stage_dir.mkdir(parents=True, exist_ok=True)
    model.save(path)
    record["file"] = TEACHER_FILE
    record_path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def _init_largest(config, space):
    from tfnas import evaluation
    from tfnas import export
    from tfnas import static
    from tfnas import supernet as supernet_lib
    from tfnas import transfer

    if not config.supernet.init_from:
        raise ValueError(
            f"config.train.teacher={INIT_LARGEST!r} snapshots the largest subnet of the "
            "supernet the run starts from, but config.supernet.init_from is empty; set "
            "--config.supernet.init_from=<the CPT run>/oneshot/supernet.keras or give a "
            "teacher model's path"
        )
    source = transfer.resolve_source(config.supernet.init_from)
    net = supernet_lib.load_supernet(source, config.space, "--config.supernet.init_from")
    code = space.largest().code
    # The supernet trains with frozen BN statistics (bn_momentum 1.0): recalibrate the
    # largest subnet's as the evaluate stage does before its snapshot is a teacher.
    evaluation.build_evaluator(config, net, eval_batches=1).recalibrate(code)
    model = static.extract_subnet(net, code, name="teacher")
    recal = config.evaluate.recalibration
    record = {
        "kind": INIT_LARGEST,
        "source": str(Path(source).resolve()),
        "sha256": export.file_sha256(source),
        "arch": code,
        "bn": f"recalibrated on {int(recal.num_batches)} batches of {int(recal.batch_size)} "
              f"({recal.split}, {recal.mode})",
    }
    return model, record


def _standalone_largest(config, space):
    from tfnas import standalone

    seed = int(config.standalone.seed)
    model, acc, seconds, _ = standalone.fit_standalone(config, space.largest(), seed)
    record = {
        "kind": STANDALONE_LARGEST,
        "arch": space.largest().code,
        "seed": seed,
        "recipe": standalone.recipe(config),
        f"{config.standalone.split}_accuracy": acc,
        "seconds": seconds,
    }
    return model, record


def load(path) -> keras.Model:
    """The teacher saved by `prepare`, frozen (call inside the strategy's scope)."""
    model = keras.saving.load_model(path)
    model.trainable = False
    return model


def read_record(stage_dir) -> dict | None:
    """``teacher.json`` of a stage directory, or None when the run had no teacher."""
    path = Path(stage_dir) / RECORD_FILE
    return json.loads(path.read_text()) if path.exists() else None

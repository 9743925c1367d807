"""Stage ``export``: one SavedModel (serving signature + metadata) per arch.

    bin/train --stage=export --config=configs/fmnist.py --workdir=/tmp/run \\
        [--codes=FILE|CODE,CODE] [--config.export.root=saved_models] [--overwrite]

Which archs: ``--codes`` (a competition JSON, a text file of codes, or ``CODE,CODE``; or
``search`` for the ``search`` stage's whole Pareto front in the same workdir, ``search:K``
for its K most accurate archs), else ``config.export.codes`` (the same forms), else the
``config.export.top_k`` most accurate archs of the ``evaluate`` stage's ``results.json`` in
the same workdir.

Which supernet: ``config.export.supernet`` (a ``.keras`` file), else the one the ``oneshot``
stage's manifest names, else a freshly initialized supernet (``config.seed``; a warning is
printed: its subnets are untrained, useful only to try the pipeline).

Each arch is BN-recalibrated first (``config.export.recalibrate``, on by default: the
supernet is trained without running statistics, ``supernet.bn_momentum=1.0``) with the
recalibration batches of ``config.evaluate.recalibration`` -- the same ones the
``evaluate`` stage scores with -- and then exported by `tfnas.export.export_subnet` to
``<config.export.root>/<config.export.run or config.name>/<code>/`` (root relative to the
current directory). An existing export directory is replaced only with ``--overwrite`` (or
``config.export.overwrite``); every target is checked before any work starts. The metadata
records the supernet checkpoint and its sha256, and the arch's accuracy from the
``evaluate`` results when the workdir has them. ``<workdir>/export/manifest.json`` lists the
exports.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras

from tfnas import codes as codes_lib
from tfnas import evaluation
from tfnas import export as export_lib
from tfnas import search as search_lib
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas.stages import registry

STAGE = "export"
EVALUATE = "evaluate"


def export_run_dir(config) -> Path:
    """``<export.root>/<export.run or name>``."""
    return Path(config.export.root) / (config.export.run or config.name)


def _evaluate_results(workdir) -> tuple[str | None, list[dict]]:
    """(path, rows) of the evaluate stage's results.json in ``workdir``; (None, []) if none."""
    path = registry.read_manifest(workdir, EVALUATE).get("results")
    if not path:
        return None, []
    try:
        rows = [
            dict(row, code=str(row["code"]), acc=float(row["acc"]))
            for row in json.loads(Path(path).read_text())["results"]
        ]
    except FileNotFoundError:
        raise ValueError(
            f"{registry.stage_dir(workdir, EVALUATE) / registry.MANIFEST_FILE} names {path}, "
            f"which does not exist; run --stage=evaluate with --workdir={workdir} again, or "
            "pass --codes"
        ) from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"{path} is not an evaluate results file ({type(err).__name__}: {err}); expected "
            '{"results": [{"code": ..., "acc": ...}, ...]}'
        ) from None
    return path, rows


def _evaluate_split(config, workdir) -> str:
    """The split the evaluate stage scored on (its config.json), else this config's."""
    try:
        saved = json.loads(
            (registry.stage_dir(workdir, EVALUATE) / registry.CONFIG_FILE).read_text()
        )
        return str(saved["evaluate"]["split"])
    except (OSError, ValueError, KeyError, TypeError):
        return str(config.evaluate.split)


def select_archs(config, args: registry.StageArgs) -> list[tuple[str, str]]:
    """[(key, code)] to export, each code once, validated against the config's space.

    Raises:
      ValueError: no codes and no evaluate results; an invalid code (prefixed by its key).
    """
    space = ss.get_space(config.space)
    spec = args.codes or config.export.codes
    front = search_lib.front_records(
        args.workdir, spec, registry.read_manifest(args.workdir, "search").get("front")
    ) if spec else None
    if front is not None:
        records = [codes_lib.ArchRecord(key, code) for key, code in front]
        print(f"export: {len(records)} archs of the search front ({spec})")
    elif spec:
        records = codes_lib.parse_codes_arg(spec)
    else:
        path, rows = _evaluate_results(args.workdir)
        if path is None:
            raise ValueError(
                "No archs to export: pass --codes=FILE (competition JSON or one code per line) "
                "or --codes=CODE,CODE, set --config.export.codes, or run --stage=evaluate "
                f"with --workdir={args.workdir} first (then the best "
                "--config.export.top_k archs of its results are exported)."
            )
        ranked = sorted(rows, key=lambda r: -float(r["acc"]))  # stable: ties keep file order
        top = ranked[: int(config.export.top_k)]
        records = [codes_lib.ArchRecord(f"top{i}", r["code"]) for i, r in enumerate(top, 1)]
        print(f"export: the best {len(records)} of {len(rows)} archs of {path}")
    selected, seen = [], set()
    for record in records:
        try:
            code = space.parse(record.code).code
        except ValueError as err:
            raise ValueError(f"--codes: {record.key}: {err}") from None
        if code not in seen:
            seen.add(code)
            selected.append((record.key, code))
    return selected


def load_supernet(config, workdir):
    """(supernet, source metadata) from export.supernet, the fewshot or oneshot manifest
    (`registry.trained_supernet`), or fresh."""
    path = config.export.supernet
    origin = "--config.export.supernet"
    if not path:
        path, origin = registry.trained_supernet(workdir)
    if not path:
        if not config.export.allow_untrained:
            raise ValueError(
                "no trained supernet to export: config.export.supernet is empty and "
                f"{origin} names none. Run --stage=oneshot with --workdir={workdir} first, "
                "set --config.export.supernet=PATH (a supernet.keras), or pass "
                "--config.export.allow_untrained=True to export subnets of a freshly "
                "initialized, untrained supernet (for smoke tests)"
            )
        print(
            "export: WARNING: exporting subnets of a FRESHLY INITIALIZED supernet (seed "
            f"{config.seed}, --config.export.allow_untrained): their weights are untrained."
        )
        keras.utils.set_random_seed(config.seed)
        supernet = supernet_lib.build_supernet(config.supernet, config.space)
        return supernet, export_lib.source_metadata(None, seed=config.seed)
    supernet = supernet_lib.load_supernet(path, config.space, origin)
    return supernet, export_lib.source_metadata(path)


def _recalibrator(config, supernet):
    """The evaluate stage's evaluator (its recalibration batches), with one evaluation
    batch: export only recalibrates, so the eval split is not cached."""
    return evaluation.build_evaluator(config, supernet, eval_batches=1)


@registry.register(STAGE, help="Export archs as SavedModels (serving signature + metadata).")
def run(config, args: registry.StageArgs) -> int:
    archs = select_archs(config, args)
    overwrite = args.overwrite or config.export.overwrite
    run_dir = export_run_dir(config)
    targets = [export_lib.check_target(run_dir / code, overwrite) for _, code in archs]

    supernet, source = load_supernet(config, args.workdir)
    training = export_lib.training_metadata(source["checkpoint"]) if source["checkpoint"] else None
    results_path, rows = _evaluate_results(args.workdir)
    registry.write_config(config, Path(args.workdir) / STAGE)
    accuracy = {r["code"]: float(r["acc"]) for r in rows}
    front_path, front_acc = search_lib.front_accuracies(
        registry.read_manifest(args.workdir, "search").get("front")
    )
    recalibrate = config.export.recalibrate
    evaluator = _recalibrator(config, supernet) if recalibrate else None
    recal = config.evaluate.recalibration
    preprocessing = export_lib.preprocessing_metadata(config.data)
    space = supernet.space

    exports = []
    for (key, code), target in zip(archs, targets):
        if evaluator is not None:
            evaluator.recalibrate(code)
        metrics = {}
        if code in accuracy:
            metrics = {
                "acc": accuracy[code],
                "kind": "top-1 with the supernet's weights after BN recalibration",
                "split": _evaluate_split(config, args.workdir),
                "results": str(results_path),
            }
        elif code in front_acc:  # a pick of the search stage (same evaluator recipe)
            metrics = {
                "acc": front_acc[code],
                "kind": "top-1 with the supernet's weights after BN recalibration",
                "split": str(config.evaluate.split),
                "results": str(front_path),
            }
        bn = {"recalibrated": recalibrate}
        if recalibrate:
            bn.update(
                split=recal.split,
                batch_size=int(recal.batch_size),
                num_batches=int(recal.num_batches),
                mode=recal.mode,
                seed=int(config.seed) + 1,
            )
        metadata = {
            "key": key,
            "config_name": config.name,
            "source": source,
            "training": training,
            "bn_statistics": bn,
            "preprocessing": preprocessing,
            "metrics": metrics,
        }
        path = export_lib.export_subnet(
            supernet, code, target, metadata=metadata, overwrite=overwrite
        )
        size = export_lib.directory_size(path)
        arch = space.parse(code)
        exports.append({"key": key, "code": code, "path": str(path), "bytes": size, **metrics})
        print(
            f"export: {key} -> {path} ({size / 1e6:.2f} MB, {space.flops(arch) / 1e6:.2f} M "
            f"MACs, {space.params(arch) / 1e6:.3f} M params)"
        )
    registry.write_manifest(
        args.workdir,
        STAGE,
        root=str(run_dir),
        exports=exports,
        supernet=source["checkpoint"] or source["description"],
    )
    print(f"export: {len(exports)} SavedModels in {run_dir}")
    return 0

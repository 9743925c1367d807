"""The stages of ``bin/train --stage=NAME``: a registry of ``run(config, args) -> int``.

A stage module registers its entry point::

    from tfnas.stages import registry

    @registry.register("describe", help="Print the search space and a list of codes.")
    def run(config, args: registry.StageArgs) -> int:
        ...
        registry.write_manifest(args.workdir, "describe", table=str(path))
        return 0

and `tfnas/stages/__init__.py` imports it, so that importing this module (which imports the
package first) fills `STAGES`. `run_stage` validates the config and runs the stage. A stage
checks its inputs before it writes anything; when it is about to produce something it calls
`write_config` (the resolved config, ``<workdir>/<stage>/config.json``), so a stage that
fails on its inputs, or has nothing left to do, leaves the workdir as it was. Stages record
what they produced in ``<workdir>/<stage>/manifest.json`` (`write_manifest`), with paths
relative to the workdir, so a workdir can be moved or copied; a later stage finds its inputs
there (`read_manifest` resolves them) unless its config names them. ``--overwrite`` never
deletes: `move_aside` renames what would be replaced.

Flags live only in ``bin/train``; stages get them as a `StageArgs`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIG_FILE",
    "MANIFEST_FILE",
    "move_aside",
    "relative_to_workdir",
    "STAGES",
    "Stage",
    "StageArgs",
    "read_manifest",
    "register",
    "run_stage",
    "stage_dir",
    "stage_names",
    "write_config",
    "write_manifest",
]

CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.json"


@dataclasses.dataclass(frozen=True)
class StageArgs:
    """The command-line inputs of a stage (everything else comes from the config).

    Attributes:
      workdir: the run's directory; a stage writes to ``<workdir>/<stage>/``.
      codes: ``--codes``: a competition JSON, a text file of codes, or ``CODE,CODE``
        (`tfnas.codes.parse_codes_arg`).
      results: ``--results``: a file of scored archs (the ``rank`` stage).
      ground_truth: ``--ground_truth``: a file of stand-alone accuracies.
      shard: ``--shard=I/N``: this process's share of a list of codes.
      overwrite: ``--overwrite``: replace existing products instead of resuming or refusing.
    """

    workdir: str
    codes: str | None = None
    results: str | None = None
    ground_truth: str | None = None
    shard: str | None = None
    overwrite: bool = False


StageFn = Callable[[Any, StageArgs], "int | None"]


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    help: str
    run: StageFn


# Stages in registration order (the order of the imports in tfnas/stages/__init__.py).
STAGES: dict[str, Stage] = {}


def register(name: str, help: str) -> Callable[[StageFn], StageFn]:
    """Decorator registering ``run(config, args) -> int`` as stage ``name``.

    Raises:
      ValueError: another function is already registered under ``name``.
    """

    def decorate(fn: StageFn) -> StageFn:
        existing = STAGES.get(name)
        if existing is not None and _qualname(existing.run) != _qualname(fn):
            raise ValueError(
                f"stage {name!r} is registered twice: by {_qualname(existing.run)} and by "
                f"{_qualname(fn)}; give one of them another name"
            )
        STAGES[name] = Stage(name, help, fn)
        return fn

    return decorate


def _qualname(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def stage_names() -> tuple[str, ...]:
    """The registered stage names, in registration order."""
    return tuple(STAGES)


def stage_dir(workdir: str | os.PathLike, stage: str) -> Path:
    """``<workdir>/<stage>`` (not created)."""
    return Path(workdir) / stage


def write_config(config: Any, directory: str | os.PathLike) -> Path:
    """Writes ``config`` (a ConfigDict) to ``directory/config.json``, sorted and indented.

    Stages call it when they start producing something (not before their inputs are checked,
    and not when there is nothing to do), so ``config.json`` describes the products beside it.
    """
    path = Path(directory) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(config, "to_json_best_effort"):
        text = config.to_json_best_effort(sort_keys=True, indent=2)
    else:
        text = json.dumps(config, sort_keys=True, indent=2, default=str)
    _write_atomic(path, text + "\n")
    return path


def move_aside(path: str | os.PathLike) -> Path | None:
    """Renames ``path`` (a file or directory) to ``<path>.replaced-<UTC time>``; never deletes.

    ``--overwrite`` uses it: the old products stay on disk under the new name, and the run
    starts over. Returns the new path, or None when ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists():
        return None
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.replaced-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.replaced-{stamp}-{counter}")
        counter += 1
    os.replace(path, target)
    print(f"--overwrite: moved {path} aside to {target}")
    return target


def run_stage(name: str, config: Any, args: StageArgs) -> int:
    """Validates ``config`` and runs the stage (which writes ``config.json`` when it produces).

    Returns:
      The stage's exit status (0 when it returns None).

    Raises:
      ValueError: unknown stage (the message lists the valid ones), invalid config, or
        whatever the stage raises for bad inputs.
    """
    if name not in STAGES:
        raise ValueError(
            f"unknown stage {name!r}; valid stages: {', '.join(stage_names())} (--stage=NAME)"
        )
    if not args.workdir:
        raise ValueError("no workdir: pass --workdir=DIR (created if missing)")
    from tfnas import config_lib  # imports TensorFlow (through tfnas.data)

    config_lib.validate_config(config)
    status = STAGES[name].run(config, args)
    return 0 if status is None else int(status)


def write_manifest(workdir: str | os.PathLike, stage: str, **products: Any) -> Path:
    """Records what ``stage`` produced in ``<workdir>/<stage>/manifest.json``.

    Args:
      workdir: the run's directory.
      stage: the stage's name.
      **products: name -> value: a path (`Path` or string naming a file under the workdir;
        stored relative to the workdir, see `read_manifest`) or any JSON value. A new
        manifest replaces the stage's previous one.

    Returns:
      The manifest's path.
    """
    directory = stage_dir(workdir, stage)
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {
        "stage": stage,
        "written": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "products": {k: relative_to_workdir(workdir, v) for k, v in products.items()},
    }
    path = directory / MANIFEST_FILE
    _write_atomic(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def relative_to_workdir(workdir, value: Any) -> Any:
    """An existing file or directory under ``workdir`` as a path relative to it (with a
    ``./`` marker); anything else (other paths, other strings, numbers) as it is."""
    if not isinstance(value, (str, os.PathLike)):
        return value
    path = Path(value)
    if not path.exists():
        return str(value)
    try:
        inside = path.resolve().relative_to(Path(workdir).resolve())
    except ValueError:
        return str(value)
    return "./" + inside.as_posix()


def read_manifest(workdir: str | os.PathLike, stage: str) -> dict[str, Any]:
    """The products ``stage`` recorded in ``workdir``; ``{}`` when it has not run there.

    Paths recorded relative to the workdir (``./...``) come back joined to ``workdir`` as
    given here, so a moved or copied workdir still finds its products.

    Raises:
      ValueError: the manifest exists but is not one (e.g. a torn write by hand).
    """
    path = stage_dir(workdir, stage) / MANIFEST_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    try:
        manifest = json.loads(text)
        products = manifest["products"]
        if not isinstance(products, dict):
            raise TypeError(type(products).__name__)
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(
            f"{path} is not a stage manifest ({type(err).__name__}: {err}); run "
            f"--stage={stage} with --workdir={workdir} again to rewrite it"
        ) from None
    return {
        k: str(Path(workdir) / v[2:]) if isinstance(v, str) and v.startswith("./") else v
        for k, v in products.items()
    }


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


# The stages that write a trained supernet into their manifest, the preferred first: a
# few-shot run's selected G supersedes the one-shot supernet it grew from.
SUPERNET_STAGES = ("fewshot", "oneshot")


def trained_supernet(workdir: str | os.PathLike) -> tuple[str, str]:
    """(path, the manifest naming it) of the workdir's trained supernet, or ("", where it
    looked) when no stage of `SUPERNET_STAGES` has written one."""
    for stage in SUPERNET_STAGES:
        path = read_manifest(workdir, stage).get("supernet", "")
        if path:
            return path, f"{stage_dir(workdir, stage) / MANIFEST_FILE}"
    return "", f"{stage_dir(workdir, SUPERNET_STAGES[-1]) / MANIFEST_FILE}"

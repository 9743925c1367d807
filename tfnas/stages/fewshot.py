"""Stage ``fewshot``: few-shot by group split, G = 2, 3, ..., G_max (seed paper 000 §2.2).

    bin/train --stage=oneshot --config=configs/fmnist_fewshot.py --workdir=/tmp/fs
    bin/train --stage=fewshot --config=configs/fmnist_fewshot.py --workdir=/tmp/fs
    bin/train --stage=evaluate --config=configs/fmnist_fewshot.py --workdir=/tmp/fs --codes=...

Starts from the workdir's one-shot supernet (``oneshot/monitor/best_tau.keras`` when the
ranking monitor ran, else ``oneshot/supernet.keras``; or ``fewshot.init_from``) and trains
G = 2..``fewshot.max_copies`` groups in turn. Each G is one `oneshot.train_supernet` run in
``<workdir>/fewshot/G<g>/`` (its own ``config.json``, ``checkpoints/``, ``tensorboard/``,
``monitor/``, ``supernet.keras``) with a config derived by `step_config`: routing
``stage_width_nested`` with ``num_copies`` = G (a group per channel value, nested from G to
G+1, the stem never split), ``supernet.init_from`` = the previous G's best-tau supernet (or
its final one without the monitor), the ``fewshot`` scheme (sandwich + per-group learning
rates, `tfnas.schemes.fewshot`), ``fewshot.epochs`` and ``fewshot.learning_rate`` of that G,
no warm-up, one phase. A new G starts from its parent's weights with a fresh optimizer (R4
builds a new optimizer per G, SCHEMES.md §2.5); copies a step does not route follow the
engine (``train.lazy_updates``: untouched, no decay).

Resume: the same command after ``kill -9`` skips the finished G's (their ``report.json``)
and resumes the interrupted G at its last checkpointed epoch (`train_supernet`); a finished
G's files are not rewritten. ``--overwrite`` moves ``<workdir>/fewshot`` aside first.

Products (``<workdir>/fewshot/``): ``table.json`` and ``table.tsv`` -- seed paper 000's
Table 3: per G (and the one-shot source) the best Kendall tau of the ranking monitor and its
epoch, plus the parameter count and file size of the supernet -- the same table in
TensorBoard (``tensorboard/``: text ``fewshot/table``, scalars ``fewshot/best_kendall_tau``
and ``fewshot/best_epoch`` at step G), and ``manifest.json`` whose ``supernet`` is the
selected G's (``fewshot.select``; 0: the best tau, else G_max), which ``evaluate`` uses
before the ``oneshot`` manifest's. Caveat: that tau is measured on the monitor's archs, which
also selected it (`tfnas.monitor`); judge the selected G on other archs (``rank``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from tfnas import distribute
from tfnas import supernet as supernet_lib
from tfnas.schemes import fewshot as fewshot_lib
from tfnas.stages import oneshot
from tfnas.stages import registry

STAGE = "fewshot"
ONESHOT_STAGE = oneshot.STAGE
TABLE_JSON = "table.json"
TABLE_TSV = "table.tsv"
REPORT = "report.json"
SUPERNET = "supernet.keras"
BEST = "best_tau.keras"


def step_dir(workdir, g: int) -> Path:
    """``<workdir>/fewshot/G<g>``."""
    return registry.stage_dir(workdir, STAGE) / f"G{g}"


def step_config(config, g: int, source):
    """The config of one G: ``config`` with the supernet routed ``stage_width_nested`` into
    G groups and initialized from ``source``, the ``fewshot`` scheme, and the G's epochs and
    learning rate without warm-up (seed paper 000 §3.1: "20 epochs and no warm-up")."""
    derived = copy.deepcopy(config)
    g_max = int(config.fewshot.max_copies)
    derived.supernet.num_copies = g
    derived.supernet.routing = "stage_width_nested"
    derived.supernet.routing_table = ""
    derived.supernet.init_from = str(source)
    derived.supernet.init_parent = ""  # derived: broadcast from one copy, or the nesting
    train = derived.train
    train.scheme = "fewshot"
    train.epochs = int(fewshot_lib.per_step(config.fewshot.epochs, g_max)[g - 2])
    train.learning_rate = float(fewshot_lib.per_step(config.fewshot.learning_rate, g_max)[g - 2])
    train.warmup_epochs = 0.0
    train.phases.boundaries = ()
    train.phases.peaks = (1.0,)
    train.phases.warmup_steps = ()
    train.phases.reset_momentum = False
    return derived


def one_shot_source(config, workdir) -> tuple[str, str]:
    """(the one-shot supernet G=2 starts from, where it came from), checked."""
    path = config.fewshot.init_from
    origin = "--config.fewshot.init_from"
    if not path:
        best = registry.stage_dir(workdir, ONESHOT_STAGE) / "monitor" / BEST
        manifest = registry.read_manifest(workdir, ONESHOT_STAGE)
        origin = str(registry.stage_dir(workdir, ONESHOT_STAGE) / registry.MANIFEST_FILE)
        if best.is_file():
            path, origin = str(best), "the oneshot stage's ranking monitor"
        elif manifest.get("supernet"):
            path = manifest["supernet"]
        else:
            raise ValueError(
                "No one-shot supernet to split: run --stage=oneshot with "
                f"--workdir={workdir} first, or set --config.fewshot.init_from=PATH (a "
                "supernet.keras)."
            )
    supernet_lib.check_supernet_file(path, config.space, origin)
    return str(path), origin


def best_of(directory: Path) -> dict | None:
    """The ranking monitor's ``best_tau.json`` of a run directory, or None."""
    path = Path(directory) / "monitor" / "best_tau.json"
    return json.loads(path.read_text()) if path.is_file() else None


def inherited_file(directory: Path) -> Path:
    """What the next G starts from: the run's best-tau supernet, else its final one."""
    best = Path(directory) / "monitor" / BEST
    return best if best.is_file() else Path(directory) / SUPERNET


def _row(g, directory: Path, supernet_file: Path, epochs=None) -> dict:
    best = best_of(directory) or {}
    params = None
    if supernet_file.is_file():
        params = sum(int(v.size) for v in supernet_lib.weight_arrays(supernet_file).values())
    return dict(
        G=g,
        epochs=epochs,
        best_kendall_tau=best.get("kendall_tau"),
        best_epoch=best.get("epoch"),
        params=params,
        file_bytes=supernet_file.stat().st_size if supernet_file.is_file() else None,
        supernet=str(supernet_file),
    )


def _check_finished(directory: Path, config) -> None:
    """Refuses to reuse a finished G trained with another recipe."""
    saved = json.loads((directory / REPORT).read_text()).get("run_config")
    if saved is not None and saved != _run_config(config):
        raise ValueError(
            f"{directory} was trained with another recipe than this config's for that G "
            "(data, supernet, train or fewshot sections differ); pass --overwrite to move "
            f"{directory.parent} aside and start over, or use another --workdir."
        )


def _run_config(config) -> dict:
    # oneshot.run_config misses the fewshot section, which sets the scheme's lr_mode.
    return dict(oneshot.run_config(config), lr_mode=config.fewshot.lr_mode)


def write_table(workdir, rows: list[dict], strategy=None) -> tuple[Path, Path]:
    """Seed paper 000's Table 3 as ``table.json``/``table.tsv`` and in TensorBoard."""
    import tensorflow as tf

    directory = distribute.write_dir(registry.stage_dir(workdir, STAGE), strategy)
    directory.mkdir(parents=True, exist_ok=True)
    rows = [
        dict(r, supernet=registry.relative_to_workdir(workdir, r["supernet"])) for r in rows
    ]
    table_json = directory / TABLE_JSON
    table_json.write_text(json.dumps(rows, indent=2) + "\n")
    columns = ("G", "epochs", "best_kendall_tau", "best_epoch", "params", "file_bytes")
    lines = ["\t".join(columns)] + [
        "\t".join("" if r[c] is None else str(r[c]) for c in columns) for r in rows
    ]
    table_tsv = directory / TABLE_TSV
    table_tsv.write_text("\n".join(lines) + "\n")
    markdown = "\n".join(
        ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        + ["| " + " | ".join("" if r[c] is None else str(r[c]) for c in columns) + " |"
           for r in rows]
    )
    writer = tf.summary.create_file_writer(str(directory / "tensorboard"))
    with writer.as_default():
        for r in rows:
            step = 1 if r["G"] == "one-shot" else int(r["G"])
            if r["best_kendall_tau"] is not None:
                tf.summary.scalar("fewshot/best_kendall_tau", r["best_kendall_tau"], step=step)
                tf.summary.scalar("fewshot/best_epoch", r["best_epoch"], step=step)
            if r["params"] is not None:
                tf.summary.scalar("fewshot/params", r["params"], step=step)
        tf.summary.text(
            "fewshot/table",
            "Best Kendall tau of the ranking monitor and its epoch per G (seed paper 000 "
            "Table 3; step 1 = the one-shot source)\n\n" + markdown,
            step=0,
        )
    writer.flush()
    return table_json, table_tsv


def select(config, rows: list[dict]) -> dict:
    """The row of the G later stages use: ``fewshot.select``, or the best tau (G_max
    without the monitor, or when no G has a tau)."""
    trained = [r for r in rows if r["G"] != "one-shot"]
    if config.fewshot.select:
        return next(r for r in trained if r["G"] == config.fewshot.select)
    scored = [r for r in trained if r["best_kendall_tau"] is not None]
    if not scored:
        return trained[-1]
    return max(scored, key=lambda r: (r["best_kendall_tau"], r["G"]))


@registry.register(STAGE, help="Few-shot by group split: train G = 2..G_max from oneshot.")
def run(config, args: registry.StageArgs) -> int:
    workdir = args.workdir
    source, origin = one_shot_source(config, workdir)
    g_max = int(config.fewshot.max_copies)
    strategy = distribute.make_strategy(config.train.strategy)
    root = registry.stage_dir(workdir, STAGE)
    if args.overwrite and distribute.is_chief(strategy):
        registry.move_aside(root)
    registry.write_config(config, distribute.write_dir(root, strategy))
    one = Path(source)
    # The one-shot row of the table: its run directory holds the monitor's best_tau.json.
    one_dir = one.parent.parent if one.name == BEST else one.parent
    rows = [_row("one-shot", one_dir, one)]
    print(f"fewshot: G=2 starts from {source} ({origin}).")
    for g in range(2, g_max + 1):
        directory = step_dir(workdir, g)
        derived = step_config(config, g, source)
        out_dir = distribute.write_dir(directory, strategy)
        if (directory / REPORT).is_file() and (directory / SUPERNET).is_file():
            _check_finished(directory, derived)
            print(f"fewshot: G={g} already trained; {directory / SUPERNET} is kept.")
        else:
            trainer, initial_epoch = oneshot.train_supernet(derived, directory, strategy)
            trainer.supernet.save(out_dir / SUPERNET)
            report = dict(
                G=g,
                copy_counts=list(trainer.supernet.copy_counts),
                steps=int(trainer.optimizer.iterations.numpy()),
                resumed_from_epoch=initial_epoch,
                initialized_from=registry.relative_to_workdir(workdir, source),
                lr_multipliers=trainer.scheme.lr_multipliers(trainer.supernet),
                run_config=_run_config(derived),
            )
            (out_dir / REPORT).write_text(json.dumps(report, indent=2) + "\n")
        rows.append(_row(g, directory, directory / SUPERNET, derived.train.epochs))
        source = str(inherited_file(directory))
    table_json, table_tsv = write_table(workdir, rows, strategy)
    chosen = select(config, rows)
    chosen_dir = step_dir(workdir, chosen["G"])
    chosen_file = inherited_file(chosen_dir)
    tau = chosen["best_kendall_tau"]
    print(
        f"fewshot: later stages use G={chosen['G']}: {chosen_file}"
        + ("" if tau is None else f" (best Kendall tau {tau:.4f} at epoch {chosen['best_epoch']})")
    )
    if distribute.is_chief(strategy):
        registry.write_manifest(
            workdir,
            STAGE,
            supernet=str(chosen_file),
            num_copies=int(chosen["G"]),
            table=str(table_json),
            table_tsv=str(table_tsv),
            **{f"supernet_G{r['G']}": str(inherited_file(step_dir(workdir, r["G"])))
               for r in rows if r["G"] != "one-shot"},
        )
    return 0

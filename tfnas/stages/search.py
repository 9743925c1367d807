"""Stage ``search``: NSGA-II over the (bounded) space, scored by the trained supernet.

    bin/train --stage=search --config=configs/fmnist.py --workdir=/tmp/run \\
        [--config.search.budget=2e6] [--config.search.selection=truncation] [--overwrite]
    bin/train --stage=export --config=configs/fmnist.py --workdir=/tmp/run --codes=search:3

`tfnas.search.NSGA2Oracle` proposes ``config.search.population`` archs per generation for
``config.search.generations`` generations (seed paper 004 §3: 50 x 20); each is scored by
`tfnas.evaluation` (BN recalibration, then top-1 on ``config.evaluate.split``) through a
cache shared with the ``evaluate`` stage (``<workdir>/evaluate/results.jsonl``, rows keyed by
code with the supernet's fingerprint): a code is scored at most once per supernet. The
objectives are accuracy (up) and ``config.search.objective`` (FLOPs or params, down), under
an optional ``config.search.budget``.

The keras-tuner project in ``<workdir>/search/tuner/`` is the resumable state: after a kill
at any point, the same command resumes and ends with the same front as an uninterrupted run.
A resumed search whose settings or supernet differ is refused (``--overwrite`` moves the
stage's directory aside and starts over). Several machines search together through
keras-tuner's chief/worker mode: run the same command on each with
``KERASTUNER_ORACLE_IP``/``KERASTUNER_ORACLE_PORT`` (the chief's address) and
``KERASTUNER_TUNER_ID`` (``chief`` on the machine that hosts the oracle, a unique
``tuner<i>`` on each worker). The chief scores nothing and writes the products.

Products in ``<workdir>/search/`` (listed in ``manifest.json``; paths relative):

* ``front.json`` / ``front.tsv``: the Pareto front of every evaluated arch (feasible archs no
  other feasible arch beats in both accuracy and cost), most accurate first, as results JSON
  (``{"results": [{"code", "acc", "flops", "params", ...}]}``; `export` and `standalone`
  take it with ``--codes=search`` or its best K with ``--codes=search:K``);
* ``archs.json`` / ``archs.tsv``: every evaluated arch with its generation and trial;
* ``history.json``: per generation the front, its hypervolume and the best feasible arch;
* ``front.png``: accuracy against cost, every arch, the front after each generation;
* ``tensorboard/``: that figure per generation and the hypervolume per generation.
"""

from __future__ import annotations

import json
from pathlib import Path

from tfnas import evaluation
from tfnas import records as records_lib
from tfnas import search as search_lib
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas.stages import registry

STAGE = "search"
PROJECT = "tuner"
SPEC_FILE = "search_spec.json"


def supernet_path(config, workdir) -> tuple[str, str]:
    """(path, where it came from): ``search.supernet``, else the fewshot or oneshot
    manifest's (`registry.trained_supernet`)."""
    if config.search.supernet:
        return config.search.supernet, "--config.search.supernet"
    path, origin = registry.trained_supernet(workdir)
    if not path:
        raise ValueError(
            "No supernet to search: set --config.search.supernet=PATH (a supernet.keras) or "
            f"run --stage=oneshot with --workdir={workdir} first."
        )
    return path, origin


def _check_spec(project: Path, spec: dict) -> None:
    """Refuses to resume a search made with other settings or another supernet."""
    path = project / SPEC_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        if saved != spec:
            changed = sorted(k for k in set(saved) | set(spec) if saved.get(k) != spec.get(k))
            raise ValueError(
                f"{project} holds a search with other settings ({', '.join(changed)} differ: "
                f"{ {k: saved.get(k) for k in changed} } there, "
                f"{ {k: spec.get(k) for k in changed} } now). Restore the settings to resume "
                "it, pass --overwrite to start over (the old search is moved aside), or use "
                "another --workdir."
            )
    else:
        project.mkdir(parents=True, exist_ok=True)
        records_lib.write_text_atomic(path, json.dumps(spec, indent=1, sort_keys=True))


@registry.register(STAGE, help="Search the space with NSGA-II, scored by the supernet.")
def run(config, args: registry.StageArgs) -> int:
    role = search_lib.role()
    space = ss.get_space(config.space)
    settings = search_lib.settings_from_config(config)
    generations = int(config.search.generations)
    search_lib.check_budget(space, settings)
    source, origin = supernet_path(config, args.workdir)
    supernet_lib.check_supernet_file(source, config.space, origin)
    fingerprint = evaluation.fingerprint(config, source)
    stage_dir = Path(args.workdir) / STAGE
    if args.overwrite and role != "worker":
        registry.move_aside(stage_dir)
    cache = None
    if role != "chief":

        def make_evaluator():
            print(f"search: loading {source} and tracing the evaluator")
            supernet = supernet_lib.load_supernet(source, config.space, origin)
            return evaluation.build_evaluator(config, supernet)

        cache = search_lib.ScoreCache(args.workdir, space, fingerprint, make_evaluator)
    spec = {
        "space": config.space,
        "fingerprint": fingerprint,
        **search_lib.settings_json(settings, generations),
    }
    if role != "worker":
        _check_spec(stage_dir / PROJECT, spec)
    registry.write_config(config, stage_dir)
    oracle = search_lib.NSGA2Oracle(space, settings, generations)
    tuner = search_lib.SupernetSearchTuner(oracle, cache, directory=stage_dir,
                                           project_name=PROJECT)
    total = settings.population * generations
    print(
        f"search ({role}): {settings.population} x {generations} = {total} archs, selection "
        f"{settings.selection}, objective acc vs {settings.cost}"
        + (f" <= {settings.budget:g}" if settings.budget else "")
        + f", {len(oracle.trials)} trials already run; fingerprint {fingerprint}"
    )
    if role == "chief" and oracle.finished():
        # keras-tuner's chief serves until a worker is told to stop; none will come.
        print("search: the search is complete; writing the products")
    else:
        tuner.search(verbose=0)
    if role == "worker":
        print(f"search: worker {tuner.tuner_id} done ({cache.scored} archs scored here); "
              "the chief writes the products")
        return 0
    write_products(args.workdir, oracle, space, settings, source, fingerprint)
    return 0


def write_products(workdir, oracle, space, settings, source, fingerprint) -> dict:
    """front/archs JSON and TSV, history, PNG, TensorBoard, manifest; returns the manifest
    products."""
    stage_dir = Path(workdir) / STAGE
    rows = search_lib.evaluated_rows(oracle)
    if not rows:
        raise ValueError(
            f"the search in {stage_dir} has no completed trial (every trial failed); see the "
            "trial messages in its tuner/trial_*/trial.json"
        )
    history = search_lib.generation_history(rows, settings, space)
    front_codes = set(history[-1]["front"])
    for row in rows:
        row["front"] = row["code"] in front_codes
    front = sorted((r for r in rows if r["front"]), key=lambda r: (-r["acc"], r["trial"]))
    header = {
        "supernet": registry.relative_to_workdir(workdir, source),
        "fingerprint": fingerprint,
        "settings": search_lib.settings_json(settings, oracle.generations),
    }
    paths = {
        "front": stage_dir / "front.json",
        "front_tsv": stage_dir / "front.tsv",
        "archs": stage_dir / "archs.json",
        "archs_tsv": stage_dir / "archs.tsv",
        "history": stage_dir / "history.json",
        "figure": stage_dir / "front.png",
        "tensorboard": stage_dir / "tensorboard",
    }
    records_lib.write_text_atomic(paths["front"], json.dumps({**header, "results": front},
                                                             indent=1))
    records_lib.write_text_atomic(paths["archs"], json.dumps({**header, "results": rows},
                                                             indent=1))
    search_lib.write_tsv(paths["front_tsv"], front)
    search_lib.write_tsv(paths["archs_tsv"], rows)
    records_lib.write_text_atomic(paths["history"], json.dumps(history, indent=1))
    _figures(paths, rows, history, settings)
    feasible = [r for r in front if r["feasible"]]
    best = feasible[0] if feasible else None
    products = dict(paths, best=best and best["code"], best_acc=best and best["acc"],
                    evaluated=len(rows), tuner=stage_dir / PROJECT)
    registry.write_manifest(workdir, STAGE, **products)
    print(
        f"search: {len(rows)} archs evaluated, front of {len(front)}; best feasible "
        + (f"{best['code']} acc={best['acc']:.4f} {best[settings.cost]} {settings.cost}"
           if best else "none")
        + f"; wrote {paths['front']} and {paths['figure']}"
    )
    return products


def _figures(paths, rows, history, settings) -> None:
    import tensorflow as tf

    from tfnas import plotting

    fig = search_lib.front_figure(rows, history, settings)
    plotting.save_png(fig, paths["figure"])
    # The summaries are derived from the trials: a rerun rewrites them instead of adding a
    # second copy of every step.
    for old in Path(paths["tensorboard"]).glob("events.out.tfevents.*"):
        old.unlink()
    writer = tf.summary.create_file_writer(str(paths["tensorboard"]))
    with writer.as_default():
        for g, entry in enumerate(history):
            tf.summary.scalar("search/hypervolume", entry["hypervolume"], step=g)
            if entry["best_feasible_acc"] is not None:
                tf.summary.scalar("search/best_feasible_acc", entry["best_feasible_acc"], step=g)
            tf.summary.scalar("search/front_size", entry["front_size"], step=g)
            image = fig if g == len(history) - 1 else search_lib.front_figure(
                rows, history, settings, upto=g)
            tf.summary.image("search/front", plotting.to_rgb_array(image)[None], step=g)
    writer.close()

"""Stage ``evaluate``: score a list of archs with the trained supernet.

    bin/train --stage=evaluate --config=configs/fmnist.py --workdir=/tmp/run \\
        --codes=../shared/data/cvpr22/CVPR_2022_NAS_Track1_test.json [--shard=2/4]
    bin/train --stage=merge --config=configs/fmnist.py --workdir=/tmp/run --codes=<same file>

Each arch is BN-recalibrated and scored on ``config.evaluate.split``
(`tfnas.evaluation.SubnetEvaluator`). Results are appended, one JSON line per arch, to
``<workdir>/evaluate/results[.shard-I-of-N].jsonl`` and flushed, so a killed run resumes
where it stopped: archs already in the file are skipped. A code listed twice is scored
once. ``--shard=I/N`` (1-based) scores every N-th unique code starting at the I-th, so N
processes (or hosts) split a list; ``--stage=merge`` joins the shard files, checks that every
unique code was scored exactly once, and writes the outputs that an unsharded run writes too:

* ``results.json``: ``{"supernet": ..., "results": [{"code", "acc", "flops", "params"}]}``
  in the order of the codes file (the `rank` stage reads it);
* ``<codes file stem>.acc.json``: the competition JSON of the input with ``acc`` filled,
  keys and order kept.

The supernet comes from ``config.evaluate.supernet`` or, when empty, from the ``oneshot``
stage's manifest in the same workdir. Every row records a fingerprint of what scored it
(`tfnas.evaluation.fingerprint`: the supernet file's SHA-256 and every input of the
evaluator -- data, recalibration batches and their seed, evaluation split): resuming, or
merging, rows of another supernet or recipe (e.g. after retraining in the same workdir) is
refused instead of mixing two supernets' scores; ``--overwrite`` moves the results file aside
and starts over. The supernet and the codes are checked before anything is written; a
supernet of another space is refused.

Noise of a score: each ``acc`` is a top-1 accuracy on the ``examples`` images of
``config.evaluate.split`` (every row records how many), so even for a fixed supernet it
carries a binomial standard error sqrt(p (1 - p) / n): 0.0058 for p = 0.79 on the
5,000-image Fashion-MNIST holdout, 0.0041 on 10,000 images. ``results.json`` records it
(``noise``: `tfnas.ranking.score_noise`, the root-mean-square error over the archs, the
standard deviation of the scores across the archs and their ratio) and the stage prints
it. When the ratio nears 1 (0.0058 against 0.0052 for the 40 archs of the Fashion-MNIST
ranking benchmark), single scores cannot order the archs finely: differences between two
archs scored on the same images are less noisy than that (they depend on the images on which
the two disagree), and more evaluation images (a larger holdout, ``evaluate.num_batches=0``)
shrink the error as 1/sqrt(n) at a cost linear in n.

Cost of a score: recalibration (``evaluate.recalibration``: 20 training-mode batches of 128)
plus inference on the evaluation set, one graph call per arch
(`tfnas.evaluation.SubnetEvaluator`); ``benchmarks/scoring_speed.py`` times it against the
previous per-batch path.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import keras

from tfnas import codes as codes_lib
from tfnas import evaluation
from tfnas import ranking
from tfnas import records as records_lib
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas.stages import registry

STAGE = "evaluate"
# The stage whose manifest names the default supernet (named, not imported: stages do not
# import each other).
RESULTS_JSON = "results.json"


def results_path(stage_dir: Path, index: int, count: int) -> Path:
    """``<stage_dir>/results[.shard-I-of-N].jsonl``."""
    return stage_dir / f"results{records_lib.shard_suffix(index, count)}.jsonl"


def load_records(config, args):
    spec = args.codes or config.evaluate.codes
    if not spec:
        raise ValueError(
            "No archs to evaluate: pass --codes=FILE (competition JSON or one code per line) "
            "or --codes=CODE,CODE, or set --config.evaluate.codes."
        )
    records = codes_lib.parse_codes_arg(spec)
    space = ss.get_space(config.space)
    for record in records:
        try:
            space.parse(record.code)
        except ValueError as e:
            raise ValueError(f"{record.key}: {e}") from None
    return spec, records


def supernet_path(config, workdir) -> tuple[str, str]:
    """(path, where it came from): ``evaluate.supernet``, else the fewshot manifest's (the
    selected G), else the oneshot manifest's."""
    path = config.evaluate.supernet
    if path:
        return path, "--config.evaluate.supernet"
    path, origin = registry.trained_supernet(workdir)
    if path:
        return path, origin
    raise ValueError(
        f"No supernet to evaluate: set --config.evaluate.supernet=PATH (a supernet.keras) "
        f"or run --stage=oneshot with --workdir={workdir} first."
    )


def check_fingerprints(done: dict[str, dict], expected: str, where) -> None:
    """Raises if rows in ``done`` were scored by another supernet or recipe."""
    other = records_lib.foreign_fingerprints(done, expected)
    if other:
        raise ValueError(
            f"{where} holds scores of another supernet or evaluation recipe (fingerprint "
            f"{', '.join(other)}; this run's is {expected}). Scores of two supernets must not "
            "mix: pass --overwrite to score every arch again, or use another --workdir."
        )


@registry.register(STAGE, help="Score archs with the supernet (BN recalibrated).")
def run(config, args: registry.StageArgs) -> int:
    # Inputs first: nothing is written before the codes and the supernet are checked.
    spec, records = load_records(config, args)
    index, count = records_lib.parse_shard(args.shard)
    source, origin = supernet_path(config, args.workdir)
    supernet_lib.check_supernet_file(source, config.space, origin)
    expected = evaluation.fingerprint(config, source)
    stage_dir = Path(args.workdir) / STAGE
    unique = records_lib.unique_codes(records)
    mine = records_lib.shard_codes(unique, index, count)
    path = results_path(stage_dir, index, count)
    if args.overwrite:
        registry.move_aside(path)
    records_lib.drop_torn_line(path)
    done = records_lib.read_jsonl(path)
    check_fingerprints(done, expected, path)
    todo = [c for c in mine if c not in done]
    print(
        f"evaluate: {len(records)} records, {len(unique)} unique codes, shard "
        f"{index}/{count}: {len(mine)} codes, {len(mine) - len(todo)} already done."
    )
    if todo:
        registry.write_config(config, stage_dir)
        evaluator = evaluation.build_evaluator(config, keras.saving.load_model(source))
        space = ss.get_space(config.space)
        start = time.perf_counter()
        every = config.evaluate.log_every
        with records_lib.Appender(path) as out:
            for i, code in enumerate(todo, 1):
                arch = space.parse(code)
                done[code] = dict(
                    code=code,
                    acc=evaluator.accuracy(code),  # one graph call: recalibrate + count
                    examples=evaluator.num_eval_examples,
                    flops=space.flops(arch),
                    params=space.params(arch),
                    fingerprint=expected,
                )
                out.write(done[code])
                if i % every == 0 or i == len(todo):
                    rate = i / (time.perf_counter() - start) * 60.0
                    eta = (len(todo) - i) / rate if rate else 0.0
                    print(
                        f"evaluate: {i}/{len(todo)} archs, {rate:.1f} archs/min, "
                        f"ETA {eta:.1f} min"
                    )
    if count == 1 and (todo or not (stage_dir / RESULTS_JSON).exists()):
        registry.write_config(config, stage_dir)
        write_outputs(args.workdir, spec, records, done, source)
    return 0


def competition_path(stage_dir: Path, spec: str) -> Path:
    """``<stage_dir>/<codes file stem>.acc.json`` (``codes.acc.json`` for inline codes).

    The ``.acc`` infix keeps it apart from the stage's own files whatever the codes file is
    called (a codes file named ``results.json`` must not overwrite ``results.json``).
    """
    stem = Path(spec).stem if os.path.exists(spec) else "codes"
    return stage_dir / f"{stem}.acc.json"


def write_outputs(workdir, spec, records, scored: dict[str, dict], source: str) -> None:
    """results.json and the competition JSON with acc filled, in the input's order."""
    stage_dir = Path(workdir) / STAGE
    rows = [scored[c] for c in records_lib.unique_codes(records)]
    results = stage_dir / RESULTS_JSON
    supernet = registry.relative_to_workdir(workdir, source)
    noise = score_noise(rows)
    records_lib.write_text_atomic(
        results, json.dumps({"supernet": supernet, "results": rows, "noise": noise}, indent=1)
    )
    if noise is not None:
        print(
            f"evaluate: each score's binomial standard error is {noise['binomial_se']:.4f} "
            f"({noise['num_examples']} images) against a standard deviation of "
            f"{noise['score_sd']:.4f} across the {len(rows)} archs"
        )
    filled = [codes_lib.ArchRecord(r.key, r.code, scored[r.code]["acc"]) for r in records]
    competition = competition_path(stage_dir, spec)
    codes_lib.write_competition_json(competition, filled)
    registry.write_manifest(workdir, STAGE, results=results, competition=competition)
    print(f"evaluate: wrote {results} and {competition}")


def score_noise(rows: list[dict]) -> dict | None:
    """`tfnas.ranking.score_noise` of the rows: the binomial standard error of a score on
    its ``examples`` images against the spread of the scores across archs (None for fewer
    than 2 archs, or rows scored before ``examples`` was recorded)."""
    sizes = {row.get("examples") for row in rows}
    if len(rows) < 2 or len(sizes) != 1 or not isinstance(next(iter(sizes)), int):
        return None
    return ranking.score_noise({r["code"]: r["acc"] for r in rows}, sizes.pop())


def merge_shards(config, args: registry.StageArgs) -> bool:
    """Joins the ``evaluate --shard=I/N`` files (`records.merge_parts`); False if none.

    Raises:
      ValueError: shards missing, codes missing or scored twice, or shards scored by
        different supernets or recipes.
    """
    stage_dir = Path(args.workdir) / STAGE
    shard_files = sorted(stage_dir.glob("results.shard-*-of-*.jsonl"))
    if not shard_files:
        return False
    spec, records = load_records(config, args)
    parts = [(p.name, records_lib.read_jsonl(p)) for p in shard_files]
    fingerprints = {}
    for name, rows in parts:
        for row in rows.values():
            fingerprints.setdefault(row.get("fingerprint", "none"), name)
    if len(fingerprints) > 1:
        raise ValueError(
            f"The shards in {stage_dir} were scored by different supernets or recipes "
            f"(fingerprints {sorted(fingerprints)}, e.g. in {sorted(fingerprints.values())}). "
            "Rerun the stale shards with --overwrite."
        )
    scored = records_lib.merge_parts(parts, records_lib.unique_codes(records), str(stage_dir))
    source, _ = supernet_path(config, args.workdir)
    registry.write_config(config, stage_dir)
    write_outputs(args.workdir, spec, records, scored, source)
    return True

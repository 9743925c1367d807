"""Stages ``evaluate`` and ``merge``: score a list of archs with the trained supernet.

    bin/train --stage=evaluate --config=configs/fmnist.py --workdir=/tmp/run \\
        --codes=../shared/data/cvpr22/CVPR_2022_NAS_Track1_test.json [--shard=2/4]
    bin/train --stage=merge --config=configs/fmnist.py --workdir=/tmp/run --codes=<same file>

Each arch is BN-recalibrated and scored on ``config.evaluate.split``
(`tfnas.evaluation.SubnetEvaluator`). Results are appended, one JSON line per arch, to
``<workdir>/evaluate/results[.shard-I-of-N].jsonl`` and flushed, so a killed run resumes
where it stopped: archs already in the file are skipped. A code listed twice is scored
once. ``--shard=I/N`` (1-based) scores every N-th unique code starting at the I-th, so N
processes (or hosts) split a list; ``merge`` joins the shard files, checks that every unique
code was scored exactly once, and writes the outputs that an unsharded run writes too:

* ``results.json``: ``{"supernet": ..., "results": [{"code", "acc", "flops", "params"}]}``
  in the order of the codes file (the `rank` stage reads it);
* ``<codes file stem>.json``: the competition JSON of the input with ``acc`` filled, keys
  and order kept.

The supernet comes from ``config.evaluate.supernet`` or, when empty, from the ``oneshot``
stage's manifest in the same workdir. Every row records a fingerprint of what scored it
(the supernet file's SHA-256, the data and evaluation config): resuming, or merging, rows of
another supernet (e.g. after retraining in the same workdir) is refused instead of mixing
two supernets' scores; ``--overwrite`` starts the results over.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import keras

from tfnas import codes as codes_lib
from tfnas import export
from tfnas import search_space as ss
from tfnas.stages import oneshot
from tfnas.stages import registry

STAGE = "evaluate"


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 1 <= I <= N; ``None`` -> (1, 1)."""
    if not spec:
        return 1, 1
    try:
        index, count = (int(p) for p in spec.split("/"))
    except ValueError:
        index = count = 0
    if not 1 <= index <= count:
        raise ValueError(
            f"--shard={spec!r} is not a shard; expected I/N with 1 <= I <= N, e.g. --shard=1/4 "
            "for the first of four shards."
        )
    return index, count


def unique_codes(records) -> list[str]:
    """The codes in order of first appearance, each once."""
    return list(dict.fromkeys(r.code for r in records))


def shard_codes(codes: list[str], index: int, count: int) -> list[str]:
    return codes[index - 1 :: count]


def results_path(stage_dir: Path, index: int, count: int) -> Path:
    suffix = "" if count == 1 else f".shard-{index}-of-{count}"
    return stage_dir / f"results{suffix}.jsonl"


def drop_torn_line(path: Path) -> None:
    """Cuts a last line left unfinished by a kill, so that appends start on a fresh line."""
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            path.write_bytes(data[: data.rfind(b"\n") + 1])


def read_results_lines(lines) -> dict[str, dict]:
    """{code: row} of JSON lines; a torn line (a kill mid-write) is ignored."""
    done = {}
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[row["code"]] = row
    return done


def read_results(path: Path) -> dict[str, dict]:
    """Scored archs of a JSONL results file (empty when it does not exist)."""
    return read_results_lines(path.read_text().splitlines()) if path.exists() else {}


def load_records(config, args):
    spec = args.codes or config.evaluate.get("codes", "")
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


def supernet_path(config, workdir) -> str:
    path = config.evaluate.get("supernet", "")
    if path:
        return path
    manifest = registry.read_manifest(workdir, oneshot.STAGE)
    if not manifest or "supernet" not in manifest:
        raise ValueError(
            f"No supernet to evaluate: set --config.evaluate.supernet=PATH (a supernet.keras) "
            f"or run --stage=oneshot with --workdir={workdir} first."
        )
    return manifest["supernet"]


def fingerprint(config, source) -> str:
    """What determines a score besides the arch: the supernet's bytes, data and recipe."""
    ev = {k: v for k, v in config.evaluate.to_dict().items() if k not in ("codes", "log_every")}
    ev.pop("supernet", None)
    setup = json.dumps(
        {"data": json.loads(config.data.to_json_best_effort()), "evaluate": ev}, sort_keys=True
    )
    return export.file_sha256(source, suffix=setup.encode())[:16]


def check_fingerprints(done: dict[str, dict], expected: str, where) -> None:
    """Raises if rows in ``done`` were scored by another supernet or recipe."""
    other = sorted({row.get("fingerprint", "none") for row in done.values()} - {expected})
    if other:
        raise ValueError(
            f"{where} holds scores of another supernet or evaluation recipe (fingerprint "
            f"{', '.join(other)}; this run's is {expected}). Scores of two supernets must not "
            "mix: pass --overwrite to score every arch again, or use another --workdir."
        )


@registry.register(STAGE, help="Score archs with the supernet (BN recalibrated).")
def run(config, args: registry.StageArgs) -> int:
    spec, records = load_records(config, args)
    index, count = parse_shard(args.shard)
    stage_dir = Path(args.workdir) / STAGE
    stage_dir.mkdir(parents=True, exist_ok=True)
    mine = shard_codes(unique_codes(records), index, count)
    path = results_path(stage_dir, index, count)
    if args.overwrite and path.exists():
        path.unlink()
    drop_torn_line(path)
    done = read_results(path)
    source = supernet_path(config, args.workdir)
    expected = fingerprint(config, source)
    check_fingerprints(done, expected, path)
    todo = [c for c in mine if c not in done]
    print(
        f"evaluate: {len(records)} records, {len(unique_codes(records))} unique codes, shard "
        f"{index}/{count}: {len(mine)} codes, {len(mine) - len(todo)} already done."
    )
    if todo:
        supernet = keras.saving.load_model(source)
        evaluator = oneshot.make_evaluator(config, supernet)
        space = ss.get_space(config.space)
        start = time.perf_counter()
        every = max(1, int(config.evaluate.get("log_every", 10)))
        with path.open("a") as out:
            for i, code in enumerate(todo, 1):
                acc = evaluator.accuracy(code)
                arch = space.parse(code)
                row = dict(
                    code=code,
                    acc=acc,
                    flops=space.flops(arch),
                    params=space.params(arch),
                    fingerprint=expected,
                )
                out.write(json.dumps(row) + "\n")
                out.flush()
                os.fsync(out.fileno())
                if i % every == 0 or i == len(todo):
                    rate = i / (time.perf_counter() - start) * 60.0
                    eta = (len(todo) - i) / rate if rate else 0.0
                    print(
                        f"evaluate: {i}/{len(todo)} archs, {rate:.1f} archs/min, "
                        f"ETA {eta:.1f} min"
                    )
    if count == 1:
        write_outputs(config, args.workdir, spec, records, read_results(path), source)
    return 0


def write_outputs(config, workdir, spec, records, scored: dict[str, dict], source="") -> None:
    """results.json and the competition JSON with acc filled, in the input's order."""
    stage_dir = Path(workdir) / STAGE
    rows = [scored[c] for c in unique_codes(records)]
    results = stage_dir / "results.json"
    results.write_text(
        json.dumps({"supernet": source or config.evaluate.get("supernet", ""), "results": rows},
                   indent=1)
    )
    stem = Path(spec).stem if os.path.exists(spec) else "codes"
    filled = [codes_lib.ArchRecord(r.key, r.code, scored[r.code]["acc"]) for r in records]
    competition = stage_dir / f"{stem}.json"
    codes_lib.write_competition_json(competition, filled)
    registry.write_manifest(workdir, STAGE, results=str(results), competition=str(competition))
    print(f"evaluate: wrote {results} and {competition}")


@registry.register("merge", help="Join evaluate shards; check none is missing or duplicated.")
def merge(config, args: registry.StageArgs) -> int:
    spec, records = load_records(config, args)
    stage_dir = Path(args.workdir) / STAGE
    shard_files = sorted(stage_dir.glob("results.shard-*-of-*.jsonl"))
    if not shard_files:
        raise ValueError(f"No shard results in {stage_dir}; run --stage=evaluate --shard=I/N.")
    counts = {int(p.name.split("-of-")[1].split(".")[0]) for p in shard_files}
    if len(counts) != 1:
        raise ValueError(
            f"Shard files of different shard counts in {stage_dir}: {sorted(counts)}. Keep the "
            "files of one --shard=I/N split."
        )
    (count,) = counts
    scored: dict[str, dict] = {}
    duplicated = []
    fingerprints = {}
    for p in shard_files:
        for code, row in read_results(p).items():
            fingerprints.setdefault(row.get("fingerprint", "none"), p.name)
            if code in scored:
                duplicated.append(code)
            scored[code] = row
    if len(fingerprints) > 1:
        raise ValueError(
            f"The shards in {stage_dir} were scored by different supernets or recipes "
            f"(fingerprints {sorted(fingerprints)}, e.g. in {sorted(fingerprints.values())}). "
            "Rerun the stale shards with --overwrite."
        )
    wanted = unique_codes(records)
    missing = [c for c in wanted if c not in scored]
    extra = [c for c in scored if c not in set(wanted)]
    if missing or duplicated or extra or len(shard_files) != count:
        raise ValueError(
            f"Cannot merge {len(shard_files)} of {count} shards: {len(missing)} codes missing "
            f"(e.g. {missing[:2]}), {len(duplicated)} scored in two shards (e.g. "
            f"{duplicated[:2]}), {len(extra)} not in the codes file (e.g. {extra[:2]}). Run the "
            "missing shards (the same command resumes), or check --codes."
        )
    write_outputs(config, args.workdir, spec, records, scored)
    return 0

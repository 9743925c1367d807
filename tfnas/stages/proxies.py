"""Stage ``proxies``: zero-cost proxy scores of a list of archs (no supernet, no training).

    bin/train --stage=proxies --config=configs/fmnist.py --workdir=/tmp/run \\
        --codes=../shared/data/cvpr22/CVPR_2022_NAS_Track1_test.json [--shard=2/4]

Each arch's static model is built at initialization under ``config.proxies.seed`` and scored
by every proxy of ``config.proxies.names`` on one fixed batch (`tfnas.proxies.score_arch`,
`tfnas.proxies.proxy_batch`). Like ``evaluate``: one JSON line per arch is appended to
``<workdir>/proxies/scores[.shard-I-of-N].jsonl`` and flushed, so a killed run resumes where
it stopped; a code listed twice is scored once; ``--shard=I/N`` scores every N-th unique
code from the I-th. A run without ``--shard`` also takes the rows of the shard files in its
directory, so after the shards it scores only what they missed and writes the outputs:

* ``scores.json``: ``{"proxies": [names], "fingerprint", "throughput": {...}, "results":
  [{"code", "scores": {name: value}}]}`` in the order of the codes file (a non-finite score,
  e.g. NASWOT's -inf, is null). The ``rank`` stage reads it through the manifest: every
  proxy becomes a ranker next to FLOPs and params.
* ``throughput``: archs per minute (``archs_per_minute``, from the mean wall-clock time per
  arch over every row) and the mean seconds per arch of the model build and of each proxy;
  also printed, and recorded in ``manifest.json``.

Every row records `tfnas.proxies.fingerprint` (the proxies section, the data and the space):
rows of another fingerprint are refused; ``--overwrite`` moves the files aside and starts
over. The codes and the batch are checked before anything is written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from tfnas import codes as codes_lib
from tfnas import proxies as proxies_lib
from tfnas import records as records_lib
from tfnas import search_space as ss
from tfnas.stages import registry

STAGE = "proxies"
SCORES_JSON = "scores.json"


def scores_path(stage_dir: Path, index: int, count: int) -> Path:
    """``<stage_dir>/scores[.shard-I-of-N].jsonl``."""
    return stage_dir / f"scores{records_lib.shard_suffix(index, count)}.jsonl"


def _load_codes(config, args) -> list[codes_lib.ArchRecord]:
    if not args.codes:
        raise ValueError(
            "No archs to score: pass --codes=FILE (competition JSON or one code per line) or "
            "--codes=CODE,CODE"
        )
    records = codes_lib.parse_codes_arg(args.codes)
    space = ss.get_space(config.space)
    for record in records:
        try:
            space.parse(record.code)
        except ValueError as e:
            raise ValueError(f"{record.key}: {e}") from None
    return records


def _check_fingerprints(rows: dict[str, dict], expected: str, where) -> None:
    other = records_lib.foreign_fingerprints(rows, expected)
    if other:
        raise ValueError(
            f"{where} holds proxy scores of another recipe (fingerprint {', '.join(other)}; "
            f"this run's is {expected}: config.proxies, config.data or the space differ). "
            "Pass --overwrite to score every arch again, or use another --workdir."
        )


def throughput(rows) -> dict:
    """Archs per minute and mean seconds per arch (build, each proxy, total) of ``rows``."""
    timed = [row["seconds"] for row in rows if row.get("seconds")]
    if not timed:
        return {"archs_per_minute": None, "seconds_per_arch": {}, "archs_timed": 0}
    keys = sorted({k for t in timed for k in t})
    means = {k: float(np.mean([t.get(k, 0.0) for t in timed])) for k in keys}
    total = float(np.mean([sum(t.values()) for t in timed]))
    means["total"] = total
    return {
        "archs_per_minute": 60.0 / total if total > 0 else None,
        "seconds_per_arch": means,
        "archs_timed": len(timed),
    }


@registry.register(STAGE, help="Zero-cost proxy scores (SynFlow, Zen, ...) of archs at init.")
def run(config, args: registry.StageArgs) -> int:
    # Inputs first: nothing is written before the codes and the batch are checked.
    records = _load_codes(config, args)
    index, count = records_lib.parse_shard(args.shard)
    names = tuple(config.proxies.names)
    expected = proxies_lib.fingerprint(config)
    stage_dir = Path(args.workdir) / STAGE
    unique = records_lib.unique_codes(records)
    mine = records_lib.shard_codes(unique, index, count)
    path = scores_path(stage_dir, index, count)
    shard_files = sorted(stage_dir.glob("scores.shard-*-of-*.jsonl")) if count == 1 else []
    if args.overwrite:
        for old in [path, *shard_files]:
            registry.move_aside(old)
        shard_files = []
    records_lib.drop_torn_line(path)
    done = records_lib.read_jsonl(path)
    _check_fingerprints(done, expected, path)
    for shard in shard_files:
        rows = records_lib.read_jsonl(shard)
        _check_fingerprints(rows, expected, shard)
        done = {**rows, **done}
    todo = [c for c in mine if c not in done]
    print(
        f"proxies: {len(records)} records, {len(unique)} unique codes, shard {index}/{count}: "
        f"{len(mine)} codes, {len(mine) - len(todo)} already done; proxies {', '.join(names)}."
    )
    if todo:
        needs_batch = any(n in proxies_lib.MODEL_PROXIES for n in names)
        batch = proxies_lib.proxy_batch(config) if needs_batch else None
        registry.write_config(config, stage_dir)
        section = config.proxies
        space = ss.get_space(config.space)
        start = time.perf_counter()
        with records_lib.Appender(path) as out:
            for i, code in enumerate(todo, 1):
                scores, seconds = proxies_lib.score_arch(
                    space,
                    code,
                    batch,
                    names,
                    seed=int(section.seed),
                    zen_repeats=int(section.zen_repeats),
                    zen_gamma=float(section.zen_gamma),
                )
                done[code] = dict(
                    code=code, scores=scores, seconds=seconds, fingerprint=expected
                )
                out.write(done[code])
                if i % int(section.log_every) == 0 or i == len(todo):
                    rate = i / (time.perf_counter() - start) * 60.0
                    eta = (len(todo) - i) / rate if rate else 0.0
                    print(
                        f"proxies: {i}/{len(todo)} archs, {rate:.1f} archs/min, "
                        f"ETA {eta:.1f} min"
                    )
    if count == 1:
        _write_outputs(config, args.workdir, unique, done, names, expected)
    return 0


def _write_outputs(config, workdir, unique, done, names, expected) -> None:
    """scores.json (codes-file order) and the manifest; unchanged files are not rewritten."""
    stage_dir = Path(workdir) / STAGE
    rows = [done[c] for c in unique]
    speed = throughput(rows)
    payload = {
        "proxies": list(names),
        "fingerprint": expected,
        "throughput": speed,
        "results": [{"code": r["code"], "scores": r["scores"]} for r in rows],
    }
    # allow_nan=False: non-finite scores are already None, keep the file standard JSON.
    text = json.dumps(payload, indent=1, allow_nan=False) + "\n"
    path = stage_dir / SCORES_JSON
    if path.exists() and path.read_text() == text:
        return
    registry.write_config(config, stage_dir)
    records_lib.write_text_atomic(path, text)
    registry.write_manifest(
        workdir,
        STAGE,
        scores=path,
        proxies=list(names),
        archs_per_minute=speed["archs_per_minute"],
    )
    rate = speed["archs_per_minute"]
    per = ", ".join(f"{k} {v:.2f} s" for k, v in speed["seconds_per_arch"].items())
    print(
        f"proxies: wrote {path}; throughput "
        f"{'n/a' if rate is None else f'{rate:.1f}'} archs/min ({per})"
    )

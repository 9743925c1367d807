"""Append-only JSON Lines files of per-arch results, split into shards between processes.

Every stage that works through a list of codes (``evaluate``, ``standalone``) writes one
JSON line per arch as it finishes it, flushed and fsynced, so that a killed run resumes with
the next arch and a line torn by the kill is dropped. ``--shard=I/N`` gives process I every
N-th unique code; each shard appends to its own file, and a merge joins the files, checking
that every code is there exactly once::

    index, count = records.parse_shard("2/4")
    mine = records.shard_codes(records.unique_codes(codes), index, count)
    records.drop_torn_line(path)
    done = records.read_jsonl(path)
    with records.Appender(path) as out:
        out.write({"code": code, "acc": acc})

This module holds no knowledge of what a row means; `tfnas.ground_truth` and the
``evaluate`` stage give the rows their fields.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "Appender",
    "drop_torn_line",
    "merge_parts",
    "parse_shard",
    "read_jsonl",
    "read_lines",
    "shard_codes",
    "shard_suffix",
    "unique_codes",
    "write_text_atomic",
]


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 1 <= I <= N; ``None`` or ``""`` -> (1, 1)."""
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


def shard_suffix(index: int, count: int) -> str:
    """``""`` for an unsharded run, else ``".shard-I-of-N"``."""
    return "" if count == 1 else f".shard-{index}-of-{count}"


def unique_codes(codes: Iterable) -> list[str]:
    """The codes (strings, or objects with a ``code``) in order of first appearance, once."""
    return list(dict.fromkeys(getattr(c, "code", c) for c in codes))


def shard_codes(codes: Sequence[str], index: int, count: int) -> list[str]:
    """Every ``count``-th code starting at the ``index``-th (1-based)."""
    return list(codes[index - 1 :: count])


def drop_torn_line(path: str | os.PathLike) -> None:
    """Cuts a last line left unfinished by a kill, so that appends start on a fresh line."""
    path = Path(path)
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            path.write_bytes(data[: data.rfind(b"\n") + 1])


def read_lines(lines: Iterable[str]) -> dict[str, dict]:
    """{code: row} of JSON lines; a torn line (a kill mid-write) is ignored."""
    done = {}
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "code" in row:
            done[row["code"]] = row
    return done


def read_jsonl(path: str | os.PathLike) -> dict[str, dict]:
    """{code: row} of a JSON Lines results file (empty when it does not exist)."""
    path = Path(path)
    return read_lines(path.read_text().splitlines()) if path.exists() else {}


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` to a temporary file beside ``path``, then renames it over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


class Appender:
    """Appends JSON rows to a file, each flushed and fsynced before `write` returns."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = None

    def __enter__(self) -> Appender:
        self._file = self.path.open("a")
        return self

    def write(self, row: dict) -> None:
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def __exit__(self, *exc) -> None:
        self._file.close()


def merge_parts(
    parts: Sequence[tuple[str, dict[str, dict]]], codes: Sequence[str], where: str
) -> dict[str, dict]:
    """Joins shard results ``[(shard file name, {code: row})]``; every code exactly once.

    The shard files must all come from one ``--shard=I/N`` split (the same N, every I).

    Raises:
      ValueError: naming the missing shards, and the codes missing, scored in two shards or
        not in ``codes``.
    """
    if not parts:
        raise ValueError(f"no shard files match {where}; run the stage with --shard=I/N first")
    counts, indices = set(), set()
    for name, _ in parts:
        try:
            index, count = name.split(".shard-")[1].split(".")[0].split("-of-")
            counts.add(int(count))
            indices.add(int(index))
        except (IndexError, ValueError):
            raise ValueError(f"{name} is not a shard file name (NAME.shard-I-of-N.EXT)") from None
    if len(counts) != 1:
        raise ValueError(
            f"shard files of different shard counts ({sorted(counts)}) match {where}; keep the "
            "files of one --shard=I/N split"
        )
    (count,) = counts
    merged: dict[str, dict] = {}
    duplicated = []
    for _, rows in parts:
        for code, row in rows.items():
            if code in merged:
                duplicated.append(code)
            merged[code] = row
    wanted = unique_codes(codes)
    missing = [c for c in wanted if c not in merged]
    extra = [c for c in merged if c not in set(wanted)]
    absent = sorted(set(range(1, count + 1)) - indices)
    if missing or duplicated or extra or absent:
        raise ValueError(
            f"cannot merge {len(parts)} of {count} shards ({where}): shards {absent} absent, "
            f"{len(missing)} codes missing (e.g. {missing[:2]}), {len(duplicated)} in two "
            f"shards (e.g. {duplicated[:2]}), {len(extra)} not in the codes (e.g. {extra[:2]}). "
            "Run the missing shards (the same command resumes), or check --codes."
        )
    return merged


def foreign_fingerprints(rows: dict[str, dict], expected: str) -> list[str]:
    """The sorted fingerprints of ``rows`` ({key: row}) other than ``expected`` ("none" for
    rows without one): a result file that mixes them holds products of another supernet or
    recipe, which a stage must refuse to extend."""
    return sorted({row.get("fingerprint", "none") for row in rows.values()} - {expected})

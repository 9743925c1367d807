"""Reading and writing files of arch codes, and the ``--codes`` argument.

Two formats:

* competition JSON (CVPR 2022 Track 1): ``{"arch1": {"acc": 0.0, "arch": "1252..."}, ...}``;
  keys, their order and ``acc`` are kept;
* plain text: one code per line; blank lines and ``#`` comments are ignored; the records
  get the keys ``arch1..archN`` in file order and no ``acc``.

Usage::

    from tfnas import codes as codes_lib

    records = codes_lib.read_codes("data/cvpr22/CVPR_2022_NAS_Track1_test.json")
    records = codes_lib.parse_codes_arg(flags.codes)     # a file, or "code1,code2,..."
    archs = [space.parse(r.code) for r in records]        # codes are validated by a space
    codes_lib.write_competition_json(path, [dataclasses.replace(r, acc=s) for r, s in ...])

Codes are *not* validated here (that needs a `tfnas.search_space.SearchSpace`); only the
file format is, and a malformed file raises `ValueError` naming the file and the problem.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable

JSON_INDENT = 4  # The competition files' indentation.


@dataclasses.dataclass(frozen=True)
class ArchRecord:
    """One entry of a codes file.

    Attributes:
        key: the entry's name, e.g. ``"arch17"``.
        code: the arch code, as read (not validated).
        acc: the accuracy / score, or None when the file has none (plain text).
    """

    key: str
    code: str
    acc: float | None = None


def _numbered(codes: Iterable[str]) -> list[ArchRecord]:
    return [ArchRecord(f"arch{i}", code) for i, code in enumerate(codes, start=1)]


def _reject_duplicate_keys(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKeyError(key)
        seen[key] = value
    return seen


class _DuplicateKeyError(Exception):
    pass


def _parse_json(path: str, text: str) -> list[ArchRecord]:
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except _DuplicateKeyError as e:
        raise ValueError(f"{path}: JSON object key {e.args[0]!r} appears twice.") from None
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); expected "
            '{"arch1": {"acc": 0.0, "arch": "<52-digit code>"}, ...} or one code per line.'
        ) from None
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: the JSON top level is a {type(data).__name__}; expected an object "
            '{"arch1": {"acc": 0.0, "arch": "<code>"}, ...}.'
        )
    records = []
    for key, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("arch"), str):
            raise ValueError(
                f'{path}: entry {key!r} is {entry!r:.80}; expected {{"acc": <number or null>, '
                '"arch": "<code string>"}.'
            )
        acc = entry.get("acc")
        if acc is not None:
            if isinstance(acc, bool) or not isinstance(acc, (int, float)):
                raise ValueError(
                    f"{path}: entry {key!r} has acc {acc!r}; expected a number or null."
                )
            acc = float(acc)
        records.append(ArchRecord(key, entry["arch"], acc))
    return records


def _parse_text(path: str, text: str) -> list[ArchRecord]:
    codes = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if len(line.split()) != 1:
            raise ValueError(
                f"{path}: line {lineno} holds {line!r:.80}; a text codes file has one code per "
                "line (use competition JSON to store accuracies)."
            )
        codes.append(line)
    return _numbered(codes)


def read_codes(path: str | os.PathLike) -> list[ArchRecord]:
    """Reads a competition JSON or plain-text file of codes, keeping keys, order and acc.

    The format is taken from the content: a file whose first non-blank character is ``{``
    or ``[`` is JSON, anything else plain text.

    Args:
        path: the file.

    Returns:
        The records in file order.

    Raises:
        ValueError: the file is not UTF-8 text, is malformed JSON, or JSON of another shape,
            or a text line holds more than one token; the message names the file.
        FileNotFoundError: the file does not exist.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")  # -sig: tolerate a BOM from Windows editors.
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start}); expected "
            "competition JSON or one code per line."
        ) from None
    if "\x00" in text:
        raise ValueError(
            f"{path}: contains NUL bytes, so it is binary, not competition JSON or a text "
            "file of codes."
        )
    if text.lstrip()[:1] in ("{", "["):
        return _parse_json(path, text)
    return _parse_text(path, text)


def write_competition_json(
    path: str | os.PathLike, records: Iterable[ArchRecord], indent: int | None = JSON_INDENT
) -> None:
    """Writes records as competition JSON, keeping their keys and order.

    A record without ``acc`` is written with ``"acc": null`` (it reads back as None).

    Raises:
        ValueError: two records share a key, or an acc is not finite.
    """
    data = {}
    for r in records:
        if r.key in data:
            raise ValueError(
                f"Cannot write {os.fspath(path)}: key {r.key!r} appears twice; keys of a "
                "competition JSON must be unique."
            )
        if r.acc is not None and not math.isfinite(r.acc):
            raise ValueError(
                f"Cannot write {os.fspath(path)}: {r.key!r} has acc {r.acc}; JSON needs "
                "finite numbers."
            )
        data[r.key] = {"acc": None if r.acc is None else float(r.acc), "arch": r.code}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=indent)
        f.write("\n")


def write_codes_text(path: str | os.PathLike, records: Iterable[ArchRecord | str]) -> None:
    """Writes one code per line (keys and accs are not stored; strings are accepted too)."""
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else r.code) + "\n")


def parse_codes_arg(spec: str | os.PathLike) -> list[ArchRecord]:
    """Resolves a ``--codes`` value: an existing file is read, else comma-separated codes.

    Args:
        spec: a path to a codes file (JSON or text), or ``"code1,code2,..."`` (whitespace
            around each code is ignored; keys become ``arch1..archN``).

    Raises:
        ValueError: empty spec, or something that looks like a path but is no file.
    """
    spec = os.fspath(spec)
    if os.path.isfile(spec):
        return read_codes(spec)
    codes = [c.strip() for c in spec.split(",") if c.strip()]
    if not codes:
        raise ValueError(
            f"--codes {spec!r} names no file and holds no codes; pass a codes file or "
            "comma-separated codes."
        )
    looks_like_path = any(os.sep in c or c.endswith((".json", ".txt")) for c in codes)
    if looks_like_path:
        raise ValueError(
            f"--codes {spec!r}: no such file (and it is not a list of codes). Check the path."
        )
    return _numbered(codes)

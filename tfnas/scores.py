"""Files of scored archs: what ``rank``, the ranking monitor and the benchmarks read.

Two formats hold one score per arch code (higher = better):

- competition JSON, ``{"arch1": {"acc": 70.4, "arch": "1252..."}, ...}`` (`tfnas.codes`);
- results JSON, ``{"results": [{"code": "1252...", "acc": 0.81}, ...]}`` (what the
  ``evaluate`` and ``standalone`` stages write; other keys are ignored).

    pairs = scores.load_scores("evaluate/results.json", "results")   # [(code, acc), ...]

Ground-truth files are score files too. Nothing that trains a supernet imports this module
(`tests/test_isolation.py`).
"""

from __future__ import annotations

import json
from pathlib import Path

from tfnas import codes as codes_lib

__all__ = ["load_scores"]


def load_scores(path, flag: str) -> list[tuple[str, float]]:
    """(code, acc) pairs from a results-JSON or competition-JSON file.

    Competition JSON is read by `tfnas.codes.read_codes`; every entry must have a numeric
    ``acc``. Results JSON (the ``evaluate`` stage's ``results.json``) is
    ``{"results": [{"code": ..., "acc": ...}, ...]}``, other keys ignored.

    Args:
      path: the file.
      flag: the command-line flag it came from, named in error messages.

    Raises:
      ValueError: missing or malformed file, or entries without a score.
    """
    path = Path(path)
    expected = (
        'expected competition JSON {"arch1": {"acc": ..., "arch": "<code>"}, ...} or results '
        'JSON {"results": [{"code": "<code>", "acc": ...}, ...]}'
    )
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ValueError(f"--{flag}={path}: no such file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None  # Not JSON: read_codes says what it is.
    if isinstance(data, dict) and "results" in data:
        entries = data["results"]
        if not isinstance(entries, list):
            raise ValueError(f"--{flag}={path}: 'results' is not a list; {expected}")
        pairs = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or "code" not in entry or "acc" not in entry:
                found = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
                raise ValueError(
                    f"--{flag}={path}: entry results[{i}] has no 'code' and 'acc' "
                    f"(found {found}); {expected}"
                )
            pairs.append((str(entry["code"]), entry["acc"]))
    else:
        try:
            records = codes_lib.read_codes(path)
        except ValueError as e:
            raise ValueError(f"--{flag}: {e} ({expected})") from None
        unscored = [r.key for r in records if r.acc is None]
        if unscored:
            raise ValueError(
                f"--{flag}={path}: {len(unscored)} of {len(records)} entries have no acc "
                f"(e.g. {', '.join(unscored[:3])}); {expected}"
            )
        pairs = [(r.code, r.acc) for r in records]
    if not pairs:
        raise ValueError(f"--{flag}={path} holds no archs; {expected}")
    return pairs


def load_ceiling(path) -> float | None:
    """The expected ceiling a ground-truth results JSON records, if it records one.

    A ground truth averaged over several seeds (``benchmarks/gt_v2.py``) stores its
    `tfnas.ground_truth.reliability` as ``{"reliability": {"expected_ceiling": ...}}``; the
    ``rank`` stage normalizes Kendall tau by it. Other files give None.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    value = (data.get("reliability") or {}).get("expected_ceiling")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None

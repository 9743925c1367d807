"""Weight transfer between supernets: grow weight copies, start a run from another run.

Usage::

    from tfnas import transfer
    # FS-split G=2 -> G=3 (seed paper 000 §2.2): each new copy starts as its parent.
    parent = supernet_lib.nested_parent_map("fmnist", 2)     # [[0], [0, 1, 2], ...]
    transfer.grow_copies(g2_net, g3_net, parent)
    # One-shot -> 5 SSE sub-supernets (seed paper 001 §2.3): broadcast copy 0.
    transfer.grow_copies(one_shot, sse_net, [0] * 5)
    # A run's start from a saved supernet (what --stage=oneshot does with
    # supernet.init_from when the run has no checkpoint of its own):
    transfer.init_from(net, "workdirs/g2/oneshot/monitor/best_tau.keras")

Every variable of an elastic layer holds its weight copies on axis 0 (`tfnas.elastic`), so
growing copies is one gather per variable: ``dst[j] <- src[parent[j]]`` for the kernels (all
K-shot dictionaries of the copy), BN scale and shift and moving statistics, and the
classifier's kernel and bias. Copies are full size, so nothing is sliced: the few-shot code
(R4 ``init_weights``, SCHEMES.md §2.5) slices each group to its widest channel count, which
the leading-channel weight sharing of tfnas makes the same thing. The simplex-net has no
copies and is copied whole. The optimizer is not transferred: a run that starts from
another builds its own (R2 and R4 both build a new optimizer per phase).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfnas import supernet as supernet_lib

ORIGIN = "--config.supernet.init_from"


def _relative(variable) -> str:
    """The variable's path below the model (``stage1/block1/conv1/kernel``)."""
    return variable.path.split("/", 1)[1]


def location_variables(net) -> dict[str, tuple[int | None, object]]:
    """Every variable of ``net`` by its path below the model, with its location.

    The location (0 stem, 1-4 stages, 5 classifier) is None for variables without weight
    copies (the simplex-net).
    """
    located = {}
    for loc, layer in net.location_layers():
        for v in layer.variables:
            located[id(v)] = loc
    return {_relative(v): (located.get(id(v)), v) for v in net.variables}


def normalize_parent(parent, counts) -> list[list[int]]:
    """``parent`` as one row per location, checked against the destination's copy counts.

    ``parent`` is one list for every location (``[0] * N`` broadcasts copy 0) or 6 lists.
    A location with one copy accepts a longer single row's first entry, so ``[0] * 5``
    broadcasts to an SSE net whose stem has one copy.
    """
    parent = list(parent)
    if parent and not isinstance(parent[0], (list, tuple, np.ndarray)):
        parent = [parent]
    rows = [list(r) for r in parent]
    if len(rows) == 1:
        rows = rows * supernet_lib.NUM_LOCATIONS
    if len(rows) != supernet_lib.NUM_LOCATIONS:
        raise ValueError(
            f"a parent map has one row for every location or 6 rows (stem, stages 1-4, "
            f"classifier); received {parent!r}"
        )
    out = []
    for loc, (row, count) in enumerate(zip(rows, counts)):
        if len(row) != count and len(set(row)) == 1 and row:
            row = row[:1] * count  # a broadcast row fits every location
        if len(row) != count:
            raise ValueError(
                f"the parent map gives {len(row)} source copies for "
                f"{supernet_lib.LOCATIONS[loc]}, which has {count} copies in the destination "
                f"(copies per location: {tuple(counts)}); received {parent!r}. Give one "
                "source copy per destination copy (--config.supernet.init_parent)"
            )
        out.append([int(c) for c in row])
    return out


def grow_copies(src, dst, parent) -> list[list[int]]:
    """Copies ``src``'s weights into ``dst``: copy j of each location <- copy parent[j].

    Args:
      src, dst: built `tfnas.supernet.Supernet`s of the same space, widths, ``num_kernels``
        and ``simplex_hidden``; their routings and copy counts may differ.
      parent: the source copy of each destination copy: one list for every location or one
        per location (`normalize_parent`, `tfnas.supernet.parent_map`).

    Returns:
      The parent map used, one row per location.

    Raises:
      ValueError: the parent map does not fit, or a variable is missing or of another shape
        (naming it and both shapes).
    """
    parent = normalize_parent(parent, dst.copy_counts)
    source = location_variables(src)
    target = location_variables(dst)
    missing = sorted(set(target) ^ set(source))
    if missing:
        raise ValueError(
            f"the source supernet and this one have different variables ({missing[:3]}...): "
            "they must be of the same space with the same num_kernels (K-shot) and "
            "simplex-net; build the run with those of the source"
        )
    for loc, row in enumerate(parent):
        have = src.copy_counts[loc]
        if max(row) >= have:
            raise ValueError(
                f"the parent map asks for copy {max(row)} of {supernet_lib.LOCATIONS[loc]}, "
                f"but the source supernet has {have} copies there (copies per location: "
                f"{src.copy_counts}); fix --config.supernet.init_parent"
            )
    updates = []
    for path, (loc, v) in target.items():
        s = source[path][1]
        value = np.asarray(s)
        if loc is not None:
            value = value[parent[loc]]
        if tuple(value.shape) != tuple(v.shape):
            raise ValueError(
                f"{path}: the source supernet's copies have shape {tuple(s.shape)[1:]} "
                f"(x{s.shape[0]}), this one's {tuple(v.shape)[1:]} (x{v.shape[0]}); they must "
                "be of the same space, num_kernels and simplex_hidden"
            )
        updates.append((v, value))
    for v, value in updates:  # nothing changes unless everything fits
        v.assign(value.astype(np.dtype(v.dtype)))
    return parent


def resolve_source(path) -> Path:
    """The ``.keras`` file of ``supernet.init_from``: the file, or a monitor directory's
    ``best_tau.keras`` (what `tfnas.monitor.RankingMonitor` keeps)."""
    from tfnas import monitor  # matplotlib: only when a directory is given

    path = Path(path)
    if path.is_dir():
        best = monitor.BEST_CHECKPOINT
        for candidate in (path / best, path / "monitor" / best):
            if candidate.is_file():
                return candidate
        raise ValueError(
            f"{path} (from {ORIGIN}) is a directory without {best} (nor monitor/{best}); "
            "pass a .keras supernet file, e.g. "
            "<workdir>/oneshot/supernet.keras or <workdir>/oneshot/monitor/best_tau.keras"
        )
    return path


def derive_parent(src, dst) -> list[list[int]]:
    """The parent map when none is given: broadcast from a one-copy source, else the
    nesting of the two routing tables (`tfnas.supernet.parent_map`; identity when equal)."""
    if all(c == 1 for c in src.copy_counts):
        return [[0] * c for c in dst.copy_counts]
    if supernet_lib.KEY_KINDS[src.routing] != supernet_lib.KEY_KINDS[dst.routing]:
        raise ValueError(
            f"the source supernet is routed by {src.routing!r} and this one by "
            f"{dst.routing!r}: no copy of one is nested in a copy of the other; set "
            "--config.supernet.init_parent to the source copy of each copy"
        )
    return supernet_lib.parent_map(src.location_table, dst.location_table)


def init_from(supernet, path, parent=None) -> list[list[int]]:
    """Loads a saved supernet and grows its copies into ``supernet`` (see `grow_copies`).

    Args:
      supernet: the built supernet of a run (weights are overwritten).
      path: a ``.keras`` supernet file (``oneshot/supernet.keras``,
        ``monitor/best_tau.keras``) or a directory holding ``best_tau.keras``.
      parent: the parent map, or None to derive it (`derive_parent`).

    Returns:
      The parent map used.

    Raises:
      ValueError: no such file, not a supernet of this space (`check_supernet_file`), or
        a shape or parent-map mismatch (`grow_copies`).
    """
    source = supernet_lib.load_supernet(
        resolve_source(path), supernet.space_name, origin=ORIGIN
    )
    if parent is None:
        parent = derive_parent(source, supernet)
    return grow_copies(source, supernet, parent)


def init_from_config(supernet, section) -> list[list[int]] | None:
    """`init_from` with ``supernet.init_from`` and ``supernet.init_parent`` of a config;
    None when ``init_from`` is empty. Call it only on a run without a checkpoint of its own
    (`tfnas.stages.oneshot` does), so a crashed run resumes from its own weights."""
    if not section.init_from:
        return None
    parent = section.init_parent
    rows = supernet_lib.parse_rows(parent, "init_parent") if parent else None
    return init_from(supernet, section.init_from, rows)

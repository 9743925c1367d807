"""Stage ``describe``: the search space of a config, and FLOPs/params of a list of codes.

    bin/train --stage=describe --config=configs/fmnist.py --workdir=/tmp/run
    bin/train --stage=describe --config=configs/imagenet.py --workdir=/tmp/run \\
        --codes=../shared/data/cvpr22/CVPR_2022_NAS_Track1_test.json

Prints the space (variant, its table row, width table, number of archs, FLOPs and params
of the smallest and largest archs, which bound every arch of the space) and, with
``--codes`` (a competition JSON, a text file of codes, or ``CODE,CODE``), a table of each
code's key, depths, FLOPs (M multiply-accumulates) and params (M). Every code is validated
with `SearchSpace.parse`: the first invalid one stops the stage with the parser's message
(position, digit, rule) prefixed by its key.

Writes to ``<workdir>/describe/``: ``describe.json`` (the space and every row),
``describe.tsv`` (the rows, with ``--codes``) and ``manifest.json`` naming them.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from tfnas import codes as codes_lib
from tfnas import search_space as ss
from tfnas.stages import registry

STAGE = "describe"
# Rows printed in full; a longer list prints its first and last rows (all are in the files).
MAX_PRINTED_ROWS = 20
_HEAD_ROWS = 10
_TAIL_ROWS = 5


def _with_resolution(space: ss.SearchSpace, arch: ss.Arch, index: int) -> ss.Arch:
    return space.parse(str(index) + arch.code[1:])


def space_summary(space: ss.SearchSpace) -> dict:
    """The space's table row, size and the FLOPs/params bounds of its archs.

    The bounds are those of the largest and smallest archs (`SearchSpace.largest` /
    `smallest`), at the largest and smallest input resolution for FLOPs: every width is a
    non-increasing function of its digit (`make_divisible` is monotone), every conv's
    FLOPs and params grow with its input and output widths, a deeper stage only adds
    blocks, and FLOPs grow with the input size; so no arch has more (fewer) FLOPs or params
    than all digits 1 and maximum depths (all digits 7 and depths 2). tests/stages/
    test_describe.py checks it on sampled archs.
    """
    largest, smallest = space.largest(), space.smallest()
    resolutions = range(1, len(space.resolutions) + 1)
    flops_max = max(space.flops(_with_resolution(space, largest, r)) for r in resolutions)
    flops_min = min(space.flops(_with_resolution(space, smallest, r)) for r in resolutions)
    return {
        "variant": space.name,
        "resolutions": list(space.resolutions),
        "in_channels": space.in_channels,
        "stem_base": space.stem_base,
        "base_channels": list(space.base_channels),
        "divisor": space.divisor,
        "num_classes": space.num_classes,
        "imagenet_stem": bool(space.imagenet_stem),
        "width_table": [[int(w) for w in row] for row in space.width_table()],
        "size": int(space.size()),
        "largest": largest.code,
        "smallest": smallest.code,
        "flops_min": int(flops_min),
        "flops_max": int(flops_max),
        "params_min": int(space.params(smallest)),
        "params_max": int(space.params(largest)),
    }


def describe_codes(space: ss.SearchSpace, records) -> list[dict]:
    """One row per record: key, code, depths, flops, params.

    Raises:
      ValueError: the first invalid code, as ``<key>: <the parser's message>``.
    """
    rows = []
    cache: dict[str, tuple[list[int], int, int]] = {}
    for record in records:
        code = record.code
        if code not in cache:
            try:
                arch = space.parse(code)
            except ValueError as err:
                raise ValueError(f"--codes: {record.key}: {err}") from None
            flops, params = space.cost(arch)  # == (space.flops(arch), space.params(arch))
            cache[code] = (list(arch.depths), int(flops), int(params))
        depths, flops, params = cache[code]
        rows.append(
            {"key": record.key, "code": code, "depths": depths, "flops": flops, "params": params}
        )
    return rows


def _millions(n: int) -> str:
    return f"{n / 1e6:.3f}"


def format_summary(summary: dict) -> str:
    table = summary["width_table"]
    lines = [
        f"search space {summary['variant']!r}: {summary['size']:,} archs",
        f"  input {'/'.join(str(r) for r in summary['resolutions'])} px, "
        f"{summary['in_channels']} channel(s), {summary['num_classes']} classes, "
        f"{'ImageNet (7x7/2 + max-pool)' if summary['imagenet_stem'] else '3x3/1'} stem",
        f"  stem base {summary['stem_base']}, stage bases "
        f"{', '.join(str(b) for b in summary['base_channels'])}, divisor {summary['divisor']}",
        "  widths by digit 1..7: stem " + " ".join(str(w) for w in table[0]),
    ]
    for stage, row in enumerate(table[1:], 1):
        lines.append(f"                        stage {stage} " + " ".join(str(w) for w in row))
    lines += [
        f"  FLOPs (M MACs): min {_millions(summary['flops_min'])} "
        f"(smallest arch), max {_millions(summary['flops_max'])} (largest arch)",
        f"  params (M): min {_millions(summary['params_min'])}, "
        f"max {_millions(summary['params_max'])}",
        f"  largest  {summary['largest']}",
        f"  smallest {summary['smallest']}",
    ]
    return "\n".join(lines)


def format_rows(rows: list[dict]) -> str:
    """The table of rows; a long one shows its head and tail."""
    key_width = max([len("key")] + [len(r["key"]) for r in rows])
    header = f"{'key':<{key_width}}  {'depths':<8}  {'FLOPs (M)':>10}  {'params (M)':>10}  code"

    def line(r):
        depths = ",".join(str(d) for d in r["depths"])
        return (
            f"{r['key']:<{key_width}}  {depths:<8}  {_millions(r['flops']):>10}  "
            f"{_millions(r['params']):>10}  {r['code']}"
        )

    if len(rows) <= MAX_PRINTED_ROWS:
        shown = [line(r) for r in rows]
    else:
        skipped = len(rows) - _HEAD_ROWS - _TAIL_ROWS
        shown = (
            [line(r) for r in rows[:_HEAD_ROWS]]
            + [f"... {skipped:,} more rows ..."]
            + [line(r) for r in rows[-_TAIL_ROWS:]]
        )
    return "\n".join([header, *shown])


def write_tsv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["key", "code", "depths", "flops", "params"])
        for r in rows:
            depths = ",".join(str(d) for d in r["depths"])
            writer.writerow([r["key"], r["code"], depths, r["flops"], r["params"]])


def _dumps(report: dict) -> str:
    """JSON of the report, indented, with one line per row (45k rows stay readable)."""
    head = {k: v for k, v in report.items() if k != "rows"}
    text = json.dumps(head, indent=1)
    if "rows" not in report:
        return text + "\n"
    rows = ",\n".join("  " + json.dumps(r) for r in report["rows"])
    return text[:-2] + ',\n "rows": [\n' + rows + "\n ]\n}\n"


@registry.register(STAGE, help="Print the search space, and FLOPs/params of --codes.")
def run(config, args: registry.StageArgs) -> int:
    start = time.perf_counter()
    space = ss.get_space(config.space)
    summary = space_summary(space)
    print(format_summary(summary))

    rows = None
    if args.codes:
        records = codes_lib.parse_codes_arg(args.codes)
        rows = describe_codes(space, records)

    stage_dir = Path(args.workdir) / STAGE
    registry.write_config(config, stage_dir)
    products = {}
    report = {"space": summary}
    if rows is not None:
        flops = [r["flops"] for r in rows]
        params = [r["params"] for r in rows]
        report.update(
            codes=args.codes,
            num_codes=len(rows),
            num_unique=len({r["code"] for r in rows}),
            flops_range=[min(flops), max(flops)] if rows else None,
            params_range=[min(params), max(params)] if rows else None,
            rows=rows,
        )
        tsv = stage_dir / "describe.tsv"
        write_tsv(tsv, rows)
        products["table"] = str(tsv)
    path = stage_dir / "describe.json"
    path.write_text(_dumps(report))
    products["report"] = str(path)
    registry.write_manifest(args.workdir, STAGE, **products)

    if rows is not None:
        print()
        print(format_rows(rows))
        if rows:
            print(
                f"{len(rows):,} codes ({report['num_unique']:,} unique): FLOPs "
                f"{_millions(report['flops_range'][0])}..{_millions(report['flops_range'][1])} M,"
                f" params {_millions(report['params_range'][0])}.."
                f"{_millions(report['params_range'][1])} M"
            )
    print(f"wrote {path}" + (f" and {products['table']}" if "table" in products else ""))
    print(f"describe: {time.perf_counter() - start:.2f} s")
    return 0

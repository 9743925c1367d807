"""tfnas.records: shards, torn lines, and the merge that checks coverage."""

import json

import pytest

from tfnas import records


@pytest.mark.parametrize("spec", ["0/2", "3/2", "1", "a/b", "1/2/3", "-1/2"])
def test_parse_shard_rejects(spec):
    with pytest.raises(ValueError, match=r"expected I/N with 1 <= I <= N"):
        records.parse_shard(spec)


def test_parse_shard_and_split():
    assert records.parse_shard(None) == (1, 1)
    assert records.parse_shard("") == (1, 1)
    assert records.parse_shard("2/4") == (2, 4)
    codes = [f"c{i}" for i in range(7)]
    parts = [records.shard_codes(codes, i, 3) for i in (1, 2, 3)]
    assert parts == [["c0", "c3", "c6"], ["c1", "c4"], ["c2", "c5"]]
    assert records.shard_suffix(1, 1) == ""
    assert records.shard_suffix(2, 3) == ".shard-2-of-3"


def test_unique_codes_keeps_first_order():
    assert records.unique_codes(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


def test_torn_line_is_cut_and_appends_continue(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"code": "a", "acc": 1}\n{"code": "b", "ac')
    assert list(records.read_jsonl(path)) == ["a"]
    records.drop_torn_line(path)
    assert path.read_text() == '{"code": "a", "acc": 1}\n'
    with records.Appender(path) as out:
        out.write({"code": "c", "acc": 0.5})
    assert [json.loads(line)["code"] for line in path.read_text().splitlines()] == ["a", "c"]


def _part(index, count, codes):
    return (f"x.shard-{index}-of-{count}.jsonl", {c: {"code": c} for c in codes})


def test_merge_parts_joins_complete_shards():
    merged = records.merge_parts([_part(1, 2, ["a", "c"]), _part(2, 2, ["b"])], "abc", "w")
    assert sorted(merged) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "parts, message",
    [
        ([_part(1, 2, ["a", "b", "c"])], r"shards \[2\] absent"),
        ([_part(1, 2, ["a", "c"]), _part(2, 2, ["c"])], r"missing|1 in two shards"),
        ([_part(1, 2, ["a", "c"]), _part(2, 2, ["b", "z"])], r"1 not in the codes"),
        ([_part(1, 2, ["a", "c"]), _part(2, 3, ["b"])], r"different shard counts"),
        ([], r"no shard files"),
    ],
)
def test_merge_parts_refuses_gaps_and_doubles(parts, message):
    with pytest.raises(ValueError, match=message):
        records.merge_parts(parts, ["a", "b", "c"], "w")

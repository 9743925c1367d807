"""tfnas.codes: competition JSON / text files of codes and the --codes argument."""

import dataclasses
import json

import pytest

from tfnas import codes as codes_lib
from tfnas.codes import ArchRecord

EXAMPLE = "1252233313000000223212122253130000000000006515000000"
OTHER = "1447233323333300331313230025153545153545003252000000"


def _check_competition_file(path, n):
    records = codes_lib.read_codes(path)
    raw = json.loads(path.read_text())
    assert len(records) == n
    assert [r.key for r in records] == list(raw)
    assert [r.key for r in records[:3]] == ["arch1", "arch2", "arch3"]
    assert all(r.acc == 0.0 for r in records)
    assert records[0].code == EXAMPLE
    assert records[1].code == OTHER


def test_read_competition_file_excerpt(competition_excerpt):
    _check_competition_file(competition_excerpt, 500)


def test_read_full_competition_file(competition_full):
    _check_competition_file(competition_full, 45_000)


def test_read_ground_truth_keeps_acc(gt30_file):
    records = codes_lib.read_codes(str(gt30_file))
    assert len(records) == 30
    assert records[0] == ArchRecord("arch1", EXAMPLE, 70.4)
    assert records[1].acc == pytest.approx(72.76)


def test_competition_file_round_trips_byte_for_byte_in_content(gt30_file, tmp_path):
    out = tmp_path / "gt.json"
    codes_lib.write_competition_json(out, codes_lib.read_codes(gt30_file))
    assert json.loads(out.read_text()) == json.loads(gt30_file.read_text())
    assert list(json.loads(out.read_text())) == list(json.loads(gt30_file.read_text()))


def test_vendored_excerpts_equal_the_originals(competition_excerpt, competition_full, gt30_file):
    # tests/data/README.md: the excerpt holds arch1..arch30 and 470 entries unchanged, in the
    # original order and format; the ground truth is a byte-for-byte copy.
    full_text = competition_full.read_text()
    full = json.loads(full_text)
    assert json.dumps(full) == full_text  # so json.dumps reproduces the format exactly
    excerpt = json.loads(competition_excerpt.read_text())
    assert competition_excerpt.read_text() == json.dumps(excerpt)
    keys = list(full)
    assert list(excerpt)[:30] == keys[:30]
    index = {k: i for i, k in enumerate(keys)}
    positions = [index[k] for k in excerpt]
    assert positions == sorted(positions) and len(set(positions)) == 500
    assert all(excerpt[k] == full[k] for k in excerpt)
    gt_full = competition_full.parent / gt30_file.name
    assert gt30_file.read_bytes() == gt_full.read_bytes()


def test_json_round_trip_keeps_keys_order_and_acc(tmp_path):
    records = [
        ArchRecord("z_last", EXAMPLE, 0.25),
        ArchRecord("arch10", OTHER, None),
        ArchRecord("a_first", "not-validated-here", 71),
        ArchRecord("arch2", EXAMPLE, -3.5),
    ]
    path = tmp_path / "out.json"
    for indent in (None, 2, 4):
        codes_lib.write_competition_json(path, records, indent=indent)
        back = codes_lib.read_codes(path)
        assert back == [
            dataclasses.replace(r, acc=None if r.acc is None else float(r.acc)) for r in records
        ]
        assert isinstance(back[2].acc, float)
    assert json.loads(path.read_text())["arch10"] == {"acc": None, "arch": OTHER}


def test_write_rejects_duplicate_keys_and_non_finite_acc(tmp_path):
    with pytest.raises(ValueError, match=r"key 'a' appears twice"):
        codes_lib.write_competition_json(
            tmp_path / "x.json", [ArchRecord("a", EXAMPLE), ArchRecord("a", OTHER)]
        )
    with pytest.raises(ValueError, match=r"acc nan"):
        codes_lib.write_competition_json(tmp_path / "x.json", [ArchRecord("a", EXAMPLE, 1e400 * 0)])


def test_read_text_ignores_blanks_and_comments(tmp_path):
    path = tmp_path / "codes.txt"
    path.write_text(f"# header\n\n{EXAMPLE}\n   \n  {OTHER}  # trailing comment\n#{EXAMPLE}\n")
    assert codes_lib.read_codes(path) == [ArchRecord("arch1", EXAMPLE), ArchRecord("arch2", OTHER)]


def test_text_round_trip(tmp_path):
    path = tmp_path / "codes.txt"
    records = [ArchRecord("x", OTHER, 1.0), ArchRecord("y", EXAMPLE, None)]
    codes_lib.write_codes_text(path, records)
    assert path.read_text() == f"{OTHER}\n{EXAMPLE}\n"
    assert [r.code for r in codes_lib.read_codes(path)] == [OTHER, EXAMPLE]
    codes_lib.write_codes_text(path, [EXAMPLE])  # plain strings too
    assert codes_lib.read_codes(path) == [ArchRecord("arch1", EXAMPLE)]


def test_codes_are_not_validated_here(tmp_path):
    path = tmp_path / "codes.txt"
    path.write_text("123\nabc\n")
    assert [r.code for r in codes_lib.read_codes(path)] == ["123", "abc"]


def test_empty_text_file_has_no_records(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("# nothing yet\n")
    assert codes_lib.read_codes(path) == []


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"arch1": {"acc": 0.0, "arch": "1"}', r"not valid JSON"),
        ('[{"arch": "1"}]', r"the JSON top level is a list; expected an object"),
        ('{"arch1": {"acc": 0.0}}', r"entry 'arch1' is .*; expected"),
        ('{"arch1": "125"}', r"entry 'arch1' is '125'; expected"),
        ('{"arch1": {"acc": 0.0, "arch": 125}}', r"entry 'arch1' is .*; expected"),
        ('{"arch1": {"acc": "high", "arch": "1"}}', r"entry 'arch1' has acc 'high'"),
        ('{"arch1": {"acc": true, "arch": "1"}}', r"entry 'arch1' has acc True"),
        (
            '{"a": {"acc": 1, "arch": "1"}, "a": {"acc": 2, "arch": "2"}}',
            r"JSON object key 'a' "
            r"appears twice",
        ),
        (f"{EXAMPLE} 70.4\n", r"line 1 holds .*one code per line"),
    ],
)
def test_malformed_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "bad_codes.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=r"bad_codes\.json: " + message):
        codes_lib.read_codes(path)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x01binary", b"12\x0034\n"])
def test_binary_files_are_rejected(tmp_path, content):
    path = tmp_path / "weights.bin"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"weights\.bin: .*(UTF-8|binary)"):
        codes_lib.read_codes(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        codes_lib.read_codes(tmp_path / "nope.json")


def test_parse_codes_arg_reads_a_file(tmp_path):
    path = tmp_path / "c.json"
    codes_lib.write_competition_json(path, [ArchRecord("k", EXAMPLE, 1.0)])
    assert codes_lib.parse_codes_arg(str(path)) == [ArchRecord("k", EXAMPLE, 1.0)]
    assert codes_lib.parse_codes_arg(path) == [ArchRecord("k", EXAMPLE, 1.0)]


def test_parse_codes_arg_splits_commas():
    assert codes_lib.parse_codes_arg(f" {EXAMPLE} ,{OTHER},") == [
        ArchRecord("arch1", EXAMPLE),
        ArchRecord("arch2", OTHER),
    ]
    assert codes_lib.parse_codes_arg(EXAMPLE) == [ArchRecord("arch1", EXAMPLE)]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "holds no codes"),
        (" , ", "holds no codes"),
        ("runs/codes.json", "no such file"),
        ("missing.txt", "no such file"),
    ],
)
def test_parse_codes_arg_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        codes_lib.parse_codes_arg(spec)

"""tfnas.search_space: codes, validation messages, sampling, mutation, widths, FLOPs/params."""

import dataclasses
import itertools
import json
import math
import pickle
import re

import numpy as np
import pytest

from tfnas import search_space as ss

EXAMPLE = "1252233313000000223212122253130000000000006515000000"  # docs/SEARCH_SPACE.md's example
SPACE_NAMES = sorted(ss.SPACES)


def _codes(path):
    return [entry["arch"] for entry in json.loads(path.read_text()).values()]


@pytest.fixture(scope="module")
def excerpt_codes(competition_excerpt):
    """The 500 vendored competition codes (arch1..arch30 first)."""
    return _codes(competition_excerpt)


@pytest.fixture(scope="module")
def all_competition_codes(competition_full):
    """All 45,000 competition codes (skips without ../shared)."""
    return _codes(competition_full)


@pytest.fixture(params=SPACE_NAMES)
def space(request):
    return ss.get_space(request.param)


def _edit(code, pos, digit):
    return code[:pos] + str(digit) + code[pos + 1 :]


# ------------------------------------------------------------------ reference validator


def _reference_is_valid(code, num_resolutions=1):
    """docs/SEARCH_SPACE.md's rules restated directly (independent of the module's code path)."""
    if not isinstance(code, str) or len(code) != 52 or any(c not in "0123456789" for c in code):
        return False
    d = [int(c) for c in code]
    if not 1 <= d[0] <= num_resolutions:
        return False
    depths = d[1:5]
    if not all(lo <= x <= hi for x, lo, hi in zip(depths, (2, 2, 2, 2), (5, 5, 8, 5))):
        return False
    if not 1 <= d[5] <= 7:
        return False
    slots = [d[6 + 2 * j : 8 + 2 * j] for j in range(23)]
    stages = [slots[0:5], slots[5:10], slots[10:18], slots[18:23]]
    for depth, stage in zip(depths, stages):
        active, inactive = stage[:depth], stage[depth:]
        if any(x != 0 for slot in inactive for x in slot):
            return False
        if any(not 1 <= x <= 7 for slot in active for x in slot):
            return False
        if len({slot[1] for slot in active}) != 1:
            return False
    return stages[0][0][1] == d[5]


# ------------------------------------------------------------------ parsing and round-trips


def test_example_code_decodes_as_documented():
    arch = ss.get_space("imagenet").parse(EXAMPLE)
    assert arch.resolution == 1
    assert arch.depths == (2, 5, 2, 2)
    assert arch.stem == 3
    assert arch.outs == (3, 2, 3, 5)
    assert arch.mids == ((3, 1), (2, 3, 1, 1, 2), (5, 1), (6, 1))
    assert arch.code == EXAMPLE
    assert str(arch) == EXAMPLE


def _check_round_trip(codes):
    space = ss.get_space("imagenet")
    for code in codes:
        arch = space.parse(code)
        assert arch.code == code
        # A freshly built Arch (no cached code) rebuilds the same string.
        rebuilt = ss.Arch(arch.resolution, arch.depths, arch.stem, arch.mids, arch.outs)
        assert rebuilt.code == code and rebuilt == arch


def test_competition_codes_round_trip(excerpt_codes):
    assert len(excerpt_codes) == 500
    _check_round_trip(excerpt_codes)


def test_all_competition_codes_round_trip(all_competition_codes):
    assert len(all_competition_codes) == 45_000
    _check_round_trip(all_competition_codes)


def test_ground_truth_codes_are_the_first_30(gt30_file, excerpt_codes):
    assert _codes(gt30_file) == excerpt_codes[:30]


def test_full_ground_truth_codes_are_the_first_30(gt30_full, all_competition_codes):
    assert _codes(gt30_full) == all_competition_codes[:30]


# docs/SEARCH_SPACE.md, "The competition's bounded space": the largest width digit the
# competition codes use for (stem, stage 1, stage 2, stage 3, stage 4).
COMPETITION_HI = (3, 3, 3, 5, 7)


def _digit_counts(codes):
    """Per location (stem, stages 1-4) and per depth position, how often each digit occurs."""
    digits = {loc: set() for loc in range(5)}
    depths = [set() for _ in range(4)]
    for code in codes:
        # Read the digits straight from the string (positions from the doc's code layout).
        digits[0].add(int(code[5]))
        for stage, first in enumerate((6, 16, 26, 42)):
            depth = int(code[1 + stage])
            depths[stage].add(depth)
            digits[stage + 1].update(int(c) for c in code[first : first + 2 * depth])
    return digits, depths


def _check_bounded(codes, exact):
    digits, depths = _digit_counts(codes)
    for loc, hi in enumerate(COMPETITION_HI):
        assert max(digits[loc]) <= hi and min(digits[loc]) >= 1, (loc, digits[loc])
        if exact:  # every digit of the range is used somewhere
            assert digits[loc] == set(range(1, hi + 1)), (loc, digits[loc])
    assert depths == [set(range(2, 6)), set(range(2, 6)), set(range(2, 9)), set(range(2, 6))]


def test_competition_codes_lie_in_the_bounded_space(excerpt_codes):
    _check_bounded(excerpt_codes, exact=True)
    # The bound is not vacuous: a code with stage 3 digit 6 lies outside it.
    outside = _edit(EXAMPLE, 26, 6)
    ss.get_space("imagenet").parse(outside)
    with pytest.raises(AssertionError):
        _check_bounded([outside], exact=False)


def test_all_competition_codes_lie_in_the_bounded_space(all_competition_codes):
    _check_bounded(all_competition_codes, exact=True)
    # Depths are uniform: each of the n depths of a stage holds 45,000 / n codes within 5
    # binomial standard deviations (sd = sqrt(45,000 p (1 - p)), p = 1 / n: ~92 and ~74).
    counts = np.zeros((4, 9), int)
    for code in all_competition_codes:
        for stage in range(4):
            counts[stage, int(code[1 + stage])] += 1
    for stage, n in enumerate((4, 4, 7, 4)):
        row = counts[stage][counts[stage] > 0]
        sd = math.sqrt(45_000 / n * (1 - 1 / n))
        assert len(row) == n and np.all(np.abs(row - 45_000 / n) < 5 * sd), row


def test_arch_is_immutable_hashable_and_picklable():
    arch = ss.Arch.from_code(EXAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        arch.stem = 4
    assert {arch: 1}[ss.get_space("fmnist").parse(EXAMPLE)] == 1
    assert pickle.loads(pickle.dumps(arch)) == arch


def test_arch_normalises_lists_and_numpy_ints():
    arch = ss.Arch(
        np.int64(1),
        [2, 5, 2, 2],
        np.int32(3),
        [[3, 1], [2, 3, 1, 1, 2], [5, 1], [6, 1]],
        [3, 2, 3, 5],
    )
    assert arch.code == EXAMPLE
    assert arch == ss.Arch.from_code(EXAMPLE)
    assert all(type(d) is int for d in arch.depths + arch.outs + arch.mids[1])


def test_digits_are_a_fresh_int32_array():
    arch = ss.Arch.from_code(EXAMPLE)
    digits = arch.digits()
    assert digits.dtype == np.int32 and digits.shape == (52,)
    assert "".join(map(str, digits)) == EXAMPLE
    digits[0] = 9
    assert arch.digits()[0] == 1


def test_layout_constants():
    assert ss.CODE_LENGTH == 1 + 4 + 1 + 2 * sum(ss.MAX_DEPTHS)
    assert ss.SLOT_OFFSETS == tuple(np.cumsum((0,) + ss.MAX_DEPTHS[:-1]))
    assert ss.slot_positions(2, 1) == (28, 29)
    assert ss.describe_position(28) == "stage 3 block 2 mid digit"
    assert ss.describe_position(43) == "stage 4 block 1 out digit"
    assert ss.describe_position(5) == "stem digit"
    assert ss.describe_position(3) == "stage 3 depth"


# ------------------------------------------------------------------ validation messages


@pytest.mark.parametrize("bad", [None, 1252, b"1252", ["1", "2"], 1.5])
def test_non_string_is_rejected(bad):
    with pytest.raises(ValueError, match=r"must be a str of 52 digits; received"):
        ss.get_space("imagenet").parse(bad)


@pytest.mark.parametrize("code", ["", EXAMPLE[:-1], EXAMPLE + "0", EXAMPLE + "\n"])
def test_rule_length(code):
    with pytest.raises(ValueError, match=rf"length is {len(code)}, expected 52 digits"):
        ss.get_space("imagenet").parse(code)


@pytest.mark.parametrize("char", ["x", " ", "-", "\u0663", "\uff13"])  # incl. non-ASCII digits
def test_rule_non_digit(char):
    code = EXAMPLE[:30] + char + EXAMPLE[31:]
    with pytest.raises(
        ValueError,
        match=r"position 30 \(stage 3 block 3 mid digit\): found .*; an arch code contains only "
        r"the digits 0-9",
    ):
        ss.get_space("imagenet").parse(code)


@pytest.mark.parametrize("digit", [0, 2, 9])
def test_rule_resolution_index(digit):
    with pytest.raises(
        ValueError,
        match=rf"position 0 \(resolution index\): found {digit}; the resolution index is "
        r"1-based and space 'imagenet' has 1 resolution\(s\), so it must be in 1..1",
    ):
        ss.get_space("imagenet").parse(_edit(EXAMPLE, 0, digit))


def test_resolution_index_follows_the_space_row():
    space = ss.SearchSpace("multi", (28, 32, 40), 1, 8, (8, 16, 32, 64), 1, 10, False)
    assert space.parse(_edit(EXAMPLE, 0, 3)).resolution == 3
    assert space.resolution(_edit(EXAMPLE, 0, 3)) == 40
    with pytest.raises(ValueError, match=r"must be in 1..3"):
        space.parse(_edit(EXAMPLE, 0, 4))


@pytest.mark.parametrize(
    "pos, digit, limits",
    [(1, 1, "2..5"), (1, 6, "2..5"), (2, 0, "2..5"), (3, 9, "2..8"), (4, 7, "2..5")],
)
def test_rule_depth_range(pos, digit, limits):
    with pytest.raises(
        ValueError,
        match=rf"position {pos} \(stage {pos} depth\): found {digit}; stage {pos} depth must be "
        rf"in {limits}",
    ):
        ss.get_space("imagenet").parse(_edit(EXAMPLE, pos, digit))


def test_rule_zero_in_active_slot():
    # Stage 2 has depth 5: block 3's mid (position 20) is active.
    with pytest.raises(
        ValueError,
        match=r"position 20 \(stage 2 block 3 mid digit\): found 0 in an active slot \(stage 2 "
        r"has depth 5, so block 3 is used\); every digit of an active slot is a width digit "
        r"1..7.*lower the stage 2 depth \(position 2\)",
    ):
        ss.get_space("imagenet").parse(_edit(EXAMPLE, 20, 0))


def test_rule_zero_stem():
    with pytest.raises(
        ValueError, match=r"position 5 \(stem digit\): found 0; the stem digit is a width digit"
    ):
        ss.get_space("imagenet").parse(_edit(EXAMPLE, 5, 0))


@pytest.mark.parametrize("pos, digit", [(6, 8), (17, 9), (5, 8)])
def test_rule_width_digit_above_7(pos, digit):
    with pytest.raises(
        ValueError, match=rf"position {pos} \(.*\): found {digit}; width digits are 1..7"
    ):
        ss.get_space("imagenet").parse(_edit(EXAMPLE, pos, digit))


@pytest.mark.parametrize("pos", [10, 11, 31, 51])
def test_rule_non_zero_inactive_slot(pos):
    field = ss.describe_position(pos)
    with pytest.raises(
        ValueError,
        match=rf"position {pos} \({field}\): found 4 in an inactive slot \(stage \d has depth "
        r"\d, so block \d is unused\); every slot past a stage's depth must be 00",
    ):
        ss.get_space("imagenet").parse(_edit(EXAMPLE, pos, 4))


def test_rule_unequal_outs_in_a_stage():
    with pytest.raises(
        ValueError,
        match=r"position 21 \(stage 2 block 3 out digit\): found 4 but block 1's out digit "
        r"\(position 17\) is 2; all out digits of stage 2 must be equal",
    ):
        ss.get_space("imagenet").parse(_edit(EXAMPLE, 21, 4))


def test_rule_stage1_out_equals_stem():
    code = _edit(EXAMPLE, 5, 4)  # stem 4, stage 1 outs stay 3
    with pytest.raises(
        ValueError,
        match=r"position 7 \(stage 1 block 1 out digit\): found 3 but the stem digit \(position "
        r"5\) is 4; stage 1's out digit must equal the stem digit",
    ):
        ss.get_space("imagenet").parse(code)


def test_messages_say_how_to_fix():
    cases = [
        _edit(EXAMPLE, 3, 9),
        _edit(EXAMPLE, 20, 0),
        _edit(EXAMPLE, 10, 4),
        _edit(EXAMPLE, 21, 4),
        _edit(EXAMPLE, 5, 4),
        EXAMPLE[:51],
        "x" + EXAMPLE[1:],
    ]
    for code in cases:
        with pytest.raises(ValueError) as info:
            ss.Arch.from_code(code)
        message = str(info.value)
        assert any(word in message for word in ("Use ", "Set ", "Check ", "Remove ")), message


def test_direct_construction_is_validated():
    with pytest.raises(ValueError, match=r"stage 1's out digit must equal the stem digit"):
        ss.Arch(1, (2, 2, 2, 2), 3, ((1, 1),) * 4, (4, 1, 1, 1))
    with pytest.raises(ValueError, match=r"stage 3 depth must be in 2..8"):
        ss.Arch(1, (2, 2, 9, 2), 3, ((1, 1), (1, 1), (1,) * 9, (1, 1)), (3, 1, 1, 1))
    with pytest.raises(ValueError, match=r"len\(mids\[i\]\) == depths\[i\]"):
        ss.Arch(1, (2, 2, 2, 2), 3, ((1, 1), (1,), (1, 1), (1, 1)), (3, 1, 1, 1))
    with pytest.raises(ValueError, match=r"found 0 in an active slot"):
        ss.Arch(1, (2, 2, 2, 2), 3, ((1, 0), (1, 1), (1, 1), (1, 1)), (3, 1, 1, 1))
    with pytest.raises(ValueError, match=r"not a single code digit"):
        ss.Arch(1, (2, 2, 2, 2), 3, ((1, 12), (1, 1), (1, 1), (1, 1)), (3, 1, 1, 1))
    with pytest.raises(ValueError, match=r"resolution index"):
        ss.get_space("fmnist").widths(dataclasses.replace(ss.Arch.from_code(EXAMPLE), resolution=2))


def test_fuzzed_codes_are_valid_archs_or_value_errors(excerpt_codes):
    """Random digit edits, insertions, deletions and swaps: nothing but ValueError escapes."""
    rng = np.random.default_rng(1234)
    space = ss.get_space("imagenet")
    seeds = excerpt_codes[:200] + [a.code for a in space.sample_many(200, seed=5)]
    alphabet = list("01234567890123456789") + ["x", " ", "\u0663", "-"]
    n_valid = n_invalid = 0
    for i in range(6000):
        code = seeds[i % len(seeds)]
        for _ in range(int(rng.integers(1, 4))):
            op = rng.integers(4)
            pos = int(rng.integers(len(code) + 1 if op == 1 else max(len(code), 1)))
            char = alphabet[int(rng.integers(len(alphabet)))]
            if op == 0 and code:  # substitute
                code = code[:pos] + char + code[pos + 1 :]
            elif op == 1:  # insert
                code = code[:pos] + char + code[pos:]
            elif op == 2 and code:  # delete
                code = code[:pos] + code[pos + 1 :]
            elif len(code) > 1:  # swap neighbours
                pos = min(pos, len(code) - 2)
                code = code[:pos] + code[pos + 1] + code[pos] + code[pos + 2 :]
        try:
            arch = space.parse(code)
        except ValueError as e:
            n_invalid += 1
            assert not _reference_is_valid(code), code
            assert "position" in str(e) or "length" in str(e), str(e)
        else:
            n_valid += 1
            assert _reference_is_valid(code), code
            assert arch.code == code and space.parse(arch.code) == arch
            assert ss.Arch(arch.resolution, arch.depths, arch.stem, arch.mids, arch.outs) == arch
    # Both outcomes must be exercised for the test to mean anything.
    assert n_valid > 300 and n_invalid > 3000, (n_valid, n_invalid)


def test_single_digit_edits_agree_with_the_reference_validator():
    # Exhaustive: every position of a few codes set to every digit.
    space = ss.get_space("fmnist")
    for arch in [space.largest(), space.smallest(), ss.Arch.from_code(EXAMPLE)]:
        for pos, digit in itertools.product(range(52), range(10)):
            code = _edit(arch.code, pos, digit)
            try:
                space.parse(code)
                ok = True
            except ValueError as e:
                ok = False
                assert "position" in str(e), (code, str(e))
            assert ok == _reference_is_valid(code), code


# ------------------------------------------------------------------ registry and widths


def test_registered_spaces():
    assert set(ss.SPACES) == {"imagenet", "fmnist", "cifar10", "cifar100"}
    imagenet = ss.get_space("imagenet")
    assert (imagenet.resolutions, imagenet.in_channels, imagenet.num_classes) == ((224,), 3, 1000)
    assert imagenet.base_channels == (64, 128, 256, 512) and imagenet.divisor == 8
    assert imagenet.imagenet_stem
    fmnist = ss.get_space("fmnist")
    assert (fmnist.resolutions, fmnist.in_channels, fmnist.num_classes) == ((28,), 1, 10)
    assert fmnist.base_channels == (8, 16, 32, 64) and fmnist.divisor == 1
    assert not fmnist.imagenet_stem
    for name, classes in (("cifar10", 10), ("cifar100", 100)):
        cifar = ss.get_space(name)
        assert (cifar.resolutions, cifar.in_channels, cifar.num_classes) == ((32,), 3, classes)
        assert cifar.stem_base == 16 and cifar.base_channels == (16, 32, 64, 128)
        assert not cifar.imagenet_stem


def test_get_space_lists_known_names():
    with pytest.raises(
        ValueError,
        match=r"Unknown search space 'mnist'; known spaces: cifar10, "
        r"cifar100, fmnist, imagenet",
    ):
        ss.get_space("mnist")
    space = ss.get_space("fmnist")
    assert ss.get_space(space) is space


def test_space_rows_are_checked():
    with pytest.raises(ValueError, match=r"stem_base \(16\) must equal base_channels\[0\]"):
        ss.SearchSpace("bad", (32,), 3, 16, (32, 64, 128, 256), 1, 10, False)


def test_make_divisible():
    assert ss.make_divisible(64 * 0.95, 8) == 64
    assert ss.make_divisible(64 * 0.9, 8) == 56
    assert ss.make_divisible(512 * 0.7, 8) == 360
    assert ss.make_divisible(3, 8) == 8  # never below the divisor
    assert ss.make_divisible(7.6, 1) == 8
    assert ss.make_divisible(5.6, 1) == 6
    # The "+ divisor when below 0.9 v" branch: 20 -> 16 would lose 20%.
    assert ss.make_divisible(20, 16) == 32


def test_imagenet_width_table_matches_the_competition():
    table = ss.get_space("imagenet").width_table()
    assert table.dtype == np.int32 and table.shape == (5, 7)
    np.testing.assert_array_equal(
        table,
        [
            [64, 64, 56, 56, 48, 48, 48],
            [64, 64, 56, 56, 48, 48, 48],
            [128, 120, 112, 112, 104, 96, 88],
            [256, 240, 232, 216, 208, 192, 176],
            [512, 488, 464, 432, 408, 384, 360],
        ],
    )


def test_width_table_follows_make_divisible(space):
    table = space.width_table()
    bases = (space.stem_base,) + space.base_channels
    for row, base in enumerate(bases):
        for k, ratio in enumerate(ss.WIDTH_RATIOS, start=1):
            expected = ss.make_divisible(base * ratio, space.divisor)
            assert table[row, k - 1] == expected
            if row == 0:
                assert space.stem_width(k) == expected
            else:
                assert space.stage_width(row - 1, k) == expected
    with pytest.raises(ValueError, match="Width digits are 1..7"):
        space.stage_width(0, 0)
    with pytest.raises(ValueError, match="stage is 0-based"):
        space.stage_width(4, 1)


def _doc_width_tables(text):
    """{variant: 5x7 rows} from docs/SEARCH_SPACE.md's "### `name`" width tables."""
    tables, names = {}, []
    for line in text.splitlines():
        if line.startswith("#"):
            names = re.findall(r"`(\w+)`", line) if line.startswith("### ") else []
        elif names and line.startswith(("| stem |", "| stage ")):
            row = [int(c) for c in line.strip("|").split("|")[1:]]
            for name in names:
                tables.setdefault(name, []).append(row)
    return tables


def test_docs_width_tables_are_those_of_the_spaces(repo_root):
    # docs/SEARCH_SPACE.md restates every variant's width table; keep the two in step.
    tables = _doc_width_tables((repo_root / "docs" / "SEARCH_SPACE.md").read_text())
    assert sorted(tables) == SPACE_NAMES
    for name, rows in tables.items():
        np.testing.assert_array_equal(rows, ss.get_space(name).width_table(), err_msg=name)


def test_widths_of_an_arch():
    space = ss.get_space("imagenet")
    widths = space.widths(EXAMPLE)
    assert widths["stem"] == 56
    assert widths["outs"] == (56, 120, 232, 408)
    assert widths["mids"] == ((56, 64), (120, 112, 128, 128, 120), (208, 256), (384, 512))


# ------------------------------------------------------------------ special archs, size


def test_largest_and_smallest(space):
    assert space.largest().code == "1" + "5585" + "1" + "11" * 23
    assert space.smallest().code == (
        "1" + "2222" + "7" + "7777000000" + "7777000000" + "7777" + "00" * 6 + "7777000000"
    )
    assert space.flops(space.smallest()) < space.flops(space.largest())
    assert space.params(space.smallest()) < space.params(space.largest())


def test_size_counts_every_code(space):
    # Independent count: for every depth combination, 7 choices per free digit.
    total = 0
    for depths in itertools.product(*(range(2, m + 1) for m in ss.MAX_DEPTHS)):
        total += 7 ** (1 + 3 + sum(depths))  # stem, outs of stages 2-4, the mids
    assert space.size() == total * len(space.resolutions)


def test_size_by_brute_force_on_one_stage_pattern():
    # Enumerate all codes with depths (2,2,2,2) differing only in stage 1 digits and the stem.
    space = ss.get_space("fmnist")
    valid = 0
    tail = "1111000000" + "1111" + "00" * 6 + "1111000000"
    for stem, m1, m2, o1, o2 in itertools.product(range(9), repeat=5):  # 0 and 8 are invalid
        code = f"12222{stem}{m1}{o1}{m2}{o2}000000" + tail
        try:
            space.parse(code)
            valid += 1
        except ValueError:
            pass
    assert valid == 7 * 7 * 7  # stem (= both outs) and two mids


# ------------------------------------------------------------------ sampling


def test_sample_many_is_deterministic_and_valid(space):
    a = space.sample_many(300, seed=7)
    b = space.sample_many(300, seed=7)
    assert [x.code for x in a] == [x.code for x in b]
    assert [x.code for x in space.sample_many(300, seed=8)] != [x.code for x in a]
    for arch in a:
        assert space.parse(arch.code) == arch
        assert _reference_is_valid(arch.code, len(space.resolutions))


def test_sample_uses_the_generator():
    space = ss.get_space("fmnist")
    rng = np.random.default_rng(3)
    first = [space.sample(rng).code for _ in range(5)]
    assert first == [a.code for a in space.sample_many(5, seed=3)]


def test_uniform_sampler_marginals():
    space = ss.get_space("imagenet")
    archs = space.sample_many(14_000, seed=0)
    n = len(archs)
    for i, (lo, hi) in enumerate(zip(ss.MIN_DEPTHS, ss.MAX_DEPTHS)):
        counts = np.bincount([a.depths[i] for a in archs], minlength=hi + 1)[lo:]
        expected = n / (hi - lo + 1)
        assert counts.sum() == n
        assert np.all(np.abs(counts - expected) < 0.08 * expected), (i, counts)
    free = {
        "stem": [a.stem for a in archs],
        "outs": [o for a in archs for o in a.outs[1:]],
        "mids": [m for a in archs for stage in a.mids for m in stage],
    }
    for name, digits in free.items():
        counts = np.bincount(digits, minlength=8)
        assert counts[0] == 0
        expected = len(digits) / 7
        assert np.all(np.abs(counts[1:] - expected) < 0.06 * expected), (name, counts)
    # Stage 1's out is not free: it is the stem digit.
    assert all(a.outs[0] == a.stem for a in archs)


def test_multi_resolution_sampling_covers_every_index():
    space = ss.SearchSpace("multi", (28, 32, 40), 1, 8, (8, 16, 32, 64), 1, 10, False)
    counts = np.bincount([a.resolution for a in space.sample_many(3000, seed=0)], minlength=4)
    assert counts[0] == 0 and np.all(counts[1:] > 900)


# ------------------------------------------------------------------ mutation, crossover


def test_mutate_and_crossover_are_always_valid(space):
    rng = np.random.default_rng(11)
    archs = space.sample_many(60, seed=2) + [space.largest(), space.smallest()]
    changed = 0
    for i in range(3000):
        parent = archs[i % len(archs)]
        prob = (0.05, 0.3, 1.0)[i % 3]
        child = space.mutate(parent, rng, prob=prob)
        assert _reference_is_valid(child.code, len(space.resolutions))
        assert space.parse(child.code) == child
        changed += child != parent
        other = archs[(7 * i + 3) % len(archs)]
        cross = space.crossover(parent, other, rng)
        assert _reference_is_valid(cross.code, len(space.resolutions))
        for s in range(4):
            src = [
                p
                for p in (parent, other)
                if p.depths[s] == cross.depths[s]
                and p.mids[s] == cross.mids[s]
                and p.outs[s] == cross.outs[s]
            ]
            assert src, (parent.code, other.code, cross.code, s)
        assert cross.stem == cross.outs[0]
        archs[i % len(archs)] = child  # keep evolving so depths move over the whole range
    assert changed > 2000


def test_mutate_probability_extremes():
    space = ss.get_space("fmnist")
    rng = np.random.default_rng(0)
    arch = ss.Arch.from_code(EXAMPLE)
    assert space.mutate(arch, rng, prob=0.0) == arch
    assert space.mutate(EXAMPLE, rng, prob=0.0) == arch  # a code is accepted too
    with pytest.raises(ValueError, match=r"prob must be in \[0, 1\]"):
        space.mutate(arch, rng, prob=1.5)


def test_mutate_depth_changes_reach_both_ends():
    space = ss.get_space("fmnist")
    rng = np.random.default_rng(5)
    seen = {i: set() for i in range(4)}
    arch = space.smallest()
    for _ in range(400):
        arch = space.mutate(arch, rng, prob=0.5)
        for i in range(4):
            seen[i].add(arch.depths[i])
    for i in range(4):
        assert seen[i] == set(range(ss.MIN_DEPTHS[i], ss.MAX_DEPTHS[i] + 1))


def test_crossover_of_identical_parents_is_the_parent():
    space = ss.get_space("imagenet")
    arch = ss.Arch.from_code(EXAMPLE)
    assert space.crossover(arch, arch, np.random.default_rng(0)) == arch


# ------------------------------------------------------------------ FLOPs and params


def test_flops_hand_count_fmnist_smallest():
    # fmnist, all digits 7: widths stem 6, stages 6, 11, 22, 45; spatial 28, 28, 14, 7, 4.
    space = ss.get_space("fmnist")
    stem = 28 * 28 * 3 * 3 * 1 * 6
    stage1 = 2 * 28 * 28 * (9 * 6 * 6 + 9 * 6 * 6)
    stage2 = 14 * 14 * (9 * 6 * 11 + 9 * 11 * 11 + 6 * 11) + 14 * 14 * (2 * 9 * 11 * 11)
    stage3 = 7 * 7 * (9 * 11 * 22 + 9 * 22 * 22 + 11 * 22) + 7 * 7 * (2 * 9 * 22 * 22)
    stage4 = 4 * 4 * (9 * 22 * 45 + 9 * 45 * 45 + 22 * 45) + 4 * 4 * (2 * 9 * 45 * 45)
    head = 45 * 10
    assert space.flops(space.smallest()) == stem + stage1 + stage2 + stage3 + stage4 + head
    assert space.flops(space.smallest()) == 3_620_654


def test_params_hand_count_fmnist_smallest():
    space = ss.get_space("fmnist")
    bn = 4
    stem = 9 * 1 * 6 + bn * 6
    stage1 = 2 * (9 * 6 * 6 + bn * 6 + 9 * 6 * 6 + bn * 6)
    stage2 = (9 * 6 * 11 + 9 * 11 * 11 + 6 * 11 + 3 * bn * 11) + (2 * 9 * 11 * 11 + 2 * bn * 11)
    stage3 = (9 * 11 * 22 + 9 * 22 * 22 + 11 * 22 + 3 * bn * 22) + (2 * 9 * 22 * 22 + 2 * bn * 22)
    stage4 = (9 * 22 * 45 + 9 * 45 * 45 + 22 * 45 + 3 * bn * 45) + (2 * 9 * 45 * 45 + 2 * bn * 45)
    head = 45 * 10 + 10
    assert space.params(space.smallest()) == stem + stage1 + stage2 + stage3 + stage4 + head


def test_imagenet_flops_use_the_strided_stem():
    # The largest ImageNet subnet: stem 112x112 (7x7/2), stages at 56, 28, 14, 7.
    space = ss.get_space("imagenet")
    flops, params = space.cost(space.largest())
    stem = 112 * 112 * 49 * 3 * 64
    assert flops > stem
    assert space.flops(space.largest()) == flops and space.params(space.largest()) == params
    assert space._spatial(1) == (112, (56, 28, 14, 7))
    assert ss.get_space("cifar10")._spatial(1) == (32, (32, 16, 8, 4))
    assert ss.get_space("fmnist")._spatial(1) == (28, (28, 14, 7, 4))


def _check_costs(codes):
    space = ss.get_space("imagenet")
    lo = space.cost(space.smallest())
    hi = space.cost(space.largest())
    for code in codes:
        flops, params = space.cost(space.parse(code))
        assert lo[0] <= flops <= hi[0] and lo[1] <= params <= hi[1]
    assert math.isclose(hi[0] / 1e9, 5.28, rel_tol=0.01)  # ResNet-34-like at 224 px


def test_cost_of_competition_codes(excerpt_codes):
    _check_costs(excerpt_codes)


def test_cost_of_every_competition_code(all_competition_codes):
    _check_costs(all_competition_codes)

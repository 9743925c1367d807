"""benchmarks/search_vs_random.py: the chance p-value and the random archs of a FLOPs band."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import search_vs_random  # noqa: E402

from tfnas import search_space as ss  # noqa: E402


@pytest.mark.parametrize(
    "ranks, size, expected",
    [
        ([1], 6, 1 / 6),  # best of 6: chance 1/6
        ([6], 6, 1.0),
        ([1, 1], 6, 1 / 36),
        ([2, 1], 6, 3 / 36),  # sums <= 3: (1,1), (1,2), (2,1)
        ([1, 1, 1], 6, 1 / 216),
        ([2, 2, 2], 6, 20 / 216),  # sums <= 6 of three dice: C(6, 3) = 20
    ],
)
def test_exact_p_by_hand(ranks, size, expected):
    assert search_vs_random.exact_p(ranks, size) == pytest.approx(expected)


def test_band_archs_are_distinct_in_band_and_reproducible():
    space = ss.get_space("fmnist")
    bounds = ss.BOUNDS_PRESETS["full"]
    pick_flops, budget = 10e6, 10.2e6
    first = search_vs_random.band_archs(space, bounds, pick_flops, budget, 5, seed=1000)
    again = search_vs_random.band_archs(space, bounds, pick_flops, budget, 5, seed=1000)
    assert first == again and len(set(first)) == 5
    for code in first:
        assert 0.95 * pick_flops <= space.flops(space.parse(code)) <= budget

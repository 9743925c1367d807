"""tfnas.nsga2 against hand-worked fronts, crowding distances and hypervolumes."""

import numpy as np
import pytest

from tfnas import nsga2
from tfnas import search_space as ss

# Seven points, both objectives minimised (worked by hand):
#   A(1,5) B(2,3) C(3,1) | D(2,4) G(3,3) E(4,2) | F(5,5)
# D and G are dominated by B (G also by C), E by C; F by everything but nothing by F.
POINTS = np.array([[1, 5], [2, 3], [3, 1], [2, 4], [4, 2], [5, 5], [3, 3]], float)
A, B, C, D, E, F, G = range(7)


def test_fronts_hand_worked():
    fronts = [sorted(f.tolist()) for f in nsga2.fronts(POINTS)]
    assert fronts == [[A, B, C], [D, E, G], [F]]
    assert nsga2.front_ranks(POINTS).tolist() == [0, 0, 0, 1, 1, 2, 1]


def test_duplicate_points_share_a_front():
    pts = np.array([[1, 2], [1, 2], [2, 1], [2, 2]], float)
    assert [f.tolist() for f in nsga2.fronts(pts)] == [[0, 1, 2], [3]]


def test_crowding_distance_hand_worked():
    # Ranges 3 and 3. (2,2.5): (3-1)/3 + (4-2)/3 = 4/3; (3,2): (4-2)/3 + (2.5-1)/3 = 7/6.
    front = np.array([[1, 4], [2, 2.5], [3, 2], [4, 1]], float)
    d = nsga2.crowding_distance(front)
    assert np.isinf(d[0]) and np.isinf(d[3])
    np.testing.assert_allclose(d[1:3], [4 / 3, 7 / 6])
    # Two points, or one: all boundary.
    assert np.isinf(nsga2.crowding_distance(front[:2])).all()
    # A constant objective adds nothing: only the first objective's gaps count.
    flat = np.array([[1, 7], [2, 7], [4, 7]], float)
    np.testing.assert_allclose(nsga2.crowding_distance(flat)[1], (4 - 1) / 3)


def test_constrained_domination():
    # (1,1) and (2,2) break the budget (violations 0.5, 0.2); (5,5), (6,6) are feasible.
    pts = np.array([[1, 1], [5, 5], [2, 2], [6, 6]], float)
    v = np.array([0.5, 0.0, 0.2, 0.0])
    D = nsga2.dominance_matrix(pts, v)
    assert D[1, 0] and D[1, 2]  # feasible beats infeasible, however good
    assert D[3, 0] and D[3, 2]  # even a dominated feasible point
    assert D[2, 0] and not D[0, 2]  # smaller violation wins
    assert D[1, 3] and not D[3, 1]  # Pareto between feasible points
    assert nsga2.front_ranks(pts, v).tolist() == [3, 0, 2, 1]


def test_violation():
    np.testing.assert_allclose(nsga2.violation([50, 100, 150], 100), [0, 0, 0.5])
    np.testing.assert_allclose(nsga2.violation([50, 1e9], 0), [0, 0])


def test_survivors_truncate_the_last_front_by_crowding():
    pts = np.array([[1, 4], [2, 2.5], [3, 2], [4, 1], [5, 5]], float)
    # The first front (4 points) does not fit in 3: drop the least crowded, (3,2).
    assert nsga2.survivors(pts, None, 3).tolist() == [0, 3, 1]
    assert sorted(nsga2.survivors(pts, None, 5).tolist()) == [0, 1, 2, 3, 4]
    # Whole fronts first: 4 of the first front, then the dominated point.
    assert nsga2.survivors(pts, np.zeros(5), 4).tolist() == [0, 1, 2, 3]


def test_tournament_crowded_comparison():
    ranks = np.array([0, 1, 0])
    crowd = np.array([0.5, np.inf, 2.0])
    rng = np.random.default_rng(3)
    winners = nsga2.tournament(ranks, crowd, rng, k=300)
    draws = np.random.default_rng(3)
    a, b = draws.integers(0, 3, 300), draws.integers(0, 3, 300)
    for w, i, j in zip(winners, a, b):
        pair = {int(i), int(j)}
        if 2 in pair:  # rank 0 and the most crowded of rank 0
            assert w == 2
        elif pair == {0, 1}:
            assert w == 0  # lower rank beats larger crowding
        else:
            assert w == i


def test_truncation_parents():
    acc = [0.5, 0.9, 0.7, 0.95, 0.7]
    v = [0, 0, 0, 0.3, 0]
    # Feasible by accuracy (ties by index), then the infeasible 0.95.
    assert nsga2.truncation_parents(acc, v, 5).tolist() == [1, 2, 4, 0, 3]
    assert nsga2.truncation_parents(acc, v, 2).tolist() == [1, 2]


def test_hypervolume_hand_worked():
    # Rectangles to (4,4): 3*1 + 2*1 + 1*1 = 6; a dominated point adds nothing.
    pts = [[1, 3], [2, 2], [3, 1], [3, 3]]
    assert nsga2.hypervolume_2d(pts, (4, 4)) == pytest.approx(6.0)
    assert nsga2.hypervolume_2d([[5, 1]], (4, 4)) == 0.0
    assert nsga2.hypervolume_2d([[0, 0]], (2, 3)) == pytest.approx(6.0)


@pytest.mark.parametrize("bounds", [ss.FULL_BOUNDS, ss.COMPETITION_BOUNDS,
                                    ss.Bounds(digit_hi=(2, 2, 3, 4, 5), depth_lo=(3, 4, 2, 5))])
def test_children_valid_and_within_bounds(bounds):
    space = ss.get_space("fmnist")
    rng = np.random.default_rng(0)
    parents = [space.sample(rng, bounds) for _ in range(20)]
    digits = {s: set() for s in range(4)}
    for i in range(1000):
        child = nsga2.vary(space, parents[i % 20], parents[(7 * i + 3) % 20], rng,
                           bounds=bounds, crossover_prob=0.9, mutation_prob=0.5)
        parsed = space.parse(child.code)  # valid
        assert bounds.contains(parsed), child.code
        for s in range(4):
            digits[s].update(parsed.mids[s])
    # Every digit within the bounds is reached, and nothing beyond.
    for s in range(4):
        assert digits[s] == set(range(1, bounds.stage_hi(s) + 1))


def test_propose_feasible_unseen_deterministic():
    space = ss.get_space("fmnist")
    bounds = ss.COMPETITION_BOUNDS
    flops = [space.flops(space.sample(np.random.default_rng(i), bounds)) for i in range(200)]
    budget = float(np.median(flops))
    settings = nsga2.Settings(population=12, budget=budget, bounds=bounds, seed=5)
    gen0 = nsga2.propose(space, [], set(), settings, 0)
    assert len(set(gen0)) == 12
    assert all(space.flops(c) <= budget and bounds.contains(space.parse(c)) for c in gen0)
    rng = np.random.default_rng(1)
    pop = [(c, float(rng.random()), float(space.flops(c))) for c in gen0]
    for selection in nsga2.SELECTIONS:
        s = nsga2.Settings(population=12, budget=budget, bounds=bounds, seed=5,
                           selection=selection, num_parents=4)
        kids = nsga2.propose(space, pop, set(gen0), s, 1)
        assert kids == nsga2.propose(space, pop, set(gen0), s, 1)  # a pure function
        assert len(set(kids)) == 12 and not set(kids) & set(gen0)
        assert all(space.flops(c) <= budget and bounds.contains(space.parse(c)) for c in kids)
    # Another generation index draws other children.
    assert nsga2.propose(space, pop, set(gen0), settings, 2) != nsga2.propose(
        space, pop, set(gen0), settings, 1)


def test_next_population_and_front():
    s = nsga2.Settings(population=3)
    pop = [("a", 0.9, 5.0), ("b", 0.8, 3.0), ("c", 0.5, 1.0)]
    kids = [("d", 0.95, 6.0), ("e", 0.7, 4.0), ("f", 0.85, 2.0)]
    # Front of all six: b(0.8, 3) is beaten by f(0.85, 2), e(0.7, 4) by b and f.
    rows = pop + kids
    assert [rows[i][0] for i in nsga2.pareto_front(rows)] == ["d", "a", "f", "c"]
    nxt = nsga2.next_population(pop, kids, s)
    # The first front {a, c, d, f} is cut to 3 by crowding: the extremes d and c are
    # infinite; a has 0.1/0.45 + 4/5 = 1.02, f has 0.4/0.45 + 4/5 = 1.69: a goes.
    assert sorted(r[0] for r in nxt) == ["c", "d", "f"]
    with_budget = nsga2.pareto_front(rows, budget=4.5)
    assert [rows[i][0] for i in with_budget] == ["f", "c"]
    t = nsga2.Settings(population=3, selection="truncation")
    assert len(nsga2.next_population(pop, kids, t)) == 6

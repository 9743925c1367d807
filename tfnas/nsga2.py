"""NSGA-II over arch codes, in NumPy: sorting, crowding, selection and variation.

The evolutionary core of the ``search`` stage (`tfnas.search` hosts it in a keras-tuner
Oracle). Objectives are minimised; an arch has the objectives ``(-accuracy, cost)`` with
``cost`` its FLOPs or parameters, and a constraint violation (how far its cost exceeds an
optional budget). Everything is a pure function of its inputs and a `np.random.Generator`,
so a generation can be replayed exactly from the scores of the generations before it::

    F = np.stack([-accs, flops], axis=1)
    v = nsga2.violation(flops, budget)                # 0 where feasible
    ranks = nsga2.front_ranks(F, v)                   # 0 = the first (non-dominated) front
    survivors = nsga2.survivors(F, v, n=50)           # elitist (mu + lambda) truncation
    parents = nsga2.tournament(ranks, crowding, rng, k=50)
    child = nsga2.vary(space, a, b, rng, bounds=bounds, crossover_prob=0.9, mutation_prob=0.1)

NSGA-II is Deb et al. 2002 (fast non-dominated sort, crowding distance, crowded binary
tournament, constrained domination), as cited by seed paper 004 §3; SCHEMES.md §6.1 lists
the steps. Seed paper 004 §3 itself selects "the top 20 architectures with the highest
accuracy" as parents: `truncation_parents` is that variant (SCHEMES.md §6.1, §6.6: the paper
calls it NSGA-II but it is truncation selection under a hard constraint).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from tfnas import search_space as ss

__all__ = [
    "crowding_distance",
    "dominance_matrix",
    "front_ranks",
    "fronts",
    "hypervolume_2d",
    "mutate_bounded",
    "survivors",
    "tournament",
    "truncation_parents",
    "vary",
    "violation",
]


def violation(costs, budget: float | None) -> np.ndarray:
    """How far each cost exceeds ``budget``, relative to it (0 where feasible).

    ``budget`` None or 0 means unconstrained: every violation is 0.
    """
    costs = np.asarray(costs, dtype=np.float64)
    if not budget:
        return np.zeros(costs.shape, np.float64)
    return np.maximum(costs - float(budget), 0.0) / float(budget)


def _check(objectives, violations) -> tuple[np.ndarray, np.ndarray]:
    F = np.asarray(objectives, dtype=np.float64)
    if F.ndim != 2:
        raise ValueError(
            f"objectives must be a 2-D array [points, objectives]; received shape {F.shape}."
        )
    v = np.zeros(len(F)) if violations is None else np.asarray(violations, np.float64)
    if v.shape != (len(F),):
        raise ValueError(
            f"violations must have one entry per point ({len(F)}); received shape {v.shape}."
        )
    return F, v


def dominance_matrix(objectives, violations=None) -> np.ndarray:
    """``D[i, j]``: point i constrained-dominates point j (all objectives minimised).

    Constrained domination (Deb et al. 2002, §VI): a feasible point (violation 0) dominates
    an infeasible one; of two infeasible points the smaller violation dominates; two
    feasible points compare by Pareto dominance (no worse in every objective, better in one).
    """
    F, v = _check(objectives, violations)
    le = np.all(F[:, None, :] <= F[None, :, :], axis=-1)
    lt = np.any(F[:, None, :] < F[None, :, :], axis=-1)
    pareto = le & lt
    feas = v == 0
    fi, fj = feas[:, None], feas[None, :]
    return (fi & ~fj) | (~fi & ~fj & (v[:, None] < v[None, :])) | (fi & fj & pareto)


def fronts(objectives, violations=None) -> list[np.ndarray]:
    """The non-dominated fronts (Deb's fast non-dominated sort): lists of point indices,
    first front first, each in ascending index order."""
    D = dominance_matrix(objectives, violations)
    remaining = np.ones(len(D), bool)
    counts = D.sum(axis=0)  # how many points dominate each point
    out = []
    while remaining.any():
        front = np.flatnonzero(remaining & (counts == 0))
        out.append(front)
        remaining[front] = False
        counts = counts - D[front].sum(axis=0)
    return out


def front_ranks(objectives, violations=None) -> np.ndarray:
    """int [n]: the front of each point (0: non-dominated)."""
    ranks = np.zeros(len(np.asarray(objectives)), np.int64)
    for r, front in enumerate(fronts(objectives, violations)):
        ranks[front] = r
    return ranks


def crowding_distance(objectives) -> np.ndarray:
    """Deb's crowding distance of the points of ONE front (float [n]).

    For each objective the points are sorted; the two extremes get infinity, every other
    point adds the gap between its two neighbours divided by the objective's range (an
    objective with zero range adds nothing). Ties sort by index, so the result is
    deterministic.
    """
    F = np.asarray(objectives, dtype=np.float64)
    n, m = F.shape
    dist = np.zeros(n, np.float64)
    if n <= 2:
        dist[:] = np.inf
        return dist
    for k in range(m):
        order = np.argsort(F[:, k], kind="stable")
        values = F[order, k]
        span = values[-1] - values[0]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (values[2:] - values[:-2]) / span
    return dist


def rank_and_crowding(objectives, violations=None) -> tuple[np.ndarray, np.ndarray]:
    """(front rank, crowding distance within its front) of every point."""
    F, v = _check(objectives, violations)
    ranks = np.zeros(len(F), np.int64)
    crowd = np.zeros(len(F), np.float64)
    for r, front in enumerate(fronts(F, v)):
        ranks[front] = r
        crowd[front] = crowding_distance(F[front])
    return ranks, crowd


def survivors(objectives, violations, n: int) -> np.ndarray:
    """Indices of the ``n`` survivors of NSGA-II's elitist (mu + lambda) step.

    Fronts are taken whole while they fit; the front that does not fit is truncated by
    crowding distance, largest first (ties by index). Returned in selection order.
    """
    F, v = _check(objectives, violations)
    chosen: list[int] = []
    for front in fronts(F, v):
        if len(chosen) + len(front) <= n:
            chosen.extend(int(i) for i in front)
            continue
        crowd = crowding_distance(F[front])
        order = np.lexsort((front, -crowd))  # crowding descending, then index
        chosen.extend(int(i) for i in front[order][: n - len(chosen)])
        break
    return np.asarray(chosen, np.int64)


def tournament(ranks, crowding, rng: np.random.Generator, k: int) -> np.ndarray:
    """``k`` winners of binary tournaments with Deb's crowded comparison.

    Each tournament draws two points uniformly (with replacement); the lower front rank
    wins, then the larger crowding distance, then the first drawn.
    """
    ranks = np.asarray(ranks)
    crowding = np.asarray(crowding, dtype=np.float64)
    a = rng.integers(0, len(ranks), size=k)
    b = rng.integers(0, len(ranks), size=k)
    b_wins = (ranks[b] < ranks[a]) | ((ranks[b] == ranks[a]) & (crowding[b] > crowding[a]))
    return np.where(b_wins, b, a)


def truncation_parents(accuracies, violations, k: int) -> np.ndarray:
    """Indices of the ``k`` best points by accuracy under the constraint (seed paper 004 §3:
    "the top 20 architectures with the highest accuracy are selected as parents").

    Feasible points first, by accuracy descending; then infeasible ones by violation
    ascending. Ties by index.
    """
    acc = np.asarray(accuracies, dtype=np.float64)
    v = np.asarray(violations, dtype=np.float64)
    order = np.lexsort((np.arange(len(acc)), -acc, v))
    return order[:k]


def hypervolume_2d(objectives, reference: Sequence[float]) -> float:
    """The area dominated by 2-objective points (both minimised) and bounded by
    ``reference``; points not strictly better than the reference in both count nothing."""
    F = np.asarray(objectives, dtype=np.float64).reshape(-1, 2)
    ref = np.asarray(reference, dtype=np.float64)
    F = F[np.all(F < ref, axis=1)]
    if len(F) == 0:
        return 0.0
    F = F[np.lexsort((F[:, 1], F[:, 0]))]  # by f1, then f2
    area, best_f2 = 0.0, ref[1]
    for f1, f2 in F:
        if f2 < best_f2:
            area += (ref[0] - f1) * (best_f2 - f2)
            best_f2 = f2
    return float(area)


# ------------------------------------------------------------------------------ variation


def mutate_bounded(
    space: ss.SearchSpace,
    arch: ss.Arch | str,
    rng: np.random.Generator,
    prob: float,
    bounds: ss.Bounds | None = None,
) -> ss.Arch:
    """`SearchSpace.mutate` kept inside ``bounds``: each gene redrawn with probability
    ``prob``, uniformly within its bounded range (SCHEMES.md §6.6: the unbounded `mutate`
    redraws digits in 1..7, which leaves e.g. `COMPETITION_BOUNDS`).

    The resolution index, each depth (``depth_lo..MAX_DEPTHS``; new blocks get uniform
    bounded digits), the stem digit (stage 1's out follows it), the outs of stages 2-4 and
    each mid. With ``bounds`` None it is the full space. Always a valid code.
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"mutation prob must be in [0, 1]; received {prob}.")
    b = bounds or ss.FULL_BOUNDS
    arch = space.parse(arch) if isinstance(arch, str) else arch

    def redraw(current: int, lo: int, hi: int) -> int:
        return int(rng.integers(lo, hi + 1)) if rng.random() < prob else current

    res = arch.resolution
    if len(space.resolutions) > 1:
        res = redraw(res, 1, len(space.resolutions))
    stem = redraw(arch.stem, 1, b.digit_hi[0])
    outs = [stem] + [redraw(arch.outs[s], 1, b.stage_hi(s)) for s in (1, 2, 3)]
    depths, mids = [], []
    for s in range(ss.NUM_STAGES):
        hi = b.stage_hi(s)
        d = redraw(arch.depths[s], b.depth_lo[s], ss.MAX_DEPTHS[s])
        old = arch.mids[s][:d]
        new = tuple(int(m) for m in rng.integers(1, hi + 1, size=d - len(old)))
        mids.append(tuple(redraw(m, 1, hi) for m in old) + new)
        depths.append(d)
    return ss.Arch(res, tuple(depths), stem, tuple(mids), tuple(outs))


def vary(
    space: ss.SearchSpace,
    a: ss.Arch,
    b: ss.Arch,
    rng: np.random.Generator,
    *,
    bounds: ss.Bounds | None,
    crossover_prob: float,
    mutation_prob: float,
) -> ss.Arch:
    """One child: stage-wise uniform crossover of ``a`` and ``b`` with probability
    ``crossover_prob`` (else a copy of ``a``), then `mutate_bounded`.

    Crossover (`SearchSpace.crossover`) takes each stage whole from one parent, so two
    parents within ``bounds`` give a child within them; mutation keeps it there.
    """
    child = space.crossover(a, b, rng) if rng.random() < crossover_prob else a
    return mutate_bounded(space, child, rng, mutation_prob, bounds)


# ---------------------------------------------------------------------------- generations

SELECTIONS = ("nsga2", "truncation")
COSTS = ("flops", "params")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What decides the proposed codes, besides the scores (`tfnas.search` fills it from
    the ``search`` config section).

    Attributes:
      population: N, the size of each generation (seed paper 004 §3: 50).
      selection: ``nsga2`` (rank and crowding, binary tournaments) or ``truncation`` (the
        ``num_parents`` most accurate feasible archs evaluated so far, uniformly).
      num_parents: parents of ``truncation`` (seed paper 004 §3: 20).
      crossover_prob, mutation_prob: see `vary`.
      cost: ``flops`` or ``params``, the second objective.
      budget: the largest feasible cost (0: unconstrained).
      bounds: the `tfnas.search_space.Bounds` every code stays in.
      seed: generation g draws from ``np.random.default_rng([seed, g])``.
    """

    population: int = 50
    selection: str = "nsga2"
    num_parents: int = 20
    crossover_prob: float = 0.9
    mutation_prob: float = 0.1
    cost: str = "flops"
    budget: float = 0.0
    bounds: ss.Bounds = ss.FULL_BOUNDS
    seed: int = 0

    def cost_of(self, space: ss.SearchSpace, arch) -> int:
        flops, params = space.cost(arch)
        return flops if self.cost == "flops" else params


# Draws per child before giving up on finding an unseen, feasible one by variation.
MAX_ATTEMPTS_PER_CHILD = 100


def generation_rng(seed: int, generation: int) -> np.random.Generator:
    """The generator of generation ``generation``: a pure function of (seed, generation),
    so a resumed or distributed search proposes the same codes (SCHEMES.md §6.2 item 3)."""
    return np.random.default_rng([int(seed), int(generation)])


def _objectives(rows) -> tuple[np.ndarray, np.ndarray]:
    return np.array([[-r[1], r[2]] for r in rows], np.float64).reshape(-1, 2)


def next_population(population, offspring, settings: Settings) -> list:
    """The population after a generation: ``population`` and ``offspring`` are lists of
    ``(code, acc, cost)``.

    ``nsga2``: the `survivors` of their union (N of them). ``truncation``: the union (the
    pool every evaluated arch stays in; `propose` takes the best ``num_parents``).
    """
    pool = list(population) + list(offspring)
    if settings.selection == "truncation" or not pool:
        return pool
    F = _objectives(pool)
    v = violation(F[:, 1], settings.budget)
    return [pool[i] for i in survivors(F, v, settings.population)]


def _unseen_feasible(space, settings, arch, seen) -> bool:
    if arch.code in seen:
        return False
    return not settings.budget or settings.cost_of(space, arch) <= settings.budget


def _random_fill(space, settings, rng, seen, out, n) -> None:
    attempts = 0
    while len(out) < n and attempts < MAX_ATTEMPTS_PER_CHILD * n:
        attempts += 1
        arch = space.sample(rng, settings.bounds)
        if _unseen_feasible(space, settings, arch, seen):
            seen.add(arch.code)
            out.append(arch.code)
    while len(out) < n:  # an exhausted (tiny) space: repeat codes; their scores are cached
        out.append(space.sample(rng, settings.bounds).code)


def propose(space: ss.SearchSpace, population, seen, settings: Settings, generation: int):
    """The N codes of ``generation``: random for generation 0, else children of
    ``population`` (a list of ``(code, acc, cost)``, see `next_population`).

    Generation 0 samples uniformly within ``settings.bounds`` and rejects infeasible codes
    (seed paper 004 §3: "randomly select a group of architectures within the target FLOPs").
    Later generations pick parents (binary tournaments on rank and crowding, or uniformly
    among the ``num_parents`` best), `vary` them, and reject children that were evaluated
    before (``seen``), repeat one of this generation or break the budget, re-drawing up to
    `MAX_ATTEMPTS_PER_CHILD` times per child; what is still missing is sampled at random.

    Returns codes, all within ``settings.bounds``; ``seen`` gets them added.
    """
    rng = generation_rng(settings.seed, generation)
    n = settings.population
    out: list[str] = []
    seen = set(seen)
    if generation == 0 or not population:
        _random_fill(space, settings, rng, seen, out, n)
        return out
    F = _objectives(population)
    v = violation(F[:, 1], settings.budget)
    if settings.selection == "nsga2":
        ranks, crowd = rank_and_crowding(F, v)
        pool = None
    else:
        pool = truncation_parents(-F[:, 0], v, settings.num_parents)
    archs = [space.parse(row[0]) for row in population]
    attempts = 0
    while len(out) < n and attempts < MAX_ATTEMPTS_PER_CHILD * n:
        attempts += 1
        if pool is None:
            i, j = tournament(ranks, crowd, rng, 2)
        else:
            i, j = rng.choice(pool, size=2)
        child = vary(
            space,
            archs[i],
            archs[j],
            rng,
            bounds=settings.bounds,
            crossover_prob=settings.crossover_prob,
            mutation_prob=settings.mutation_prob,
        )
        if _unseen_feasible(space, settings, child, seen):
            seen.add(child.code)
            out.append(child.code)
    _random_fill(space, settings, rng, seen, out, n)
    return out


def pareto_front(rows, budget: float = 0.0) -> list[int]:
    """Indices of the first constrained-domination front of ``(code, acc, cost)`` rows:
    the feasible archs no other feasible arch beats in both accuracy and cost (or, when
    none is feasible, those closest to the budget), most accurate first."""
    if not rows:
        return []
    F = _objectives(rows)
    front = fronts(F, violation(F[:, 1], budget))[0]
    return sorted((int(i) for i in front), key=lambda i: (F[i, 0], F[i, 1], i))

"""Searching a trained supernet: NSGA-II hosted by a keras-tuner Oracle.

The ``search`` stage (`tfnas.stages.search`) drives it; as a library::

    settings = search.settings_from_config(config)
    oracle = search.NSGA2Oracle(space, settings, generations=20)
    tuner = search.SupernetSearchTuner(oracle, scorer, directory=stage_dir, project_name="tuner")
    tuner.search(verbose=0)
    rows = search.evaluated_rows(oracle)          # every arch scored, with its generation

Design (SCHEMES.md §6.2):

- One keras-tuner trial is one arch: ``trial.hyperparameters.values == {"code": "<52
  digits>"}`` with an empty search space. The objective is ``Objective("acc", "max")``
  alone: keras-tuner *sums* a list of objectives (its ``MultiObjective``), which is not
  Pareto ranking, so the cost (FLOPs or params) is computed by the oracle from the code.
- Trial ``i`` (ids are zero-padded; always read with ``int``) is member ``i % N`` of
  generation ``i // N``. On the first request for generation g the oracle replays selection
  over the completed trials of generations ``< g`` (`tfnas.nsga2.next_population`) and
  proposes its N codes with ``np.random.default_rng([seed, g])`` (`tfnas.nsga2.propose`): the
  codes are a pure function of (settings, scores), so a search killed at any point and
  rerun, or split over several workers, proposes the same codes and ends with the same
  front. Until generation g-1 has ended, requests get ``IDLE`` (parallel workers wait).
- The oracle's and trials' JSON files are written atomically (a kill never leaves a torn
  state file), and on reload every trial left ``RUNNING`` is queued again.
- `SupernetSearchTuner` (a ``BaseTuner`` without hypermodel) scores a trial's code with a
  `ScoreCache`: scores are looked up by code among the rows of the ``evaluate`` stage's
  results files with this supernet's fingerprint (`tfnas.evaluation.fingerprint`), and a new
  score is appended there, so the ``evaluate`` stage and the search score a code at most once
  per supernet between them.
- Several machines: keras-tuner's chief/worker mode (``KERASTUNER_TUNER_ID``,
  ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``); the chief hosts the oracle and
  scores nothing, each worker builds its own supernet and evaluator.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import keras_tuner

from tfnas import nsga2
from tfnas import records as records_lib
from tfnas import search_space as ss

__all__ = [
    "CONFIG_FIELDS",
    "NSGA2Oracle",
    "ScoreCache",
    "SupernetSearchTuner",
    "evaluated_rows",
    "front_accuracies",
    "front_records",
    "role",
    "settings_from_config",
    "validate_config",
]

OBJECTIVE = "acc"
# The evaluate stage's unsharded results file and its shard files, relative to the workdir
# (the score cache shared with that stage; named here, since stages do not import each other).
EVALUATE_RESULTS = Path("evaluate") / "results.jsonl"
EVALUATE_SHARDS = "results.shard-*-of-*.jsonl"
# A parallel worker asking for a trial of a generation that has not closed yet waits this
# long before asking again (keras-tuner re-asks at once; SCHEMES.md §6.2 item 3).
IDLE_SECONDS = 0.5


# ------------------------------------------------------------------------------ settings


def bounds_of(config) -> ss.Bounds:
    """``search.bounds``, or ``train.bounds`` when empty (the space the supernet trained)."""
    return ss.BOUNDS_PRESETS[config.search.bounds or config.train.bounds]


def settings_from_config(config) -> nsga2.Settings:
    """The `tfnas.nsga2.Settings` of ``config.search``."""
    s = config.search
    return nsga2.Settings(
        population=int(s.population),
        selection=s.selection,
        num_parents=int(s.num_parents),
        crossover_prob=float(s.crossover_prob),
        mutation_prob=float(s.mutation_prob),
        cost=s.objective,
        budget=float(s.budget),
        bounds=bounds_of(config),
        seed=int(s.seed),
    )


def settings_json(settings: nsga2.Settings, generations: int) -> dict:
    """Plain JSON of what decides the proposed codes (a resumed search must match it)."""
    return {
        "population": settings.population,
        "generations": int(generations),
        "selection": settings.selection,
        "num_parents": settings.num_parents,
        "crossover_prob": settings.crossover_prob,
        "mutation_prob": settings.mutation_prob,
        "objective": settings.cost,
        "budget": settings.budget,
        "bounds": {
            "digit_hi": list(settings.bounds.digit_hi),
            "depth_lo": list(settings.bounds.depth_lo),
        },
        "seed": settings.seed,
    }


def role() -> str:
    """``single``, ``chief`` or ``worker``: keras-tuner's distributed mode, read from the
    same environment variables keras-tuner reads (``KERASTUNER_ORACLE_IP`` set: distributed;
    ``KERASTUNER_TUNER_ID`` containing ``chief``: the chief)."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    missing = [v for v in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID") if v not in os.environ]
    if missing:
        raise ValueError(
            f"KERASTUNER_ORACLE_IP is set but {', '.join(missing)} is not: a distributed "
            "search needs all three (the chief: KERASTUNER_TUNER_ID=chief; each worker: a "
            "unique KERASTUNER_TUNER_ID such as tuner0), or unset KERASTUNER_ORACLE_IP to "
            "search in one process."
        )
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


# ---------------------------------------------------------------------------------- oracle


def _write_json_atomic(path: str, state) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    records_lib.write_text_atomic(path, json.dumps(state))


class NSGA2Oracle(keras_tuner.Oracle):
    """A keras-tuner Oracle proposing arch codes by NSGA-II (or truncation selection).

    Args:
      space: the `tfnas.search_space.SearchSpace`.
      settings: `tfnas.nsga2.Settings` (population N, selection, variation, cost, budget,
        bounds, seed).
      generations: G; the search runs N * G trials (seed paper 004 §3: 50 x 20 = 1,000,
        the first generation random).
      max_retries_per_trial: a trial that raised is run again this many times, then FAILED
        (a FAILED trial takes no part in selection).
    """

    def __init__(self, space, settings: nsga2.Settings, generations: int, *,
                 max_retries_per_trial: int = 1):
        super().__init__(
            objective=keras_tuner.Objective(OBJECTIVE, "max"),
            max_trials=settings.population * int(generations),
            # keras-tuner draws a random seed for 0; this one is unused (no random hps).
            seed=int(settings.seed) + 1,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max(3, settings.population),
        )
        self.space = space
        self.settings = settings
        self.generations = int(generations)
        self.children: dict[int, list[str]] = {}

    # -- generations --------------------------------------------------------------------

    def _by_index(self) -> dict[int, keras_tuner.engine.trial.Trial]:
        return {int(tid): t for tid, t in self.trials.items()}

    def generation_done(self, generation: int) -> bool:
        """Every trial of ``generation`` has ended (COMPLETED or FAILED)."""
        n = self.settings.population
        by_index = self._by_index()
        ended = ("COMPLETED", "FAILED")
        return all(
            i in by_index and by_index[i].status in ended
            for i in range(generation * n, (generation + 1) * n)
        )

    def finished(self) -> bool:
        """Every trial of the last generation has ended: the search is complete."""
        return self.generation_done(self.generations - 1)

    def generation_rows(self, generation: int) -> list[tuple[str, float, float]]:
        """``(code, acc, cost)`` of the COMPLETED trials of ``generation``, by trial id."""
        n = self.settings.population
        by_index = self._by_index()
        rows = []
        for i in range(generation * n, (generation + 1) * n):
            trial = by_index.get(i)
            if trial is None or trial.status != "COMPLETED":
                continue
            code = trial.hyperparameters.values["code"]
            acc = float(trial.metrics.get_last_value(OBJECTIVE))
            rows.append((code, acc, float(self.settings.cost_of(self.space, code))))
        return rows

    def population_before(self, generation: int) -> list[tuple[str, float, float]]:
        """The population the children of ``generation`` are bred from, replayed."""
        population: list = []
        for g in range(generation):
            population = nsga2.next_population(
                population, self.generation_rows(g), self.settings
            )
        return population

    def populate_space(self, trial_id):
        index = int(trial_id)
        n = self.settings.population
        g = index // n
        if g >= self.generations:
            return {"status": keras_tuner.engine.trial.TrialStatus.STOPPED, "values": None}
        if g not in self.children:
            if g > 0 and not self.generation_done(g - 1):
                return {"status": keras_tuner.engine.trial.TrialStatus.IDLE, "values": None}
            seen = {c for h in range(g) for c in self.children[h]}
            self.children[g] = nsga2.propose(
                self.space, self.population_before(g), seen, self.settings, g
            )
        return {
            "status": keras_tuner.engine.trial.TrialStatus.RUNNING,
            "values": {"code": self.children[g][index % n]},
        }

    # -- state ----------------------------------------------------------------------------

    def get_state(self):
        state = super().get_state()
        state["nsga2"] = {"children": {str(g): c for g, c in self.children.items()}}
        return state

    def set_state(self, state):
        super().set_state(state)
        nsga = state.get("nsga2", {})
        self.children = {int(g): list(c) for g, c in nsga.get("children", {}).items()}

    def save(self):
        _write_json_atomic(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial):
        _write_json_atomic(
            os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"), trial.get_state()
        )

    def reload(self):
        super().reload()
        # A kill between a trial's file and the oracle's file can leave a RUNNING trial
        # that the oracle does not list as ongoing: run it again, or its generation never
        # closes.
        queued = set(self._retry_queue)
        stale = [
            tid for tid, t in self.trials.items() if t.status == "RUNNING" and tid not in queued
        ]
        for tid in sorted(stale, key=int, reverse=True):  # pop() takes the lowest id first
            self._retry_queue.append(tid)


# ----------------------------------------------------------------------------------- tuner


class ScoreCache:
    """Supernet accuracies by code, shared with the ``evaluate`` stage.

    Reads the rows with this fingerprint from ``<workdir>/evaluate/results.jsonl`` and its
    shard files; a code not there is scored by ``evaluator_factory()`` (called once, at the
    first miss, so a fully cached search never loads the supernet) and appended to
    ``results.jsonl`` in the evaluate stage's row format.

    Args:
      workdir: the run's directory.
      space: the search space (for FLOPs and params).
      fingerprint: `tfnas.evaluation.fingerprint` of the supernet and evaluation recipe.
      evaluator_factory: returns an object with ``accuracy(code) -> float``.

    Raises:
      ValueError: ``results.jsonl`` holds scores of another fingerprint (the evaluate stage
        refuses to resume it too).
    """

    def __init__(self, workdir, space, fingerprint: str, evaluator_factory):
        self.path = Path(workdir) / EVALUATE_RESULTS
        self.space = space
        self.fingerprint = fingerprint
        self._factory = evaluator_factory
        self._evaluator = None
        self.scored = 0  # codes scored by this process (not found in the cache)
        records_lib.drop_torn_line(self.path)
        own = records_lib.read_jsonl(self.path)
        other = records_lib.foreign_fingerprints(own, fingerprint)
        if other:
            raise ValueError(
                f"{self.path} holds scores of another supernet or evaluation recipe "
                f"(fingerprint {', '.join(other)}; this search's is {fingerprint}), and the "
                "search shares that file with the evaluate stage. Run --stage=evaluate "
                "--overwrite (it moves the file aside), or use another --workdir."
            )
        self.rows = {}
        for shard in sorted(self.path.parent.glob(EVALUATE_SHARDS)):
            rows = records_lib.read_jsonl(shard)
            self.rows.update({c: r for c, r in rows.items() if r.get("fingerprint") == fingerprint})
        self.rows.update(own)

    def score(self, code: str) -> dict:
        """``{"acc", "flops", "params"}`` of ``code``, from the cache or scored now."""
        row = self.rows.get(code)
        if row is None:
            if self._evaluator is None:
                self._evaluator = self._factory()
            flops, params = self.space.cost(code)
            row = dict(
                code=code,
                acc=float(self._evaluator.accuracy(code)),
                flops=int(flops),
                params=int(params),
                fingerprint=self.fingerprint,
            )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with records_lib.Appender(self.path) as out:
                out.write(row)
            self.rows[code] = row
            self.scored += 1
        return {"acc": float(row["acc"]), "flops": float(row["flops"]),
                "params": float(row["params"])}


class SupernetSearchTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """A keras-tuner ``BaseTuner`` whose trials score one arch each with a `ScoreCache`.

    ``run_trial`` returns ``{"acc", "flops", "params"}`` (keras-tuner reports it to the
    oracle); there is no model to save. Works for any supernet kind: the scoring is
    `tfnas.evaluation`'s (routing, BN recalibration) whatever the supernet.

    Args:
      oracle: an `NSGA2Oracle`.
      cache: a `ScoreCache` (None on the chief, which scores nothing).
      directory, project_name: keras-tuner's project directory (the resumable state).
      log: ``log(message)`` after each trial (None: silent).
    """

    def __init__(self, oracle, cache, *, directory, project_name="tuner", log=print):
        self.cache = cache
        self.log = log
        # A worker's oracle becomes a gRPC client that exposes no settings: keep N here.
        self._population = oracle.settings.population
        self._last: dict = {}
        self._ran = True
        self._started = time.perf_counter()
        self._trials_run = 0
        super().__init__(oracle, hypermodel=None, directory=str(directory),
                         project_name=project_name, overwrite=False)

    def run_trial(self, trial, *args, **kwargs):
        if self.cache is None:
            raise RuntimeError("the chief hosts the oracle and scores no trial")
        self._last = self.cache.score(trial.hyperparameters.values["code"])
        return self._last

    def pre_create_trial(self):
        # keras-tuner asks again at once after IDLE; back off instead of spinning.
        if not self._ran:
            time.sleep(IDLE_SECONDS)
        self._ran = False

    def on_trial_begin(self, trial):
        self._ran = True
        self._last = {}

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        self._trials_run += 1
        if self.log is not None:
            index = int(trial.trial_id)
            acc = self._last.get(OBJECTIVE, float("nan"))
            rate = self._trials_run / max(time.perf_counter() - self._started, 1e-9) * 60
            self.log(
                f"search: trial {index} (generation {index // self._population}, "
                f"{trial.status}) acc={acc:.4f} {trial.hyperparameters.values.get('code')} "
                f"[{rate:.1f} trials/min]"
            )

    def save_model(self, trial_id, model, step=0):
        pass

    def load_model(self, trial):
        return None

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        _write_json_atomic(self._get_tuner_fname(), self.get_state())


# -------------------------------------------------------------------------------- products


def evaluated_rows(oracle: NSGA2Oracle) -> list[dict]:
    """Every COMPLETED trial as ``{"code", "acc", "flops", "params", "generation",
    "trial", "feasible"}``, by trial id; a code proposed twice (only in an exhausted space)
    appears once, at its first trial."""
    rows, seen = [], set()
    n = oracle.settings.population
    budget = oracle.settings.budget
    for index, trial in sorted(oracle._by_index().items()):
        if trial.status != "COMPLETED":
            continue
        code = trial.hyperparameters.values["code"]
        if code in seen:
            continue
        seen.add(code)
        flops, params = oracle.space.cost(code)
        cost = flops if oracle.settings.cost == "flops" else params
        rows.append(
            dict(
                code=code,
                acc=float(trial.metrics.get_last_value(OBJECTIVE)),
                flops=int(flops),
                params=int(params),
                generation=index // n,
                trial=index,
                feasible=bool(not budget or cost <= budget),
            )
        )
    return rows


def _front(rows: list[dict], cost: str, budget: float) -> list[int]:
    return nsga2.pareto_front([(r["code"], r["acc"], float(r[cost])) for r in rows], budget)


def cost_reference(space, settings: nsga2.Settings) -> float:
    """The cost the hypervolume is normalised by: the budget, else the largest arch's."""
    return float(settings.budget) or float(settings.cost_of(space, space.largest(settings.bounds)))


def hypervolume(rows: list[dict], cost: str, reference_cost: float) -> float:
    """Area dominated by the feasible archs in (accuracy up, cost / reference_cost down),
    from the reference point (accuracy 0, cost 1.1 x reference): in [0, 1.1]."""
    points = [(-r["acc"], r[cost] / reference_cost) for r in rows if r["feasible"]]
    return nsga2.hypervolume_2d(points, (0.0, 1.1)) if points else 0.0


def generation_history(rows: list[dict], settings: nsga2.Settings, space) -> list[dict]:
    """Per generation g: archs evaluated up to g, the front's size, hypervolume and the
    most accurate feasible arch so far."""
    ref = cost_reference(space, settings)
    history = []
    last = max((r["generation"] for r in rows), default=-1)
    for g in range(last + 1):
        upto = [r for r in rows if r["generation"] <= g]
        front = _front(upto, settings.cost, settings.budget)
        feasible = [r for r in upto if r["feasible"]]
        best = max(feasible, key=lambda r: r["acc"], default=None)
        history.append(
            dict(
                generation=g,
                evaluated=len(upto),
                front=[upto[i]["code"] for i in front],
                front_size=len(front),
                hypervolume=hypervolume(upto, settings.cost, ref),
                best_feasible_acc=None if best is None else best["acc"],
                best_feasible=None if best is None else best["code"],
            )
        )
    return history


def front_figure(rows: list[dict], history: list[dict], settings: nsga2.Settings,
                 upto: int | None = None, title: str | None = None):
    """Accuracy against cost: every arch evaluated (up to generation ``upto``) as a grey
    point, the front after each generation as a step line (light to dark by generation),
    the last front's archs in `tfnas.plotting.HIGHLIGHT_COLOR`, the budget dashed."""
    import matplotlib

    from tfnas import plotting

    upto = len(history) - 1 if upto is None else upto
    scale, unit = (1e6, "M MACs") if settings.cost == "flops" else (1e6, "M params")
    pts = [r for r in rows if r["generation"] <= upto]
    by_code = {r["code"]: r for r in rows}
    fig, ax = plotting.new_figure(figsize=(5.0, 3.6))
    ax.scatter([r[settings.cost] / scale for r in pts], [r["acc"] for r in pts],
               s=8, color="#b0b0b0", linewidths=0, zorder=2, label="evaluated")
    cmap = matplotlib.colormaps["viridis"]
    for g in range(upto + 1):
        front = sorted((by_code[c] for c in history[g]["front"]),
                       key=lambda r: r[settings.cost])
        if not front:
            continue
        xs = [r[settings.cost] / scale for r in front]
        ys = [r["acc"] for r in front]
        color = cmap(0.15 + 0.7 * g / max(upto, 1))
        ax.step(xs, ys, where="post", color=color, linewidth=0.9, zorder=3,
                alpha=0.5 if g < upto else 1.0)
    last = [by_code[c] for c in history[upto]["front"]]
    ax.scatter([r[settings.cost] / scale for r in last], [r["acc"] for r in last], s=18,
               color=plotting.HIGHLIGHT_COLOR, linewidths=0, zorder=4,
               label=f"front after generation {upto}")
    if settings.budget:
        ax.axvline(settings.budget / scale, color=plotting.REFERENCE_COLOR, linestyle="--",
                   linewidth=0.8, label="budget")
    ax.legend(fontsize=plotting.TICK_SIZE - 1, loc="lower right")
    ax.set_xlabel(unit, fontsize=plotting.LABEL_SIZE)
    ax.set_ylabel("supernet accuracy (BN recalibrated)", fontsize=plotting.LABEL_SIZE)
    ax.set_title(title or f"search: {history[upto]['evaluated']} archs, "
                 f"hypervolume {history[upto]['hypervolume']:.4f}",
                 fontsize=plotting.TITLE_SIZE)
    return fig


COLUMNS = ("code", "acc", "flops", "params", "generation", "trial", "feasible", "front")


def write_tsv(path, rows: list[dict]) -> None:
    """The rows as tab-separated values with a header line (`COLUMNS`)."""
    lines = ["\t".join(COLUMNS)]
    lines += ["\t".join(str(r[c]) for c in COLUMNS) for r in rows]
    records_lib.write_text_atomic(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------------- the front, for stages


def front_records(workdir, spec: str, path=None) -> list[tuple[str, str]] | None:
    """``[(key, code)]`` of ``--codes=search`` (the whole front) or ``--codes=search:K``
    (its K most accurate archs) from ``path``, the ``front`` of the ``search`` stage's
    manifest in ``workdir`` (named in errors); None when ``spec`` names neither (it is a
    file or a list of codes).

    Raises:
      ValueError: no search manifest, or a bad K.
    """
    if spec != "search" and not spec.startswith("search:"):
        return None
    k_text = spec.partition(":")[2]
    k = None
    if k_text:
        if not k_text.isdigit() or int(k_text) < 1:
            raise ValueError(
                f"--codes={spec}: expected search (the whole front) or search:K with K >= 1 "
                "(its K most accurate archs), e.g. --codes=search:3"
            )
        k = int(k_text)
    if not path or not Path(path).exists():
        raise ValueError(
            f"--codes={spec}: no search front in --workdir={workdir}; run --stage=search "
            "there first, or pass the codes (--codes=FILE or CODE,CODE)"
        )
    front = json.loads(Path(path).read_text())["results"]
    front = sorted(front, key=lambda r: -float(r["acc"]))[:k]  # stable: ties keep file order
    return [(f"front{i}", r["code"]) for i, r in enumerate(front, 1)]


def front_accuracies(path) -> tuple[str | None, dict[str, float]]:
    """(path, {code: acc}) of the ``search`` stage's front file ``path`` (the ``front`` of
    its manifest); (None, {}) if none."""
    if not path or not Path(path).exists():
        return None, {}
    rows = json.loads(Path(path).read_text())["results"]
    return path, {r["code"]: float(r["acc"]) for r in rows}


# ------------------------------------------------------------------------ the config section

CONFIG_FIELDS = (
    "supernet",
    "population",
    "generations",
    "selection",
    "num_parents",
    "crossover_prob",
    "mutation_prob",
    "objective",
    "budget",
    "bounds",
    "seed",
)


def validate_config(section) -> None:
    """Checks the ``search`` section of an experiment config (`tfnas.config_lib`).

    Fields (the ``search`` stage, `tfnas.stages.search`):

    - ``supernet``: the ``supernet.keras`` to search (empty: the ``oneshot`` stage's
      manifest in the same workdir, like ``evaluate.supernet``).
    - ``population`` (int >= 2): N archs per generation (seed paper 004 §3: 50).
    - ``generations`` (int >= 1): G; N * G archs are scored, the first generation random
      (seed paper 004 §3: 20).
    - ``selection``: ``nsga2`` (rank and crowding distance, binary tournaments, elitist
      survival; Deb et al. 2002) or ``truncation`` (parents drawn from the ``num_parents``
      most accurate feasible archs so far; seed paper 004 §3).
    - ``num_parents`` (int >= 1): the parents of ``truncation`` (seed paper 004 §3: 20).
    - ``crossover_prob``, ``mutation_prob`` in [0, 1]: stage-wise crossover, then each gene
      redrawn within the bounds (SCHEMES.md §6.3: 0.9 and 0.1).
    - ``objective``: the cost axis, ``flops`` (multiply-accumulates) or ``params``.
    - ``budget`` (number >= 0): the largest feasible cost in the objective's unit (e.g.
      ``2e6`` MACs); 0: unconstrained. Infeasible archs lose to feasible ones (constrained
      domination) and the first generation is drawn within it.
    - ``bounds``: a `tfnas.search_space.BOUNDS_PRESETS` name, or empty for ``train.bounds``.
    - ``seed`` (int >= 0): generation g draws from ``default_rng([seed, g])``.

    Raises:
      ValueError: naming ``config.search.<field>``, the value, what is expected and how to
        fix it; also for a missing or unknown field.
    """
    from tfnas import config_checks

    fields = config_checks.Section(
        section, "search", CONFIG_FIELDS, owner="tfnas.search.validate_config"
    )
    fields.string("supernet")
    fields.integer("population", 2)
    fields.integer("generations", 1)
    fields.choice("selection", nsga2.SELECTIONS)
    fields.integer("num_parents", 1)
    fields.number("crossover_prob", 0.0, 1.0)
    fields.number("mutation_prob", 0.0, 1.0)
    fields.choice("objective", nsga2.COSTS)
    fields.number("budget", 0.0)
    fields.choice(
        "bounds",
        ("", *ss.BOUNDS_PRESETS),
        fix="set --config.search.bounds to a preset, or to '' for config.train.bounds",
    )
    fields.integer("seed", 0)


def check_budget(space, settings: nsga2.Settings) -> None:
    """Raises ValueError when no arch within the bounds fits the budget."""
    if not settings.budget:
        return
    smallest = settings.cost_of(space, space.smallest(settings.bounds))
    if smallest > settings.budget:
        raise ValueError(
            f"config.search.budget={settings.budget:g} is below the cost of the smallest arch "
            f"within the bounds ({smallest} {settings.cost}): no arch is feasible. Raise "
            "--config.search.budget, or set it to 0 for no constraint."
        )

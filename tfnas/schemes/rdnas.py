"""RD-NAS: the sandwich rule plus a pairwise ranking term taught by a prior (seed paper 003).

Usage (``bin/train --stage=oneshot`` with ``--config.train.scheme=rdnas``; fields in
``config.train.rdnas``, see `validate_config`)::

    scheme = RDNASScheme("fmnist", seed=0, num_random=2, steps_per_epoch=469, epochs=70)
    trainer = SupernetTrainer(supernet, scheme, weight_decay=5e-5)

Each step runs the sandwich members (`SandwichScheme`: the largest on the labels with
dropout and L2 as the in-place teacher, the smallest and ``num_random`` random subnets
distilled from it), then ``num_pairs`` pairs (a, b) of subnets ranked against each other
by a prior (SCHEMES.md §4.1 step 2d):

- ``loss="hinge"`` (as shipped, SCHEMES.md §4.2): member ``pair<j>_a`` runs forward only
  (target ``none``); member ``pair<j>_b`` has target ``rank_hinge``:
  ``lambda(t) * relu(s * (L_b - sg(L_a)))``, with ``s = +1`` when the prior says b is the
  better one and ``-1`` otherwise (ties: a is the better one, as R3 codes it). Margin 0;
  only b gets a gradient (it is pushed *up* when a should be better).
- ``loss="margin"`` (the paper's "margin ranking loss with group distance as margin", seed
  paper 003 abstract; SCHEMES.md §4.2 "a faithful version"): one member ``pair<j>`` with
  target ``rank_margin`` runs b and a in one tape, ``lambda(t) * relu(mu - s * (L_a - L_b))``
  with both losses live. The margin is ``mu = margin_scale * d(a, b) / mean_d``: the group
  distance of a and b is their `tfnas.sampling.arch_distance` (seed paper 001 Eq. 2)
  normalized by the mean distance of the pair sampler's own pairs, so ``margin_scale`` is
  the margin of a typical pair, in units of cross-entropy.

Priors (higher = better): ``flops`` and ``params`` are computed in-graph
(`tfnas.proxies.flops_tensor`, `params_tensor`; FLOPs is R3's shipped teacher); a proxy
table is a ``scores.json`` of the ``proxies`` stage and a proxy name: its codes with a
finite score become a constant pool, a is drawn from it with `tfnas.sampling.list_arch`
(each pass covers the pool once) and b uniformly from it, and both priors are gathered by
index (SCHEMES.md §4.8: data-dependent proxies are precomputed, never computed in a step).

Pairs come from the margin subnet sampler (SCHEMES.md §4.1 step 3, §4.3): b is redrawn
(`tfnas.sampling.rejection_arch`, at most ``max_tries`` times) until its distance to a is
at least a threshold. The threshold is not a fixed number (R3's 33 was the median over the
competition codes): it is the ``min_distance_quantile`` quantile of the distance between
two independent draws of the pair sampler itself (the space's sampler within ``bounds``,
or the pool), computed once at construction in NumPy from ``DISTANCE_SAMPLES`` pairs of
``np.random.default_rng(seed)`` -- deterministic in the seed. Quantile 0 accepts every pair.
A pair whose tries are exhausted keeps its last draw and is counted in the state variable
``exhausted_pairs`` (saved in checkpoints).

The weight lambda(t) is a tensor of the step, with ``epoch = step // steps_per_epoch``
(0-based, per epoch as R3) and E = ``epochs`` (SCHEMES.md §4.2, §4.5):

- ``warmup`` (shipped): ``min(lambda_max, lambda_max * epoch / ramp_epochs)``; with the
  defaults 2 and 20 this is R3's ``min(2, epoch / 10)``.
- ``constant``: ``lambda_max`` (R3's Zen variant uses 1).
- ``sine``: ``lambda_max * sin(0.8 pi epoch / E)`` (PicoNAS; R3's ``labmda.png``).

Member seeds: the sandwich's random members use member indices 0..num_random-1
(`Scheme.sample`), pair j's a and b the indices ``num_random + 2j`` and
``num_random + 2j + 1``, so every replica and a resumed run draws the same pairs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfnas import config_checks
from tfnas import proxies
from tfnas import sampling
from tfnas import search_space as ss
from tfnas.schemes.base import Member
from tfnas.schemes.sandwich import SandwichScheme

PRIORS = ("flops", "params", "table")
LOSSES = ("hinge", "margin")
SCHEDULES = ("warmup", "constant", "sine")
# Pairs drawn (NumPy, at construction) to estimate the sampler's distance distribution.
DISTANCE_SAMPLES = 2000

# The defaults of ``config.train.rdnas`` (`tfnas.config_lib.base_config`).
DEFAULTS = dict(
    num_pairs=2,
    prior="flops",
    proxy_table="",
    proxy_name="",
    # R3's hinge: the margin loss ranked no better on the Fashion-MNIST benchmark (paired
    # tau +0.043 [-0.090, +0.176], p = 0.46, n = 40; README "Ranking distillation").
    loss="hinge",
    margin_scale=0.05,
    lambda_schedule="warmup",
    lambda_max=2.0,
    lambda_ramp_epochs=20.0,
    min_distance_quantile=0.5,
    max_tries=10,
)


def lambda_schedule(step, schedule, steps_per_epoch, epochs, lambda_max=2.0, ramp_epochs=20.0):
    """lambda(t): the ranking term's weight at ``step`` (float32 scalar tensor).

    Args:
      step: the optimizer step (int scalar tensor or int).
      schedule: one of `SCHEDULES` (see the module docstring).
      steps_per_epoch: steps of one epoch (int >= 1); ``epoch = step // steps_per_epoch``.
      epochs: E, the length of the run in epochs (``sine``).
      lambda_max: the plateau (``warmup``), the value (``constant``), the amplitude
        (``sine``).
      ramp_epochs: epochs of the ``warmup`` ramp from 0 to ``lambda_max``.
    """
    if schedule not in SCHEDULES:
        raise ValueError(
            f"Unknown lambda schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}."
        )
    epoch = tf.cast(tf.cast(step, tf.int64) // int(steps_per_epoch), tf.float32)
    top = tf.constant(float(lambda_max), tf.float32)
    if schedule == "warmup":
        return tf.minimum(top, top * epoch / float(ramp_epochs))
    if schedule == "constant":
        return top + 0.0 * epoch
    return top * tf.sin(0.8 * math.pi * epoch / float(epochs))


def load_proxy_table(path, proxy_name: str, space) -> tuple[np.ndarray, np.ndarray]:
    """(codes int32 [N, 52], scores float64 [N]) of ``proxy_name`` in a proxies ``scores.json``.

    Codes whose score is null (non-finite, e.g. NASWOT's -inf) are left out.

    Raises:
      ValueError: the file is missing or not a proxies ``scores.json``, the proxy is not in
        it, a code is not of ``space``, or fewer than 2 codes have a finite score.
    """
    space = ss.get_space(space)
    path = Path(path)
    fix = "run bin/train --stage=proxies first, or fix --config.train.rdnas.proxy_table"
    if not path.is_file():
        raise ValueError(f"RD-NAS proxy table {str(path)!r} does not exist; {fix}.")
    try:
        payload = json.loads(path.read_text())
        names, results = payload["proxies"], payload["results"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"RD-NAS proxy table {str(path)!r} is not a proxies stage scores.json (expected "
            f"'proxies' and 'results'): {err}; {fix}."
        ) from None
    if proxy_name not in names:
        raise ValueError(
            f"RD-NAS proxy {proxy_name!r} is not in {str(path)!r}, which has {names}; set "
            "--config.train.rdnas.proxy_name to one of them."
        )
    codes, scores = [], []
    for row in results:
        value = row["scores"].get(proxy_name)
        if value is None or not math.isfinite(value):
            continue
        try:
            arch = space.parse(row["code"])
        except ValueError as err:
            raise ValueError(
                f"RD-NAS proxy table {str(path)!r} has the code {row['code']!r}, which is not "
                f"of the space {space.name!r}: {err}"
            ) from None
        codes.append(arch.digits())
        scores.append(float(value))
    if len(codes) < 2:
        raise ValueError(
            f"RD-NAS proxy table {str(path)!r} has {len(codes)} codes with a finite "
            f"{proxy_name!r} score; pairs need at least 2. Score more codes."
        )
    return np.stack(codes).astype(np.int32), np.asarray(scores, np.float64)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`search_space.arch_distance` of rows of digits (NumPy, vectorized)."""
    wa, wb = a[:, 5:], b[:, 5:]
    return np.abs(np.where(wa == 0, 9, wa) - np.where(wb == 0, 9, wb)).sum(axis=1)


class RDNASScheme(SandwichScheme):
    """The sandwich members plus ``num_pairs`` prior-ranked pairs (see the module docstring).

    Args:
      space, seed, num_random, dropout, bounds: see `SandwichScheme`.
      steps_per_epoch: steps of one epoch (int >= 1), for lambda's epoch.
      epochs: the run's epochs (the ``sine`` schedule's E).
      num_pairs: ranked pairs per step (>= 1).
      prior: one of `PRIORS`; ``table`` reads ``proxy_table`` (a proxies ``scores.json``) for
        ``proxy_name``.
      loss: ``hinge`` (as shipped) or ``margin`` (both losses live).
      margin_scale: the margin of a pair at the mean sampler distance (``margin``).
      lambda_schedule, lambda_max, lambda_ramp_epochs: lambda(t), see `lambda_schedule`.
      min_distance_quantile: in [0, 1): the pair sampler's distance threshold, as a
        quantile of its own distance distribution.
      max_tries: at most this many draws of b per pair (>= 1).
    """

    scheme_name = "rdnas"

    def __init__(
        self,
        space,
        seed=0,
        num_random=2,
        dropout=0.0,
        bounds=None,
        *,
        steps_per_epoch=1,
        epochs=1,
        num_pairs=DEFAULTS["num_pairs"],
        prior=DEFAULTS["prior"],
        proxy_table=DEFAULTS["proxy_table"],
        proxy_name=DEFAULTS["proxy_name"],
        loss=DEFAULTS["loss"],
        margin_scale=DEFAULTS["margin_scale"],
        lambda_schedule=DEFAULTS["lambda_schedule"],
        lambda_max=DEFAULTS["lambda_max"],
        lambda_ramp_epochs=DEFAULTS["lambda_ramp_epochs"],
        min_distance_quantile=DEFAULTS["min_distance_quantile"],
        max_tries=DEFAULTS["max_tries"],
        **kwargs,
    ):
        super().__init__(space, seed, num_random, dropout, bounds, **kwargs)
        checks = [
            ("steps_per_epoch", steps_per_epoch, isinstance(steps_per_epoch, int)
             and steps_per_epoch >= 1, "an integer >= 1"),
            ("epochs", epochs, isinstance(epochs, int) and epochs >= 1, "an integer >= 1"),
            ("num_pairs", num_pairs, isinstance(num_pairs, int) and 1 <= num_pairs
             and self.num_random + 2 * num_pairs <= sampling.MAX_MEMBERS,
             f"an integer with num_random + 2 * num_pairs <= {sampling.MAX_MEMBERS}"),
            ("prior", prior, prior in PRIORS, f"one of {PRIORS}"),
            ("loss", loss, loss in LOSSES, f"one of {LOSSES}"),
            ("lambda_schedule", lambda_schedule, lambda_schedule in SCHEDULES,
             f"one of {SCHEDULES}"),
            ("min_distance_quantile", min_distance_quantile,
             0.0 <= min_distance_quantile < 1.0, "a number in [0, 1)"),
            ("max_tries", max_tries, isinstance(max_tries, int) and max_tries >= 1,
             "an integer >= 1"),
        ]
        for name, value, ok, expected in checks:
            if not ok:
                raise ValueError(
                    f"RDNASScheme got {name}={value!r}; expected {expected}. Set "
                    f"--config.train.rdnas.{name} (steps_per_epoch, epochs: config.train)."
                )
        self.steps_per_epoch = int(steps_per_epoch)
        self.epochs = int(epochs)
        self.num_pairs = int(num_pairs)
        self.prior = prior
        self.proxy_table = str(proxy_table)
        self.proxy_name = str(proxy_name)
        self.loss = loss
        self.margin_scale = float(margin_scale)
        self.lambda_schedule = lambda_schedule
        self.lambda_max = float(lambda_max)
        self.lambda_ramp_epochs = float(lambda_ramp_epochs)
        self.min_distance_quantile = float(min_distance_quantile)
        self.max_tries = int(max_tries)
        rng = np.random.default_rng(self.seed)
        if prior == "table":
            codes, scores = load_proxy_table(self.proxy_table, self.proxy_name, self.space)
            self._pool = tf.constant(codes)
            self._pool_scores = tf.constant(scores)
            self._pool_index = tf.range(len(codes), dtype=tf.int32)[:, None]
            i = rng.integers(0, len(codes), size=(2, DISTANCE_SAMPLES))
            first, second = codes[i[0]], codes[i[1]]
        else:
            self._pool = None
            draws = [
                self.space.sample(rng, bounds).digits() for _ in range(2 * DISTANCE_SAMPLES)
            ]
            first = np.stack(draws[:DISTANCE_SAMPLES])
            second = np.stack(draws[DISTANCE_SAMPLES:])
        distances = _distances(first, second)
        # The sampler's own distance distribution (SCHEMES.md §4.3), not a fixed number.
        self.min_distance = int(
            np.quantile(distances, self.min_distance_quantile, method="lower")
        )
        # The group distance's unit: margin_scale is the margin of a mean-distance pair.
        self.mean_distance = float(max(distances.mean(), 1.0))
        if bounds is not None and prior != "table":
            self._bounds_t = sampling.bounds_tensors(bounds)
        self._exhausted = []

    def build(self, input_shape=None):
        self.exhausted_pairs = self.add_state("exhausted_pairs", [], "int64")
        self.built = True

    # -- pieces --------------------------------------------------------------------------

    def weight(self, step) -> tf.Tensor:
        """lambda(step), the pairs' loss weight."""
        return lambda_schedule(
            step,
            self.lambda_schedule,
            self.steps_per_epoch,
            self.epochs,
            self.lambda_max,
            self.lambda_ramp_epochs,
        )

    def _draw(self, seed) -> tf.Tensor:
        if self.bounds is None:
            return sampling.uniform_arch(seed, self.space)
        return sampling.bounded_arch(seed, self.space, *self._bounds_t)

    def _prior(self, arch) -> tf.Tensor:
        if self.prior == "flops":
            return proxies.flops_tensor(self.space, arch)
        return proxies.params_tensor(self.space, arch)

    def pair(self, step, j: int):
        """Pair ``j`` at ``step``: (a, b, rank_sign, exhausted).

        ``rank_sign`` is +1.0 when the prior of b is strictly higher (b should be the
        better one), else -1.0 (ties: a, as R3's ``k_a >= k_b`` branch).
        """
        step = tf.cast(step, tf.int64)
        index_a = self.num_random + 2 * j
        seed_b = sampling.member_seed(self.seed, step, index_a + 1)
        threshold = tf.constant(self.min_distance, tf.int32)
        if self._pool is None:
            a = self._draw(sampling.member_seed(self.seed, step, index_a))
            b, _, exhausted = sampling.rejection_arch(
                seed_b,
                self._draw,
                lambda arch: sampling.arch_distance(a, arch) >= threshold,
                self.max_tries,
            )
            prior_a, prior_b = self._prior(a), self._prior(b)
        else:
            # a: without replacement per pass over the pool; b: uniform over the pool. The
            # draw carries the pool index as a 53rd digit so the prior is gathered by index.
            draw_number = step * self.num_pairs + j
            i_a = sampling.list_arch(self.seed, draw_number, self._pool_index)[0]
            a = tf.gather(self._pool, i_a)
            n = tf.shape(self._pool)[0]

            def draw(seed):
                i = tf.random.stateless_uniform([], seed=seed, maxval=n, dtype=tf.int32)
                return tf.concat([tf.gather(self._pool, i), [i]], axis=0)

            drawn, _, exhausted = sampling.rejection_arch(
                seed_b,
                draw,
                lambda row: sampling.arch_distance(a, row[:52]) >= threshold,
                self.max_tries,
            )
            b = drawn[:52]
            prior_a = tf.gather(self._pool_scores, i_a)
            prior_b = tf.gather(self._pool_scores, drawn[52])
        sign = tf.where(prior_b > prior_a, 1.0, -1.0)
        return a, b, sign, exhausted

    # -- the step ------------------------------------------------------------------------

    def members(self, step):
        members = super().members(step)
        lam = self.weight(step)
        self._exhausted = []
        for j in range(self.num_pairs):
            a, b, sign, exhausted = self.pair(step, j)
            self._exhausted.append(exhausted)
            name = f"pair{j + 1}"
            if self.loss == "hinge":
                members.append(Member(f"{name}_a", a, "none"))
                members.append(
                    Member(f"{name}_b", b, "rank_hinge", weight=lam, pair=f"{name}_a",
                           rank_sign=sign)
                )
            else:
                distance = tf.cast(sampling.arch_distance(a, b), tf.float32)
                margin = self.margin_scale * distance / self.mean_distance
                members.append(
                    Member(name, b, "rank_margin", weight=lam, pair_arch=a, rank_sign=sign,
                           margin=margin)
                )
        return members

    def update(self, step, context):
        # The exhausted flags of this trace's members(step) (the trainer calls members, then
        # update, in the same step).
        if self._exhausted:
            count = tf.add_n([tf.cast(e, tf.int64) for e in self._exhausted])
            self.exhausted_pairs.assign_add(count)

    def get_config(self):
        config = super().get_config()
        config.update(
            steps_per_epoch=self.steps_per_epoch,
            epochs=self.epochs,
            num_pairs=self.num_pairs,
            prior=self.prior,
            proxy_table=self.proxy_table,
            proxy_name=self.proxy_name,
            loss=self.loss,
            margin_scale=self.margin_scale,
            lambda_schedule=self.lambda_schedule,
            lambda_max=self.lambda_max,
            lambda_ramp_epochs=self.lambda_ramp_epochs,
            min_distance_quantile=self.min_distance_quantile,
            max_tries=self.max_tries,
        )
        return config


def scheme_from_config(config, space, seed, dropout, bounds, steps_per_epoch=None, **common):
    """The `RDNASScheme` of an experiment config (`tfnas.schemes.build_scheme` calls it;
    ``common``: the `Scheme` arguments every scheme takes, e.g. ``phase_bounds``).

    ``steps_per_epoch``: the run's (``tfnas.stages.oneshot.steps_per_epoch``); None takes
    ``config.train.steps_per_epoch``, which must then be set (> 0).
    """
    section = config.train.rdnas
    if steps_per_epoch is None:
        steps_per_epoch = int(config.train.steps_per_epoch)
        if steps_per_epoch < 1:
            raise ValueError(
                "The rdnas scheme needs the steps per epoch for lambda(t): received "
                "build_scheme(config) without steps_per_epoch and config.train.steps_per_epoch"
                "=0 (one pass). Pass build_scheme(config, steps_per_epoch=...) or set "
                "--config.train.steps_per_epoch."
            )
    return RDNASScheme(
        space,
        seed,
        config.train.num_random_subnets,
        dropout,
        bounds,
        steps_per_epoch=int(steps_per_epoch),
        epochs=int(config.train.epochs),
        **{k: section[k] for k in DEFAULTS},
        **common,
    )


def validate_config(section) -> None:
    """Checks ``config.train.rdnas``, the RD-NAS scheme's fields (``train.scheme=rdnas``).

    Fields (defaults: `DEFAULTS`; the module docstring explains each mechanism):

    - ``num_pairs`` (int >= 1): ranked pairs per step (R3: 2 with FLOPs, 3 with Zen).
    - ``prior``: ``flops`` (shipped), ``params`` or ``table``.
    - ``proxy_table``: for ``table``, the ``scores.json`` of the ``proxies`` stage (e.g.
      ``<workdir>/proxies/scores.json``); ``proxy_name``: the proxy in it (e.g. ``zen``).
      Both empty for the in-graph priors.
    - ``loss``: ``hinge`` (as shipped: margin 0, b only) or ``margin`` (both live).
    - ``margin_scale`` (>= 0): the margin of a mean-distance pair (``margin``).
    - ``lambda_schedule``: ``warmup`` (shipped), ``constant`` or ``sine``;
      ``lambda_max`` (>= 0) and ``lambda_ramp_epochs`` (> 0, ``warmup``).
    - ``min_distance_quantile`` in [0, 1): the pair sampler's threshold as a quantile of its
      own distance distribution (0: every pair accepted).
    - ``max_tries`` (int >= 1): draws of b per pair before the last one is kept.

    Raises:
      ValueError: naming ``config.train.rdnas.<field>``, the value, what is expected and how
        to fix it; also for a missing or unknown field.
    """
    fields = config_checks.Section(
        section, "train.rdnas", tuple(DEFAULTS), owner="tfnas.schemes.rdnas.validate_config"
    )
    fields.integer("num_pairs", 1, (sampling.MAX_MEMBERS - 1) // 2)
    prior = fields.choice("prior", PRIORS)
    table = fields.string("proxy_table")
    name = fields.string("proxy_name")
    if prior == "table":
        if not table or not name:
            raise fields.fail(
                "proxy_table" if not table else "proxy_name",
                table if not table else name,
                "a proxies stage scores.json and a proxy name in it when prior='table'",
                "set --config.train.rdnas.proxy_table=WORKDIR/proxies/scores.json and "
                "--config.train.rdnas.proxy_name=NAME",
            )
    elif table or name:
        raise fields.fail(
            "proxy_table" if table else "proxy_name",
            table or name,
            f"'' with prior={prior!r} (the table is read only for prior='table')",
            "set --config.train.rdnas.prior=table, or clear the field",
        )
    fields.choice("loss", LOSSES)
    fields.number("margin_scale", 0.0)
    fields.choice("lambda_schedule", SCHEDULES)
    fields.number("lambda_max", 0.0)
    fields.number("lambda_ramp_epochs", 0.0, low_open=True)
    fields.number("min_distance_quantile", 0.0, 1.0, high_open=True)
    fields.integer("max_tries", 1)

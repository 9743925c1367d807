"""Ranking quality during supernet training: a Keras callback (Figure 2 of seed paper 000).

Every ``every_epochs`` epochs `RankingMonitor` scores a fixed set of archs with the
supernet being trained -- BN recalibration, then accuracy, by a `tfnas.evaluation
.SubnetEvaluator` built once around the trainer's supernet -- and compares the scores with
their stand-alone (ground-truth) accuracies::

    monitor = RankingMonitor(
        ground_truth={code: acc, ...},                  # or from_config(...)
        evaluator_factory=lambda net: evaluation.build_evaluator(config, net),
        log_dir=stage_dir / "tensorboard",
        checkpoint_dir=stage_dir / "monitor",
    )
    trainer.fit(ds, epochs=E, callbacks=[..., monitor, tensorboard_callback])

What it produces:

* TensorBoard, run ``<log_dir>/ranking``, step = completed epochs: scalars
  ``ranking/kendall_tau``, ``ranking/spearman_rho``, ``ranking/pearson_r``,
  ``ranking/mean_supernet_acc``, ``ranking/seconds``, and the image ``ranking/scatter``
  (x: ground truth, y: supernet accuracy after BN recalibration, titled with the epoch and
  Kendall tau; drawn with matplotlib by `tfnas.plotting.scatter`);
* ``<checkpoint_dir>/best_tau.keras``: the supernet of the epoch with the highest Kendall
  tau so far (written only when tau strictly improves), with ``best_tau.json`` (epoch and
  metrics); a resumed run reads ``best_tau.json`` back, so it only replaces a better past
  checkpoint;
* ``<checkpoint_dir>/history.jsonl``: one line per evaluation (epoch, metrics, each arch's
  supernet accuracy), also kept in ``monitor.history``;
* the epoch ``logs`` get ``ranking_kendall_tau``, ``ranking_spearman_rho`` and
  ``ranking_pearson_r``: put the monitor before `keras.callbacks.TensorBoard` to log them
  there as well.

A metric is undefined (``None``, not logged) when the supernet gives every arch the same
accuracy (typical in the first epochs); training goes on.

**The ground truth never enters a loss or a gradient.** It only selects which checkpoint is
kept as ``best_tau.keras`` and is logged. That selection is still a use of the ground truth:
the tau of the selected checkpoint on these same archs is optimistically biased, so report a
checkpoint's ranking quality on archs disjoint from the monitor's set (e.g. the ``rank``
stage on another ground-truth file).

Cost: each evaluation recalibrates and scores every arch (``evaluate.recalibration`` and
``evaluate`` sections of the config): seconds per arch on a CPU for Fashion-MNIST; use
``max_archs`` and ``every_epochs`` to bound it. Recalibration overwrites the supernet's BN
moving statistics; that is harmless because supernet training normalizes with batch
statistics (``supernet.bn_momentum=1.0``) and evaluation always recalibrates first.

Config: the ``train.monitor`` section, documented and checked by `validate_config`.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfnas import plotting
from tfnas import ranking
from tfnas import scores as scores_lib
from tfnas import search_space as ss

METRICS = (
    ("kendall_tau", ranking.kendall_tau),
    ("spearman_rho", ranking.spearman_rho),
    ("pearson_r", ranking.pearson_r),
)
BEST_CHECKPOINT = "best_tau.keras"
BEST_JSON = "best_tau.json"
HISTORY = "history.jsonl"
GT_FLAG = "config.train.monitor.ground_truth"


def load_ground_truth(path, space: str | ss.SearchSpace | None = None) -> dict[str, float]:
    """{code: acc} of a competition-JSON or results-JSON file (`tfnas.scores.load_scores`).

    Codes are validated against ``space`` when given. A code listed twice must have the
    same acc both times.
    """
    pairs = scores_lib.load_scores(path, GT_FLAG)
    return _ground_truth_dict(pairs, space, source=f"--{GT_FLAG}={path}")


def _ground_truth_dict(pairs, space, source: str) -> dict[str, float]:
    space = ss.get_space(space) if isinstance(space, str) else space
    truth: dict[str, float] = {}
    for code, acc in pairs:
        code = str(code)
        if space is not None:
            try:
                space.parse(code)
            except ValueError as e:
                raise ValueError(f"{source}: {e}") from None
        try:
            acc = float(acc)
        except (TypeError, ValueError):
            acc = math.nan
        if not math.isfinite(acc):
            raise ValueError(f"{source}: arch {code} has acc {acc!r}; expected a finite number.")
        if code in truth and truth[code] != acc:
            raise ValueError(
                f"{source}: arch {code} appears twice with different accs ({truth[code]} and "
                f"{acc}); keep one."
            )
        truth[code] = acc
    if len(truth) < ranking.MIN_ARCHS:
        raise ValueError(
            f"{source}: {len(truth)} distinct archs; a rank correlation needs at least "
            f"{ranking.MIN_ARCHS}."
        )
    return truth


class RankingMonitor(keras.callbacks.Callback):
    """Logs the supernet's ranking quality every few epochs and keeps the best-tau supernet.

    Args:
        ground_truth: ``{code: stand-alone accuracy}`` or ``(code, acc)`` pairs; at least
            3 distinct archs.
        evaluator_factory: ``supernet -> SubnetEvaluator``; called once, at the first
            evaluation, with the trainer's (``self.model``'s) ``supernet``.
        log_dir: TensorBoard directory; summaries go to ``<log_dir>/ranking``.
        checkpoint_dir: where ``best_tau.keras``, ``best_tau.json`` and ``history.jsonl``
            go.
        every_epochs: evaluate after every ``every_epochs``-th epoch (and after the last
            epoch of ``fit``).
        max_archs: 0 for all archs, else a subset of this many (>= 3), drawn with ``seed``,
            in the ground truth's order.
        n_boot: bootstrap resamples of the metrics' CIs (0: none; CIs go to the history).
        seed: seed of the subset and the bootstrap.
        space: search-space variant (or `SearchSpace`) to validate the codes with.
        verbose: print one line per evaluation.
    """

    def __init__(
        self,
        ground_truth,
        evaluator_factory: Callable,
        log_dir,
        checkpoint_dir,
        *,
        every_epochs: int = 1,
        max_archs: int = 0,
        n_boot: int = 0,
        seed: int = 0,
        space=None,
        verbose: int = 1,
    ):
        super().__init__()
        pairs = ground_truth.items() if isinstance(ground_truth, Mapping) else ground_truth
        truth = _ground_truth_dict(pairs, space, source="RankingMonitor ground truth")
        if not isinstance(every_epochs, int) or every_epochs < 1:
            raise ValueError(
                f"RankingMonitor: every_epochs must be an integer >= 1, received "
                f"{every_epochs!r}; set --config.train.monitor.every_epochs."
            )
        if not isinstance(max_archs, int) or max_archs < 0 or 0 < max_archs < ranking.MIN_ARCHS:
            raise ValueError(
                f"RankingMonitor: max_archs must be 0 (all archs) or an integer >= "
                f"{ranking.MIN_ARCHS}, received {max_archs!r}; set "
                "--config.train.monitor.max_archs."
            )
        codes = list(truth)
        if 0 < max_archs < len(codes):
            keep = np.sort(np.random.default_rng(seed).choice(len(codes), max_archs, replace=False))
            codes = [codes[i] for i in keep]
        self.codes = codes
        self.ground_truth = {c: truth[c] for c in codes}
        self.evaluator_factory = evaluator_factory
        self.log_dir = Path(log_dir) / "ranking"
        self.checkpoint_dir = Path(checkpoint_dir)
        self.every_epochs = every_epochs
        self.n_boot = int(n_boot)
        self.seed = int(seed)
        self.verbose = verbose
        self.history: list[dict] = []
        self.best: dict | None = None
        self._evaluator = None
        self._writer = None

    @classmethod
    def from_config(cls, config, stage_dir, evaluator_factory) -> RankingMonitor:
        """The monitor ``config.train.monitor`` describes, writing under ``stage_dir``.

        TensorBoard goes to ``<stage_dir>/tensorboard/ranking``, checkpoints and history to
        ``<stage_dir>/monitor``.
        """
        section = config.train.monitor
        path = section.ground_truth
        if not path:
            raise ValueError(
                "config.train.monitor.enabled is True but config.train.monitor.ground_truth is "
                "empty: set --config.train.monitor.ground_truth=FILE (stand-alone accuracies, "
                "competition or results JSON) or --config.train.monitor.enabled=False."
            )
        stage_dir = Path(stage_dir)
        return cls(
            load_ground_truth(path, config.space),
            evaluator_factory,
            log_dir=stage_dir / "tensorboard",
            checkpoint_dir=stage_dir / "monitor",
            every_epochs=int(section.every_epochs),
            max_archs=int(section.max_archs),
            seed=int(config.seed),
            space=config.space,
            verbose=1 if config.train.verbose else 0,
        )

    # -- the Keras hooks ---------------------------------------------------------------

    def on_train_begin(self, logs=None):
        best = self.checkpoint_dir / BEST_JSON
        if self.best is None and best.exists():
            self.best = json.loads(best.read_text())

    def on_epoch_end(self, epoch, logs=None):
        if not self.due(epoch):
            return
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return  # a diverged epoch (see callbacks.NanGuard): nothing to rank
        entry = self.evaluate(epoch)
        if logs is not None:
            for name, _ in METRICS:
                if entry[name] is not None:
                    logs[f"ranking_{name}"] = entry[name]

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    # -- evaluation ----------------------------------------------------------------------

    def due(self, epoch: int) -> bool:
        """Whether the end of (0-based) ``epoch`` is an evaluation point."""
        done = epoch + 1
        return done % self.every_epochs == 0 or done == (self.params or {}).get("epochs")

    @property
    def supernet(self):
        return self.model.supernet

    def evaluator(self):
        """The `SubnetEvaluator`, built at the first call (its functions trace once)."""
        if self._evaluator is None:
            self._evaluator = self.evaluator_factory(self.supernet)
        return self._evaluator

    def evaluate(self, epoch: int) -> dict:
        """Scores the archs after (0-based) ``epoch``; logs, checkpoints, records history."""
        start = time.perf_counter()
        evaluator = self.evaluator()
        pred = {code: float(evaluator.accuracy(code)) for code in self.codes}
        entry = dict(epoch=epoch + 1, n=len(pred), **self.metrics(pred))
        entry["mean_supernet_acc"] = float(np.mean(list(pred.values())))
        entry["seconds"] = time.perf_counter() - start
        tau = entry["kendall_tau"]
        entry["best"] = tau is not None and (
            self.best is None
            or self.best.get("kendall_tau") is None
            or tau > self.best["kendall_tau"]
        )
        if entry["best"]:
            self._save_best(entry)
        self._summaries(entry, pred)
        entry["accs"] = pred
        self.history.append(entry)
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        with (self.checkpoint_dir / HISTORY).open("a") as f:
            f.write(json.dumps(entry) + "\n")
        if self.verbose:
            values = ", ".join(f"{name} {_fmt(entry[name])}" for name, _ in METRICS)
            print(
                f"ranking after epoch {entry['epoch']}: {values} over {entry['n']} archs "
                f"({entry['seconds']:.1f} s){' -- best tau, saved' if entry['best'] else ''}"
            )
        return entry

    def metrics(self, pred: Mapping[str, float]) -> dict:
        """Kendall tau-b, Spearman rho, Pearson r of ``pred`` against the ground truth.

        ``None`` where undefined (constant scores). With ``n_boot`` > 0 the CIs are added
        as ``<name>_ci``.
        """
        x = [pred[c] for c in self.codes]
        y = [self.ground_truth[c] for c in self.codes]
        out = {}
        for name, fn in METRICS:
            try:
                result = fn(x, y, n_boot=self.n_boot, seed=self.seed)
            except ValueError:  # constant scores: no ranking to measure
                result = {"value": None, "ci": None}
            out[name] = result["value"]
            if self.n_boot:
                out[f"{name}_ci"] = result["ci"]
        return out

    def _save_best(self, entry: dict) -> None:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        final = self.checkpoint_dir / BEST_CHECKPOINT
        tmp = self.checkpoint_dir / "best_tau.tmp.keras"
        self.supernet.save(tmp)
        os.replace(tmp, final)
        self.best = {k: v for k, v in entry.items() if k != "best"}
        self.best["checkpoint"] = str(final)
        tmp_json = self.checkpoint_dir / "best_tau.tmp.json"
        tmp_json.write_text(json.dumps(self.best, indent=2) + "\n")
        os.replace(tmp_json, self.checkpoint_dir / BEST_JSON)

    def _summaries(self, entry: dict, pred: Mapping[str, float]) -> None:
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir))
        step = entry["epoch"]
        with self._writer.as_default(step=step):
            for name in ("kendall_tau", "spearman_rho", "pearson_r", "mean_supernet_acc"):
                if entry[name] is not None:
                    tf.summary.scalar(f"ranking/{name}", entry[name])
            tf.summary.scalar("ranking/seconds", entry["seconds"])
            figure = plotting.scatter(
                [self.ground_truth[c] for c in self.codes],
                [pred[c] for c in self.codes],
                xlabel="ground-truth (stand-alone) accuracy",
                ylabel="supernet accuracy (BN recalibrated)",
                title=f"epoch {step}: Kendall tau {_fmt(entry['kendall_tau'])}",
            )
            image = plotting.to_rgb_array(figure)
            values = ", ".join(f"{name} {_fmt(entry[name])}" for name, _ in METRICS)
            tf.summary.image(
                "ranking/scatter",
                image[None],
                description=(
                    f"Epoch {step}, {entry['n']} archs. x: ground-truth (stand-alone) "
                    f"accuracy, y: supernet accuracy after BN recalibration. {values}."
                ),
            )
        self._writer.flush()


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


# -------------------------------------------------------------------- the config section

CONFIG_FIELDS = ("enabled", "ground_truth", "every_epochs", "max_archs")


def validate_config(section) -> None:
    """Checks the ``train.monitor`` section of an experiment config (`tfnas.config_lib`).

    Fields (`RankingMonitor.from_config` reads them):

    - ``enabled`` (bool): run the monitor during ``oneshot`` training.
    - ``ground_truth``: a competition-JSON or results-JSON file with ``acc`` (read by
      `tfnas.scores.load_scores`); needed when ``enabled``.
    - ``every_epochs`` (int >= 1): evaluate after every so many epochs (and the last).
    - ``max_archs``: 0 (every arch of the ground truth) or at least `ranking.MIN_ARCHS`
      (a rank correlation needs 3); a subset is drawn with ``config.seed``.

    Raises:
      ValueError: naming ``config.train.monitor.<field>``, the value, what is expected and
        how to fix it; also for a missing or unknown field.
    """
    from tfnas import config_checks

    fields = config_checks.Section(
        section, "train.monitor", CONFIG_FIELDS, owner="tfnas.monitor.validate_config"
    )
    if fields.boolean("enabled"):
        fields.string(
            "ground_truth",
            allow_empty=False,
            fix="set --config.train.monitor.ground_truth=FILE (stand-alone accuracies, "
            "competition or results JSON) or --config.train.monitor.enabled=False",
        )
    else:
        fields.string("ground_truth")
    fields.integer("every_epochs", 1)
    max_archs = fields.integer("max_archs", 0)
    if 0 < max_archs < ranking.MIN_ARCHS:
        raise fields.fail(
            "max_archs",
            max_archs,
            f"0 (all archs) or at least {ranking.MIN_ARCHS} (a rank correlation needs "
            f"{ranking.MIN_ARCHS})",
        )

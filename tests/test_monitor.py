"""tfnas.monitor.RankingMonitor: TensorBoard scalars and image, best-tau checkpoint, history,
the scatter image (drawn by tfnas.plotting), config wiring into the oneshot stage."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs import fmnist
from tfnas import config_lib
from tfnas import monitor as monitor_lib
from tfnas import plotting
from tfnas import schemes
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas import trainer as trainer_lib
from tfnas.stages import oneshot

GT_ACCS = (0.70, 0.72, 0.75, 0.78, 0.80)


def _events(log_dir):
    """{tag: [(step, kind)]} of the event files under ``log_dir``."""
    found = {}
    for path in sorted(log_dir.rglob("events.out.tfevents*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                kind = value.metadata.plugin_data.plugin_name or "other"
                found.setdefault(value.tag, []).append((event.step, kind))
    return found


def _scalar_values(log_dir, tag):
    values = []
    for path in sorted(log_dir.rglob("events.out.tfevents*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    values.append((event.step, float(tf.make_ndarray(value.tensor))))
    return values


@pytest.fixture(scope="module")
def space():
    return ss.get_space("fmnist")


@pytest.fixture(scope="module")
def ground_truth(space):
    codes = [a.code for a in space.sample_many(len(GT_ACCS), seed=11)]
    return dict(zip(codes, GT_ACCS))


@pytest.fixture(scope="module")
def trainer():
    config = fmnist.get_config("tiny")
    keras.utils.set_random_seed(0)
    net = supernet_lib.build_supernet(config.supernet, config.space)
    return trainer_lib.SupernetTrainer(net, schemes.build_scheme(config))


class _Scripted:
    """An evaluator whose accuracies per code are set by the test, epoch by epoch."""

    def __init__(self):
        self.accs = {}
        self.calls = 0

    def accuracy(self, code, recalibrate=True):
        self.calls += 1
        return self.accs[code]


def _monitor(tmp_path, ground_truth, factory, **kwargs):
    return monitor_lib.RankingMonitor(
        ground_truth,
        factory,
        log_dir=tmp_path / "tb",
        checkpoint_dir=tmp_path / "best",
        verbose=0,
        **kwargs,
    )


# ----------------------------------------------------------------------- the scatter image


def _images(log_dir, tag):
    """[(step, uint8 RGB array)] of the image summaries ``tag`` under ``log_dir``."""
    found = []
    for path in sorted(log_dir.rglob("events.out.tfevents*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    _, _, png = tf.make_ndarray(value.tensor)  # width, height, PNG bytes
                    found.append((event.step, tf.io.decode_png(png, channels=3).numpy()))
    return found


def test_scatter_image_is_the_plotting_scatter_of_truth_against_supernet(
    tmp_path, trainer, ground_truth, monkeypatch
):
    figures = []
    scatter = plotting.scatter

    def spy(x, y, **kwargs):
        figures.append((list(x), list(y), kwargs, scatter(x, y, **kwargs)))
        return figures[-1][-1]

    monkeypatch.setattr(plotting, "scatter", spy)
    evaluator = _Scripted()
    codes = list(ground_truth)
    evaluator.accs = dict(zip(codes, [0.1, 0.2, 0.3, 0.4, 0.5]))  # tau 1 against GT_ACCS
    monitor = _monitor(tmp_path, ground_truth, lambda net: evaluator)
    monitor.set_model(trainer)
    monitor.on_epoch_end(2, {"loss": 1.0})
    monitor.on_train_end()

    ((x, y, kwargs, fig),) = figures
    assert x == list(GT_ACCS) and y == [0.1, 0.2, 0.3, 0.4, 0.5]  # x: truth, y: supernet
    assert kwargs["title"] == "epoch 3: Kendall tau 1.0000"
    assert "ground-truth" in kwargs["xlabel"] and "supernet" in kwargs["ylabel"]
    ((step, image),) = _images(tmp_path / "tb" / "ranking", "ranking/scatter")
    assert step == 3
    assert image.shape == (320, 400, 3)  # plotting's 4 x 3.2 in at 100 dpi
    np.testing.assert_array_equal(image, plotting.to_rgb_array(fig))  # PNG summaries: lossless


# ------------------------------------------------------------------ the callback, scripted


def test_logs_summaries_and_keeps_the_best_tau_checkpoint(tmp_path, trainer, ground_truth):
    evaluator = _Scripted()
    built = []

    def factory(net):
        built.append(net)
        return evaluator

    monitor = _monitor(tmp_path, ground_truth, factory)
    monitor.set_model(trainer)
    monitor.on_train_begin()
    codes = list(ground_truth)
    bias = trainer.supernet.classifier.bias
    # Supernet accuracies per epoch (the ground truth increases along `codes`).
    script = [
        [0.2, 0.1, 0.3, 0.5, 0.4],  # tau 0.6: first defined tau, saved
        [0.1, 0.2, 0.3, 0.4, 0.5],  # tau 1.0: saved
        [0.5, 0.4, 0.3, 0.2, 0.1],  # tau -1.0: kept
        [0.3, 0.3, 0.3, 0.3, 0.3],  # constant: undefined, kept
        [0.1, 0.2, 0.3, 0.4, 0.5],  # tau 1.0 again: not an improvement, kept
    ]
    logs_seen = []
    for epoch, accs in enumerate(script):
        evaluator.accs = dict(zip(codes, accs))
        bias.assign(np.full(bias.shape, float(epoch), np.float32))  # marks the epoch's weights
        logs = {"loss": 1.0}
        monitor.on_epoch_end(epoch, logs)
        logs_seen.append(logs)
    monitor.on_train_end()

    assert built == [trainer.supernet]  # built once, lazily, around the trainer's supernet
    assert evaluator.calls == len(script) * len(codes)
    taus = [h["kendall_tau"] for h in monitor.history]
    assert taus[0] == pytest.approx(0.6) and taus[1:3] == [pytest.approx(1.0), pytest.approx(-1.0)]
    assert taus[3] is None and taus[4] == pytest.approx(1.0)
    assert [h["best"] for h in monitor.history] == [True, True, False, False, False]
    assert monitor.history[1]["pearson_r"] == pytest.approx(
        np.corrcoef(script[1], [ground_truth[c] for c in codes])[0, 1]
    )
    assert monitor.history[1]["spearman_rho"] == pytest.approx(1.0)
    assert logs_seen[1]["ranking_kendall_tau"] == pytest.approx(1.0)
    assert "ranking_kendall_tau" not in logs_seen[3]

    # The best checkpoint is the one of epoch 2 (1-based), with its weights.
    best = json.loads((tmp_path / "best" / "best_tau.json").read_text())
    assert best["epoch"] == 2 and best["kendall_tau"] == pytest.approx(1.0)
    assert best["checkpoint"] == str(tmp_path / "best" / "best_tau.keras")
    loaded = keras.saving.load_model(tmp_path / "best" / "best_tau.keras")
    np.testing.assert_array_equal(np.asarray(loaded.classifier.bias), 1.0)
    assert not list((tmp_path / "best").glob("*tmp*"))

    history = [json.loads(line) for line in (tmp_path / "best" / "history.jsonl").open()]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    assert history[2]["accs"] == dict(zip(codes, script[2]))

    events = _events(tmp_path / "tb" / "ranking")
    for tag in ("ranking/kendall_tau", "ranking/spearman_rho", "ranking/pearson_r"):
        assert [step for step, _ in events[tag]] == [1, 2, 3, 5], tag  # not the undefined one
    assert _scalar_values(tmp_path / "tb" / "ranking", "ranking/kendall_tau")[1] == (
        2,
        pytest.approx(1.0),
    )
    assert events["ranking/scatter"] == [(s, "images") for s in (1, 2, 3, 4, 5)]
    assert [step for step, _ in events["ranking/mean_supernet_acc"]] == [1, 2, 3, 4, 5]

    # A diverged epoch (non-finite loss) is not evaluated.
    monitor.on_epoch_end(5, {"loss": float("nan")})
    assert len(monitor.history) == len(script)

    # A resumed run reads the best tau back: a worse epoch does not replace the checkpoint.
    stamp = (tmp_path / "best" / "best_tau.keras").stat().st_mtime_ns
    resumed = _monitor(tmp_path, ground_truth, lambda net: evaluator)
    resumed.set_model(trainer)
    resumed.on_train_begin()
    evaluator.accs = dict(zip(codes, script[0]))
    resumed.on_epoch_end(5, {})
    assert resumed.history[-1]["best"] is False
    assert (tmp_path / "best" / "best_tau.keras").stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "best" / "best_tau.json").read_text())["epoch"] == 2


def test_schedule_subset_and_bad_arguments(tmp_path, ground_truth):
    monitor = _monitor(tmp_path, ground_truth, None, every_epochs=3)
    monitor.set_params({"epochs": 7})
    assert [e for e in range(7) if monitor.due(e)] == [2, 5, 6]  # and after the last epoch

    subset = _monitor(tmp_path, ground_truth, None, max_archs=3, seed=1)
    assert len(subset.codes) == 3 and set(subset.codes) <= set(ground_truth)
    assert subset.codes == [c for c in ground_truth if c in subset.codes]  # file order
    assert _monitor(tmp_path, ground_truth, None, max_archs=3, seed=1).codes == subset.codes
    assert _monitor(tmp_path, ground_truth, None, max_archs=50).codes == list(ground_truth)

    with pytest.raises(ValueError, match="max_archs must be 0 .all archs. or an integer >= 3"):
        _monitor(tmp_path, ground_truth, None, max_archs=2)
    with pytest.raises(ValueError, match="every_epochs must be an integer >= 1"):
        _monitor(tmp_path, ground_truth, None, every_epochs=0)
    two = dict(list(ground_truth.items())[:2])
    with pytest.raises(ValueError, match="2 distinct archs; a rank correlation needs at least 3"):
        _monitor(tmp_path, two, None)
    bad = {**ground_truth, "123": 0.5}
    with pytest.raises(ValueError, match="RankingMonitor ground truth: "):
        _monitor(tmp_path, bad, None, space="fmnist")


def test_ground_truth_file_and_config(tmp_path, ground_truth):
    path = tmp_path / "gt.json"
    path.write_text(
        json.dumps(
            {f"a{i}": {"acc": a, "arch": c} for i, (c, a) in enumerate(ground_truth.items())}
        )
    )
    assert monitor_lib.load_ground_truth(path, "fmnist") == ground_truth
    results = tmp_path / "results.json"
    results.write_text(
        json.dumps({"results": [{"code": c, "acc": a} for c, a in ground_truth.items()]})
    )
    assert monitor_lib.load_ground_truth(results) == ground_truth
    with pytest.raises(ValueError, match=r"--config.train.monitor.ground_truth=.*no such file"):
        monitor_lib.load_ground_truth(tmp_path / "missing.json")

    config = fmnist.get_config("tiny")
    assert dict(config.train.monitor) == dict(
        enabled=False, ground_truth="", every_epochs=1, max_archs=0
    )
    config.train.monitor.enabled = True
    with pytest.raises(ValueError, match=r"config.train.monitor.ground_truth='' is invalid"):
        config_lib.validate_config(config)
    with pytest.raises(ValueError, match="config.train.monitor.ground_truth is empty"):
        monitor_lib.RankingMonitor.from_config(config, tmp_path, None)
    config.train.monitor.ground_truth = str(path)
    config.train.monitor.max_archs = 2
    with pytest.raises(ValueError, match=r"config.train.monitor.max_archs=2 is invalid"):
        config_lib.validate_config(config)
    config.train.monitor.max_archs = 4
    config_lib.validate_config(config)
    monitor = monitor_lib.RankingMonitor.from_config(config, tmp_path, None)
    assert len(monitor.codes) == 4
    assert monitor.log_dir == tmp_path / "tensorboard" / "ranking"
    assert monitor.checkpoint_dir == tmp_path / "monitor"


# --------------------------------------------------------- real evaluator, inside fit


def test_oneshot_training_with_the_monitor(tmp_path, ground_truth):
    """One-shot training (2 epochs of 2 steps) with the monitor on and a real evaluator."""
    gt = tmp_path / "gt.json"
    gt.write_text(
        json.dumps(
            {f"a{i}": {"acc": a, "arch": c} for i, (c, a) in enumerate(ground_truth.items())}
        )
    )
    config = fmnist.get_config("tiny")
    config.train.scheme = "uniform"  # one member: the cheapest graph to trace
    config.train.epochs = 2
    config.train.monitor.enabled = True
    config.train.monitor.ground_truth = str(gt)
    config_lib.validate_config(config)
    stage_dir = tmp_path / "oneshot"
    trainer, initial_epoch = oneshot.train_supernet(config, stage_dir)
    assert initial_epoch == 0

    history = [json.loads(line) for line in (stage_dir / "monitor" / "history.jsonl").open()]
    assert [h["epoch"] for h in history] == [1, 2]
    for h in history:
        assert set(h["accs"]) == set(ground_truth)
        assert all(0.0 <= a <= 1.0 for a in h["accs"].values())
    events = _events(stage_dir / "tensorboard" / "ranking")
    assert events["ranking/scatter"] == [(1, "images"), (2, "images")]
    taus = [h["kendall_tau"] for h in history]
    tau_steps = [h["epoch"] for h in history if h["kendall_tau"] is not None]
    assert [s for s, _ in events.get("ranking/kendall_tau", [])] == tau_steps
    if tau_steps:  # defined unless the supernet scores all five archs the same
        best = json.loads((stage_dir / "monitor" / "best_tau.json").read_text())
        assert best["kendall_tau"] == max(t for t in taus if t is not None)
        assert (stage_dir / "monitor" / "best_tau.keras").exists()
        # The metric also reached Keras's TensorBoard callback through the logs.
        train_events = _events(stage_dir / "tensorboard" / "train")
        assert "epoch_ranking_kendall_tau" in train_events

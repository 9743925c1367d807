"""Weight transfer: growing copies G -> G+1 and 1 -> N, init_from files, the oneshot stage."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas import transfer

ROOT = Path(__file__).resolve().parents[1]
SPACE = ss.get_space("fmnist")
# Archs whose groups differ at G=2 -> 3 in fmnist (stem, stage 1 digit; stage outs 2-4):
# digit 1 stays in its singleton group; stage 2-4 digit 2 splits off the rest group at G=3;
# digits >= 3 stay in the (smaller) rest group; stage 1 digits 3-4 split off from 3-7.
CODES = [
    SPACE.largest().code,  # every location in an unsplit singleton group
    SPACE.smallest().code,  # every location in the rest group
    # stem 3, stage outs 3, 4, 6: stage 1 digit 3 splits off at G=3, stages 2-4 do not.
    ss.Arch(1, (3, 4, 5, 2), 3, ((1, 5, 7), (2, 3, 4, 6), (7, 1, 2, 3, 4), (5, 1)), (3, 3, 4, 6))
    .code,
    "1252222222000000222222222222220000000000002222000000",  # digit 2: splits off at G=3
]


def _randomize(net, seed):
    """Every variable random, so that copies differ and a wrong parent map shows."""
    rng = np.random.default_rng(seed)
    for v in net.variables:
        if v.path.endswith("moving_variance"):
            v.assign(rng.uniform(0.5, 1.5, size=v.shape).astype(np.float32))
        elif v.path.endswith("gamma"):
            v.assign(rng.uniform(0.5, 1.5, size=v.shape).astype(np.float32))
        else:
            v.assign(rng.normal(0.0, 0.1, size=v.shape).astype(np.float32))


def _net(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    net = supernet_lib.Supernet("fmnist", name="supernet", **kwargs)
    net.build()
    return net


def _images(seed=0):
    return tf.constant(np.random.default_rng(seed).normal(size=(2, 28, 28, 1)), tf.float32)


def _logits(net, code, images):
    return net(images, arch=supernet_lib.arch_tensor(code, SPACE), training=False).numpy()


def test_growing_g_to_g_plus_1_keeps_every_archs_logits():
    """Seed paper 000 §2.2 (R4 init_weights): each new group starts as the old group that
    held its values, so right after growing every subnet computes what it computed."""
    images = _images()
    g2 = _net(1, num_copies=2, routing="stage_width_nested")
    _randomize(g2, 1)
    g3 = _net(2, num_copies=3, routing="stage_width_nested")
    parent = supernet_lib.nested_parent_map("fmnist", 2)
    assert transfer.grow_copies(g2, g3, parent) == parent
    for code in CODES:
        np.testing.assert_array_equal(_logits(g3, code, images), _logits(g2, code, images))

    # Train only the new singleton group of stages 2-4 (digit 2): the archs whose groups
    # did not split keep their logits bitwise, the arch of the split-off value moves.
    split_off = CODES[3]
    np.testing.assert_array_equal(
        g3.copies(supernet_lib.arch_tensor(split_off, SPACE)).numpy(), [0, 0, 1, 1, 1, 1]
    )
    for loc, layer in g3.location_layers():
        if loc >= 2:
            for v in layer.trainable_variables:
                value = v.numpy()
                value[1] += 0.1
                v.assign(value)
    for code in CODES[:3]:
        np.testing.assert_array_equal(_logits(g3, code, images), _logits(g2, code, images))
    assert np.max(np.abs(_logits(g3, split_off, images) - _logits(g2, split_off, images))) > 1e-3

    # A wrong parent map (the rest group from the widest copy) changes the narrow archs:
    # the comparison above can fail.
    wrong = _net(3, num_copies=3, routing="stage_width_nested")
    transfer.grow_copies(g2, wrong, [[0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0]])
    smallest = CODES[1]
    assert np.max(np.abs(_logits(wrong, smallest, images) - _logits(g2, smallest, images))) > 1e-3


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_copies=5, routing="depth34_table"),
        dict(num_copies=5, routing="depth34_table", split_stem=True),
        dict(num_copies=2, routing="stage_width_nested", num_kernels=2),
    ],
)
def test_broadcasting_one_copy_to_n(kwargs):
    """SSE (seed paper 001 §2.3, R2 few_shot_depth_model.py): every sub-supernet starts as
    the one-shot supernet; K-shot dictionaries and the simplex-net come along."""
    images = _images(1)
    shared = _net(4, num_kernels=kwargs.get("num_kernels", 1))
    _randomize(shared, 4)
    grown = _net(5, **kwargs)
    parent = transfer.grow_copies(shared, grown, [0] * kwargs["num_copies"])
    assert parent == [[0] * c for c in grown.copy_counts]
    for v in grown.variables:
        if v.shape[0] > 1 and "simplex" not in v.path:
            np.testing.assert_array_equal(v.numpy(), np.broadcast_to(v.numpy()[:1], v.shape))
    for code in CODES + [SPACE.sample_many(1, 6)[0].code]:
        np.testing.assert_array_equal(_logits(grown, code, images), _logits(shared, code, images))


def test_grow_copies_refuses_what_does_not_fit():
    shared = _net(6)
    g2 = _net(7, num_copies=2, routing="stage_width_nested")
    with pytest.raises(ValueError, match="gives 3 source copies for stage1, which has 2"):
        transfer.grow_copies(shared, g2, [[0], [0, 0, 1], [0, 0], [0, 0], [0, 0], [0, 0]])
    with pytest.raises(ValueError, match="asks for copy 1 of stage1, but the source"):
        transfer.grow_copies(shared, g2, [[0], [0, 1], [0, 0], [0, 0], [0, 0], [0, 0]])
    kshot = _net(8, num_copies=2, routing="stage_width_nested", num_kernels=2)
    with pytest.raises(ValueError, match="different variables"):
        transfer.grow_copies(shared, kshot, [0, 0])
    kshot1 = _net(8, num_kernels=2)
    kshot3 = _net(8, num_kernels=3, num_copies=2, routing="stage_width_nested")
    before = [v.numpy() for v in kshot3.variables]
    with pytest.raises(ValueError, match=r"stem_conv/kernel: the source supernet's copies have "
                       r"shape \(2, 3, 3, 1, 8\) \(x1\), this one's \(3, 3, 3, 1, 8\) \(x1\)"):
        transfer.grow_copies(kshot1, kshot3, [0, 0])
    for a, v in zip(before, kshot3.variables):  # nothing was half-copied
        np.testing.assert_array_equal(a, v.numpy())


def test_init_from_a_file_or_a_monitor_directory(tmp_path):
    images = _images(2)
    g2 = _net(9, num_copies=2, routing="stage_width_nested")
    _randomize(g2, 9)
    path = tmp_path / "supernet.keras"
    g2.save(path)
    g3 = _net(10, num_copies=3, routing="stage_width_nested")
    # The parent map is derived from the two nested tables.
    assert transfer.init_from(g3, path) == supernet_lib.nested_parent_map("fmnist", 2)
    for code in CODES[1:2]:
        np.testing.assert_array_equal(_logits(g3, code, images), _logits(g2, code, images))
    # The ranking monitor's best-tau checkpoint, by its directory (tfnas.monitor).
    (tmp_path / "monitor").mkdir()
    g2.save(tmp_path / "monitor" / "best_tau.keras")
    again = _net(11, num_copies=3, routing="stage_width_nested")
    transfer.init_from(again, tmp_path)
    np.testing.assert_array_equal(_logits(again, CODES[1], images), _logits(g2, CODES[1], images))
    # Explicit parents: a one-copy destination takes copy 1 of the source (the rest group).
    one = _net(12)
    transfer.init_from(one, path, parent=[[0], [1], [1], [1], [1], [1]])
    np.testing.assert_array_equal(_logits(one, CODES[1], images), _logits(g2, CODES[1], images))

    with pytest.raises(ValueError, match="does not exist"):
        transfer.init_from(one, tmp_path / "missing.keras")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is a directory without best_tau.keras"):
        transfer.init_from(one, tmp_path / "empty")
    # What init_from derives without init_parent (`derive_parent`), refused when unclear.
    with pytest.raises(ValueError, match="not nested"):
        transfer.derive_parent(g2, _net(13, num_copies=2, routing="stage_width"))
    with pytest.raises(ValueError, match="no copy of one is nested"):
        transfer.derive_parent(g2, _net(14, num_copies=5, routing="depth34_table"))
    other = supernet_lib.Supernet("cifar10", name="supernet")
    other.build()
    with pytest.raises(ValueError, match="is of the 'fmnist' space but config.space is 'cifar10'"):
        transfer.init_from(other, path)


@pytest.mark.slow  # ~150 s: traces and runs a training step
def test_oneshot_starts_from_init_from_only_without_a_checkpoint(tmp_path):
    """The oneshot stage applies supernet.init_from to a fresh run; a run with a checkpoint
    of its own resumes from it and never reads the source again (SCHEMES.md §7.1 I)."""
    from configs import fmnist
    from tfnas import config_lib
    from tfnas.stages import oneshot

    source = _net(15)
    _randomize(source, 15)
    path = tmp_path / "one_shot.keras"
    source.save(path)
    config = fmnist.get_config("tiny")
    config.train.scheme = "uniform"  # one member: the cheapest graph to trace
    config.supernet.routing = "stage_width_nested"
    config.supernet.num_copies = 2
    config.supernet.init_from = str(path)
    config_lib.validate_config(config)
    trainer, initial_epoch = oneshot.train_supernet(config, tmp_path / "run")
    assert initial_epoch == 0
    # BN running statistics do not move in supernet training (supernet.bn_momentum=1.0),
    # so they show what the run started from: copy 0 of the source, broadcast.
    sources = {v.path: np.asarray(v) for v in source.variables}
    moving = [v for v in trainer.supernet.variables if v.path.endswith("moving_mean")]
    assert len(moving) == len([p for p in sources if p.endswith("moving_mean")]) > 10
    for v in moving:
        got = np.asarray(v)
        np.testing.assert_array_equal(got, np.broadcast_to(sources[v.path][:1], got.shape))

    # Resume: the source is gone, the run's own checkpoint is what counts.
    path.unlink()
    _, initial_epoch = oneshot.train_supernet(config, tmp_path / "run")
    assert initial_epoch == 1
    # A fresh run needs the source: a clear error.
    with pytest.raises(ValueError, match="does not exist"):
        oneshot.train_supernet(config, tmp_path / "other")


# Runs in a fresh process: the CPU must be split into logical devices before TF starts.
SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    from tfnas import distribute
    distribute.split_cpu(2)
    import keras, numpy as np, tensorflow as tf
    from tfnas import search_space as ss, supernet as supernet_lib, transfer

    path = sys.argv[1]
    keras.utils.set_random_seed(0)
    source = supernet_lib.Supernet("fmnist", name="supernet")
    source.build()
    rng = np.random.default_rng(0)
    for v in source.variables:
        v.assign(rng.normal(0.5, 0.2, size=v.shape).astype(np.float32))
    source.save(path)
    arch = supernet_lib.arch_tensor(ss.get_space("fmnist").smallest())

    def run(strategy):
        keras.utils.set_random_seed(1)
        with strategy.scope():
            net = supernet_lib.Supernet("fmnist", num_copies=2, routing="stage_width_nested")
            net.build()
            transfer.init_from(net, path)
        kernels = [v for v in net.trainable_variables if v.path.endswith("kernel")]

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                penalty = net.l2_penalty(arch)
            return penalty, tape.gradient(penalty, kernels)

        out = strategy.run(step)
        penalties = [float(p) for p in strategy.experimental_local_results(out[0])]
        grads = [
            [np.asarray(g).tolist() for g in strategy.experimental_local_results(grad)]
            for grad in out[1]
        ]
        weights = [np.asarray(v) for v in net.variables]
        return penalties, grads, weights

    p2, g2, w2 = run(distribute.make_strategy("mirrored", devices=["/cpu:0", "/cpu:1"]))
    p1, g1, w1 = run(distribute.make_strategy("default"))
    weights_equal = all(np.array_equal(a, b) for a, b in zip(w1, w2))
    grads_equal = all(
        np.array_equal(np.asarray(r), np.asarray(g[0])) for grad, g in zip(g2, g1) for r in grad
    )
    print(json.dumps(dict(p1=p1, p2=p2, weights_equal=weights_equal, grads_equal=grads_equal)))
    """
)


@pytest.mark.slow  # ~50 s: a fresh process with 2 logical CPUs
def test_two_replicas_match_one_device(tmp_path):
    """init_from under MirroredStrategy gives every replica the weights one device gets, and
    the masked L2 and its gradient are the same on each replica."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "source.keras")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["weights_equal"] and result["grads_equal"]
    assert len(result["p2"]) == 2 and result["p2"] == result["p1"] * 2

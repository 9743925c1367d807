"""tfnas.runtime: oneDNN for the scoring stages only, and scores that do not depend on it."""

import json
import subprocess
import sys
import textwrap

import pytest

from tfnas import runtime
from tfnas.stages import registry

SCORING = {"evaluate", "search"}


@pytest.mark.parametrize("stage", registry.stage_names())
def test_only_the_scoring_stages_turn_onednn_on(stage):
    env = {}
    runtime.configure_environment(stage, env)
    if stage in SCORING:
        assert env == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    else:  # training and gradient-based stages keep TensorFlow's default (see tfnas.runtime)
        assert env == {}


def test_a_users_setting_is_kept():
    env = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    runtime.configure_environment("evaluate", env)
    assert env == {"TF_ENABLE_ONEDNN_OPTS": "0"}


# Scores four archs of a seeded random supernet on seeded random data, prints them as JSON,
# and whether oneDNN was on.
_SCORE = textwrap.dedent(
    """
    import json, sys
    import keras, numpy as np, tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port
    from tfnas import evaluation, search_space as ss, supernet as supernet_lib
    keras.utils.set_random_seed(0)
    space = ss.get_space("fmnist")
    net = supernet_lib.Supernet("fmnist")
    net.build()
    rng = np.random.default_rng(0)
    recal = [(tf.constant(rng.normal(size=(32, 28, 28, 1)), tf.float32),) for _ in range(3)]
    evals = [(tf.constant(rng.normal(size=(200, 28, 28, 1)), tf.float32),
              tf.constant(rng.integers(0, 10, size=200), tf.int32)) for _ in range(2)]
    evaluator = evaluation.SubnetEvaluator(net, recal, evals)
    codes = [space.largest().code] + [a.code for a in space.sample_many(3, seed=5)]
    print(json.dumps({"onednn": _pywrap_util_port.IsMklEnabled(),
                      "accs": evaluator.accuracies(codes)}))
    """
)


def _score(repo_root, onednn: str) -> dict:
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow",
           "PYTHONPATH": str(repo_root), "TF_ENABLE_ONEDNN_OPTS": onednn,
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", _SCORE], env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_scores_with_onednn_equal_scores_without(repo_root):
    on, off = _score(repo_root, "1"), _score(repo_root, "0")
    assert on["onednn"] is True and off["onednn"] is False
    assert len(set(off["accs"])) > 1  # the archs are told apart
    assert on["accs"] == off["accs"]


_EMPTY = textwrap.dedent(
    """
    import json
    import tensorflow as tf
    from tfnas import search_space as ss, supernet as supernet_lib
    net = supernet_lib.Supernet("fmnist")
    net.build()
    arch = supernet_lib.arch_tensor(ss.get_space("fmnist").smallest().code)
    empty = tf.zeros([0, 28, 28, 1])
    shapes = [net(empty, arch=arch).shape.as_list(),
              tf.function(lambda x: net(x, arch=arch, training=True, bn_momentum=0.5))(empty)
              .shape.as_list()]
    print(json.dumps(shapes))
    """
)


def test_an_empty_batch_gives_empty_logits_with_onednn(repo_root):
    # oneDNN's convolution returns the input's channel count for an empty batch (TF_NOTES.md);
    # without elastic._conv2d's reshape the next BN fails on the shapes.
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow",
           "PYTHONPATH": str(repo_root), "TF_ENABLE_ONEDNN_OPTS": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", _EMPTY], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == [[0, 10], [0, 10]]

"""`tfnas.grappler`: the run's graph optimization options, checked and applied."""

import subprocess
import sys
import textwrap
from pathlib import Path

import ml_collections
import pytest

from tfnas import config_lib
from tfnas import grappler

ROOT = Path(__file__).resolve().parents[1]


def test_every_config_turns_the_function_optimizer_off_by_default():
    config = config_lib.base_config()
    options = grappler.validate_config(config.train)
    assert set(options) == set(grappler.OPTIONS)
    assert {k: v for k, v in options.items() if v is not None} == {
        "function_optimization": False
    }
    # Every option is a typed field, so the command line can set any of them.
    config.train.grappler.remapping = False
    assert grappler.validate_config(config.train)["remapping"] is False


@pytest.mark.parametrize(
    "options, match",
    [
        ({"function_optimisation": False}, r"train\.grappler\.function_optimisation.*one of"),
        ({"constant_folding": "no"}, r"train\.grappler\.constant_folding.*True, False or None"),
        ({"remapping": 0}, r"train\.grappler\.remapping.*True, False or None"),
    ],
)
def test_bad_options_name_the_field_and_the_fix(options, match):
    with pytest.raises(ValueError, match=match):
        grappler.validate_config(ml_collections.ConfigDict({"grappler": options}))
    with pytest.raises(ValueError, match=match):
        grappler.apply(options)


def test_apply_sets_tensorflows_options():
    # In a fresh process: the options are process-global.
    code = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        import tensorflow as tf
        from tfnas import grappler
        before = tf.config.optimizer.get_experimental_options().get("function_optimization")
        after = grappler.apply({"function_optimization": False, "constant_folding": True,
                                "remapping": None})
        current = tf.config.optimizer.get_experimental_options()
        print(before, after["function_optimization"], after["constant_folding"],
              current["function_optimization"], "remapping" in after, "remapping" in current)
        """
    )
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True,
                         text=True, timeout=300, check=True)
    # None leaves an option at TensorFlow's default (not set at all).
    assert out.stdout.split() == ["None", "False", "True", "False", "False", "False"]

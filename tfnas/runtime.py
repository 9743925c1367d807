"""Process settings of TensorFlow that must be chosen before TensorFlow loads.

Usage (``bin/train`` does this first, before it imports TensorFlow)::

    from tfnas import runtime
    runtime.configure_environment("evaluate")   # the stage about to run

oneDNN. TensorFlow 2.21 leaves its oneDNN CPU kernels off on this project's machine
(``IsMklEnabled()`` is False unless ``TF_ENABLE_ONEDNN_OPTS=1``, although TF logs "oneDNN
custom operations are on"). With them on, scoring a Fashion-MNIST subnet takes half the time
with the same accuracies (README, "Evaluating and ranking"; `benchmarks/scoring_speed.py`;
``tests/test_runtime.py`` checks the equality). They are turned on only for the stages that run
the supernet forward only (`ONEDNN_STAGES`): oneDNN's filter gradient of a 1x1 stride-2
convolution is wrong for some channel counts in TF 2.21 (3 or 6 input channels on a 14x14 or
28x28 input: relative error 0.5 to 1.5 against float64), and an RD-NAS fine-tuning run with it
on diverged. A variable the user set is kept. On a GPU the setting changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

# Stages that run the supernet forward only (BN recalibration and accuracy): no gradients.
ONEDNN_STAGES = ("evaluate", "search")
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def configure_environment(stage: str, environ: MutableMapping[str, str] | None = None) -> None:
    """Sets the TensorFlow variables ``stage`` runs best with, unless already set.

    Call it before TensorFlow is imported: TF reads these once, when it loads.

    Args:
      stage: the stage about to run (a name of `tfnas.stages.registry`).
      environ: the environment to change (default: ``os.environ``), e.g. a child process's.
    """
    environ = os.environ if environ is None else environ
    if stage in ONEDNN_STAGES:
        environ.setdefault(ONEDNN_VARIABLE, "1")

"""tfnas: weight-sharing neural architecture search with Keras 3 / TensorFlow.

Import the modules you need, e.g. ``from tfnas import search_space``; importing the package
itself is light (it does not import TensorFlow).
"""

import os as _os

__version__ = "0.1.0"

# TensorFlow's oneDNN graph rewrites (fused and blocked-layout CPU kernels). TF 2.21 leaves
# them off unless the variable is set (`IsMklEnabled()` is False on this project's 2-core
# CPU, although TF prints "oneDNN custom operations are on"); set, a Fashion-MNIST score
# takes 0.57x the time and an ImageNet-space sandwich step 0.33x, with the same accuracies
# (README, "Speed"; `benchmarks/scoring_speed.py`, `benchmarks/train_step.py`). It must be
# set before TensorFlow loads, so it is set on importing tfnas; `TF_ENABLE_ONEDNN_OPTS=0`
# in the environment keeps TF's own default. It changes nothing on a GPU's kernels.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

"""The stages of ``bin/train --stage=NAME`` (see `tfnas.stages.registry`).

Importing this package imports every stage module, in the order of a run, so that each
registers itself (`registry.stage_names()` keeps this order); a new stage is a module here
plus a line below.
"""

# isort: off
from tfnas.stages import describe  # noqa: F401
from tfnas.stages import oneshot  # noqa: F401
from tfnas.stages import fewshot  # noqa: F401
from tfnas.stages import evaluate  # noqa: F401
from tfnas.stages import proxies  # noqa: F401
from tfnas.stages import standalone  # noqa: F401
from tfnas.stages import merge  # noqa: F401
from tfnas.stages import rank  # noqa: F401
from tfnas.stages import search  # noqa: F401
from tfnas.stages import export  # noqa: F401
# isort: on

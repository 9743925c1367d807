"""Stage ``merge``: join the files of a sharded ``evaluate`` or ``standalone`` run.

    bin/train --stage=evaluate --shard=1/2 ... & bin/train --stage=evaluate --shard=2/2 ...
    bin/train --stage=merge --config=configs/fmnist.py --workdir=/tmp/run --codes=<same file>

Each shard of ``--shard=I/N`` writes its own file; ``merge`` joins every sharded product it
finds in the workdir -- the ``evaluate`` scores, and the ``standalone`` ground truth of
``config.standalone.seed`` -- checking that every code of ``--codes`` is there exactly once
and that all shards used the same supernet or recipe, and writes what an unsharded run
writes.
"""

from __future__ import annotations

from tfnas.stages import evaluate
from tfnas.stages import registry
from tfnas.stages import standalone

STAGE = "merge"


@registry.register(STAGE, help="Join evaluate or standalone shards; none missing or doubled.")
def run(config, args: registry.StageArgs) -> int:
    merged = [
        name
        for name, merge in (("evaluate", evaluate.merge_shards), ("standalone", standalone.merge))
        if merge(config, args)
    ]
    if not merged:
        raise ValueError(
            f"No shard files in {args.workdir}/evaluate or {args.workdir}/standalone (seed "
            f"{config.standalone.seed}): run --stage=evaluate or --stage=standalone with "
            "--shard=I/N first, with the same --workdir"
        )
    return 0

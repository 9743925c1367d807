"""Stage ``standalone``: ground truth -- each arch trained from scratch as a plain model.

    bin/train --stage=standalone --config=configs/fmnist.py --workdir=/tmp/gt \\
        --codes=archs.txt [--shard=1/2] [--config.standalone.seed=1] [--overwrite]
    bin/train --stage=merge --config=configs/fmnist.py --workdir=/tmp/gt --codes=archs.txt
    bin/train --stage=standalone --config=configs/fmnist.py --workdir=/tmp/run --codes=search:3

For every code, `tfnas.static.build_static_model` is trained with the recipe in
``config.standalone`` (SGD with momentum, linear warm-up and cosine decay, decoupled weight
decay) on a fixed subset of the training split and scored on ``standalone.split``. One JSON
line per arch is appended to ``<workdir>/standalone/ground_truth.seed<S>.jsonl`` -- code,
accuracy, recipe hash, seed, data subset, wall and CPU seconds -- after a first line holding
the format version and the full recipe (`tfnas.ground_truth`). A killed run resumes with the
next arch; a file written with another recipe is refused rather than mixed. ``--shard=I/N``
trains every N-th code into its own file (``ground_truth.seed<S>.shard-I-of-N.jsonl``), so
shards never write to one file; ``--stage=merge`` joins them and checks that every code is
there exactly once. ``--overwrite`` moves this seed's (and shard's) file aside and starts
over.

Ground truth never reaches a supernet's weights: no training stage reads a ground-truth
file into a loss. The ranking monitor (``train.monitor.ground_truth``) reads one during
supernet training, but only to choose which checkpoint is kept as ``best_tau.keras`` and to
log tau; the trained weights are the same whatever it contains (`tests/test_isolation.py`
trains with two permuted ground-truth files and compares the weights bit for bit, and checks
that the trainer, schemes, supernet and sampling modules do not import ground-truth readers).
"""

from __future__ import annotations

import json
from pathlib import Path

from tfnas import codes as codes_lib
from tfnas import ground_truth as gt_lib
from tfnas import records
from tfnas import search as search_lib
from tfnas import search_space as ss
from tfnas import standalone as standalone_lib
from tfnas.stages import registry

STAGE = "standalone"


def load_codes(config, args) -> list[str]:
    """The unique, validated codes of ``--codes`` (this stage has no config default);
    ``--codes=search`` is the ``search`` stage's front in the same workdir, ``search:K`` its
    K most accurate archs (stand-alone verification of the search's picks)."""
    if not args.codes:
        raise ValueError(
            "No archs to train: pass --codes=FILE (competition JSON or one code per line) or "
            "--codes=CODE,CODE."
        )
    space = ss.get_space(config.space)
    codes = []
    front = search_lib.front_records(
        args.workdir, args.codes, registry.read_manifest(args.workdir, "search").get("front")
    )
    listed = (
        [codes_lib.ArchRecord(key, code) for key, code in front]
        if front is not None
        else codes_lib.parse_codes_arg(args.codes)
    )
    for record in listed:
        try:
            codes.append(space.parse(record.code).code)
        except ValueError as err:
            raise ValueError(f"--codes: {record.key}: {err}") from None
    return records.unique_codes(codes)


@registry.register(STAGE, help="Train archs from scratch: the ranking ground truth.")
def run(config, args: registry.StageArgs) -> int:
    codes = load_codes(config, args)
    index, count = records.parse_shard(args.shard)
    mine = records.shard_codes(codes, index, count)
    seed = int(config.standalone.seed)
    stage_dir = Path(args.workdir) / STAGE
    path = gt_lib.gt_path(stage_dir, seed, (index, count))
    rec = standalone_lib.recipe(config)
    digest = gt_lib.recipe_hash(rec)
    if args.overwrite:
        registry.move_aside(path)
    records.drop_torn_line(path)
    header, done = gt_lib.read_ground_truth(path)
    if header is not None and header.get("recipe_hash") != digest:
        raise ValueError(
            f"{path} was written with recipe {header.get('recipe_hash')}, this config's is "
            f"{digest}: ground truths of different recipes must not mix. Use another --workdir, "
            "restore the config the file was made with (its first line holds it), or pass "
            "--overwrite to start over (the old file is moved aside)."
        )
    space = ss.get_space(config.space)
    todo = [c for c in mine if c not in done]
    print(
        f"standalone: {len(codes)} codes, shard {index}/{count}: {len(mine)}, "
        f"{len(mine) - len(todo)} done, seed {seed}"
    )
    if todo:
        registry.write_config(config, stage_dir)
        if header is None:
            header = {"version": gt_lib.FORMAT_VERSION, "recipe_hash": digest, "recipe": rec}
            records.write_text_atomic(path, json.dumps(header) + "\n")
        with records.Appender(path) as out:
            for i, code in enumerate(todo, 1):
                arch = space.parse(code)
                acc, seconds, cpu_seconds = standalone_lib.train_standalone(config, arch, seed)
                done[code] = dict(
                    code=code,
                    acc=acc,
                    recipe_hash=digest,
                    seed=seed,
                    train_subset=int(config.standalone.train_subset),
                    split=config.standalone.split,
                    seconds=round(seconds, 2),
                    cpu_seconds=round(cpu_seconds, 2),
                )
                out.write(done[code])
                print(f"standalone: {i}/{len(todo)} {code} acc={acc:.4f} ({seconds:.0f} s)")
                if count == 1:
                    gt_lib.write_results_json(
                        path.with_suffix(".json"), header, [done[c] for c in mine if c in done]
                    )
    if count > 1:
        print(
            f"standalone: shard {index}/{count} done; join the shards with --stage=merge "
            f"--codes={args.codes}"
        )
        return 0
    if todo or not path.with_suffix(".json").exists():
        gt_lib.write_results_json(path.with_suffix(".json"), header, [done[c] for c in mine])
        registry.write_manifest(
            args.workdir, STAGE, ground_truth=path.with_suffix(".json"), jsonl=path
        )
    return 0


def merge(config, args: registry.StageArgs) -> bool:
    """Joins this seed's shard files, if any (`ground_truth.merge_shards`); False if none."""
    stage_dir = Path(args.workdir) / STAGE
    seed = int(config.standalone.seed)
    if not list(stage_dir.glob(f"ground_truth.seed{seed}.shard-*-of-*.jsonl")):
        return False
    out = gt_lib.merge_shards(stage_dir, seed, load_codes(config, args))
    registry.write_config(config, stage_dir)
    registry.write_manifest(args.workdir, STAGE, ground_truth=out.with_suffix(".json"), jsonl=out)
    print(f"standalone: merged the shards of seed {seed} into {out}")
    return True


# -------------------------------------------------------------------- the config section

"""Stage ``standalone``: ground truth -- each arch trained from scratch as a plain model.

    bin/train --stage=standalone --config=configs/fmnist.py --workdir=/tmp/gt \\
        --codes=archs.txt [--shard=1/2]

For every code, `tfnas.static.build_static_model` is trained with the recipe in
``config.standalone`` (SGD with momentum, linear warm-up and cosine decay, decoupled weight
decay) on a fixed subset of the training split and scored on ``standalone.split``. One JSON
line per arch is appended to ``<workdir>/standalone/ground_truth.seed<S>.jsonl`` -- code,
accuracy, recipe hash, seed, data subset, wall time -- after a first line holding the format
version and the full recipe. A killed run resumes with the next arch; a file written with
another recipe is refused rather than mixed.

Ground truth never reaches a supernet's training: the training stages take their inputs
only from `tfnas.data` pipelines (images and labels) and the config, and no config field of
theirs names a ground-truth file. Ground-truth files are read only by ranking code
(`tfnas.ranking`, the ``rank`` stage, the ranking monitor), which computes no gradients.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import keras

from tfnas import data as data_lib
from tfnas import search_space as ss
from tfnas import static
from tfnas import trainer as trainer_lib
from tfnas.stages import evaluate as evaluate_stage
from tfnas.stages import registry

STAGE = "standalone"
FORMAT_VERSION = 1


def recipe(config) -> dict:
    """Everything that determines a ground-truth accuracy besides the arch and seed."""
    return {
        "space": config.space,
        "data": json.loads(config.data.to_json_best_effort()),
        "standalone": {k: v for k, v in config.standalone.to_dict().items() if k != "seed"},
    }


def recipe_hash(rec: dict) -> str:
    return hashlib.sha256(json.dumps(rec, sort_keys=True).encode()).hexdigest()[:12]


def gt_path(workdir, seed: int) -> Path:
    return Path(workdir) / STAGE / f"ground_truth.seed{seed}.jsonl"


def read_ground_truth(path: Path) -> tuple[dict | None, dict[str, dict]]:
    """(header, {code: row}) of a ground-truth file; a torn last line is ignored."""
    if not path.exists():
        return None, {}
    lines = path.read_text().splitlines()
    header = json.loads(lines[0]) if lines else None
    return header, evaluate_stage.read_results_lines(lines[1:])


def train_standalone(config, arch, seed: int) -> tuple[float, float]:
    """Trains ``arch`` from scratch; returns (accuracy on ``standalone.split``, seconds)."""
    sa = config.standalone
    space = ss.get_space(config.space)
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    data_config = config.data.copy_and_resolve_references()
    with data_config.unlocked():
        data_config.train_subset = sa.train_subset
    train = data_lib.build_dataset(data_config, "train", sa.batch_size, training=True, seed=seed)
    test = data_lib.build_dataset(config.data, sa.split, sa.eval_batch_size, training=False)
    steps = data_lib.dataset_info(data_config)["num_train"] // sa.batch_size
    if steps < 1:
        raise ValueError(
            f"standalone.train_subset={sa.train_subset} images give no full batch of "
            f"standalone.batch_size={sa.batch_size}. Raise --config.standalone.train_subset "
            "or lower --config.standalone.batch_size."
        )
    model = static.build_static_model(
        space, arch, dropout=sa.dropout, zero_init_residual=sa.zero_init_residual
    )
    model.compile(
        optimizer=trainer_lib.make_optimizer(sa, steps, weight_decay=sa.weight_decay),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=False,
    )
    # The pipeline shuffles (statelessly, from the seed); Keras must not try to.
    model.fit(train, epochs=sa.epochs, steps_per_epoch=steps, shuffle=False, verbose=0)
    _, acc = model.evaluate(test, verbose=0)
    return float(acc), time.perf_counter() - start


def write_results(path: Path) -> None:
    """The results-JSON twin of a ground-truth file (what `rank` reads), kept current."""
    header, done = read_ground_truth(path)
    out = path.with_suffix(".json")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(
        json.dumps({"recipe": header["recipe"], "results": list(done.values())}, indent=1)
    )
    os.replace(tmp, out)


@registry.register(STAGE, help="Train archs from scratch: the ranking ground truth.")
def run(config, args: registry.StageArgs) -> int:
    _, records = evaluate_stage.load_records(config, args)
    index, count = evaluate_stage.parse_shard(args.shard)
    codes = evaluate_stage.shard_codes(evaluate_stage.unique_codes(records), index, count)
    seed = int(config.standalone.seed)
    path = gt_path(args.workdir, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = recipe(config)
    digest = recipe_hash(rec)
    evaluate_stage.drop_torn_line(path)
    header, done = read_ground_truth(path)
    if header is None:
        header = {"version": FORMAT_VERSION, "recipe_hash": digest, "recipe": rec}
        path.write_text(json.dumps(header) + "\n")
    elif header.get("recipe_hash") != digest:
        raise ValueError(
            f"{path} was written with recipe {header.get('recipe_hash')}, this config's is "
            f"{digest}: ground truths of different recipes must not mix. Use another --workdir "
            "or restore the config the file was made with (its first line holds it)."
        )
    space = ss.get_space(config.space)
    todo = [c for c in codes if c not in done]
    print(f"standalone: {len(codes)} codes, {len(codes) - len(todo)} done, seed {seed}")
    with path.open("a") as out:
        for i, code in enumerate(todo, 1):
            acc, seconds = train_standalone(config, space.parse(code), seed)
            row = dict(
                code=code,
                acc=acc,
                recipe_hash=digest,
                seed=seed,
                train_subset=int(config.standalone.train_subset),
                split=config.standalone.split,
                seconds=round(seconds, 2),
            )
            out.write(json.dumps(row) + "\n")
            out.flush()
            os.fsync(out.fileno())
            print(f"standalone: {i}/{len(todo)} {code} acc={acc:.4f} ({seconds:.0f} s)")
            write_results(path)
    write_results(path)
    registry.write_manifest(
        args.workdir, STAGE, ground_truth=str(path.with_suffix(".json")), jsonl=str(path)
    )
    return 0

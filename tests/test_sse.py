"""Sub-supernet Enhancing (tfnas.schemes.sse): the bucket table of seed paper 001 §2.3, the
draws and routing of each phase's bucket, the broadcast of one copy to five, untouched
buckets, the loss weights, and the frozen teacher (tfnas.teacher)."""

import importlib
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas import config_lib
from tfnas import optimizers
from tfnas import schemes
from tfnas import search_space as ss
from tfnas import static
from tfnas import supernet as supernet_lib
from tfnas import teacher as teacher_lib
from tfnas import trainer as trainer_lib
from tfnas import transfer
from tfnas.schemes import sse

SPACE = ss.get_space("fmnist")
# SCHEMES.md §3.1 step 8 (R2 get_supernet_idx).
TABLE = [
    [(2, 2), (2, 3), (2, 4)],
    [(3, 2), (4, 2), (5, 2), (6, 2), (7, 2), (8, 2)],
    [(8, 3), (8, 4), (8, 5)],
    [(2, 5), (3, 5), (4, 5), (5, 5), (6, 5), (7, 5)],
]


def test_bucket_pairs_are_the_papers_and_the_rest():
    pairs = sse.bucket_pairs()
    assert pairs[:4] == TABLE
    assert len(pairs) == 5 and len(pairs[4]) == 10
    assert set(pairs[4]) == {(d3, d4) for d3 in range(3, 8) for d4 in (3, 4)}
    sse4 = sse.bucket_pairs(importlib.import_module("configs.fmnist_sse").SSE4_BUCKETS)
    assert [len(b) for b in sse4] == [7, 7, 14]
    assert {d4 for _, d4 in sse4[0]} == {2} and {d4 for _, d4 in sse4[1]} == {5}


def make_net(num_copies=5, seed=0):
    keras.utils.set_random_seed(seed)
    net = supernet_lib.Supernet("fmnist", num_copies=num_copies, routing="depth34_table",
                                split_stem=True)
    net.build()
    return net


def test_each_phase_draws_and_routes_to_its_bucket():
    scheme = sse.SSEScheme(SPACE, seed=3, buckets=(2, 0, 4), boundaries=(2, 4), pool_size=3,
                           recent_size=4, knn=2, distill_weight=0.0)
    net = make_net()
    for step in range(6):
        bucket = (2, 0, 4)[step // 2]
        members = scheme.members(tf.constant(step, tf.int64))
        scheme.update(tf.constant(step, tf.int64), {})
        for m in members:
            digits = m.arch.numpy()
            assert (int(digits[3]), int(digits[4])) in sse.bucket_pairs()[bucket]
            assert net.copies(m.arch).numpy().tolist() == [bucket] * 6
    assert int(scheme.bucket_at(tf.constant(5, tf.int64))) == 4


def test_the_pool_and_ring_restart_at_each_bucket():
    scheme = sse.SSEScheme(SPACE, seed=3, boundaries=(2, 4, 6), pool_size=3, recent_size=4,
                           knn=2, redraw_every=100, distill_weight=0.0)
    for step in range(5):
        scheme.members(tf.constant(step, tf.int64))
        scheme.update(tf.constant(step, tf.int64), {})
        # 1 and 2 archs in the ring in each bucket: it starts empty at every switch.
        assert int(scheme.recent_filled.numpy()) == step % 2 + 1
    # A fresh pool at step 4 (bucket 2), without the 100-step re-draw.
    pool = scheme.pool.numpy()
    assert all((int(c[3]), int(c[4])) in TABLE[2] for c in pool)


def test_loss_weights_are_point_four_point_four_point_two():
    scheme = sse.SSEScheme(SPACE, seed=1, buckets=(0,))
    members = scheme.members(tf.constant(0, tf.int64))
    assert len(members) == 8
    sampled = members[0]
    assert sampled.target == "labels+external_teacher" and sampled.regularize
    assert sampled.l2_weight == 1.0  # weight decay at full strength (SCHEMES.md §3.2)
    # weight * ((1 - alpha) * CE + alpha * KL) = 0.4 CE + 0.4 KL.
    assert sampled.weight * (1 - sampled.teacher_alpha) == pytest.approx(0.4)
    assert sampled.weight * sampled.teacher_alpha == pytest.approx(0.4)
    assert all(m.target == "labels" and m.weight == pytest.approx(0.2 / 7) for m in members[1:])
    plain = sse.SSEScheme(SPACE, seed=1, buckets=(0,), distill_weight=0.0)
    plain = plain.members(tf.constant(0, tf.int64))
    assert plain[0].target == "labels" and plain[0].weight == pytest.approx(0.4)


def test_broadcast_gives_five_identical_copies_of_the_source(tmp_path):
    keras.utils.set_random_seed(4)
    src = supernet_lib.Supernet("fmnist")
    src.build()
    rng = np.random.default_rng(4)
    for v in src.variables:
        v.assign(rng.normal(0, 0.1, v.shape).astype(np.float32))
    src.save(tmp_path / "cpt.keras")
    dst = make_net()
    transfer.init_from(dst, tmp_path / "cpt.keras")
    source = {transfer._relative(v): v.numpy() for v in src.variables}
    for v in dst.variables:
        want = source[transfer._relative(v)]
        for copy in range(v.shape[0]):
            np.testing.assert_array_equal(v.numpy()[copy], want[0], err_msg=v.path)
    # Every bucket's arch then computes the source's logits.
    images = tf.constant(rng.normal(size=(4, 28, 28, 1)), tf.float32)
    for bucket in range(5):
        d3, d4 = sse.bucket_pairs()[bucket][0]
        a = supernet_lib.arch_tensor(_with_depths(d3, d4))
        assert dst.copies(a).numpy().tolist() == [bucket] * 6
        np.testing.assert_array_equal(dst(images, arch=a).numpy(), src(images, arch=a).numpy())


def _with_depths(d3, d4):
    """The largest arch with stage depths 3 and 4 set to (d3, d4)."""
    largest = SPACE.largest()
    return ss.Arch(largest.resolution, (largest.depths[0], largest.depths[1], d3, d4),
                   largest.stem, (largest.mids[0], largest.mids[1], (1,) * d3, (1,) * d4),
                   largest.outs)


def test_buckets_not_being_trained_stay_bitwise_unchanged():
    net = make_net(seed=2)
    teacher = static.extract_subnet(make_net(seed=7), SPACE.largest(), name="teacher")
    scheme = sse.SSEScheme(SPACE, seed=5, buckets=(1, 3), boundaries=(2,), pool_size=3,
                           recent_size=4, knn=2)
    trainer = trainer_lib.SupernetTrainer(net, scheme, weight_decay=1e-3, teacher_model=teacher)
    trainer.compile(optimizer=optimizers.LazySGD(0.05, momentum=0.9), jit_compile=False)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(8, 28, 28, 1)), tf.float32)
    y = tf.constant(rng.integers(0, 10, 8), tf.int32)
    before = {v.path: v.numpy().copy() for v in net.trainable_variables}
    teacher_before = [v.numpy().copy() for v in teacher.weights]
    for step in range(4):
        trainer.train_on_batch(x, y)
        trained = {1, 3} if step >= 2 else {1}
        for v in net.trainable_variables:
            for copy in range(v.shape[0]):
                same = np.array_equal(v.numpy()[copy], before[v.path][copy])
                if copy not in trained:
                    assert same, (step, v.path, copy)
        if step == 1:
            moved = [v.path for v in net.trainable_variables
                     if not np.array_equal(v.numpy()[1], before[v.path][1])]
            assert len(moved) > 10  # bucket 1 trained
    for v, b in zip(teacher.weights, teacher_before):
        np.testing.assert_array_equal(v.numpy(), b)


def test_codes_file_draws_each_bucket_from_its_codes(tmp_path):
    archs = SPACE.sample_many(300, 11)
    path = tmp_path / "codes.txt"
    path.write_text("\n".join(a.code for a in archs) + "\n")
    scheme = sse.SSEScheme(SPACE, seed=1, buckets=(0, 3), boundaries=(3,), pool_size=3,
                           recent_size=4, knn=2, distill_weight=0.0, codes_file=str(path))
    allowed = {a.code for a in archs}
    for step in range(6):
        bucket = 0 if step < 3 else 3
        for m in scheme.members(tf.constant(step, tf.int64)):
            code = "".join(map(str, m.arch.numpy()))
            assert code in allowed and (int(code[3]), int(code[4])) in TABLE[bucket]
        scheme.update(tf.constant(step, tf.int64), {})
    few = tmp_path / "few.txt"
    few.write_text(SPACE.largest().code + "\n")
    with pytest.raises(ValueError, match="no code of the sub-supernets"):
        sse.SSEScheme(SPACE, buckets=(0,), codes_file=str(few), distill_weight=0.0).draw(
            tf.constant(0, tf.int64), 0)


def test_config_checks_name_the_fields():
    c = importlib.import_module("configs.fmnist_sse").get_config()
    config_lib.validate_config(c)
    c.train.sse.buckets = (0, 1)
    with pytest.raises(ValueError, match="config.train.sse.buckets.*4 phases"):
        config_lib.validate_config(c)
    c = importlib.import_module("configs.fmnist_sse").get_config()
    c.train.teacher = ""
    with pytest.raises(ValueError, match="config.train.teacher"):
        config_lib.validate_config(c)
    c = importlib.import_module("configs.fmnist_sse").get_config()
    c.supernet.routing = "shared"
    c.supernet.num_copies = 1
    with pytest.raises(ValueError, match="config.supernet.routing.*depth34_table"):
        schemes.build_scheme(c)


def test_get_config_round_trips():
    scheme = sse.SSEScheme(SPACE, seed=2, depth34_buckets="22,23;25", buckets=(0, 1, 2),
                           boundaries=(3, 7), ce_weight=0.3, distill_weight=0.5,
                           pool_weight=0.2, pool_size=4, recent_size=6, knn=3, dropout=0.1)
    config = scheme.get_config()
    assert sse.SSEScheme.from_config(config).get_config() == config
    assert json.loads(json.dumps(config)) == config


def test_init_largest_teacher_is_the_recalibrated_largest_subnet(tmp_path):
    c = importlib.import_module("configs.fmnist_sse").get_config("tiny")
    net = supernet_lib.Supernet("fmnist")
    net.build()
    net.save(tmp_path / "cpt.keras")
    c.supernet.init_from = str(tmp_path / "cpt.keras")
    c.train.teacher = teacher_lib.INIT_LARGEST
    path = teacher_lib.prepare(c, tmp_path / "stage")
    record = teacher_lib.read_record(tmp_path / "stage")
    assert record["kind"] == "init_largest" and record["arch"] == SPACE.largest().code
    assert record["source"] == str((tmp_path / "cpt.keras").resolve())
    model = teacher_lib.load(path)
    assert not model.trainable
    # The teacher is the supernet's largest subnet with recalibrated BN statistics.
    from tfnas import evaluation

    evaluator = evaluation.build_evaluator(c, net, eval_batches=1)
    evaluator.recalibrate(SPACE.largest().code)
    images = tf.constant(np.random.default_rng(1).normal(size=(4, 28, 28, 1)), tf.float32)
    want = net(images, arch=supernet_lib.arch_tensor(SPACE.largest()), training=False)
    got = model(images, training=False)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4,
                               atol=1e-5 * float(np.abs(want.numpy()).max()))
    # Prepared once: a second call keeps the file.
    stamp = path.stat().st_mtime_ns
    assert teacher_lib.prepare(c, tmp_path / "stage") == path and path.stat().st_mtime_ns == stamp
    c.train.teacher = str(tmp_path / "missing.keras")
    with pytest.raises(ValueError, match="no such file"):
        teacher_lib.prepare(c, tmp_path / "other")


def test_standalone_largest_teacher_is_the_largest_subnet_trained_from_scratch(tmp_path):
    from tfnas import data as data_lib

    c = importlib.import_module("configs.fmnist_sse").get_config("tiny")
    c.train.teacher = teacher_lib.STANDALONE_LARGEST
    path = teacher_lib.prepare(c, tmp_path / "stage")
    record = teacher_lib.read_record(tmp_path / "stage")
    assert record["kind"] == "standalone_largest" and record["arch"] == SPACE.largest().code
    assert record["seed"] == c.standalone.seed and record["recipe"]["space"] == c.space
    model = teacher_lib.load(path)
    assert not model.trainable and model.output_shape[-1] == SPACE.num_classes
    # The saved model is the trained one: its accuracy on the recipe's split is the record's.
    split = c.standalone.split
    test = data_lib.build_dataset(c.data, split, c.standalone.eval_batch_size, training=False)
    model.compile(metrics=["accuracy"], loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), jit_compile=False)
    _, acc = model.evaluate(test, verbose=0)
    assert abs(acc - record[f"{split}_accuracy"]) < 1e-6, (acc, record)

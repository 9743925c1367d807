"""K-shot scheme (tfnas.schemes.kshot) and the two-branch simplex-net (seed paper 004)."""

import os

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from tfnas import config_lib
from tfnas import elastic
from tfnas import optimizers
from tfnas import sampling
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas import trainer as trainer_lib
from tfnas.schemes import kshot

SPACE = ss.get_space("fmnist")
K = 2


def make_net(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    net = supernet_lib.Supernet("fmnist", num_kernels=K, simplex_hidden=8, **kwargs)
    net.build()
    return net


def randomize_simplex(net, seed=1):
    rng = np.random.default_rng(seed)
    for v in net.simplex_net.trainable_variables:
        v.assign(rng.normal(0.0, 0.5, size=v.shape).astype(np.float32))


def with_digit(arch, pos, digit):
    digits = [int(d) for d in arch.digits()]
    digits[pos] = digit
    return tf.constant(digits, tf.int32)


# ------------------------------------------------------------------ encoding and simplex-net

def test_encoding_is_one_hot_depths_and_width_digits():
    net = make_net()
    assert net.encoding_sizes() == (1 + 4 + 4 + 7 + 4, 47 * 7)
    e = net.encode(sampling.constant_arch(SPACE.smallest())).numpy()
    # Resolution 1, then depth 2 (the first value) of each stage: offsets 1, 5, 9, 16.
    assert np.flatnonzero(e[:20]).tolist() == [0, 1, 5, 9, 16]
    # One 1 per active width digit: the stem and 2 x 2 per stage; the smallest's digits are
    # all 7 (the narrowest), feature 6 of each active position.
    widths = e[20:].reshape(47, 7)
    assert widths.sum() == 1 + 4 * 2 * 2
    assert widths[0].tolist() == [0, 0, 0, 0, 0, 0, 1]
    largest = net.encode(sampling.constant_arch(SPACE.largest())).numpy()
    assert largest.sum() == 52  # every position active


def test_simplex_net_starts_uniform_and_different_archs_get_different_codes():
    net = make_net()
    small, large = SPACE.smallest(), SPACE.largest()
    np.testing.assert_array_equal(net.mix(sampling.constant_arch(large)).numpy(), [0.5, 0.5])
    randomize_simplex(net)
    base = net.mix(sampling.constant_arch(large)).numpy()
    # One width digit (the stem), one depth: each changes the code.
    stem = net.mix(with_digit(large, ss.STEM_POS, 3)).numpy()
    assert np.abs(base - stem).max() > 1e-4
    deeper = net.mix(sampling.constant_arch(small)).numpy()
    assert np.abs(base - deeper).max() > 1e-4
    np.testing.assert_allclose(base.sum(), 1.0, rtol=1e-6)
    # Without the channel branch, a width-only change leaves the code as it is.
    arch_only = elastic.SimplexNet(K, 8, arch_features=20, channel_branch=False)
    arch_only.build((None, 349))
    rng = np.random.default_rng(2)
    for v in arch_only.trainable_variables:
        v.assign(rng.normal(0.0, 0.5, size=v.shape).astype(np.float32))
    a = arch_only(net.encode(sampling.constant_arch(large))[None]).numpy()
    b = arch_only(net.encode(with_digit(large, ss.STEM_POS, 3))[None]).numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make", [
    lambda: elastic.SimplexNet(3, hidden=8, arch_features=20, name="simplex"),
    lambda: elastic.SimplexNet(4, hidden=5, arch_features=20, channel_branch=False),
    lambda: elastic.SimplexNet(2),
])
def test_simplex_net_get_config_round_trips(make):
    layer = make()
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is elastic.SimplexNet and revived.get_config() == config
    layer.build((None, 30))
    names = sorted(v.path.split("/", 1)[1] for v in layer.trainable_variables)
    branches = {n.split("/")[0] for n in names}
    assert branches == ({"arch_hidden", "arch_logits", "channel_hidden", "channel_logits"}
                        if layer.split else {"arch_hidden", "arch_logits"})


def test_simplex_net_rejects_bad_arch_features():
    with pytest.raises(ValueError, match="arch_features"):
        elastic.SimplexNet(2, arch_features=-1)
    with pytest.raises(ValueError, match="leaves none for the channel branch"):
        elastic.SimplexNet(2, arch_features=30).build((None, 30))


def test_extracted_subnet_carries_the_merged_kernels_of_its_code():
    from tfnas import static

    keras.utils.set_random_seed(0)
    net = supernet_lib.Supernet("fmnist", num_kernels=3)
    net.build()
    randomize_simplex(net)
    rng = np.random.default_rng(3)
    images = tf.constant(rng.normal(size=(4, 28, 28, 1)), tf.float32)
    arch = SPACE.parse("1523564666666616722200000072224200000000003252725222")
    code = net.mix(sampling.constant_arch(arch)).numpy()
    assert code.min() > 0.01  # a code away from the vertices: every dictionary counts
    model = static.extract_subnet(net, arch)
    ours = net(images, arch=sampling.constant_arch(arch), training=False).numpy()
    theirs = model(images, training=False).numpy()
    assert np.abs(ours - theirs).max() <= 1e-5 * np.abs(ours).max()


# ------------------------------------------------------------------------ the regularizer

def numpy_r_c(codes, archs, tau, threshold):
    codes, archs = np.asarray(codes, np.float64), np.asarray(archs)
    n = len(codes)
    terms = []
    for i in range(n):
        for k in range(n):
            if i == k or not np.array_equal(archs[i, :5], archs[k, :5]):
                continue
            wi, wk = archs[i, 5:], archs[k, 5:]
            d = np.abs(wi - wk).sum() / np.count_nonzero((wi > 0) | (wk > 0))
            if d >= threshold:
                continue
            sims = [codes[i] @ codes[j] / tau for j in range(n) if j != i]
            terms.append(-(codes[i] @ codes[k] / tau - np.log(np.sum(np.exp(sims)))))
    return np.mean(terms) if terms else 0.0


def fixed_archs():
    large = SPACE.largest()
    near = [int(d) for d in large.digits()]
    near[6] = near[8] = 2  # the largest's digits are 1: two mids 1 -> 2, distance 2/47
    far = [int(d) if i < 5 or d == 0 else 7 for i, d in enumerate(large.digits())]  # 6
    return np.array([large.digits(), near, far, SPACE.smallest().digits(),
                     SPACE.smallest().digits()], np.int32)


def test_contrastive_regularizer_matches_numpy():
    archs = fixed_archs()
    codes = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4],
                      [0.2, 0.5, 0.3]], np.float32)
    for threshold in (0.5, 2.25, 10.0):
        ours = kshot.contrastive_regularizer(codes, archs, 0.3, threshold).numpy()
        np.testing.assert_allclose(ours, numpy_r_c(codes, archs, 0.3, threshold), rtol=1e-6)
    # Positives at 0.5: (large, near) both ways and the two smallest: 4 pairs.
    d = kshot.width_distance(archs).numpy()
    np.testing.assert_allclose(d[0, 1], 2 / 47, rtol=1e-6)
    np.testing.assert_allclose(d[0, 2], 6.0, rtol=1e-6)
    # No positive pair: 0, not NaN.
    assert kshot.contrastive_regularizer(codes[:3], archs[[0, 2, 3]], 0.3, 0.5).numpy() == 0.0


def test_regularizer_reaches_the_simplex_net_on_simplex_steps_only():
    net = make_net()
    randomize_simplex(net)
    # Threshold 10 > any distance: each same-depth pair is a positive, so r_c > 0.
    scheme = kshot.KShotScheme(SPACE, seed=3, num_paths=4, distance_threshold=10.0)
    groups = scheme.variable_groups(net)
    for t, simplex_step in ((0, False), (1, True)):
        with tf.GradientTape() as tape:
            loss = scheme.group_losses(tf.constant(t, tf.int64))["simplex"]()
        grads = tape.gradient(loss, groups["simplex"])
        moved = any(g is not None and np.any(tf.convert_to_tensor(g).numpy() != 0)
                    for g in grads)
        assert moved == simplex_step and (float(loss) > 0) == simplex_step


# ------------------------------------------------------------------------------ the scheme

def test_phases_codes_and_paths():
    net = make_net()
    randomize_simplex(net)
    scheme = kshot.KShotScheme(SPACE, seed=3, warmup_steps=3, num_paths=4)
    groups = scheme.variable_groups(net)
    assert len(groups["simplex"]) == 8 and len(groups["supernet"]) + 8 == len(
        net.trainable_variables)
    kinds = []
    for t in range(7):
        w_net, w_simplex = (float(w) for w in scheme.step_weights(tf.constant(t, tf.int64)))
        assert w_net + w_simplex == 1.0
        kinds.append("s" if w_simplex else "n")
    assert "".join(kinds) == "nnnnsns"  # 3 warm-up steps, then supernet first
    arch = sampling.constant_arch(SPACE.largest())
    warm = scheme.supernet_code(tf.constant(2, tf.int64), arch).numpy()
    np.testing.assert_array_equal(warm, np.full(K, 1.0 / K, np.float32))
    after = scheme.supernet_code(tf.constant(3, tf.int64), arch).numpy()
    np.testing.assert_array_equal(after, net.mix(arch).numpy())
    assert np.abs(after - 0.5).max() > 1e-4
    members = scheme.members(tf.constant(4, tf.int64))
    assert [m.name for m in members] == ["path", "simplex1", "simplex2", "simplex3", "simplex4"]
    assert [m.trains for m in members] == [("supernet",)] + [("simplex",)] * 4
    assert [m.batch_slice for m in members[1:]] == [(j, 4) for j in range(4)]
    assert all(m.mix is None for m in members[1:]) and members[0].regularize
    archs = scheme.path_archs(tf.constant(4, tf.int64)).numpy()
    for a, b in (archs[0:2], archs[2:4]):
        assert a[:5].tolist() == b[:5].tolist() and a[5:].tolist() != b[5:].tolist()
        for digits in (a, b):
            SPACE.parse("".join(map(str, digits)))  # valid codes
    sandwich = kshot.KShotScheme(SPACE, 3, None, 0, "sandwich", 2, num_random=1)
    config = sandwich.get_config()
    assert kshot.KShotScheme.from_config(config).get_config() == config
    sandwich.variable_groups(net)
    sandwich_members = sandwich.members(tf.constant(0, tf.int64))
    assert [m.name for m in sandwich_members] == [
        "largest", "smallest", "random1", "simplex1", "simplex2"]
    # A step runs one kind (Alg. 2): the off kind, at weight 0, is skipped, not computed.
    assert all(m.skip_at_zero_weight for m in members + sandwich_members)
    # The simplex paths (slices of one batch) run alongside each other; the rest in turn.
    assert [m.sequential for m in members] == [True] + [False] * 4


def test_scheme_needs_kernels_and_even_paths():
    with pytest.raises(ValueError, match="num_kernels=1"):
        kshot.KShotScheme(SPACE).variable_groups(supernet_lib.Supernet("fmnist"))
    with pytest.raises(ValueError, match="even number"):
        kshot.KShotScheme(SPACE, num_paths=3)
    with pytest.raises(ValueError, match="supernet_step"):
        kshot.KShotScheme(SPACE, supernet_step="joint")


def test_validator_and_group_optimizers():
    section = ml_collections.ConfigDict(dict(kshot.DEFAULTS))
    kshot.validate_config(section, batch_size=128, epochs=3)
    section.warmup_epochs = 3.0  # lambda = 1/K for the whole run (Table 5's fixed row)
    kshot.validate_config(section, batch_size=128, epochs=3)
    for field, value, match in (("num_paths", 3, "even"), ("num_paths", 6, "divisor"),
                                ("warmup_epochs", 3.5, "at most"),
                                ("temperature", 0.0, "temperature")):
        bad = ml_collections.ConfigDict(dict(kshot.DEFAULTS))
        bad[field] = value
        with pytest.raises(ValueError, match=f"config.train.kshot.{field}.*{match}"):
            kshot.validate_config(bad, batch_size=128, epochs=3)
    config = config_lib.base_config()
    if "kshot" not in config.train:
        # The section enters base_config with its line in tfnas.trainer.validate_config
        # (both the lead's edits); until then the test adds the defaults itself.
        config.train.kshot = dict(kshot.DEFAULTS)
    assert dict(config.train.kshot) == kshot.DEFAULTS
    assert kshot.group_optimizers(config, 10) == {}
    config.train.scheme = "kshot"
    opt = kshot.group_optimizers(config, 10)["simplex"]
    assert isinstance(opt, optimizers.LazySGD) and opt.nesterov
    np.testing.assert_allclose(float(opt.learning_rate), kshot.DEFAULTS["learning_rate"])
    config.train.lazy_updates = False
    with pytest.raises(ValueError, match="lazy_updates"):
        kshot.group_optimizers(config, 10)


# ------------------------------------------------------------------- training (one trace)

class CountingScheme(kshot.KShotScheme):
    """Counts members() calls: one per trace of the train step (plus the trainer's checks)."""

    calls = 0

    def members(self, step):
        type(self).calls += 1
        return super().members(step)


def make_trainer(seed=0):
    net = make_net(seed)
    scheme = CountingScheme(SPACE, seed=3, warmup_steps=1, num_paths=2)
    trainer = trainer_lib.SupernetTrainer(net, scheme, weight_decay=1e-3)
    trainer.compile(
        optimizer=optimizers.LazySGD(0.05, momentum=0.9),
        group_optimizers={"simplex": optimizers.LazySGD(0.01, momentum=0.9, nesterov=True)},
        jit_compile=False,
    )
    return trainer


def batch(seed=1):
    rng = np.random.default_rng(seed)
    return (tf.constant(rng.normal(size=(8, 28, 28, 1)), tf.float32),
            tf.constant(rng.integers(0, 10, 8), tf.int32))


@pytest.fixture(scope="module")
def trained():
    trainer = make_trainer()
    groups = trainer.scheme.variable_groups(trainer.supernet)
    images, labels = batch()
    moved, traces = [], []
    for _ in range(4):  # warm-up, supernet, simplex, supernet
        before = {g: [v.numpy().copy() for v in vs] for g, vs in groups.items()}
        calls = CountingScheme.calls
        trainer.train_on_batch(images, labels)
        traces.append(CountingScheme.calls - calls)
        moved.append({g: sum(int(np.any(v.numpy() != b)) for v, b in zip(vs, before[g]))
                      for g, vs in groups.items()})
    return trainer, moved, traces


@pytest.mark.slow
def test_alternation_updates_only_its_group_and_traces_once(trained):
    trainer, moved, traces = trained
    # The first call traces (tf.function traces twice when a call creates the optimizers'
    # slots); the phase changes after it never retrace.
    assert traces[0] >= 1 and traces[1:] == [0, 0, 0]
    kinds = [(m["supernet"] > 0, m["simplex"] > 0) for m in moved]
    assert kinds == [(True, False), (True, False), (False, True), (True, False)]
    # The first simplex step moves the two logits layers (kernel, bias) only: their kernels
    # start at zero, so no gradient reaches the hidden layers yet.
    assert moved[2]["simplex"] == 4
    code = trainer.supernet.mix(sampling.constant_arch(SPACE.largest())).numpy()
    assert np.abs(code - 0.5).max() > 0  # the simplex step moved the code


@pytest.mark.slow
def test_checkpoint_holds_both_optimizers_and_resumes_exactly(trained, tmp_path):
    trainer, _, _ = trained
    path = os.path.join(tmp_path, "kshot.weights.h5")
    trainer.save_weights(path)
    clone = make_trainer(seed=7)
    clone.build_optimizers()
    clone.load_weights(path)
    for a, b in ((trainer.optimizer, clone.optimizer),
                 (trainer.optimizer_simplex, clone.optimizer_simplex)):
        assert len(a.variables) == len(b.variables)
        for x, y in zip(a.variables, b.variables):
            np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert any(np.any(m.numpy() != 0) for m in clone.optimizer_simplex.momentums)
    assert int(clone.optimizer.iterations.numpy()) == 4
    # Step 4 (a simplex step) and step 5 (supernet) on both: the same weights, bit for bit.
    images, labels = batch(seed=2)
    for _ in range(2):
        trainer.train_on_batch(images, labels)
        clone.train_on_batch(images, labels)
    for x, y in zip(trainer.supernet.weights, clone.supernet.weights):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


# ---------------------------------------------------------------- 2 replicas = 1 device

def replica_check():
    """4 K-shot steps (warm-up, supernet, simplex, supernet) on 2 replicas and on 1 device.

    Every global batch is [B; B; B; B]: a replica's batch is [B; B] and each of its m = 2
    path slices is B, as each 1-device slice [B; B] has B's statistics, so the two runs
    agree up to round-off. In float64 (the ``--replicas`` process sets it): in float32 these
    tiny BN batches amplify round-off so much that scaling the images by 1 + 1e-7 on one
    device moved weights by 0.03 after the 4 steps (measured), so only float64 can tell a
    real difference from round-off (TF_NOTES.md)."""
    from tfnas import distribute

    rng = np.random.default_rng(4)
    batches = []
    for _ in range(4):
        b, y = rng.normal(size=(2, 28, 28, 1)), rng.integers(0, 10, 2)
        batches.append((np.concatenate([b] * 4), np.concatenate([y] * 4).astype("int32")))
    images = np.concatenate([b[0] for b in batches]).astype(keras.config.floatx())
    labels = np.concatenate([b[1] for b in batches])

    def train(strategy):
        ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
        with strategy.scope():
            trainer = make_trainer()
        trainer.fit(ds, epochs=1, verbose=0)
        values = [v.numpy() for v in trainer.weights]
        values += [v.numpy() for v in trainer.optimizer.variables]
        values += [v.numpy() for v in trainer.optimizer_simplex.variables]
        return values, trainer.supernet.mix(sampling.constant_arch(SPACE.largest())).numpy()

    mirrored = distribute.make_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    two, code2 = train(mirrored)
    one, code1 = train(distribute.make_strategy("default"))
    return dict(
        replicas=mirrored.num_replicas_in_sync,
        diff=max(float(np.abs(a - b).max()) for a, b in zip(one, two)),
        count=[len(one), len(two)],
        code_moved=float(np.abs(code1 - 0.5).max()),
        code_diff=float(np.abs(code1 - code2).max()),
    )


@pytest.mark.slow
def test_two_replicas_match_one_device_with_the_alternation():
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, __file__, "--replicas"], capture_output=True, text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), timeout=3000,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["count"][0] == result["count"][1]
    assert result["code_moved"] > 0  # the simplex step ran
    # float64: both measured at about 2e-13.
    assert result["diff"] < 1e-9 and result["code_diff"] < 1e-9, result


if __name__ == "__main__":
    import json
    import sys

    if "--replicas" in sys.argv:
        from tfnas import distribute

        keras.config.set_floatx("float64")
        distribute.split_cpu(2)
        print(json.dumps(replica_check()))

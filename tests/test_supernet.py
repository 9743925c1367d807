"""The supernet: one trace for every arch, exact extraction, serialization, weight sources."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas import sampling
from tfnas import search_space as ss
from tfnas import static
from tfnas import supernet as supernet_lib

# imagenet is tested at a small resolution: the network is fully convolutional.
TEST_SIZE = {"fmnist": 28, "imagenet": 32, "cifar10": 32, "cifar100": 32}


def _images(space, batch=2, seed=0):
    size = TEST_SIZE[space.name]
    rng = np.random.default_rng(seed)
    return tf.constant(rng.normal(size=(batch, size, size, space.in_channels)), tf.float32)


def _randomize_bn(net, seed=0):
    """Gives BN non-trivial parameters and statistics so that parity tests can fail."""
    rng = np.random.default_rng(seed)
    for v in net.non_trainable_variables + net.trainable_variables:
        if v.path.endswith(("moving_variance", "gamma")):
            v.assign(rng.uniform(0.5, 1.5, size=v.shape).astype(np.float32))
        elif v.path.endswith(("moving_mean", "beta")):
            v.assign(rng.normal(0.0, 0.1, size=v.shape).astype(np.float32))


@pytest.fixture(scope="module", params=["fmnist", "imagenet"])
def net(request):
    keras.utils.set_random_seed(0)
    model = supernet_lib.Supernet(space=request.param, name="supernet")
    model.build()
    _randomize_bn(model)
    return model


def _inference_fn(net):
    size = TEST_SIZE[net.space.name]
    spec = tf.TensorSpec([None, size, size, net.space.in_channels], tf.float32)

    @tf.function(input_signature=[spec, tf.TensorSpec([ss.CODE_LENGTH], tf.int32)])
    def infer(images, arch):
        return net(images, arch=arch, training=False)

    return infer


def _archs(space, n, seed=0):
    return [space.largest(), space.smallest(), *space.sample_many(n, seed)]


def test_one_trace_serves_every_arch(net):
    infer = _inference_fn(net)
    images = _images(net.space)
    for arch in _archs(net.space, 50, seed=1):
        infer(images, supernet_lib.arch_tensor(arch))
    assert infer.experimental_get_tracing_count() == 1


@pytest.mark.slow
def test_one_trace_for_training_calls_of_every_arch(net):
    if net.space.name != "fmnist":
        pytest.skip("the training trace is the same code; one space keeps the suite fast")
    size = TEST_SIZE[net.space.name]
    spec = tf.TensorSpec([None, size, size, 1], tf.float32)

    @tf.function(input_signature=[spec, tf.TensorSpec([52], tf.int32)])
    def train_logits(images, arch):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(net(images, arch=arch, training=True) ** 2)
        return tape.gradient(loss, net.trainable_variables)

    for arch in _archs(net.space, 50, seed=2):
        train_logits(_images(net.space), supernet_lib.arch_tensor(arch))
    assert train_logits.experimental_get_tracing_count() == 1


def test_extracted_subnet_matches_the_supernet(net):
    infer = _inference_fn(net)
    images = _images(net.space, seed=3)
    for arch in _archs(net.space, 20, seed=4):
        model = static.extract_subnet(net, arch, image_size=TEST_SIZE[net.space.name])
        expected = infer(images, supernet_lib.arch_tensor(arch)).numpy()
        got = model(images, training=False).numpy()
        # The supernet folds inference BN into the kernels (elastic.conv_bn), the Keras model
        # does not: float32 round-off, relative to the logits' scale (~1e3 at initialization).
        atol = 1e-5 * max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(got, expected, atol=atol, rtol=0, err_msg=arch.code)
        assert model.count_params() == net.space.params(arch), arch.code
        for layer in model.layers:
            assert not type(layer).__module__.startswith("tfnas"), layer


def test_extraction_and_parity_with_weight_copies_and_k_shot():
    """Routing and K-shot go through the same code: extraction still matches."""
    keras.utils.set_random_seed(5)
    net = supernet_lib.Supernet("fmnist", num_copies=3, routing="stage_width", num_kernels=2)
    net.build()
    _randomize_bn(net, seed=5)
    # Make the simplex-net non-uniform so the merge matters.
    for v in net.simplex_net.trainable_variables:
        v.assign(np.random.default_rng(6).normal(0, 0.5, size=v.shape).astype(np.float32))
    infer = _inference_fn(net)
    images = _images(net.space, seed=7)
    for arch in _archs(net.space, 5, seed=8):
        model = static.extract_subnet(net, arch)
        expected = infer(images, supernet_lib.arch_tensor(arch)).numpy()
        # Random BN statistics and simplex weights give logits of ~1e2, so float32
        # round-off is relative to the largest logit, not to each one.
        np.testing.assert_allclose(
            model(images, training=False).numpy(),
            expected,
            atol=1e-6 * np.abs(expected).max(),
            rtol=1e-5,
        )


def test_routing_tables():
    np.testing.assert_array_equal(supernet_lib.routing_table("shared", 1), [0])
    np.testing.assert_array_equal(
        supernet_lib.routing_table("stage_width", 3), [0, 0, 0, 1, 1, 2, 2]
    )
    assert set(supernet_lib.routing_table("depth34", 4)) == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="routing='shared' uses one weight copy"):
        supernet_lib.routing_table("shared", 2)
    with pytest.raises(ValueError, match="num_copies must be in 1..7; received 8"):
        supernet_lib.routing_table("stage_width", 8)
    with pytest.raises(ValueError, match="Unknown routing 'groups'"):
        supernet_lib.routing_table("groups", 1)


def test_copies_follow_the_arch():
    net = supernet_lib.Supernet("fmnist", num_copies=7, routing="stage_width")
    arch = ss.get_space("fmnist").parse("1252233313000000223212122253130000000000006515000000")
    copies = net.copies(supernet_lib.arch_tensor(arch)).numpy()
    # stem digit 3 (stem and stage 1), stage outs 2, 3, 5 (and the classifier follows stage 4).
    np.testing.assert_array_equal(copies, [2, 2, 1, 2, 4, 4])


def test_in_graph_sampler_draws_valid_uniform_archs():
    space = ss.get_space("fmnist")
    sample = tf.function(
        lambda step: sampling.uniform_arch(sampling.member_seed(7, step, 0), space)
    )
    codes = ["".join(map(str, sample(tf.constant(t, tf.int64)).numpy())) for t in range(300)]
    archs = [space.parse(code) for code in codes]  # raises on any invalid code
    assert len(set(codes)) == 300
    depths3 = np.array([a.depths[2] for a in archs])
    assert set(depths3) == set(range(2, 9))
    again = "".join(map(str, sample(tf.constant(5, tf.int64)).numpy()))
    assert again == codes[5]


def test_supernet_round_trips_through_config_and_keras_file(tmp_path):
    keras.utils.set_random_seed(9)
    net = supernet_lib.Supernet("fmnist", num_copies=2, routing="depth34", num_kernels=2)
    images = _images(net.space)
    arch = supernet_lib.arch_tensor(net.space.sample_many(1, 3)[0])
    expected = net(images, arch=arch).numpy()
    clone = supernet_lib.Supernet.from_config(net.get_config())
    assert clone.get_config() == net.get_config()
    path = tmp_path / "supernet.keras"
    net.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, supernet_lib.Supernet)
    np.testing.assert_array_equal(loaded(images, arch=arch).numpy(), expected)


def test_arch_tensor_rejects_bad_input():
    with pytest.raises(ValueError):
        supernet_lib.arch_tensor("12345")
    with pytest.raises(ValueError, match="of shape"):
        supernet_lib.arch_tensor(np.zeros(10, np.int32))


def test_zero_init_residual_starts_every_block_as_its_shortcut():
    """BigNAS §3.2: at initialization only the stem, the shortcuts and the widths of the
    stage outputs matter -- depths and mid widths do not change the logits."""
    keras.utils.set_random_seed(0)
    net = supernet_lib.Supernet(space="fmnist", zero_init_residual=True)
    net.build()
    space = net.space
    deep = space.largest()
    shallow = ss.Arch(1, ss.MIN_DEPTHS, 1, tuple((7,) * d for d in ss.MIN_DEPTHS), (1, 1, 1, 1))
    images = _images(space, batch=4)
    a = net(images, arch=supernet_lib.arch_tensor(deep), training=False)
    b = net(images, arch=supernet_lib.arch_tensor(shallow), training=False)
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    assert float(tf.reduce_max(tf.abs(a))) > 0.0
    gammas = [v for v in net.trainable_variables if v.path.endswith("bn2/gamma")]
    assert gammas and all(not np.any(v.numpy()) for v in gammas)
    clone = supernet_lib.Supernet.from_config(net.get_config())
    assert clone.zero_init_residual
    # Off (the layer default), the same two archs differ.
    plain = supernet_lib.Supernet(space="fmnist")
    plain.build()
    c = plain(images, arch=supernet_lib.arch_tensor(deep), training=False)
    d = plain(images, arch=supernet_lib.arch_tensor(shallow), training=False)
    assert np.max(np.abs(c.numpy() - d.numpy())) > 1e-3


# ---------------------------------------------------------------- routing as data


def _groups_by_value(space, loc, num_copies):
    """Hand-made nested split of one location: the widest G-1 distinct channel values of
    its row of the width table each own a copy, the rest share one (seed paper 000 §2.2)."""
    row = space.width_table()[min(loc, 4)]
    distinct = sorted(set(row.tolist()), reverse=True)
    singles = distinct[: num_copies - 1]
    groups = [[d + 1 for d in range(7) if row[d] == v] for v in singles]
    rest = [d + 1 for d in range(7) if row[d] not in singles]
    return groups + ([rest] if rest else [])


def _groups_of_table(row):
    return [[d + 1 for d in range(7) if row[d] == c] for c in range(int(max(row)) + 1)]


@pytest.mark.parametrize("space", ["fmnist", "imagenet"])
def test_stage_width_nested_g2_gives_the_seed_papers_groups(space):
    """SCHEMES.md §7.1 J: G=2 gives stage 1 {1,2 | 3-7} and stages 2-4 {1 | 2-7}, keyed by
    channel value (stage 1's digits 1 and 2 are both the base width); stem unsplit."""
    table = supernet_lib.location_table("stage_width_nested", 2, space)
    assert _groups_of_table(table[0]) == [[1, 2, 3, 4, 5, 6, 7]]
    assert _groups_of_table(table[1]) == [[1, 2], [3, 4, 5, 6, 7]]
    for loc in (2, 3, 4, 5):
        assert _groups_of_table(table[loc]) == [[1], [2, 3, 4, 5, 6, 7]]
    # The same table split by hand from the width table.
    sp = ss.get_space(space)
    for loc in range(1, 6):
        assert _groups_of_table(table[loc]) == _groups_by_value(sp, loc, 2)
    assert supernet_lib.copy_counts(table) == (1, 2, 2, 2, 2, 2)


@pytest.mark.parametrize("space", ["fmnist", "imagenet"])
def test_stage_width_nested_is_nested_and_capped(space):
    sp = ss.get_space(space)
    distinct = [len(set(sp.width_table()[min(loc, 4)].tolist())) for loc in range(6)]
    assert distinct == [3, 3, 6, 7, 7, 7]
    previous = None
    for g in range(1, 8):
        table = supernet_lib.location_table("stage_width_nested", g, space)
        counts = supernet_lib.copy_counts(table)
        # Seed paper 000 Fig. 1: "1, 3, 6, 7, 7, 7" at G=7; the stem is never split.
        assert counts == tuple([1] + [min(g, n) for n in distinct[1:]])
        for loc in range(1, 6):
            assert _groups_of_table(table[loc]) == _groups_by_value(sp, loc, g)
        if previous is not None:
            for loc in range(6):
                new, old = _groups_of_table(table[loc]), _groups_of_table(previous[loc])
                # Every new group lies in one old group; at most one value split off.
                assert all(any(set(n) <= set(o) for o in old) for n in new)
                assert len(new) - len(old) == (1 if loc and g <= distinct[loc] else 0)
        previous = table
    assert supernet_lib.copy_counts(
        supernet_lib.location_table("stage_width_nested", 7, space, split_stem=True)
    ) == (3, 3, 6, 7, 7, 7)


def test_nested_parent_map():
    # G=2 -> 3 in fmnist: stage 1 {1,2|3,4|5-7} from {1,2|3-7}; stages 2-4 {1|2|3-7}.
    assert supernet_lib.nested_parent_map("fmnist", 2) == [
        [0], [0, 1, 1], [0, 1, 1], [0, 1, 1], [0, 1, 1], [0, 1, 1]
    ]
    # G=3 -> 4: stage 1 is capped at 3 values, identity there.
    assert supernet_lib.nested_parent_map("fmnist", 3)[1] == [0, 1, 2]
    assert supernet_lib.nested_parent_map("fmnist", 3)[2] == [0, 1, 2, 2]
    # The contiguous stage_width split is not nested: G=2 {1-4|5-7}, G=3 {1-3|4,5|6,7}.
    with pytest.raises(ValueError, match="copy 1 of stem serves keys of copies \\[0, 1\\]"):
        supernet_lib.parent_map(
            supernet_lib.location_table("stage_width", 2, "fmnist"),
            supernet_lib.location_table("stage_width", 3, "fmnist"),
        )


def _code(d3, d4, space="fmnist"):
    arch = ss.Arch(1, (2, 2, d3, d4), 1, tuple((1,) * d for d in (2, 2, d3, d4)), (1, 1, 1, 1))
    return supernet_lib.arch_tensor(arch, ss.get_space(space))


def test_depth34_table_routes_sses_buckets():
    """SCHEMES.md §3.1 step 8: 22-24 | 32..82 | 83-85 | 25..75 | the 10 other pairs."""
    net = supernet_lib.Supernet("fmnist", num_copies=5, routing="depth34_table")
    expected = {(2, 2): 0, (2, 4): 0, (5, 2): 1, (8, 2): 1, (8, 5): 2, (2, 5): 3, (7, 5): 3,
                (3, 3): 4, (7, 4): 4, (5, 3): 4}
    copies = tf.function(net.copies, input_signature=[tf.TensorSpec([52], tf.int32)])
    for (d3, d4), copy in expected.items():
        np.testing.assert_array_equal(copies(_code(d3, d4)).numpy(), [0] + [copy] * 5)
    assert copies.experimental_get_tracing_count() == 1
    assert net.copy_counts == (1, 5, 5, 5, 5, 5)
    split = supernet_lib.Supernet("fmnist", num_copies=5, routing="depth34_table", split_stem=True)
    np.testing.assert_array_equal(split.copies(_code(8, 4)).numpy(), [2] * 6)
    custom = supernet_lib.Supernet(
        "fmnist", num_copies=2, routing="depth34_table", depth34_buckets="84,85"
    )
    assert int(custom.copies(_code(8, 5))[3]) == 0 and int(custom.copies(_code(8, 3))[3]) == 1
    with pytest.raises(ValueError, match="has 5 copies, received num_copies=4"):
        supernet_lib.Supernet("fmnist", num_copies=4, routing="depth34_table")
    with pytest.raises(ValueError, match="\\(9, 2\\) is not a pair"):
        supernet_lib.parse_depth34_buckets("92")
    with pytest.raises(ValueError, match="\\(2, 2\\) is in two buckets"):
        supernet_lib.parse_depth34_buckets("22;22")


def test_copies_of_nested_routing_and_per_location_variables():
    net = supernet_lib.Supernet("fmnist", num_copies=3, routing="stage_width_nested")
    net.build()
    arch = ss.get_space("fmnist").parse("1252233313000000223212122253130000000000006515000000")
    # stem digit 3 (8,8,7,.. -> value 7: the 2nd widest of stage 1), stage outs 2, 3, 5:
    # stage 2 digit 2 is 15 (2nd widest), stage 3 digit 3 the rest, stage 4 the rest.
    np.testing.assert_array_equal(net.copies(supernet_lib.arch_tensor(arch)).numpy(),
                                  [0, 1, 1, 2, 2, 2])
    assert net.stem_conv.kernel.shape[0] == 1 and net.stem_bn.gamma.shape[0] == 1
    assert net.stages[0].blocks[0].conv1.kernel.shape[0] == 3
    assert net.stages[3].blocks[0].shortcut_bn.beta.shape[0] == 3
    assert net.classifier.kernel.shape[0] == 3 and net.classifier.bias.shape[0] == 3


def test_explicit_routing_table():
    rows = [[0] * 7, [0, 0, 1, 1, 1, 1, 1], [0] * 7, [0, 1, 2, 2, 2, 2, 2], [0] * 7, [0] * 7]
    net = supernet_lib.Supernet("fmnist", num_copies=3, routing="stage_width", routing_table=rows)
    assert net.copy_counts == (1, 2, 1, 3, 1, 1)
    arch = ss.get_space("fmnist").parse("1252233313000000223212122253130000000000006515000000")
    np.testing.assert_array_equal(net.copies(supernet_lib.arch_tensor(arch)).numpy(),
                                  [0, 1, 0, 2, 0, 0])
    with pytest.raises(ValueError, match="must be 6 rows .* of 7 copy indices"):
        supernet_lib.Supernet("fmnist", routing="stage_width", routing_table=[[0] * 7])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_copies=3, routing="stage_width_nested", split_stem=True),
        dict(num_copies=3, routing="depth34_table", depth34_buckets=[[(2, 2)], [(8, 5)]]),
        dict(num_copies=2, routing="depth34_table", depth34_buckets="84,85", num_kernels=2),
        dict(num_kernels=3, simplex_channel_branch=False),
        dict(routing="stage_width", num_copies=2,
             routing_table=[[0] * 7, [0, 1] + [1] * 5] + [[0] * 7] * 4),
    ],
)
def test_new_routings_round_trip(kwargs, tmp_path):
    keras.utils.set_random_seed(11)
    net = supernet_lib.Supernet("fmnist", **kwargs)
    net.build()
    _randomize_bn(net, seed=11)
    clone = supernet_lib.Supernet.from_config(net.get_config())
    assert clone.get_config() == net.get_config()
    np.testing.assert_array_equal(clone.location_table, net.location_table)
    path = tmp_path / "net.keras"
    net.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.copy_counts == net.copy_counts
    images = _images(net.space, seed=12)
    for arch in net.space.sample_many(3, 13):
        a = supernet_lib.arch_tensor(arch)
        np.testing.assert_array_equal(loaded(images, arch=a).numpy(), net(images, arch=a).numpy())


def test_extraction_matches_with_per_location_copy_counts():
    """One stem copy, three stage copies: the extracted static model still matches."""
    keras.utils.set_random_seed(17)
    net = supernet_lib.Supernet("fmnist", num_copies=3, routing="stage_width_nested")
    net.build()
    rng = np.random.default_rng(17)
    for v in net.variables:  # copies differ, so a wrong copy would show
        v.assign((v.numpy() + rng.normal(0, 0.05, v.shape)).astype(np.float32))
    _randomize_bn(net, seed=17)
    infer = _inference_fn(net)
    images = _images(net.space, seed=18)
    for arch in [net.space.smallest(), *net.space.sample_many(2, 19)]:
        assert net.copies(supernet_lib.arch_tensor(arch)).numpy()[1:].max() > 0
        expected = infer(images, supernet_lib.arch_tensor(arch)).numpy()
        got = static.extract_subnet(net, arch)(images, training=False).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-6 * np.abs(expected).max(), rtol=1e-5)


# ---------------------------------------------------------------- masked L2


def test_l2_penalty_of_shared_routing_is_the_whole_kernels():
    from tfnas import trainer

    keras.utils.set_random_seed(14)
    net = supernet_lib.Supernet("fmnist", num_kernels=2)
    net.build()
    arch = supernet_lib.arch_tensor(net.space.sample_many(1, 15)[0])
    whole = trainer.l2_penalty(net.trainable_variables)
    np.testing.assert_allclose(net.l2_penalty(arch).numpy(), whole.numpy(), rtol=1e-6)
    # By hand: every conv and dense kernel, all K dictionaries; no BN, bias, simplex-net.
    by_hand = 0.5 * sum(
        float(np.sum(np.square(v.numpy(), dtype=np.float64)))
        for v in net.trainable_variables
        if v.path.endswith("kernel") and "simplex_net" not in v.path
    )
    np.testing.assert_allclose(net.l2_penalty(arch).numpy(), by_hand, rtol=1e-5)


def test_l2_penalty_counts_only_the_routed_copy():
    keras.utils.set_random_seed(16)
    net = supernet_lib.Supernet("fmnist", num_copies=2, routing="stage_width_nested")
    net.build()
    space = net.space
    widest = supernet_lib.arch_tensor(space.largest())  # copy 0 everywhere
    np.testing.assert_array_equal(net.copies(widest).numpy(), [0] * 6)
    kernels = [v for v in net.trainable_variables if v.path.endswith("kernel")]

    def by_hand(copy_of):
        return 0.5 * sum(
            float(np.sum(np.square(v.numpy()[copy_of(v)], dtype=np.float64))) for v in kernels
        )

    # The stem has one copy (index 0); everything else copy 0 for the widest arch.
    np.testing.assert_allclose(net.l2_penalty(widest).numpy(), by_hand(lambda v: 0), rtol=1e-5)
    # The narrowest arch routes copy 1 in stages 1-4 and the classifier.
    narrow = supernet_lib.arch_tensor(space.smallest())
    np.testing.assert_array_equal(net.copies(narrow).numpy(), [0, 1, 1, 1, 1, 1])
    expected = by_hand(lambda v: 0 if "stem_" in v.path else 1)
    np.testing.assert_allclose(net.l2_penalty(narrow).numpy(), expected, rtol=1e-5)
    # Copy 1 contributes nothing to the widest arch's penalty and gets no gradient from it.
    with tf.GradientTape() as tape:
        penalty = net.l2_penalty(widest)
    grads = tape.gradient(penalty, kernels)
    for v, g in zip(kernels, grads):
        g = tf.convert_to_tensor(g).numpy()
        np.testing.assert_array_equal(g[0], v.numpy()[0])  # d(0.5 w^2)/dw = w
        if v.shape[0] > 1:
            assert not np.any(g[1:]), v.path
    for v in kernels:
        if v.shape[0] > 1:
            v.assign(np.concatenate([v.numpy()[:1], 100 * np.ones_like(v.numpy()[1:])]))
    np.testing.assert_allclose(penalty.numpy(), net.l2_penalty(widest).numpy(), rtol=0)


def test_validate_config_of_the_new_fields():
    from configs import fmnist

    def error(**fields):
        config = fmnist.get_config()
        for k, v in fields.items():
            config.supernet[k] = v
        with pytest.raises(ValueError) as err:
            supernet_lib.validate_config(config.supernet)
        return str(err.value)

    ok = fmnist.get_config().supernet
    ok.routing, ok.num_copies = "depth34_table", 5
    supernet_lib.validate_config(ok)
    ok.routing, ok.num_copies = "stage_width_nested", 7
    supernet_lib.validate_config(ok)
    ok.init_parent = "0;0,1;0,1;0,1;0,1;0,1"
    supernet_lib.validate_config(ok)
    message = error(routing="depth34_table", num_copies=4)
    assert message.startswith("config.supernet.num_copies=4 is invalid: expected 5 with")
    assert "--config.supernet.num_copies=5" in message
    message = error(routing="depth34_table", num_copies=2, depth34_buckets="22,93")
    assert message.startswith("config.supernet.depth34_buckets='22,93' is invalid")
    message = error(routing="stage_width_nested", num_copies=8)
    assert "at most 7 with supernet.routing='stage_width_nested'" in message
    message = error(routing="stage_width", num_copies=2, routing_table="0,1")
    assert message.startswith("config.supernet.routing_table='0,1' is invalid: expected 6 rows")
    table = ";".join(["0,0,0,0,0,0,0"] * 5 + ["0,1,2,2,2,2,2"])
    message = error(routing="stage_width", num_copies=2, routing_table=table)
    assert "expected 3, the most copies a location has" in message
    message = error(init_parent="0,x")
    assert message.startswith("config.supernet.init_parent='0,x' is invalid")

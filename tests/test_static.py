"""tfnas.static.build_static_model: naming contract, params and FLOPs against the space."""

import keras
import numpy as np
import pytest

from tfnas import search_space as ss
from tfnas import static

EXAMPLE = "1252233313000000223212122253130000000000006515000000"


def _archs(space):
    """min, max and a few random archs of a space (seeded)."""
    return [space.smallest(), space.largest(), *space.sample_many(2, seed=42)]


def _walk_macs(model):
    """MACs of conv and dense layers from the built model's output shapes (independent of
    `SearchSpace.flops`)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw, cin, _ = layer.kernel.shape
            total += h * w * kh * kw * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            cin, cout = layer.kernel.shape
            total += cin * cout
    return total


@pytest.fixture(scope="module", params=sorted(ss.SPACES))
def space_and_models(request):
    space = ss.get_space(request.param)
    return space, [(a, static.build_static_model(space, a)) for a in _archs(space)]


def test_params_equal_count_params(space_and_models):
    space, models = space_and_models
    for arch, model in models:
        assert model.count_params() == space.params(arch), arch.code


def test_flops_equal_macs_walked_from_the_model(space_and_models):
    space, models = space_and_models
    for arch, model in models:
        assert _walk_macs(model) == space.flops(arch), arch.code


def test_input_output_and_widths(space_and_models):
    space, models = space_and_models
    size = space.resolutions[0]
    for arch, model in models:
        assert model.input.shape == (None, size, size, space.in_channels)
        assert model.output.shape == (None, space.num_classes)
        widths = space.widths(arch)
        assert model.get_layer("stem_conv").filters == widths["stem"]
        for s in range(4):
            for b, mid in enumerate(widths["mids"][s]):
                prefix = f"stage{s + 1}_block{b + 1}_"
                assert model.get_layer(prefix + "conv1").filters == mid
                assert model.get_layer(prefix + "conv2").filters == widths["outs"][s]


def _expected_names(space, arch, dropout=False):
    names = ["images", "stem_conv", "stem_bn", "stem_relu"]
    if space.imagenet_stem:
        names.append("stem_pool")
    for s, depth in enumerate(arch.depths):
        for b in range(depth):
            p = f"stage{s + 1}_block{b + 1}_"
            names += [p + n for n in ("conv1", "bn1", "relu1", "conv2", "bn2")]
            if s > 0 and b == 0:
                names += [p + "shortcut_conv", p + "shortcut_bn"]
            names += [p + "add", p + "relu"]
    names.append("pool")
    if dropout:
        names.append("dropout")
    names.append("classifier")
    return names


def test_layer_names_follow_the_design(space_and_models):
    space, models = space_and_models
    for arch, model in models:
        assert sorted(layer.name for layer in model.layers) == sorted(_expected_names(space, arch))


def test_layer_settings(space_and_models):
    space, models = space_and_models
    _, model = models[0]
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            assert not layer.use_bias and layer.padding == "same"
            kernel = layer.kernel_size
            if layer.name == "stem_conv":
                assert kernel == ((7, 7) if space.imagenet_stem else (3, 3))
                assert layer.strides == ((2, 2) if space.imagenet_stem else (1, 1))
            elif "shortcut" in layer.name:
                assert kernel == (1, 1) and layer.strides == (2, 2)
            else:
                assert kernel == (3, 3)
                strided = layer.name.endswith("block1_conv1") and not layer.name.startswith(
                    "stage1"
                )
                assert layer.strides == ((2, 2) if strided else (1, 1)), layer.name
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.epsilon == 1e-5 and layer.momentum == 0.9
    dense = model.get_layer("classifier")
    assert dense.use_bias and dense.units == space.num_classes
    if space.imagenet_stem:
        pool = model.get_layer("stem_pool")
        assert pool.pool_size == (3, 3) and pool.strides == (2, 2) and pool.padding == "same"


def test_dropout_layer_only_when_positive():
    space = ss.get_space("fmnist")
    arch = space.smallest()
    model = static.build_static_model(space, arch, dropout=0.2, name="with_dropout")
    assert model.name == "with_dropout"
    assert model.get_layer("dropout").rate == 0.2
    assert sorted(layer.name for layer in model.layers) == sorted(
        _expected_names(space, arch, dropout=True)
    )
    assert model.count_params() == space.params(arch)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        static.build_static_model(space, arch, dropout=1.0)


def test_accepts_codes_and_names_and_rejects_invalid_codes():
    model = static.build_static_model("fmnist", EXAMPLE)
    assert model.name == "fmnist_" + EXAMPLE
    assert model.count_params() == ss.get_space("fmnist").params(EXAMPLE)
    with pytest.raises(ValueError, match=r"position 21 \(stage 2 block 3 out digit\)"):
        static.build_static_model("fmnist", EXAMPLE[:21] + "4" + EXAMPLE[22:])
    with pytest.raises(ValueError, match=r"length is 51"):
        static.build_static_model("fmnist", EXAMPLE[:51])


def test_resolution_index_selects_the_input_size():
    space = ss.SearchSpace("multi", (28, 20), 1, 8, (8, 16, 32, 64), 1, 10, False)
    arch = space.parse("2" + EXAMPLE[1:])
    model = static.build_static_model(space, arch)
    assert model.input.shape == (None, 20, 20, 1)
    assert _walk_macs(model) == space.flops(arch)
    with pytest.raises(ValueError, match="resolution index"):
        static.build_static_model(ss.get_space("fmnist"), arch)


@pytest.mark.parametrize("name", ["fmnist", "cifar10"])
def test_forward_pass_gives_logits(name):
    space = ss.get_space(name)
    model = static.build_static_model(space, EXAMPLE)
    size = space.resolutions[0]
    images = np.random.default_rng(0).normal(size=(2, size, size, space.in_channels))
    logits = model(images.astype("float32"), training=False)
    assert logits.shape == (2, space.num_classes)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(logits)))


def test_image_size_changes_the_input_not_the_weights():
    space = ss.get_space("imagenet")
    arch = space.smallest()
    model = static.build_static_model(space, arch, image_size=64)
    assert model.input.shape == (None, 64, 64, 3)
    assert model.count_params() == space.params(arch)
    assert _walk_macs(model) < space.flops(arch)  # FLOPs are defined at the arch's resolution


@pytest.mark.parametrize("zero_init", [True, False])
def test_zero_init_residual_makes_every_block_start_as_its_shortcut(zero_init):
    """Goyal et al. 2017 §5.1: with each branch's last BN scale at zero every block starts
    as its shortcut, so a block with an identity shortcut passes its (post-ReLU) input
    through unchanged; only the ``bn2`` scales are zeroed."""
    space = ss.get_space("fmnist")
    arch = space.largest()
    keras.utils.set_random_seed(0)
    model = static.build_static_model(space, arch, zero_init_residual=zero_init)
    assert model.count_params() == space.params(arch)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            zero = np.all(layer.gamma.numpy() == 0.0)
            assert zero == (zero_init and layer.name.endswith("bn2")), layer.name
    names = ["stage1_block1_relu", "stage1_block2_relu", "stage1_block3_relu", "classifier"]
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    images = np.random.default_rng(0).normal(size=(2, 28, 28, 1)).astype("float32")
    first, second, third, logits = [keras.ops.convert_to_numpy(t) for t in probe(images)]
    assert np.abs(first).max() > 0.0 and np.all(np.isfinite(logits))
    assert np.allclose(first, second, atol=1e-6) == zero_init
    assert np.allclose(second, third, atol=1e-6) == zero_init

"""The few-shot scheme (tfnas.schemes.fewshot): per-group learning rates, config, routing use.

2 replicas = 1 device for the per-copy multipliers is covered by the engine's test
(tests/engine_checks.py, run by tests/test_trainer.py); this file pins the values and the
equivalence with per-group SGD.
"""

import numpy as np
import pytest
import tensorflow as tf

from configs import fmnist_fewshot
from tfnas import config_lib
from tfnas import optimizers
from tfnas import schemes
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas import trainer as trainer_lib
from tfnas.schemes import fewshot
from tfnas.stages import fewshot as fewshot_stage


def _net(g, space="fmnist"):
    net = supernet_lib.Supernet(space=space, num_copies=g, routing="stage_width_nested")
    net.build()
    return net


def test_multipliers_match_a_hand_computation():
    """G=3 on the full space. Stage 1 (widths 8,8,7,7,6,6,6 by digit): copies {8}, {7}, {6}
    drawn 2/7, 2/7, 3/7; stages 2-4: {w1}, {w2}, rest = 1/7, 1/7, 5/7; the classifier
    follows stage 4; the stem has one copy."""
    net = _net(3)
    code = fewshot.FewShotScheme("fmnist", lr_mode="code").lr_multipliers(net)
    paper = fewshot.FewShotScheme("fmnist", lr_mode="paper").lr_multipliers(net)
    s1_code, s1_paper = [1.0, 1.0, (2 / 7) / (3 / 7)], [(3 / 7) / (2 / 7)] * 2 + [1.0]
    rest_code, rest_paper = [1.0, 1.0, (1 / 7) / (5 / 7)], [5.0, 5.0, 1.0]
    np.testing.assert_allclose(code[0], [1.0])
    np.testing.assert_allclose(code[1], s1_code)
    np.testing.assert_allclose(paper[1], s1_paper)
    for loc in (2, 3, 4, 5):
        np.testing.assert_allclose(code[loc], rest_code)
        np.testing.assert_allclose(paper[loc], rest_paper)
    # G=2 as seed paper 000 Table 2's first row for stages 2-4 (6x the singleton; the
    # authors' code: x5 / x6 by distinct values -- here 6 of 7 digits share the rest).
    paper2 = fewshot.FewShotScheme("fmnist", lr_mode="paper").lr_multipliers(_net(2))
    np.testing.assert_allclose(paper2[3], [6.0, 1.0])
    np.testing.assert_allclose(paper2[1], [2.5, 1.0])  # {8}: digits 1-2; rest 3-7
    assert fewshot.FewShotScheme("fmnist", lr_mode="none").lr_multipliers(net) is None
    assert fewshot.FewShotScheme("fmnist").lr_multipliers(_net(1)) is None


def test_multipliers_follow_the_bounded_sampler():
    """Competition bounds (digit_hi 3,3,3,5,7): stage 2 draws digits 1-3 only, one per copy
    at G=3 (all 1); stage 3 draws 1-5: copies {1}, {2}, {3,4,5} -> 1, 1, 1/3."""
    bounds = ss.BOUNDS_PRESETS["competition"]
    m = fewshot.FewShotScheme("fmnist", bounds=bounds).lr_multipliers(_net(3))
    np.testing.assert_allclose(m[2], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(m[3], [1.0, 1.0, 1 / 3])
    np.testing.assert_allclose(m[4], [1.0, 1.0, 0.2])  # stage 4 draws 1-7
    # Stage 2 at G=7: only copies 0-2 are drawn; the others keep 1.
    m7 = fewshot.FewShotScheme("fmnist", bounds=bounds, lr_mode="paper").lr_multipliers(_net(7))
    np.testing.assert_allclose(m7[2], [1.0] * 6)
    freq = fewshot.sampling_frequencies(_net(7).location_table, bounds)
    np.testing.assert_allclose(freq[2], [1 / 3, 1 / 3, 1 / 3, 0, 0, 0])


def test_frequencies_need_a_width_keyed_routing():
    net = supernet_lib.Supernet(space="fmnist", num_copies=5, routing="depth34_table")
    net.build()
    with pytest.raises(ValueError, match="stage_width_nested"):
        fewshot.FewShotScheme("fmnist").lr_multipliers(net)
    with pytest.raises(ValueError, match="lr_mode"):
        fewshot.FewShotScheme("fmnist", lr_mode="both")


def test_scheme_is_registered_and_round_trips():
    config = fmnist_fewshot.get_config("tiny")
    config.train.scheme = "fewshot"
    config.fewshot.lr_mode = "paper"
    scheme = schemes.build_scheme(config)
    assert isinstance(scheme, fewshot.FewShotScheme)
    assert scheme.lr_mode == "paper"
    again = fewshot.FewShotScheme.from_config(scheme.get_config())
    assert again.get_config() == scheme.get_config()
    # Members are the sandwich's (seed paper 000 Algorithm 1).
    sandwich = schemes.SandwichScheme("fmnist", 0, 2, 0.1)
    step = tf.constant(5, tf.int64)
    for a, b in zip(scheme.members(step), sandwich.members(step)):
        assert (a.name, a.target) == (b.name, b.target)
        np.testing.assert_array_equal(a.arch.numpy(), b.arch.numpy())


def test_step_config_routes_nested_from_g_to_g_plus_1():
    """The stage's derived config: groups keyed by channel value, nested G -> G+1 (every
    key's new copy descends from its old copy), stem one copy, caps 1,3,6,7,7,7."""
    config = fmnist_fewshot.get_config("tiny")
    config.fewshot.max_copies = 7

    def table(g):
        section = fewshot_stage.step_config(config, g, "x.keras").supernet
        return supernet_lib.location_table(
            section.routing, section.num_copies, config.space, split_stem=section.split_stem
        )

    for g in range(2, 7):
        small, big = table(g), table(g + 1)
        parent = supernet_lib.parent_map(small, big)
        for loc in range(6):
            for key in range(7):
                assert parent[loc][big[loc, key]] == small[loc, key]
    assert supernet_lib.copy_counts(table(7)) == (1, 3, 6, 7, 7, 7)
    assert supernet_lib.copy_counts(table(2)) == (1, 2, 2, 2, 2, 2)
    derived = fewshot_stage.step_config(config, 3, "x.keras")
    assert derived.train.scheme == "fewshot"
    assert derived.train.warmup_epochs == 0.0
    assert derived.supernet.init_from == "x.keras"
    config_lib.validate_config(derived)


def test_validator_names_the_field():
    for field, value, match in (
        ("max_copies", 8, "config.fewshot.max_copies"),
        ("epochs", (1, 2, 3), "config.fewshot.epochs"),
        ("learning_rate", (0.0,), "config.fewshot.learning_rate"),
        ("lr_mode", "both", "config.fewshot.lr_mode"),
        ("select", 1, "config.fewshot.select"),
    ):
        config = fmnist_fewshot.get_config("tiny")
        config.fewshot[field] = value
        with pytest.raises(ValueError, match=match):
            config_lib.validate_config(config)


def _trainer(net, scheme, lr):
    trainer = trainer_lib.SupernetTrainer(net, scheme, weight_decay=1e-3)
    recipe = fmnist_fewshot.get_config("tiny").train
    recipe.learning_rate = lr
    recipe.epochs = 1
    recipe.warmup_epochs = 0.0
    trainer.compile(
        optimizer=optimizers.make_optimizer(recipe, 10, lazy=True), jit_compile=False
    )
    return trainer


@pytest.mark.slow  # four trainers traced: 308 s on the loaded 2-core machine
def test_per_group_learning_rates_equal_plain_sgd_per_group():
    """Toy case: a G=3 supernet, 2 sandwich steps (largest + smallest) with momentum. The
    scaled trainer's copy j equals, step after step, plain SGD at learning rate lr x m_j
    started from the same weights (each reference run is re-synced to the scaled run's
    weights before a step, so the gradients agree; the velocity of each run is its own)."""
    lr = 0.05
    tf.keras.utils.set_random_seed(0)
    net = _net(3)
    scheme = fewshot.FewShotScheme("fmnist", seed=3, num_random=0, lr_mode="paper")
    multipliers = scheme.lr_multipliers(net)
    scaled = _trainer(net, scheme, lr)
    values = sorted({m for row in multipliers for m in row})
    assert len(values) > 2  # several distinct learning rates
    refs = {}
    for m in values:
        ref_net = _net(3)
        refs[m] = _trainer(ref_net, schemes.SandwichScheme("fmnist", 3, 0, 0.0), lr * m)
    rng = np.random.default_rng(0)
    for _ in range(2):
        images = rng.normal(size=(8, 28, 28, 1)).astype("float32")
        labels = rng.integers(0, 10, size=(8,))
        start = [v.numpy() for v in net.weights]
        for ref in refs.values():
            for v, w in zip(ref.supernet.weights, start):
                v.assign(w)
            ref.train_on_batch(images, labels)
        scaled.train_on_batch(images, labels)
        for ref_m, ref in refs.items():
            for v, r in zip(net.trainable_variables, ref.supernet.trainable_variables):
                loc = trainer_lib.location_of(v.path)
                for j, m in enumerate(multipliers[loc]):
                    if m == ref_m:
                        np.testing.assert_allclose(
                            v.numpy()[j], r.numpy()[j], rtol=1e-5, atol=1e-7, err_msg=v.path
                        )
    # The run moved: the copies were trained, not merely copied.
    assert any(
        not np.array_equal(v.numpy(), w) for v, w in zip(net.trainable_variables, start)
    )

"""Adapted Progressive Shrinking (tfnas.schemes.multipath + per-phase sampled spaces): the
phase tables of APS v1-v3 (seed paper 001 §3.2), the sampled space at each step, one trace
across phase boundaries, and sampling from a code file."""

import importlib

import numpy as np
import pytest
import tensorflow as tf

from tfnas import config_lib
from tfnas import optimizers
from tfnas import schedules
from tfnas import schemes
from tfnas import search_space as ss
from tfnas import supernet as supernet_lib
from tfnas import trainer as trainer_lib
from tfnas.schemes import multipath

SPACE = ss.get_space("fmnist")
V3 = ((4, 4, 6, 2), (3, 3, 4, 2), (2, 2, 2, 2))


def config(name, variant=None):
    return importlib.import_module(f"configs.{name}").get_config(variant)


@pytest.mark.parametrize("variant, depth", [
    # The paper's §3.2: v1 D4 in [4..5] then [3..5]; v2 [2..5] in phase 2; v3 also phase 1.
    ("v1", ((4, 4, 6, 4), (3, 3, 4, 3), (2, 2, 2, 2))),
    ("v2", ((4, 4, 6, 4), (3, 3, 4, 2), (2, 2, 2, 2))),
    (None, V3),
])
@pytest.mark.parametrize("name, widths", [
    ("imagenet_aps", ((3, 3, 3, 3), (3, 3, 5, 5), (3, 3, 5, 7))),
    ("fmnist_aps", ((3, 3, 3, 3), (5, 5, 5, 5), (7, 7, 7, 7))),
])
def test_aps_configs_hold_the_paper_tables(name, widths, variant, depth):
    c = config(name, variant)
    phases = c.train.phases
    assert tuple(phases.depth_lo) == depth + ((2, 2, 2, 2),) * 3
    assert tuple(phases.width_hi) == ((1, 1, 1, 1),) * 3 + widths
    assert tuple(phases.peaks) == (1.0, 2.0, 4.0, 1.0, 2.0, 4.0) and phases.reset_momentum
    total = c.train.epochs * c.train.steps_per_epoch
    # Phase lengths in the authors' epoch proportions 5, 10, 15, 5, 10, 25 of 70.
    ends = (*phases.boundaries, total)
    lengths = np.diff((0, *ends))
    np.testing.assert_allclose(lengths / total, np.array([5, 10, 15, 5, 10, 25]) / 70,
                               atol=1.0 / total)
    # The last phase is the evaluated space.
    _, rows = schedules.phase_bounds(phases, c.train.bounds)
    assert rows[-1] == ss.BOUNDS_PRESETS[c.train.bounds]
    assert c.train.scheme == "multipath" and c.train.num_paths == 4


def test_imagenet_phases_fall_on_epoch_ends():
    c = config("imagenet_aps")
    spe = c.train.steps_per_epoch
    assert tuple(b / spe for b in c.train.phases.boundaries) == (5, 15, 30, 35, 45)


def test_phase_bounds_are_checked_against_the_evaluated_space():
    c = config_lib.base_config("t", space="fmnist")
    c.train.phases.boundaries = (5,)
    c.train.phases.peaks = (1.0, 1.0)
    c.train.phases.width_hi = ((1, 1, 1, 1), (3, 3, 5, 7))
    with pytest.raises(ValueError, match="train.phases.*evaluated space.*'full'"):
        config_lib.validate_config(c)
    c.train.bounds = "competition"
    config_lib.validate_config(c)
    c.train.phases.depth_lo = ((4, 4, 6, 2),)
    with pytest.raises(ValueError, match=r"train.phases.depth_lo.*2 rows"):
        config_lib.validate_config(c)
    c.train.phases.depth_lo = ((4, 4, 9, 2), (2, 2, 2, 2))
    with pytest.raises(ValueError, match="phase 0"):
        config_lib.validate_config(c)


def aps_scheme(num_paths=4, **kwargs):
    rows = (ss.Bounds((1,) * 5, V3[0]), ss.Bounds((3,) * 5, V3[1]), ss.FULL_BOUNDS)
    return multipath.MultiPathScheme(SPACE, seed=5, num_paths=num_paths,
                                     phase_bounds=((3, 6), rows), **kwargs)


def test_each_step_samples_its_phase_space():
    scheme = aps_scheme()
    rows = scheme.phase_bounds[1]
    seen_d4_2 = False
    for step in range(0, 10):
        phase = 0 if step < 3 else 1 if step < 6 else 2
        for m in scheme.members(tf.constant(step, tf.int64)):
            arch = SPACE.parse("".join(map(str, m.arch.numpy())))
            assert rows[phase].contains(arch), (step, arch.code)
            if phase == 0:
                assert arch.stem == 1 and set(np.concatenate(arch.mids)) == {1}
                seen_d4_2 |= arch.depths[3] == 2
    assert seen_d4_2  # APS_v3: shallow stage 4 from the first phase on
    # Only the first path carries the weight decay (once per step).
    members = scheme.members(tf.constant(0, tf.int64))
    assert [m.regularize for m in members] == [True, False, False, False]
    assert all(m.target == "labels" and m.weight == 1.0 for m in members)


def test_bounds_tensors_follow_the_phase_inside_one_function():
    scheme = aps_scheme()
    fn = tf.function(lambda step: scheme.bounds_at(step))
    got = [tuple(map(tuple, (t.numpy() for t in fn(tf.constant(s, tf.int64)))))
           for s in (0, 2, 3, 5, 6, 100)]
    assert got[0] == got[1] == ((1,) * 5, V3[0])
    assert got[2] == got[3] == ((3,) * 5, V3[1])
    assert got[4] == got[5] == ((7,) * 5, (2, 2, 2, 2))
    assert fn.experimental_get_tracing_count() == 1


class Counting(multipath.MultiPathScheme):
    calls = 0

    def members(self, step):
        type(self).calls += 1
        return super().members(step)


def test_training_across_phase_boundaries_traces_once():
    net = supernet_lib.Supernet("fmnist")
    net.build()
    rows = (ss.Bounds((1,) * 5, V3[0]), ss.FULL_BOUNDS)
    scheme = Counting(SPACE, seed=1, num_paths=2, phase_bounds=((2,), rows))
    trainer = trainer_lib.SupernetTrainer(net, scheme)
    trainer.compile(optimizer=optimizers.LazySGD(0.01), jit_compile=False)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(8, 28, 28, 1)), tf.float32)
    y = tf.constant(rng.integers(0, 10, 8), tf.int32)
    before = Counting.calls
    for _ in range(4):
        trainer.train_on_batch(x, y)
    assert Counting.calls - before == 1


def test_code_file_draws_without_replacement_within_a_pass(tmp_path):
    archs = SPACE.sample_many(12, 3)
    path = tmp_path / "codes.txt"
    path.write_text("\n".join(a.code for a in archs) + "\n")
    scheme = multipath.MultiPathScheme(SPACE, seed=2, num_paths=4, codes_file=str(path))
    drawn = [m.arch.numpy() for s in range(3) for m in scheme.members(tf.constant(s, tf.int64))]
    codes = sorted("".join(map(str, d)) for d in drawn)
    assert codes == sorted(a.code for a in archs)  # 3 steps x 4 paths = one pass
    config = scheme.get_config()
    assert config["codes_file"] == str(path)
    assert multipath.MultiPathScheme.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="either from codes_file"):
        aps_scheme(codes_file=str(path))


def test_get_config_round_trips_the_phase_bounds():
    scheme = aps_scheme(dropout=0.1)
    config = scheme.get_config()
    clone = multipath.MultiPathScheme.from_config(config)
    assert clone.get_config() == config and clone.phase_bounds == scheme.phase_bounds
    assert schemes.SCHEMES["multipath"] is multipath.MultiPathScheme

"""EpochCheckpoint: atomic per-epoch saves, restore, scratch write directories; NanGuard;
Throughput."""

import time

import keras
import numpy as np
import pytest

from tfnas import callbacks


def _model(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    return model


def _fit(model, checkpoint, epochs=2):
    x = np.ones((8, 3), "float32")
    y = np.zeros((8, 2), "float32")
    model.fit(x, y, batch_size=4, epochs=epochs, callbacks=[checkpoint], verbose=0)


def test_restore_continues_from_the_saved_epoch_and_step(tmp_path):
    trained = _model(0)
    _fit(trained, callbacks.EpochCheckpoint(tmp_path / "ckpt"))
    fresh = _model(1)
    start = callbacks.EpochCheckpoint(tmp_path / "ckpt").restore(fresh, steps_per_epoch=2)
    assert start == 2
    assert int(fresh.optimizer.iterations.numpy()) == 4
    for a, b in zip(trained.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_scratch_write_directory_leaves_the_read_directory_alone(tmp_path):
    _fit(_model(0), callbacks.EpochCheckpoint(tmp_path / "chief"), epochs=1)
    before = (tmp_path / "chief" / "last.weights.h5").read_bytes()
    worker = callbacks.EpochCheckpoint(tmp_path / "chief", write_directory=tmp_path / "scratch")
    model = _model(1)
    assert worker.restore(model, steps_per_epoch=2) == 1
    _fit(model, worker, epochs=2)
    assert (tmp_path / "chief" / "last.weights.h5").read_bytes() == before
    assert (tmp_path / "scratch" / "last.weights.h5").exists()


def test_fresh_directory_restores_nothing(tmp_path):
    assert callbacks.EpochCheckpoint(tmp_path / "none").restore(_model(0), 2) == 0


def test_every_epochs_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match=r"every_epochs must be >= 1, received 0"):
        callbacks.EpochCheckpoint(tmp_path, every_epochs=0)


def test_throughput_logs_step_time_and_the_time_to_the_first_step():
    class Slow(keras.callbacks.Callback):
        # Sleeps in fit's start-up, before the first step, so the first step's time
        # from fit's start must include it and a step's own time must not.
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0 and not hasattr(self, "slept"):
                self.slept = True
                time.sleep(0.3)

    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(dict(logs))

    throughput = callbacks.Throughput(global_batch_size=4)
    model = _model(0)
    x = np.ones((8, 3), "float32")
    y = np.zeros((8, 2), "float32")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0,
              callbacks=[Slow(), throughput, Record()])
    assert throughput.first_step_seconds >= 0.3
    assert len(seen) == 2 and all(s["step_time"] < 0.3 for s in seen[1:])
    assert seen[0]["images_per_sec"] == pytest.approx(4 / seen[0]["step_time"])


def test_simplex_codes_log_every_fixed_arch_each_epoch(tmp_path):
    import tensorflow as tf

    from tfnas import supernet as supernet_lib

    keras.utils.set_random_seed(0)
    net = supernet_lib.Supernet("fmnist", num_kernels=3)
    net.build()
    log = callbacks.SimplexCodes(net, tmp_path, num_random=2, seed=5)
    assert log.names == ["largest", "smallest", "random1", "random2"]
    assert log.codes[:2] == [net.space.largest().code, net.space.smallest().code]
    assert log.codes[2:] == [a.code for a in net.space.sample_many(2, 5)]
    log.on_epoch_end(0)
    log.on_epoch_end(1)
    scalars, images = {}, []
    for path in (tmp_path / "simplex").glob("events.out.tfevents*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == "simplex/codes":
                    images.append(event.step)
                else:
                    scalars[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    assert sorted(images) == [1, 2]
    for name, code in zip(log.names, log.codes):
        want = net.mix(tf.constant(net.space.parse(code).digits(), tf.int32)).numpy()
        assert want.sum() == pytest.approx(1.0)
        for step in (1, 2):
            got = [scalars[(f"simplex/{name}/lambda{k + 1}", step)] for k in range(3)]
            np.testing.assert_allclose(got, want, rtol=1e-6)

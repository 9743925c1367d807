"""EpochCheckpoint: atomic per-epoch saves, restore, scratch write directories; NanGuard."""

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

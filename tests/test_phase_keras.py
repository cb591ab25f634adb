"""Keras 2.3.1 through graphk/backend/phase.py: fit compiles only the training phase, with
neither inference branch nor its gradient; predict compiles only the test phase."""
import os
import tempfile

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "graphk.backend"
os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="graphk-keras-home-")

import graphk.keras2  # noqa: E402

graphk.keras2.install_shims()
keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

from graphk.backend.phase import PhaseFunction  # noqa: E402


def test_fit_and_predict_each_compile_one_phase_without_the_other_branch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    np.random.seed(0)
    model = keras.Sequential([layers.Dense(8, input_shape=(6,)), layers.BatchNormalization(),
                              layers.Activation("relu"), layers.Dropout(0.5),
                              layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    train = model.train_function
    assert isinstance(train, PhaseFunction) and list(train._compiled) == [1]
    text = str(train.ir)
    assert "switch" not in text and "random_binomial" in text and "batch_norm_train" in text
    assert "moving_mean" in text  # read by its moving-average update only
    first, again = model.predict(x), model.predict(x)
    np.testing.assert_array_equal(first, again)  # no dropout in the test phase
    predict = model.predict_function
    assert list(predict._compiled) == [0] and "random_" not in str(predict.ir)
    assert "batch_norm_train" not in str(predict.ir)

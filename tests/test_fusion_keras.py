"""Keras models train to the same weights with the whole pass pipeline and with none.

Each model is built, compiled and trained twice from the same initial weights and data:
once as Keras compiles it (default pipeline: decomposition, fusion, ...) and once with the
pipeline emptied (every K.function then runs the graph as written).
"""
import os
import tempfile

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "graphk.backend"
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="graphk-keras-home-"))

import graphk.keras2  # noqa: E402
from graphk.passes import pipeline  # noqa: E402

graphk.keras2.install_shims()
keras = pytest.importorskip("keras")
from keras import layers, optimizers  # noqa: E402


def _mlp():
    return keras.Sequential([layers.Dense(16, activation="relu", input_shape=(8,)),
                             layers.Dense(16, activation="tanh"),
                             layers.Dense(4, activation="softmax")]), "categorical_crossentropy"


def _conv():
    return keras.Sequential([
        layers.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 2)),
        layers.BatchNormalization(), layers.MaxPooling2D(), layers.Flatten(),
        layers.Dense(4, activation="softmax")]), "categorical_crossentropy"


def _sigmoid_out():
    return keras.Sequential([layers.Dense(8, activation="elu", input_shape=(8,)),
                             layers.Dense(4, activation="sigmoid")]), "binary_crossentropy"


MODELS = {"mlp": (_mlp, (8,), lambda: optimizers.Adam(0.01)),
          "conv": (_conv, (8, 8, 2), lambda: optimizers.SGD(0.05, momentum=0.9)),
          "sigmoid": (_sigmoid_out, (8,), lambda: optimizers.RMSprop(0.01))}


def _train(name, weights, data, targets):
    build, _, optimizer = MODELS[name]
    model, loss = build()
    if weights is not None:
        model.set_weights(weights)
    model.compile(optimizer(), loss, metrics=["accuracy"])
    initial = model.get_weights()
    history = model.fit(data, targets, batch_size=16, epochs=2, verbose=0, shuffle=False)
    return initial, model.get_weights(), history.history["loss"], model.predict(data[:8])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_training_agrees_with_and_without_the_pipeline(name, monkeypatch):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(48,) + MODELS[name][1]).astype(np.float32)
    targets = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 48)]
    initial, fused_weights, fused_loss, fused_predictions = _train(name, None, data, targets)
    monkeypatch.setattr(pipeline, "PIPELINE", [])
    _, plain_weights, plain_loss, plain_predictions = _train(name, initial, data, targets)
    np.testing.assert_allclose(fused_loss, plain_loss, rtol=1e-4)
    np.testing.assert_allclose(fused_predictions, plain_predictions, rtol=1e-4, atol=1e-6)
    for a, b in zip(fused_weights, plain_weights):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)

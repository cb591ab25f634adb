"""Keras 2.3.1 on graphk: loading the backend, training real models, saving weights.

Runs when keras (2.3.1, in the test extra) is installed. KERAS_HOME points at a
fresh directory so no user keras.json is read or written.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "graphk.backend"
os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="graphk-keras-home-")

import graphk.keras2  # noqa: E402

graphk.keras2.install_shims()
keras = pytest.importorskip("keras")
from keras import layers, optimizers  # noqa: E402

IMPORT = "import keras; print(keras.backend.backend())"
# Keras 2.3.1's own modules need the shims on Python >= 3.10 (`from collections import
# Iterable` in keras.callbacks), and graphk never applies them silently.
SHIMMED_IMPORT = "import graphk.keras2; graphk.keras2.install_shims(); " + IMPORT


def _run_python(code: str, **env) -> subprocess.CompletedProcess:
    environment = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True,
                          text=True, timeout=120)


def test_keras_backend_variable_loads_graphk(tmp_path):
    plain = _run_python(IMPORT, KERAS_BACKEND="graphk.backend", KERAS_HOME=str(tmp_path))
    assert "Using graphk.backend backend." in plain.stderr
    done = _run_python(SHIMMED_IMPORT, KERAS_BACKEND="graphk.backend", KERAS_HOME=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Using graphk.backend backend." in done.stderr
    assert done.stdout.strip() == "graphk.backend"


def test_keras_json_backend_loads_graphk(tmp_path):
    (tmp_path / "keras.json").write_text(
        '{"backend": "graphk.backend", "floatx": "float32", "epsilon": 1e-07, '
        '"image_data_format": "channels_last"}')
    environment = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run([sys.executable, "-c", SHIMMED_IMPORT],
                          env=dict(environment, KERAS_HOME=str(tmp_path)),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Using graphk.backend backend." in done.stderr


def test_graphk_backend_never_imports_keras():
    done = _run_python("import sys, graphk.backend; print('keras' in sys.modules)")
    assert done.stdout.strip() == "False"


def blobs(n=600, features=20, classes=3, seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.normal(0, 2.0, (classes, features))
    labels = rng.randint(0, classes, n)
    x = centers[labels] + rng.normal(0, 1.0, (n, features))
    return x.astype("float32"), keras.utils.to_categorical(labels, classes)


def images(n=480, size=8, seed=0):
    """Class k: a bright square in quadrant k of an otherwise noisy image."""
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, 4, n)
    x = rng.uniform(0, 0.3, (n, size, size, 1))
    half = size // 2
    for k in range(4):
        rows, cols = (k // 2) * half, (k % 2) * half
        x[labels == k, rows:rows + half, cols:cols + half, 0] += 0.7
    return x.astype("float32"), keras.utils.to_categorical(labels, 4)


def _seed(seed=0):
    np.random.seed(seed)


def _accuracy(model, x, y):
    return float(np.mean(model.predict(x).argmax(1) == y.argmax(1)))


def test_mlp_trains_evaluates_predicts_and_round_trips_weights(tmp_path):
    _seed()
    x, y = blobs()
    model = keras.Sequential([layers.Dense(32, activation="relu", input_shape=(20,)),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizers.SGD(lr=0.1), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert accuracy > 0.95 and _accuracy(model, x, y) > 0.95
    predictions = model.predict(x)
    path = str(tmp_path / "weights.h5")
    model.save_weights(path)
    clone = keras.Sequential([layers.Dense(32, activation="relu", input_shape=(20,)),
                              layers.Dense(3, activation="softmax")])
    clone.load_weights(path)
    np.testing.assert_array_equal(clone.predict(x), predictions)


def test_conv_pool_flatten_dense_trains():
    _seed()
    x, y = images()
    model = keras.Sequential([
        layers.Conv2D(8, (3, 3), activation="relu", input_shape=x.shape[1:]),
        layers.MaxPooling2D((2, 2)), layers.Flatten(), layers.Dense(4, activation="softmax")])
    model.compile(optimizer=optimizers.Adam(lr=0.01), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    assert _accuracy(model, x, y) > 0.95


def test_batch_normalization_and_dropout_train():
    _seed()
    x, y = blobs()
    model = keras.Sequential([
        layers.Dense(32, input_shape=(20,)), layers.BatchNormalization(),
        layers.Activation("relu"), layers.Dropout(0.3), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert _accuracy(model, x, y) > 0.95
    # Inference uses the moving statistics: repeated predictions agree (no dropout noise).
    np.testing.assert_array_equal(model.predict(x[:50]), model.predict(x[:50]))


OPTIMIZERS = {
    "sgd_momentum": lambda: optimizers.SGD(lr=0.05, momentum=0.9),
    "sgd_nesterov": lambda: optimizers.SGD(lr=0.05, momentum=0.9, nesterov=True),
    "rmsprop": lambda: optimizers.RMSprop(),
    "adagrad": lambda: optimizers.Adagrad(),
    "adadelta": lambda: optimizers.Adadelta(),
    "adam": lambda: optimizers.Adam(),
    "adam_amsgrad": lambda: optimizers.Adam(amsgrad=True),
    "adamax": lambda: optimizers.Adamax(),
    "nadam": lambda: optimizers.Nadam(),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_trains_an_mlp(name):
    _seed()
    x, y = blobs(seed=1)
    model = keras.Sequential([layers.Dense(32, activation="tanh", input_shape=(20,)),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer=OPTIMIZERS[name](), loss="categorical_crossentropy")
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    assert _accuracy(model, x, y) > 0.9


def test_sparse_labels_and_binary_crossentropy():
    _seed()
    x, y = blobs(classes=2)
    labels = y.argmax(1)
    model = keras.Sequential([layers.Dense(16, activation="relu", input_shape=(20,)),
                              layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy"])
    model.fit(x, labels, epochs=5, batch_size=32, verbose=0)
    assert _accuracy(model, x, y) > 0.95
    binary = keras.Sequential([layers.Dense(16, activation="relu", input_shape=(20,)),
                               layers.Dense(1, activation="sigmoid")])
    binary.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    binary.fit(x, labels, epochs=5, batch_size=32, verbose=0)
    assert float(np.mean((binary.predict(x)[:, 0] > 0.5) == labels)) > 0.95


def test_keras_settings_reach_graphk():
    from graphk import config

    backend = keras.backend
    saved = (backend.floatx(), backend.epsilon(), backend.image_data_format())
    try:
        backend.set_floatx("float64")
        backend.set_epsilon(1e-3)
        backend.set_image_data_format("channels_first")
        assert backend.dtype(backend.placeholder(shape=(2,))) == "float64"
        assert config.epsilon() == 1e-3 and config.image_data_format() == "channels_first"
    finally:
        backend.set_floatx(saved[0])
        backend.set_epsilon(saved[1])
        backend.set_image_data_format(saved[2])

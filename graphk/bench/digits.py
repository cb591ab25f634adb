"""W8: Keras 2.3.1 training on scikit-learn's digits, seconds per epoch after the first.

The models and data split are benchmarks/keras_digits.py's (imported from the
repository when it is there; the same MLP, CNN and LSTM are defined here
otherwise): Adam, batch 32, sparse categorical crossentropy, 1,437 training
images. One round is one epoch (`model.fit(..., epochs=1)`); the first epoch,
which compiles, is the setup call. Before timing, the model is given fixed
weights and its predictions are checked against a NumPy forward pass.

graphk runs Keras with each lowering (graphk.backend.function's default
`backend` is set before Keras imports it). The NumPy peer is a hand-written
MLP trainer (forward, backward, Keras' Adam update); there is no hand-written
NumPy CNN or LSTM trainer, and JAX and PyTensor cannot run Keras 2.3.1.
"""
from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .cases import Case, Unavailable, register

SHAPES = {"mlp": [(64, 128), (128,), (128, 64), (64,), (64, 10), (10,)],
          "cnn": [(3, 3, 1, 32), (32,), (3, 3, 32, 64), (64,), (1024, 10), (10,)],
          "lstm": [(8, 256), (64, 256), (256,), (64, 10), (10,)]}


def _keras_digits():
    """benchmarks/keras_digits.py as a module, or None outside a repository checkout."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "keras_digits.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("graphk_bench_keras_digits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data(count):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    x_train, _, y_train, _ = train_test_split(x, digits.target, test_size=0.2, random_state=0,
                                              stratify=digits.target)
    return x_train[:count], y_train[:count].astype(np.int32)


def _make(model: str):
    def make(sizes):
        x, y = _data(sizes["W8"])
        rng = np.random.default_rng(0)
        weights = [rng.uniform(-0.2, 0.2, shape).astype(np.float32) for shape in SHAPES[model]]
        return {"model": model, "x": x, "y": y, "weights": weights}
    return make


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _conv_same(x, kernel, bias):
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    windows = sliding_window_view(padded, (3, 3), axis=(1, 2))  # n, h, w, c, 3, 3
    return np.einsum("nhwcij,ijcf->nhwf", windows, kernel) + bias


def forward(model: str, weights, x):
    """The model's predictions, by hand (float64)."""
    w = [np.asarray(v, np.float64) for v in weights]
    x = x.astype(np.float64)
    if model == "mlp":
        h = np.maximum(x.reshape(len(x), 64) @ w[0] + w[1], 0)
        return _softmax(np.maximum(h @ w[2] + w[3], 0) @ w[4] + w[5])
    if model == "cnn":
        h = np.maximum(_conv_same(x[..., None], w[0], w[1]), 0)
        h = h.reshape(len(x), 4, 2, 4, 2, 32).max(axis=(2, 4))
        h = np.maximum(_conv_same(h, w[2], w[3]), 0)
        return _softmax(h.reshape(len(x), -1) @ w[4] + w[5])
    h, c = np.zeros((len(x), 64)), np.zeros((len(x), 64))
    sigmoid = lambda z: 1 / (1 + np.exp(-z))
    for t in range(x.shape[1]):
        z = x[:, t] @ w[0] + h @ w[1] + w[2]
        i, f, g, o = (z[:, k * 64:(k + 1) * 64] for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
    return _softmax(h @ w[3] + w[4])


@functools.lru_cache(maxsize=None)
def _keras(lowering):
    """Keras 2.3.1 on graphk, its K.function compiling with `lowering` (None: the default)."""
    import graphk.backend as backend

    if lowering is not None:
        backend.function = functools.partial(backend.function, backend=lowering)
    module = _keras_digits()
    if module is not None:
        return module._import_keras("graphk"), module._model
    os.environ["KERAS_BACKEND"] = "graphk.backend"
    import graphk.keras2
    graphk.keras2.install_shims()
    import keras
    return keras, _own_model


def _own_model(keras, name: str):
    layers = keras.layers
    if name == "mlp":
        return keras.Sequential([layers.Reshape((64,), input_shape=(8, 8)),
                                 layers.Dense(128, activation="relu"),
                                 layers.Dense(64, activation="relu"),
                                 layers.Dense(10, activation="softmax")])
    if name == "lstm":
        return keras.Sequential([layers.LSTM(64, input_shape=(8, 8)),
                                 layers.Dense(10, activation="softmax")])
    return keras.Sequential(
        [layers.Reshape((8, 8, 1), input_shape=(8, 8)),
         layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
         layers.Conv2D(64, 3, padding="same", activation="relu"),
         layers.Flatten(), layers.Dropout(0.5), layers.Dense(10, activation="softmax")])


def _graphk(data, lowering):
    try:
        keras, model_of = _keras(lowering)
    except ImportError as error:
        raise Unavailable(f"Keras 2.3.1 or scikit-learn missing ({error})") from None
    np.random.seed(0)
    model = model_of(keras, data["model"])
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy")
    model.set_weights(data["weights"])
    predicted = model.predict(data["x"][:64])
    x, y = data["x"], data["y"]

    def run():
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    run.state = lambda: [predicted]
    return run


class NumpyMLP:
    """The MLP trained by hand: forward, backward, Keras 2.3.1's Adam (epsilon 1e-7)."""

    def __init__(self, weights, rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        self.params = [w.copy() for w in weights]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.rate, self.beta1, self.beta2, self.epsilon, self.t = rate, beta1, beta2, epsilon, 0
        self.rng = np.random.default_rng(0)

    def step(self, x, y):
        w1, b1, w2, b2, w3, b3 = self.params
        a1 = x @ w1 + b1
        h1 = np.maximum(a1, 0)
        a2 = h1 @ w2 + b2
        h2 = np.maximum(a2, 0)
        d3 = _softmax(h2 @ w3 + b3)
        d3[np.arange(len(y)), y] -= 1
        d3 /= len(y)
        d2 = (d3 @ w3.T) * (a2 > 0)
        d1 = (d2 @ w2.T) * (a1 > 0)
        grads = [x.T @ d1, d1.sum(0), h1.T @ d2, d2.sum(0), h2.T @ d3, d3.sum(0)]
        self.t += 1
        rate = self.rate * np.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            p -= (rate * m / (np.sqrt(v) + self.epsilon)).astype(p.dtype)

    def epoch(self, x, y, batch=32):
        order = self.rng.permutation(len(x))
        for start in range(0, len(x), batch):
            chosen = order[start:start + batch]
            self.step(x[chosen], y[chosen])


def _numpy(data, lowering):
    if data["model"] != "mlp":
        raise Unavailable(f"no hand-written NumPy {data['model'].upper()} trainer")
    trainer = NumpyMLP(data["weights"])
    predicted = forward("mlp", trainer.params, data["x"][:64])
    x = data["x"].reshape(len(data["x"]), 64)
    run = lambda: trainer.epoch(x, data["y"])
    run.state = lambda: [predicted]
    return run


for _model in ("mlp", "cnn", "lstm"):
    register(Case(f"W8-{_model}", "W8", f"Keras 2.3.1 digits training, {_model.upper()}, "
                  "seconds per epoch", make=_make(_model),
                  reference=(lambda m: lambda d: [forward(m, d["weights"], d["x"][:64])])(_model),
                  builders={"graphk": _graphk, "numpy": _numpy}, tolerance=(1e-3, 1e-5),
                  long=True))

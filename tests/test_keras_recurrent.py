"""Keras 2.3.1 recurrent models on graphk: SimpleRNN, LSTM, GRU, masking, go_backwards,
Bidirectional. Runs when keras (2.3.1, in the test extra) is installed."""
import os
import tempfile

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "graphk.backend"
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="graphk-keras-home-"))

import graphk.keras2  # noqa: E402

graphk.keras2.install_shims()
keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402


def majority_sequences(n=800, max_length=9, seed=0):
    """Tokens 1 and 2 in sequences of odd length 3..9, zero-padded at the end;
    the label says which token is in the majority (so padding must be ignored)."""
    rng = np.random.RandomState(seed)
    x = np.zeros((n, max_length), dtype="int32")
    labels = np.zeros(n, dtype="int32")
    for i in range(n):
        length = rng.choice([3, 5, 7, 9])
        tokens = rng.randint(1, 3, length)
        x[i, :length] = tokens
        labels[i] = int(np.sum(tokens == 1) > np.sum(tokens == 2))
    return x, labels


def sign_of_sum_sequences(n=800, steps=8, seed=0):
    """Real-valued sequences; the label says whether their sum is positive."""
    rng = np.random.RandomState(seed)
    x = rng.normal(size=(n, steps, 1)).astype("float32")
    return x, (x.sum(axis=(1, 2)) > 0).astype("int32")


def _train(model, x, labels, epochs):
    np.random.seed(0)
    model.compile(optimizer=keras.optimizers.Adam(lr=0.01), loss="binary_crossentropy")
    model.fit(x, labels, epochs=epochs, batch_size=32, verbose=0)
    return float(np.mean((model.predict(x)[:, 0] > 0.5) == labels))


@pytest.mark.parametrize("cell", [layers.SimpleRNN, layers.LSTM, layers.GRU])
def test_recurrent_layers_learn_a_sequence_sum(cell):
    np.random.seed(0)
    x, labels = sign_of_sum_sequences()
    model = keras.Sequential([cell(16, input_shape=x.shape[1:]),
                              layers.Dense(1, activation="sigmoid")])
    assert _train(model, x, labels, epochs=6) > 0.9


@pytest.mark.parametrize("cell", [layers.SimpleRNN, layers.LSTM, layers.GRU])
def test_masked_embedding_sequences(cell):
    np.random.seed(0)
    x, labels = majority_sequences()
    model = keras.Sequential([layers.Embedding(3, 8, mask_zero=True, input_length=x.shape[1]),
                              cell(16), layers.Dense(1, activation="sigmoid")])
    assert _train(model, x, labels, epochs=10) > 0.9


def test_go_backwards_lstm():
    np.random.seed(0)
    x, labels = sign_of_sum_sequences()
    model = keras.Sequential([layers.LSTM(16, go_backwards=True, input_shape=x.shape[1:]),
                              layers.Dense(1, activation="sigmoid")])
    assert _train(model, x, labels, epochs=6) > 0.9


def test_bidirectional_lstm_with_masking():
    np.random.seed(0)
    x, labels = majority_sequences()
    model = keras.Sequential([layers.Embedding(3, 8, mask_zero=True, input_length=x.shape[1]),
                              layers.Bidirectional(layers.LSTM(8)),
                              layers.Dense(1, activation="sigmoid")])
    assert _train(model, x, labels, epochs=10) > 0.9

"""Accuracy and fit time of the Keras 2.3.1 models the integration tests train on graphk.

Run: python benchmarks/keras_models.py
"""
import os
import sys
import time

os.environ["KERAS_BACKEND"] = "graphk.backend"
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import numpy as np  # noqa: E402
import test_keras_integration as cases  # noqa: E402  (installs the shims, imports keras)
import test_keras_recurrent as sequences  # noqa: E402

keras, layers, optimizers = cases.keras, cases.layers, cases.optimizers


def dense_model(activation="relu", out=3, out_activation="softmax"):
    return keras.Sequential([layers.Dense(32, activation=activation, input_shape=(20,)),
                             layers.Dense(out, activation=out_activation)])


def conv_model(shape):
    return keras.Sequential([
        layers.Conv2D(8, (3, 3), activation="relu", input_shape=shape),
        layers.MaxPooling2D((2, 2)), layers.Flatten(), layers.Dense(4, activation="softmax")])


def bn_dropout_model():
    return keras.Sequential([
        layers.Dense(32, input_shape=(20,)), layers.BatchNormalization(),
        layers.Activation("relu"), layers.Dropout(0.3), layers.Dense(3, activation="softmax")])


def report(name, model, optimizer, x, y, epochs):
    np.random.seed(0)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(model.predict(x).argmax(1) == y.argmax(1)))
    print(f"{name:28s} accuracy {accuracy:.3f}  fit {seconds:.2f} s "
          f"({epochs} epochs, {len(x)} samples)")


def report_recurrent(name, model, x, labels, epochs):
    start = time.perf_counter()
    accuracy = sequences._train(model, x, labels, epochs)
    seconds = time.perf_counter() - start
    print(f"{name:28s} accuracy {accuracy:.3f}  fit {seconds:.2f} s "
          f"({epochs} epochs, {len(x)} sequences)")


def recurrent_reports():
    x, labels = sequences.sign_of_sum_sequences()
    tokens, majority = sequences.majority_sequences()
    for cell in (layers.SimpleRNN, layers.LSTM, layers.GRU):
        report_recurrent(f"{cell.__name__} (sum of sequence)",
                         keras.Sequential([cell(16, input_shape=x.shape[1:]),
                                           layers.Dense(1, activation="sigmoid")]), x, labels, 6)
        report_recurrent(f"{cell.__name__} (masked, majority)",
                         keras.Sequential([layers.Embedding(3, 8, mask_zero=True,
                                                            input_length=tokens.shape[1]),
                                           cell(16), layers.Dense(1, activation="sigmoid")]),
                         tokens, majority, 10)
    report_recurrent("LSTM go_backwards (sum)",
                     keras.Sequential([layers.LSTM(16, go_backwards=True, input_shape=x.shape[1:]),
                                       layers.Dense(1, activation="sigmoid")]), x, labels, 6)
    report_recurrent("Bidirectional LSTM (masked)",
                     keras.Sequential([layers.Embedding(3, 8, mask_zero=True,
                                                        input_length=tokens.shape[1]),
                                       layers.Bidirectional(layers.LSTM(8)),
                                       layers.Dense(1, activation="sigmoid")]),
                     tokens, majority, 10)


def main():
    x, y = cases.blobs()
    images, image_labels = cases.images()
    report("MLP (SGD)", dense_model(), optimizers.SGD(lr=0.1), x, y, 5)
    report("Conv2D+MaxPool+Dense (Adam)", conv_model(images.shape[1:]),
           optimizers.Adam(lr=0.01), images, image_labels, 8)
    report("BatchNorm+Dropout (Adam)", bn_dropout_model(), "adam", x, y, 5)
    x1, y1 = cases.blobs(seed=1)
    for name in sorted(cases.OPTIMIZERS):
        report(f"MLP tanh ({name})", dense_model("tanh"), cases.OPTIMIZERS[name](), x1, y1, 8)
    recurrent_reports()


if __name__ == "__main__":
    main()

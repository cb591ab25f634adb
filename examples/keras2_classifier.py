"""Train a small Keras 2.3.1 classifier on graphk and print Keras' per-epoch progress.

Run: python examples/keras2_classifier.py   (needs keras==2.3.1: pip install -e '.[test]')

graphk.keras2.install_shims() patches what Keras 2.3.1 needs on Python >= 3.10,
NumPy 2 and h5py 3; it is never applied by importing graphk alone.
"""
import os

os.environ["KERAS_BACKEND"] = "graphk.backend"

import numpy as np  # noqa: E402

import graphk.keras2  # noqa: E402

graphk.keras2.install_shims()

import keras  # noqa: E402
from keras import layers  # noqa: E402


def synthetic_digits(n=2000, seed=0):
    """Ten classes of 8x8 images: each class is a fixed random pattern plus noise."""
    rng = np.random.RandomState(seed)
    patterns = rng.uniform(0, 1, (10, 8, 8, 1))
    labels = rng.randint(0, 10, n)
    images = patterns[labels] + rng.normal(0, 0.3, (n, 8, 8, 1))
    return images.astype("float32"), keras.utils.to_categorical(labels, 10)


def main():
    np.random.seed(0)
    x, y = synthetic_digits()
    model = keras.Sequential([
        layers.Conv2D(16, (3, 3), activation="relu", input_shape=(8, 8, 1)),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(32, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    model.fit(x[:1600], y[:1600], epochs=5, batch_size=32, validation_data=(x[1600:], y[1600:]),
              verbose=2)
    loss, accuracy = model.evaluate(x[1600:], y[1600:], verbose=0)
    print(f"held-out accuracy: {accuracy:.3f} (loss {loss:.4f})")


if __name__ == "__main__":
    main()

"""Data-parallel Keras 2.3.1 training on graphk: each worker trains on its shard of digits.

Run (pip install -e '.[test,distributed]'):

    .venv/bin/mpiexec -n 2 .venv/bin/python examples/distributed_digits.py
    .venv/bin/python examples/distributed_digits.py          # one worker, no MPI needed

Options: --model mlp|cnn, --epochs N, --batch-size B (the global batch, split
evenly over the workers, so every step averages the gradient of the same B
examples a single process would use), --save PATH (rank 0 writes the model;
--save '' skips it). Batches are not shuffled, so runs repeat exactly.

Every worker starts from rank 0's weights (BroadcastGlobalVariablesCallback),
averages its gradients with the others' inside Keras' compiled training step
(DistributedOptimizer: one `allreduce` node), and reports epoch metrics averaged
over workers (MetricAverageCallback). Only rank 0 prints progress and saves.
"""
import argparse
import os

os.environ["KERAS_BACKEND"] = "graphk.backend"

import numpy as np  # noqa: E402

import graphk.keras2  # noqa: E402

graphk.keras2.install_shims()

import keras  # noqa: E402
from keras import layers  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import graphk.distributed as gd  # noqa: E402


def digits(model_kind: str):
    """scikit-learn's 1797 8x8 digits in [0, 1], shuffled once (same order on every worker)."""
    data = load_digits()
    order = np.random.RandomState(0).permutation(len(data.target))
    images = (data.images[order] / 16.0).astype("float32")
    labels = keras.utils.to_categorical(data.target[order], 10)
    if model_kind == "mlp":
        images = images.reshape(len(images), 64)
    else:
        images = images[..., None]
    return images[:1500], labels[:1500], images[1500:], labels[1500:]


def build_model(model_kind: str):
    if model_kind == "mlp":
        hidden = [layers.Dense(64, activation="relu", input_shape=(64,))]
    else:
        hidden = [layers.Conv2D(16, (3, 3), activation="relu", input_shape=(8, 8, 1)),
                  layers.MaxPooling2D((2, 2)), layers.Flatten()]
    return keras.Sequential(hidden + [layers.Dense(32, activation="relu"),
                                      layers.Dense(10, activation="softmax")])


def shard(array, rank: int, size: int, batch: int):
    """This worker's rows: within each global batch, the rank-th slice of batch/size rows.

    So local step k covers exactly this worker's part of global batch k, and the
    average of the workers' gradients is the gradient of the whole global batch.
    """
    usable = len(array) // batch * batch
    per_worker = batch // size
    blocks = array[:usable].reshape(usable // batch, size, per_worker, *array.shape[1:])
    return blocks[:, rank].reshape(-1, *array.shape[1:])


def report(epochs: int):
    def on_epoch_end(epoch, logs):
        print(f"epoch {epoch + 1}/{epochs}: loss {logs['loss']:.4f}, "
              f"accuracy {logs['accuracy']:.4f} (averaged over workers)", flush=True)
    return on_epoch_end


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--save", default="distributed_digits.h5")
    args = parser.parse_args()

    gd.init()
    rank, size = gd.rank(), gd.size()
    if args.batch_size % size:
        raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of the number "
                         f"of workers ({size})")
    np.random.seed(rank)  # different initial weights: the broadcast must make them equal
    x_train, y_train, x_test, y_test = digits(args.model)
    x_local = shard(x_train, rank, size, args.batch_size)
    y_local = shard(y_train, rank, size, args.batch_size)

    model = build_model(args.model)
    optimizer = gd.DistributedOptimizer(keras.optimizers.SGD(lr=args.learning_rate))
    model.compile(optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    callbacks = [gd.BroadcastGlobalVariablesCallback(0), gd.MetricAverageCallback()]
    if rank == 0:  # after the averaging (Keras' own progress bar prints rank 0's figures)
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=report(args.epochs)))
    history = model.fit(x_local, y_local, batch_size=args.batch_size // size,
                        epochs=args.epochs, shuffle=False, verbose=0, callbacks=callbacks)

    local_loss, local_accuracy = model.evaluate(x_local, y_local, verbose=0)
    test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"rank {rank} of {size}: final training loss {history.history['loss'][-1]:.4f} "
          f"(averaged over workers), on its own shard {local_loss:.4f}, "
          f"held-out accuracy {test_accuracy:.3f}", flush=True)
    if rank == 0 and args.save:
        model.save(args.save)
        print(f"rank 0 saved the model to {args.save}", flush=True)


if __name__ == "__main__":
    main()

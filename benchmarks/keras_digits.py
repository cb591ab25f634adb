"""Seconds per epoch of four Keras 2.3.1 models on scikit-learn's digits, by threading mode.

The data is scikit-learn's bundled digits (1,797 8x8 images, no download), a
fixed stratified 80/20 split; every model is a Keras 2.3.1 Sequential trained
with Adam, batch 32:

  mlp   Dense 64-128-64-10
  cnn   Conv2D(32,3,same)-MaxPool-Conv2D(64,3,same)-Flatten-Dropout-Dense(10)
  lstm  LSTM(64) reading each image as 8 steps of 8 features, Dense(10)
  bn    the cnn with BatchNormalization after each convolution

For each mode and model it prints the median seconds per epoch after the
first, the first epoch's seconds (it includes compiling), the median CPU seconds
per epoch after the first (cpu/ep: the figure others' load on the core inflates
least) and test accuracy.
Each mode runs in a fresh child process so its settings take effect before
NumPy (or TensorFlow) is imported:

  default      the backend's default threads
  pinned       one core (os.sched_setaffinity) and single-threaded libraries
  busy         default threads while a spinning process of ours holds the other core
  pinned-busy  pinned to core 0 while the spinner holds core 1

Run:
  .venv/bin/python benchmarks/keras_digits.py                       # graphk, all modes
  .venv/bin/python benchmarks/keras_digits.py --modes busy,pinned --models cnn,bn
  .venv/bin/python benchmarks/keras_digits.py --nice -20 --rounds 3   # on a shared machine
  .venv/bin/python benchmarks/keras_digits.py --modes pinned --lowering auto   # LLVM regions
Keras 2.3.1 on TensorFlow for comparison (a separate venv, since TF 2.x wants Keras 3):
  python3.11 -m venv /work/tfvenv
  /work/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 scikit-learn
  /work/tfvenv/bin/pip install --no-deps keras==2.3.1
  /work/tfvenv/bin/pip install keras-applications keras-preprocessing h5py scipy pyyaml six
  /work/tfvenv/bin/python benchmarks/keras_digits.py --backend tensorflow
Side by side on a shared machine, in one command: every round runs graphk's children, then
the same modes and models under the other venv's Python and backend, and the summary gives
the median of the per-round cpu/ep ratios (a disturbance of the machine hits both alike):
  .venv/bin/python benchmarks/keras_digits.py --modes pinned --core 1 --nice -20 \
      --models cnn,bn --rounds 5 --against /work/tfvenv/bin/python:tensorflow
The small patches Keras 2.3.1's TensorFlow backend needs on TF 2.x graph mode
live in `_patch_tensorflow` below (never in graphk).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

MODELS = ("mlp", "cnn", "lstm", "bn")
MODES = ("default", "pinned", "busy", "pinned-busy")
EPOCHS = {"mlp": 30, "cnn": 15, "lstm": 25, "bn": 12}
SINGLE_THREADED = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                   "GRAPHK_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


# --- the child: one backend, one mode, the models -------------------------------------------

def _patch_tensorflow():
    """Let Keras 2.3.1's TensorFlow backend run on TF 2.x in graph mode.

    TF 2.16+ no longer ships `tensorflow.python.keras`; the tf-keras package
    has the same modules under `tf_keras.src`. Keras 2.3.1 also needs graph
    mode (it builds a tf.compat.v1 session) and the v1 names it calls on `tf`.
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import importlib
    import tensorflow as tf
    import tf_keras.src as legacy
    sys.modules["tensorflow.python.keras"] = legacy
    for name in ("backend", "utils", "utils.tf_utils"):
        sys.modules[f"tensorflow.python.keras.{name}"] = importlib.import_module(
            f"tf_keras.src.{name}")
    from tensorflow.python.framework import ops as tf_ops
    if not hasattr(tf_ops, "_TensorLike"):  # Keras checks isinstance(x, _TensorLike)
        tf_ops._TensorLike = (tf.Tensor, tf.Variable, tf.SparseTensor)
        tf_ops.is_dense_tensor_like = lambda x: isinstance(x, (tf.Tensor, tf.Variable))
    tf.compat.v1.disable_eager_execution()
    v1 = tf.compat.v1
    for name in ("get_default_graph", "placeholder", "Session", "ConfigProto",
                 "variables_initializer", "global_variables", "is_variable_initialized",
                 "assign", "assign_add", "assign_sub", "random_normal", "random_uniform",
                 "truncated_normal", "to_int32", "log", "py_func", "sparse_to_dense",
                 "get_default_session", "GraphKeys", "set_random_seed", "placeholder_with_default",
                 "nn", "train", "layers"):
        if not hasattr(tf, name) and hasattr(v1, name):
            setattr(tf, name, getattr(v1, name))
    threads = int(os.environ.get("TF_NUM_INTRAOP_THREADS", "0"))
    if threads:
        config = v1.ConfigProto(intra_op_parallelism_threads=threads,
                                inter_op_parallelism_threads=threads)
        v1.keras.backend.set_session(v1.Session(config=config))


def _import_keras(backend: str):
    os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="keras-digits-home-")
    if backend == "graphk":
        os.environ["KERAS_BACKEND"] = "graphk.backend"
        import graphk.keras2
        graphk.keras2.install_shims()
    else:
        os.environ["KERAS_BACKEND"] = backend
        if backend == "tensorflow":
            _patch_tensorflow()
        import collections
        import collections.abc
        for name in ("Iterable", "Mapping", "Sequence", "Callable", "MutableMapping"):
            if not hasattr(collections, name):
                setattr(collections, name, getattr(collections.abc, name))
    import keras
    if backend == "tensorflow":  # K.eager runs initializers eagerly: tf.Variable refuses that
        keras.backend.eager = lambda function: function  # in graph mode
    return keras


def _digits():
    """Images scaled to [0, 1], a fixed stratified 80/20 split."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    return train_test_split(x, digits.target, test_size=0.2, random_state=0,
                            stratify=digits.target)


def _model(keras, name: str):
    layers = keras.layers
    if name == "mlp":
        return keras.Sequential([layers.Reshape((64,), input_shape=(8, 8)),
                                 layers.Dense(128, activation="relu"),
                                 layers.Dense(64, activation="relu"),
                                 layers.Dense(10, activation="softmax")])
    if name == "lstm":
        return keras.Sequential([layers.LSTM(64, input_shape=(8, 8)),
                                 layers.Dense(10, activation="softmax")])
    norm = (lambda: [layers.BatchNormalization()]) if name == "bn" else (lambda: [])
    return keras.Sequential(
        [layers.Reshape((8, 8, 1), input_shape=(8, 8)),
         layers.Conv2D(32, 3, padding="same", activation="relu"), *norm(),
         layers.MaxPooling2D(2),
         layers.Conv2D(64, 3, padding="same", activation="relu"), *norm(),
         layers.Flatten(), layers.Dropout(0.5), layers.Dense(10, activation="softmax")])


def _train(keras, name: str, data, epochs: int, lowering: str = "") -> dict:
    import numpy as np
    x_train, x_test, y_train, y_test = data
    np.random.seed(0)
    model = _model(keras, name)
    # graphk's K.function keywords pass through Keras' compile (lowering: numpy, auto, llvm)
    options = {"backend": lowering} if lowering else {}
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy",
                  **options)
    ends, cpu_ends = [], []  # wall and CPU clocks at each epoch's end

    def tick(epoch, logs):
        ends.append(time.perf_counter())
        cpu_ends.append(time.process_time())

    clock = keras.callbacks.LambdaCallback(on_epoch_end=tick)
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, verbose=0, callbacks=[clock])
    epoch_times = [b - a for a, b in zip(ends, ends[1:])]
    # CPU seconds per epoch after the first: others' load on the core inflates wall time only
    cpu_times = [b - a for a, b in zip(cpu_ends, cpu_ends[1:])]
    accuracy = float(np.mean(model.predict(x_test).argmax(1) == y_test))
    return {"model": name, "epoch": statistics.median(epoch_times), "first": ends[0] - start,
            "cpu_per_epoch": statistics.median(cpu_times), "accuracy": accuracy,
            "epochs": epochs}


def _leave_blas_threads_alone() -> None:
    """graphk as it was before graphk/threads.py: every product on OpenBLAS's own threads."""
    import numpy as np
    from graphk.ir.ops import linalg, normalization
    linalg.blas_matmul = normalization.blas_matmul = np.matmul


def child(args) -> None:
    if args.mode in ("pinned", "pinned-busy"):
        os.sched_setaffinity(0, {args.core})
    keras = _import_keras(args.backend)
    if args.blas_default:
        _leave_blas_threads_alone()
    data = _digits()
    for name in args.models.split(","):
        result = _train(keras, name, data, args.epochs or EPOCHS[name], args.lowering)
        print("RESULT " + json.dumps(result), flush=True)


# --- the parent: one child per mode, a spinner for the busy modes ----------------------------

def _prioritize(nice: int) -> None:
    """Run at `nice` in a session of our own: with autogroup scheduling (Linux's default on
    desktops and many VMs) the nice value only counts inside one session's group, so the
    group's own nice is set too."""
    if not nice:
        return
    os.setsid()
    try:
        with open("/proc/self/autogroup", "w") as handle:
            handle.write(str(nice))
    except OSError:
        pass
    os.nice(nice)


def _spin(nice: int) -> None:
    """Hold the last core: a pure Python busy loop."""
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    _prioritize(nice)
    while True:
        pass


def _run_mode(args, mode: str, python: str = "", backend: str = "") -> list:
    """One child (one fresh process) running `mode`: this interpreter and --backend, or
    `python` with `backend` (the --against side; graphk-only options are left out)."""
    import multiprocessing
    environment = dict(os.environ)
    if mode.startswith("pinned"):
        environment.update({name: "1" for name in SINGLE_THREADED})
    spinner = None
    if mode.endswith("busy"):
        spinner = multiprocessing.get_context("spawn").Process(target=_spin, args=(args.nice,),
                                                               daemon=True)
        spinner.start()
    command = [python or sys.executable, os.path.abspath(__file__), "--child", "--mode", mode,
               "--backend", backend or args.backend, "--models", args.models,
               "--core", str(args.core)]
    if args.epochs:
        command += ["--epochs", str(args.epochs)]
    if args.blas_default and not python:
        command += ["--blas-default"]
    if args.lowering and not python:
        command += ["--lowering", args.lowering]
    try:
        done = subprocess.run(command, env=environment, capture_output=True, text=True,
                              preexec_fn=lambda: _prioritize(args.nice))
    finally:
        if spinner is not None:
            spinner.terminate()
            spinner.join()
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"mode {mode} failed")
    return [json.loads(line[7:]) for line in done.stdout.splitlines() if line.startswith("RESULT ")]


def _print_row(mode: str, result: dict) -> None:
    print(f"{mode:12s} {result['model']:5s} {result['epoch']:8.3f} {result['first']:7.2f} "
          f"{result['cpu_per_epoch']:7.3f} {result['accuracy']:8.3f}", flush=True)


def _print_medians(rounds: dict) -> None:
    """Per mode and model, the median over rounds (rounds alternate the modes, so a
    disturbance of the machine hits all modes alike)."""
    print(f"\nmedians over {len(next(iter(rounds.values())))} rounds")
    for (mode, model), results in rounds.items():
        median = {key: statistics.median(r[key] for r in results)
                  for key in ("epoch", "first", "cpu_per_epoch", "accuracy")}
        _print_row(mode, dict(median, model=model))
    modes = {mode for mode, _ in rounds if not mode.endswith("@")}  # @: the --against side
    for mode in sorted(modes - {"pinned"}) if "pinned" in modes else ():
        ratios = []
        for (other, model), results in rounds.items():
            if other == mode:
                pinned = rounds[("pinned", model)]
                ratios.append(f"{model} " + "{:.2f}".format(statistics.median(
                    r["epoch"] / p["epoch"] for r, p in zip(results, pinned))))
        print(f"{mode} / pinned, median of per-round ratios: {', '.join(ratios)}")
    for (mode, model), results in rounds.items():
        other = rounds.get((mode + "@", model))
        if other:
            ratios = [r["cpu_per_epoch"] / o["cpu_per_epoch"] for r, o in zip(results, other)]
            print(f"{mode} {model}: cpu/ep against --against, per round "
                  f"{' '.join(f'{x:.2f}' for x in ratios)}, median {statistics.median(ratios):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="graphk", help="graphk, or a Keras backend name")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--modes", default="default,pinned,busy")
    parser.add_argument("--epochs", type=int, default=0, help="0: each model's own count")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every mode this many times, alternating; print medians")
    parser.add_argument("--nice", type=int, default=0,
                        help="niceness of the benchmark and its spinner, each in a session of its "
                             "own (-20 as root: other processes on a shared machine barely "
                             "disturb the figures)")
    parser.add_argument("--blas-default", action="store_true",
                        help="graphk only: leave BLAS threads to OpenBLAS (graphk before "
                             "graphk/threads.py), for comparison")
    parser.add_argument("--lowering", default="", choices=["", "numpy", "auto", "llvm"],
                        help="graphk only: the lowering of fused regions (K.function's "
                             "backend keyword); empty: graphk's default")
    parser.add_argument("--core", type=int, default=0,
                        help="the core the pinned modes run on (the spinner holds the last)")
    parser.add_argument("--against", default="",
                        help="PYTHON:BACKEND (e.g. /work/tfvenv/bin/python:tensorflow): each "
                             "round also runs the modes there (rows marked @); the summary "
                             "gives the per-round cpu/ep ratios")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="default", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    lowering = f", lowering {args.lowering}" if args.lowering else ""
    print(f"backend {args.backend}{lowering}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}, nice {args.nice}")
    print(f"{'mode':12s} {'model':5s} {'s/epoch':>8s} {'first':>7s} {'cpu/ep':>7s} "
          f"{'accuracy':>8s}")
    against = args.against.rsplit(":", 1) if args.against else None
    if against is not None and len(against) != 2:
        raise SystemExit("--against takes PYTHON:BACKEND, e.g. /work/tfvenv/bin/python:tensorflow")
    rounds: dict = {}
    for _ in range(args.rounds):
        for mode in args.modes.split(","):
            sides = [("", "", mode)] + ([(*against, mode + "@")] if against else [])
            for python, backend, label in sides:
                for result in _run_mode(args, mode, python, backend):
                    _print_row(label, result)
                    rounds.setdefault((label, result["model"]), []).append(result)
    if args.rounds > 1 or against:
        _print_medians(rounds)


if __name__ == "__main__":
    main()

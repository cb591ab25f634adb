"""Data-parallel training on 2 MPI workers, launched with the venv's mpiexec.

The pytest side launches this same file as the worker program
(`mpiexec -n 2 python tests/test_distributed_mpi.py SCENARIO OUTDIR`); each
worker writes what it computed to OUTDIR/rank<R>.npz and the test compares
the workers with each other and with NumPy or a single-process run.
Needs the `distributed` extra (mpi4py and the mpich wheel).
"""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve()
STEPS, GLOBAL_BATCH, LEARNING_RATE = 6, 32, 0.1
DTYPES = ("float16", "float32", "float64", "int8", "int32", "int64", "uint8")
SHAPES = ((), (0,), (3, 0, 2), (5,), (2, 3, 4))


def base(shape, dtype) -> np.ndarray:
    """Small integers, so sums and averages over 2 workers are exact in every dtype."""
    return (np.arange(int(np.prod(shape))) % 5).reshape(shape).astype(dtype)


def digits(n: int = 256):
    """Digit-sized data (64 features, 10 classes), made here: scikit-learn takes seconds to
    import, in each worker."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, n)
    x = (rng.uniform(0, 1, (10, 64))[labels] + rng.normal(0, 0.3, (n, 64))).astype(np.float32)
    return x, np.eye(10, dtype=np.float32)[labels]


def shard(array, rank: int, size: int) -> np.ndarray:
    """Rows of each global batch that belong to `rank` (batch k of every worker covers
    global batch k)."""
    per = GLOBAL_BATCH // size
    blocks = array.reshape(-1, size, per, *array.shape[1:])
    return blocks[:, rank].reshape(-1, *array.shape[1:])


# --- what the workers (and the single-process references) run ------------------------------


def sgd_weights(x, y, batch: int) -> list:
    """STEPS of plain SGD on a softmax regression + hidden layer, gradients allreduced."""
    import graphk.distributed as gd
    from graphk import backend as K

    rng = np.random.default_rng(0)
    params = [K.variable(rng.normal(0, 0.3, (64, 16))), K.variable(np.zeros(16)),
              K.variable(rng.normal(0, 0.3, (16, 10))), K.variable(np.zeros(10))]
    xs, ys = K.placeholder((None, 64)), K.placeholder((None, 10))
    logits = K.dot(K.relu(K.dot(xs, params[0]) + params[1]), params[2]) + params[3]
    loss = K.mean(K.categorical_crossentropy(ys, logits, from_logits=True))
    grads = gd.allreduce(K.gradients(loss, params))
    step = K.function([xs, ys], [loss], updates=[
        K.update_sub(p, LEARNING_RATE * g) for p, g in zip(params, grads)])
    for k in range(STEPS):
        step([x[k * batch:(k + 1) * batch], y[k * batch:(k + 1) * batch]])
    return K.batch_get_value(params)


def keras_weights(x, y, batch: int, seed: int, distributed: bool) -> list:
    """A Keras model trained with (optionally) DistributedOptimizer and the callbacks."""
    os.environ["KERAS_BACKEND"] = "graphk.backend"
    import graphk.keras2

    graphk.keras2.install_shims()
    import keras

    import graphk.distributed as gd

    np.random.seed(seed)
    model = keras.Sequential([keras.layers.Dense(16, activation="tanh", input_shape=(64,)),
                              keras.layers.Dense(10, activation="softmax")])
    optimizer = keras.optimizers.SGD(lr=LEARNING_RATE, momentum=0.9, clipnorm=5.0)
    callbacks = []
    if distributed:
        optimizer = gd.DistributedOptimizer(optimizer)
        callbacks = [gd.BroadcastGlobalVariablesCallback(0), gd.MetricAverageCallback()]
    model.compile(optimizer, loss="categorical_crossentropy")
    history = model.fit(x[:STEPS * batch], y[:STEPS * batch], batch_size=batch, epochs=2,
                        shuffle=False, verbose=0, callbacks=callbacks)
    return model.get_weights() + [np.array(history.history["loss"])]


def collectives(rank: int) -> dict:
    """Allreduce (average, sum, to a root) and broadcast of every dtype and shape, as one
    grouped node through K.function and eagerly; their gradients; MPI calls per step."""
    import graphk.distributed as gd
    from graphk import backend as K

    out = {}
    arrays = [base(s, d) * (rank + 1) for d in DTYPES for s in SHAPES]
    inputs = [K.placeholder(shape=a.shape, dtype=a.dtype.name) for a in arrays]
    summed = K.function(inputs, gd.allreduce(inputs, "sum"))
    transport = gd.collective.current_transport("test")
    calls = transport.calls
    for k, got in enumerate(summed(arrays)):
        out[f"sum{k}"] = got
    out["calls_per_sum"] = transport.calls - calls  # one per non-empty wire dtype
    floats = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    for k, got in zip(floats, K.function([inputs[i] for i in floats],
                                         gd.allreduce([inputs[i] for i in floats]))(
                                             [arrays[i] for i in floats])):
        out[f"average{k}"] = got
    for k, got in enumerate(gd.allreduce_arrays(arrays, "sum")):
        out[f"eager_sum{k}"] = got
    tensors = arrays + [np.arange(4) % 2 == rank]  # bool travels too
    for k, got in enumerate(gd.broadcast_arrays(tensors, root=1)):
        out[f"broadcast{k}"] = got
    x = K.placeholder((3,))
    to_root, = K.function([x], [gd.collective.allreduce([x], "sum", root=1)[0]])(
        [np.arange(3.0) * (rank + 1)])
    out["to_root"] = to_root
    weight = float(rank + 1)  # each worker's loss weighs the collective's output differently
    for name, y in (("average", gd.allreduce(x)), ("sum", gd.allreduce(x, "sum")),
                    ("broadcast", gd.broadcast(x, root=0))):
        grad, = K.gradients(K.sum(weight * y), [x])
        out[f"grad_{name}"], = K.function([x], [grad])([np.ones(3, np.float32)])
    return out


def run_worker(scenario: str, outdir: str) -> None:
    import graphk
    import graphk.distributed as gd

    gd.init()
    rank = gd.rank()
    if scenario == "train":
        out = collectives(rank)
        out["threads"] = graphk.get_num_threads()
        x, y = digits()
        xs, ys = shard(x, rank, gd.size()), shard(y, rank, gd.size())
        for k, w in enumerate(sgd_weights(xs, ys, GLOBAL_BATCH // gd.size())):
            out[f"sgd{k}"] = w
        for k, w in enumerate(keras_weights(xs, ys, GLOBAL_BATCH // gd.size(), seed=rank,
                                            distributed=True)):
            out[f"keras{k}"] = w
        np.savez(os.path.join(outdir, f"rank{rank}.npz"), **out)
    elif scenario == "mismatch":  # the same number of bytes, but not the same tensors
        gd.allreduce_arrays([np.ones((4,) if rank == 0 else (2, 2))])
    elif scenario in ("raise", "leave", "killed"):
        if rank == 1:
            if scenario == "raise":
                raise RuntimeError("worker 1 failed on purpose")
            if scenario == "killed":  # as the kernel's OOM killer would
                os.kill(os.getpid(), signal.SIGKILL)
            return  # "leave": this worker stops taking part without an error
        gd.allreduce_arrays([np.ones(4)])
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")


# --- the tests -------------------------------------------------------------------------------


def _mpiexec() -> str:
    pytest.importorskip("mpi4py", reason="the distributed extra is not installed")
    local = Path(sys.executable).parent / "mpiexec"
    found = str(local) if local.exists() else shutil.which("mpiexec")
    if not found:
        pytest.skip("no mpiexec (pip install -e '.[distributed]' installs the mpich wheel)")
    return found


def launch(scenario: str, outdir, timeout: float = 90, **env) -> subprocess.CompletedProcess:
    environment = dict(os.environ, OMP_NUM_THREADS="1", KERAS_BACKEND="graphk.backend",
                       KERAS_HOME=str(outdir), **env)
    environment.pop("GRAPHK_NUM_THREADS", None)  # gd.init() shares the cores out itself
    command = [_mpiexec(), "-n", "2", sys.executable, str(HERE), scenario, str(outdir)]
    try:
        return subprocess.run(command, env=environment, capture_output=True, text=True,
                              timeout=timeout, cwd=str(outdir))
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"mpiexec -n 2 ... {scenario} did not finish in {timeout} s:\n"
                    f"{expired.stdout}\n{expired.stderr}")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("distributed")
    done = launch("train", outdir)
    assert done.returncode == 0, done.stdout + done.stderr
    return [dict(np.load(outdir / f"rank{r}.npz")) for r in range(2)]


def test_allreduce_of_every_dtype_and_shape_including_empty(trained):
    arrays = [base(s, d) for d in DTYPES for s in SHAPES]
    for out in trained:
        for k, a in enumerate(arrays):
            for key in (f"sum{k}", f"eager_sum{k}"):
                assert out[key].dtype == a.dtype and out[key].shape == a.shape, key
                np.testing.assert_array_equal(out[key], a * 3, err_msg=key)
            if a.dtype.kind == "f":
                np.testing.assert_array_equal(out[f"average{k}"], a * 1.5)
        non_empty = {np.dtype(d) for d in DTYPES for s in SHAPES if np.prod(s)}
        assert out["calls_per_sum"] == len(non_empty - {np.dtype("float16")}), \
            "one MPI call per wire dtype (float16 travels as float32)"


def test_broadcast_and_reduce_to_root(trained):
    arrays = [base(s, d) * 2 for d in DTYPES for s in SHAPES] + [np.arange(4) % 2 == 1]
    for rank, out in enumerate(trained):
        for k, a in enumerate(arrays):
            got = out[f"broadcast{k}"]
            assert got.dtype == a.dtype and got.shape == a.shape
            np.testing.assert_array_equal(got, a)
        expected = np.arange(3.0) * 3 if rank == 1 else np.zeros(3)
        np.testing.assert_array_equal(out["to_root"], expected)


def test_workers_on_one_machine_share_its_cores(trained):
    from graphk import threads

    for out in trained:
        assert out["threads"] == max(1, threads.capacity() // 2)


def test_gradients_of_collectives_are_collectives_of_cotangents(trained):
    """Worker r's loss is (r+1) * sum(collective(x)); the gradient sums over all workers."""
    for rank, out in enumerate(trained):
        np.testing.assert_array_equal(out["grad_average"], np.full(3, 1.5))
        np.testing.assert_array_equal(out["grad_sum"], np.full(3, 3.0))
        np.testing.assert_array_equal(out["grad_broadcast"], np.full(3, 3.0 if rank == 0 else 0))


def test_two_workers_train_like_one_process_on_the_global_batch(trained):
    x, y = digits()
    reference = sgd_weights(x, y, GLOBAL_BATCH)
    for k, want in enumerate(reference):
        np.testing.assert_array_equal(trained[0][f"sgd{k}"], trained[1][f"sgd{k}"])
        np.testing.assert_allclose(trained[0][f"sgd{k}"], want, rtol=2e-5, atol=2e-6)


def test_keras_distributed_optimizer_matches_one_process(trained):
    """Different initial weights per worker (seed = rank), made rank 0's by the broadcast
    callback; momentum and clipnorm act on the averaged gradient."""
    x, y = digits()
    reference = keras_weights(x, y, GLOBAL_BATCH, seed=0, distributed=False)
    for k, want in enumerate(reference):
        np.testing.assert_array_equal(trained[0][f"keras{k}"], trained[1][f"keras{k}"])
        np.testing.assert_allclose(trained[0][f"keras{k}"], want, rtol=1e-4, atol=1e-5)


def test_an_exception_in_one_worker_aborts_the_job(tmp_path):
    start = time.monotonic()
    done = launch("raise", tmp_path, timeout=60, GRAPHK_DISTRIBUTED_TIMEOUT="60")
    assert done.returncode != 0
    assert "worker 1 failed on purpose" in done.stderr
    assert "rank 1 of 2: raised RuntimeError" in done.stderr, done.stderr
    assert time.monotonic() - start < 30  # the abort, not the timeout, ended the job


def test_a_worker_that_stops_taking_part_times_out_with_an_error(tmp_path):
    done = launch("leave", tmp_path, timeout=60, GRAPHK_DISTRIBUTED_TIMEOUT="1")
    assert done.returncode != 0
    assert "rank 0 of 2: waited" in done.stderr, done.stderr
    assert "GRAPHK_DISTRIBUTED_TIMEOUT" in done.stderr


def test_workers_running_different_collectives_fail_instead_of_mixing_tensors(tmp_path):
    done = launch("mismatch", tmp_path, timeout=60, GRAPHK_DISTRIBUTED_TIMEOUT="60")
    assert done.returncode != 0
    assert "CollectiveMismatch" in done.stderr and "different collectives" in done.stderr


def test_a_killed_worker_ends_the_job(tmp_path):
    """mpiexec (Hydra) sees the death, kills the other workers and says so."""
    done = launch("killed", tmp_path, timeout=60, GRAPHK_DISTRIBUTED_TIMEOUT="60")
    assert done.returncode != 0
    assert "BAD TERMINATION" in done.stdout + done.stderr


if __name__ == "__main__":
    run_worker(sys.argv[1], sys.argv[2])

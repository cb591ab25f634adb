"""graphk's thread budget (graphk/threads.py) and the kernels changed with it: batch norm's
channels-last path and the fast uniform / Bernoulli draws, checked against NumPy."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import graphk
from graphk import backend as K
from graphk import threads
from graphk.ir.ops import normalization, random as random_ops


@pytest.fixture
def budget_reset():
    yield
    threads.set_num_threads(None)


# --- the budget --------------------------------------------------------------------------


def test_setter_fixes_the_budget_and_none_returns_to_automatic(budget_reset):
    graphk.set_num_threads(3)
    assert threads.budget() == graphk.get_num_threads() == 3
    graphk.set_num_threads(None)
    assert 1 <= threads.budget() <= threads.capacity()


@pytest.mark.parametrize("bad", [0, -2, "two", 1.5, True])
def test_setter_rejects_what_is_not_a_positive_count(bad, budget_reset):
    with pytest.raises(ValueError, match="positive int number of threads"):
        threads.set_num_threads(bad)


def _fresh_python(code: str, **environment) -> subprocess.CompletedProcess:
    env = dict(os.environ, **environment)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)


def test_environment_variable_sets_the_budget_the_setter_overrides_it_affinity_caps_it():
    done = _fresh_python("import os, graphk; from graphk import threads; "
                         "print(graphk.get_num_threads()); "
                         "graphk.set_num_threads(1); print(graphk.get_num_threads()); "
                         "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
                         "print(threads.capacity())", GRAPHK_NUM_THREADS="5")
    assert done.stdout.split() == ["5", "1", "1"], done.stderr


def test_a_bad_environment_variable_is_named():
    done = _fresh_python("import graphk.threads", GRAPHK_NUM_THREADS="lots")
    assert done.returncode != 0 and "GRAPHK_NUM_THREADS" in done.stderr


def test_idle_cores_leave_out_other_processes_load_but_not_ours():
    # 2 cores over 1 s: a spinner elsewhere (1 s) plus us (1 s) leave 1 idle core ...
    assert threads.idle_cores(2, 2, busy=2.0, ours=1.0, wall=1.0) == 1
    # ... our own BLAS helpers spinning do not count against us ...
    assert threads.idle_cores(2, 2, busy=2.0, ours=2.0, wall=1.0) == 2
    # ... light background load (under IDLE_SHARE of a core) does not either ...
    assert threads.idle_cores(2, 2, busy=1.15, ours=1.0, wall=1.0) == 2
    # ... and the answer is at least one and at most the limit.
    assert threads.idle_cores(2, 2, busy=9.0, ours=0.0, wall=1.0) == 1
    assert threads.idle_cores(8, 4, busy=0.0, ours=0.0, wall=1.0) == 4


def test_small_products_run_on_one_thread_large_ones_on_the_budget(budget_reset):
    threads.set_num_threads(2)
    assert threads.blas_threads(32 * 64 * 128) == 1
    assert threads.blas_threads(512 * 288 * 64) == 1
    assert threads.blas_threads(1024 ** 3) == 2
    threads.set_num_threads(1)
    assert threads.blas_threads(1024 ** 3) == 1
    assert threads.threads_for(10, 1) == 1


def test_leases_share_the_budget_between_concurrent_pools(budget_reset):
    threads.set_num_threads(3)
    with threads.lease(8) as first:
        with threads.lease(8) as second:
            assert first == 3 and second == 1  # the second caller runs on its own thread
    with threads.lease(8) as again:
        assert again == 3


# --- NumPy's BLAS count: set per product, given back after each call ----------------------


class _Recorder:
    """Stands in for the BLAS library: records every count set."""

    def __init__(self, blas, start: int):
        self.count, self.calls = start, []
        self.saved = blas._set, blas._get, blas.available, blas.owned
        blas._set, blas._get, blas.available, blas.owned = self.set, self.get, True, False

    def set(self, count):
        self.calls.append(count)
        self.count = count

    def get(self):
        return self.count

    def restore(self, blas):
        blas._set, blas._get, blas.available, blas.owned = self.saved


@pytest.fixture
def recorder():
    fake = _Recorder(threads.blas, start=2)
    yield fake
    fake.restore(threads.blas)


def test_a_function_sets_one_thread_for_small_products_and_gives_the_count_back(recorder):
    x = K.placeholder((None, 8))
    w = K.variable(np.ones((8, 4), np.float32))
    f = K.function([x], [K.dot(K.dot(x, w), K.transpose(w))])
    f([np.ones((3, 8), np.float32)])
    assert recorder.calls == [1, 2]  # one change for both products, then the caller's count
    assert recorder.count == 2 and not threads.blas.owned


def test_no_change_is_made_when_the_count_is_already_right(recorder):
    recorder.count = 1
    x = K.placeholder((None, 8))
    f = K.function([x], [K.dot(x, K.variable(np.ones((8, 4), np.float32)))])
    f([np.ones((3, 8), np.float32)])
    assert recorder.calls == []


def test_the_count_is_given_back_when_a_call_fails(recorder):
    x = K.placeholder((None, 8))
    f = K.function([x], [K.log(K.dot(x, K.variable(np.ones((8, 4), np.float32))))])
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):
        f([-np.ones((3, 8), np.float32)])
    assert recorder.count == 2 and not threads.blas.owned


def test_the_automatic_budget_keeps_to_the_callers_blas_limit(recorder, budget_reset):
    recorder.count = 1  # as OPENBLAS_NUM_THREADS=1 or threadpool_limits(1) leave it
    assert threads.blas_threads(1024 ** 3) == 1
    threads.set_num_threads(2)  # graphk's own setting is followed
    assert threads.blas_threads(1024 ** 3) == 2


def test_blas_limit_restores_the_count_it_found(recorder):
    with threads.blas_limit(1):
        assert recorder.count == 1
    assert recorder.count == 2


def test_the_real_blas_is_found_and_left_as_it_was():
    if not threads.blas.available:
        pytest.skip("no controllable BLAS under NumPy")
    before = threads.blas.read()
    x = K.placeholder((None, 16))
    f = K.function([x], [K.dot(x, K.variable(np.ones((16, 16), np.float32)))])
    for _ in range(3):
        f([np.ones((4, 16), np.float32)])
    assert threads.blas.read() == before


def test_functions_called_from_many_threads_agree_with_one():
    x = K.placeholder((None, 16))
    f = K.function([x], [K.dot(x, K.variable(np.eye(16, dtype=np.float32)))])
    feed = np.arange(64, dtype=np.float32).reshape(4, 16)
    results = []
    workers = [threading.Thread(target=lambda: results.append(f([feed])[0])) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(results) == 4 and all(np.array_equal(r, feed) for r in results)


# --- batch norm's kernels against NumPy ------------------------------------------------------


def _reference_train(x, gamma, beta, axes, epsilon):
    mean = x.mean(axis=axes, dtype=np.float64)
    var = x.var(axis=axes, dtype=np.float64)
    shape = [1 if i in axes else d for i, d in enumerate(x.shape)]
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + epsilon)
    return y * gamma.reshape(shape) + beta.reshape(shape), mean, var


def _reference_grad(gy, x, gamma, axes, epsilon):
    """d(x, gamma, beta) of sum(gy * y) through the batch moments, in float64."""
    x, gy = x.astype(np.float64), gy.astype(np.float64)
    shape = [1 if i in axes else d for i, d in enumerate(x.shape)]
    n = np.prod([x.shape[a] for a in axes])
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    inv = 1 / np.sqrt(var + epsilon)
    xhat = (x - mean.reshape(shape)) * inv.reshape(shape)
    dbeta, dgamma = gy.sum(axis=axes), (gy * xhat).sum(axis=axes)
    dx = (gamma * inv).reshape(shape) * (gy - dbeta.reshape(shape) / n
                                         - xhat * dgamma.reshape(shape) / n)
    return dx, dgamma, dbeta


# channels-last with row counts that tile (2048), that do not (prime 31 * 7), one channel,
# a channels-first layout (einsum path) and 2-D input.
BN_CASES = [((32, 8, 8, 32), (0, 1, 2)), ((31, 7, 5), (0, 1)), ((6, 4, 1), (0, 1)),
            ((4, 3, 5, 5), (0, 2, 3)), ((50, 6), (0,))]


@pytest.mark.parametrize("dtype,tol", [("float32", 2e-5), ("float64", 1e-12), ("float16", 3e-3)])
@pytest.mark.parametrize("shape,axes", BN_CASES)
def test_batch_norm_train_kernels_match_numpy(shape, axes, dtype, tol):
    rng = np.random.default_rng(0)
    kept = tuple(d for i, d in enumerate(shape) if i not in axes)
    x = (rng.standard_normal(shape) * 2 + 3).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    gamma, beta = (rng.uniform(0.5, 2, kept).astype(dtype), rng.standard_normal(kept).astype(dtype))
    y, mean, var = normalization._batch_norm_train(x, gamma, beta, axes=axes, epsilon=1e-3,
                                                   scale=True, center=True)
    expected = _reference_train(x.astype(np.float64), gamma.astype(np.float64),
                                beta.astype(np.float64), axes, 1e-3)
    for got, want in zip((y, mean, var), expected):
        assert got.dtype == np.dtype(dtype) and got.shape == want.shape
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol * 10, atol=tol * 10)
    grads = normalization._batch_norm_train_grad(gy, x, gamma, mean, var, axes=axes,
                                                 epsilon=1e-3, scale=True)
    for got, want in zip(grads, _reference_grad(gy, x, gamma.astype(np.float64), axes, 1e-3)):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol * 50,
                                   atol=tol * 50 * np.abs(want).max())


def test_batch_norm_without_gamma_and_beta_matches_numpy():
    x = np.random.default_rng(1).standard_normal((64, 8)).astype(np.float32)
    y, _, _ = normalization._batch_norm_train(x, axes=(0,), epsilon=1e-3, scale=False,
                                              center=False)
    want, _, _ = _reference_train(x.astype(np.float64), np.ones(8), np.zeros(8), (0,), 1e-3)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


# --- random draws ----------------------------------------------------------------------------


def test_float32_uniforms_are_numpys_own_numbers():
    for shape in [(32, 1024), (7, 3), (1,), (0, 4)]:
        ours = random_ops._uniform(np.random.default_rng(9), shape, np.dtype(np.float32), 0.0, 1.0)
        numpys = np.random.default_rng(9).random(shape, dtype=np.float32)
        assert ours.dtype == np.float32 and np.array_equal(ours, numpys)


@pytest.mark.parametrize("p", [0.0, 1e-9, 0.1, 0.5, 0.75, 1 - 1e-9, 1.0])
def test_bernoulli_masks_agree_with_comparing_numpys_uniforms(p):
    ours = random_ops._binomial(np.random.default_rng(4), (3001,), np.dtype(np.float32), p)
    uniforms = np.random.default_rng(4).random((3001,), dtype=np.float32)
    assert ours.dtype == np.float32
    assert np.array_equal(ours, (uniforms < p).astype(np.float32))


# --- switch on a rank-0 condition (Keras' learning phase) ------------------------------------


def test_switch_on_a_scalar_condition_is_a_fresh_copy_of_one_side():
    from graphk.ir.ops.elementwise import _select
    cases = [(np.arange(6.0).reshape(2, 3), np.zeros(3)),
             (np.float32(2), np.ones((2, 2), np.float32)),
             (np.arange(3, dtype=np.int32), np.arange(3.0)),
             (np.ones((2, 2), np.float32), np.full((2, 2), np.nan, np.float32))]
    for condition in (np.asarray(True), np.asarray(False), np.bool_(True)):
        for then, otherwise in cases:
            got, want = _select(condition, then, otherwise), np.where(condition, then, otherwise)
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
            assert got.flags.writeable and not np.shares_memory(got, then) \
                and not np.shares_memory(got, otherwise)


def test_cores_idle_right_now_are_taken_a_spinner_keeps_its_core(monkeypatch):
    """The window saw another process busy on one of two cores; whether graphk takes that
    core depends on whether anybody else is runnable when it measures (cpu_load.py)."""
    from graphk import cpu_load

    def measured(others_now):
        monkeypatch.setattr(cpu_load, "_others_running", lambda: others_now)
        monkeypatch.setattr(cpu_load, "_our_cpus", lambda: [0, 1])
        monkeypatch.setattr(cpu_load, "capacity", lambda: 2)
        idle = cpu_load.IdleCores()
        start = idle._mark
        # over one second: 1 s of another process's time on our CPUs, none of ours
        idle._mark = (start[0] - 1.0, 0.0, start[2], [0, 1])
        monkeypatch.setattr(cpu_load, "_busy_seconds", lambda cpus: 1.0)
        monkeypatch.setattr(cpu_load.time, "process_time", lambda: start[2])
        idle._measure()
        return idle._free
    assert measured(0) == 2  # it took turns with us: idle while we compute
    assert measured(1) == 1  # still running (a spinner): its core stays its own
    assert measured(None) == 1  # no /proc/loadavg: the window decides


def test_others_running_reads_the_machine():
    from graphk import cpu_load
    others = cpu_load._others_running()
    assert others is None or others >= 0

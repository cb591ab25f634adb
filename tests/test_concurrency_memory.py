"""Compiled functions under threads and over many calls: correct results, flat memory.

One function called from 8 threads at once gives every caller its own correct
result; compiling from several threads at once is safe; 100,000 calls do not
grow the process; a dropped function is released.
"""
import gc
import resource
import threading
import weakref

import numpy as np

from graphk import backend as K


def _mlp_function(width=16):
    x = K.placeholder((None, width))
    W = K.variable(np.linspace(-1, 1, width * width).reshape(width, width))
    y = K.softmax(K.tanh(K.dot(x, W)) * 2.0 + 0.5)
    return K.function([x], [y, K.sum(y * y, axis=1)]), K.get_value(W)


def _reference(x, W):
    z = np.tanh(x @ W) * 2.0 + 0.5
    e = np.exp(z - z.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    return y, (y * y).sum(axis=1)


def _run_threads(target, count):
    errors = []

    def guarded(k):
        try:
            target(k)
        except BaseException as error:  # noqa: BLE001 -- reported by the test
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_one_function_called_from_eight_threads():
    f, W = _mlp_function()
    results = {}

    def call(k):
        rng = np.random.default_rng(k)
        for _ in range(50):
            x = rng.normal(size=(7 + k, 16)).astype("float32")
            y, s = f([x])
            want_y, want_s = _reference(x, W)
            np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(s, want_s, rtol=1e-5, atol=1e-6)
        results[k] = True

    _run_threads(call, 8)
    assert len(results) == 8


def test_compiling_from_several_threads_at_once():
    def compile_and_run(k):
        f, W = _mlp_function(width=8 + k)
        x = np.ones((3, 8 + k), dtype="float32")
        np.testing.assert_allclose(f([x])[0], _reference(x, W)[0], rtol=1e-5, atol=1e-6)

    _run_threads(compile_and_run, 6)


def _rss_kib() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() // 1024


def test_many_calls_do_not_grow_the_process():
    f, _ = _mlp_function()
    x = np.ones((4, 16), dtype="float32")
    for _ in range(2000):  # warm up caches and allocator pools
        f([x])
    before = _rss_kib()
    for _ in range(100_000):
        f([x])
    grown = _rss_kib() - before
    assert grown < 4096, f"100,000 calls grew the process by {grown} KiB"


def test_a_dropped_function_is_released():
    f, _ = _mlp_function()
    f([np.ones((2, 16), dtype="float32")])
    ref = weakref.ref(f)
    del f
    gc.collect()
    assert ref() is None

"""Compiled functions under threads and over many calls: correct results, flat memory.

One function called from 8 threads at once gives every caller its own correct
result; compiling from several threads at once is safe; 100,000 calls do not
grow the process; a dropped function is released.
"""
import gc
import weakref

import numpy as np

from concurrency import rss_kib, run_threads, softmax_function, softmax_reference


def test_one_function_called_from_eight_threads():
    f, W = softmax_function()
    results = {}

    def call(k):
        rng = np.random.default_rng(k)
        for _ in range(50):
            x = rng.normal(size=(7 + k, 16)).astype("float32")
            y, s = f([x])
            want_y, want_s = softmax_reference(x, W)
            np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(s, want_s, rtol=1e-5, atol=1e-6)
        results[k] = True

    run_threads(call, 8)
    assert len(results) == 8


def test_compiling_from_several_threads_at_once():
    def compile_and_run(k):
        f, W = softmax_function(width=8 + k)
        x = np.ones((3, 8 + k), dtype="float32")
        np.testing.assert_allclose(f([x])[0], softmax_reference(x, W)[0], rtol=1e-5, atol=1e-6)

    run_threads(compile_and_run, 6)


def test_many_calls_do_not_grow_the_process():
    f, _ = softmax_function()
    x = np.ones((4, 16), dtype="float32")
    for _ in range(2000):  # warm up caches and allocator pools
        f([x])
    before = rss_kib()
    for _ in range(100_000):
        f([x])
    grown = rss_kib() - before
    assert grown < 4096, f"100,000 calls grew the process by {grown} KiB"


def test_a_dropped_function_is_released():
    f, _ = softmax_function()
    f([np.ones((2, 16), dtype="float32")])
    ref = weakref.ref(f)
    del f
    gc.collect()
    assert ref() is None

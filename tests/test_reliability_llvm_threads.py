"""LLVM-compiled functions under threads and over many calls: correct results, flat memory.

The backend="llvm" counterpart of test_concurrency_memory.py: one function whose
fused region runs native code, called from 8 threads at once; compiling from
several threads at once; 20,000 calls do not grow the process; a dropped
function releases its kernels; the in-memory kernel cache stays within its bound.
"""
import gc
import threading
import weakref

import numpy as np
import pytest

from concurrency import rss_kib, run_threads, softmax_function, softmax_reference

from graphk.codegen.llvm import cache as llvm_cache
from graphk.codegen.llvm.cache import MEMORY as REAL_MEMORY
from graphk.codegen.llvm.compiler import STATS


@pytest.fixture(autouse=True)
def fresh_disk_cache(tmp_path):
    """An empty disk cache per test: modules are really generated, not loaded."""
    llvm_cache.set_disk_cache(str(tmp_path / "kernels"))
    yield
    llvm_cache.set_disk_cache(None)


def _runs_on_llvm(fn) -> bool:
    return ": llvm: " in fn.report(show=False)


def test_llvm_function_called_from_eight_threads():
    f, W = softmax_function(backend="llvm")
    assert _runs_on_llvm(f), f.report(show=False)
    start = threading.Barrier(8)

    def call(k):
        rng = np.random.default_rng(k)
        start.wait()  # every thread enters the kernels at once
        for n in range(40):
            # sizes differ per thread and call: shared per-shape state is exercised too
            x = rng.normal(size=(1 + (k * 7 + n) % 23, 16)).astype("float32")
            y, s = f([x])
            want_y, want_s = softmax_reference(x, W)
            np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(s, want_s, rtol=1e-5, atol=1e-6)

    run_threads(call, 8)


def test_llvm_compiling_from_several_threads_at_once():
    start = threading.Barrier(6)

    def compile_and_run(k):
        start.wait()
        # a constant new to this process: every thread really generates a module
        f, W = softmax_function(width=8 + k % 3, scale=2.0 + 0.001 * k + 0.0123,
                                backend="llvm")
        x = np.random.default_rng(k).normal(size=(5, 8 + k % 3)).astype("float32")
        want = softmax_reference(x, W, scale=2.0 + 0.001 * k + 0.0123)[0]
        np.testing.assert_allclose(f([x])[0], want, rtol=1e-5, atol=1e-6)

    run_threads(compile_and_run, 6)


def test_many_llvm_calls_do_not_grow_the_process():
    f, _ = softmax_function(backend="llvm")
    x = np.ones((4, 16), dtype="float32")
    for _ in range(1000):  # warm up caches and allocator pools
        f([x])
    before = rss_kib()
    for _ in range(20_000):
        f([x])
    grown = rss_kib() - before
    assert grown < 4096, f"20,000 llvm calls grew the process by {grown} KiB"


def test_a_dropped_llvm_function_releases_its_kernels():
    before = _live_loaded_objects()
    f, _ = softmax_function(scale=3.0625, backend="llvm")
    f([np.ones((2, 16), dtype="float32")])
    owners = [weakref.ref(o) for k, o in _live_loaded_objects().items() if k not in before]
    assert owners, "compiling the function loaded no LLVM object"
    ref = weakref.ref(f)
    del f
    gc.collect()
    assert ref() is None
    # the memory cache still holds the module (that is its job); drop it and the code goes
    llvm_cache.MEMORY.clear()
    gc.collect()
    assert all(owner() is None for owner in owners)


def _live_loaded_objects():
    """The LoadedObjects alive now (objects holding native code), by id."""
    from graphk.codegen.llvm.target import LoadedObject

    gc.collect()
    return {id(o): o for o in gc.get_objects() if isinstance(o, LoadedObject)}


def test_memory_kernel_cache_is_bounded(monkeypatch):
    bounded = llvm_cache.MemoryCache(entries=2)
    monkeypatch.setattr(llvm_cache, "MEMORY", bounded)
    from graphk.codegen.llvm import compiler

    monkeypatch.setattr(compiler, "MEMORY", bounded)
    functions = []
    compiled = STATS["compiled"]
    for k in range(5):
        f, W = softmax_function(width=4, scale=5.0 + 0.01 * k, backend="llvm")
        x = np.ones((2, 4), dtype="float32")
        np.testing.assert_allclose(f([x])[0], softmax_reference(x, W, 5.0 + 0.01 * k)[0],
                                   rtol=1e-5, atol=1e-6)
        functions.append(f)
        assert len(bounded) <= 2
    assert len(bounded) == 2
    # evicted kernels keep working for the functions that hold them
    x = np.full((3, 4), 0.5, dtype="float32")
    for k, f in enumerate(functions):
        W = np.linspace(-1, 1, 16).reshape(4, 4)
        np.testing.assert_allclose(f([x])[0], softmax_reference(x, W, 5.0 + 0.01 * k)[0],
                                   rtol=1e-5, atol=1e-6)
    assert STATS["compiled"] >= compiled + 5  # every function generated its own module
    assert REAL_MEMORY.entries == llvm_cache.MEMORY_ENTRIES  # the real cache's bound

"""The LLVM runtime and caches: feeds native code must survive, cache keys, the disk
cache's failure modes, K.function(backend=...) and the report."""
from __future__ import annotations

import os

import numpy as np
import pytest

from graphk import backend as K
from graphk.codegen.llvm import FunctionLowering, compile_fused, target
from graphk.codegen.llvm.cache import MAGIC, MEMORY, region_key, set_disk_cache
from graphk.codegen.llvm.compiler import STATS
from graphk.ir.graph import Graph
from graphk.ir.ops import elementwise as ew
from graphk.ir.ops.fused import evaluate_body, fused
from graphk.ir.ops.leaf import placeholder
from graphk.ir.ops.reduce import reduce_sum
from graphk.ir.shapes import ShapeError, SymDim
from graphk.ir.types import TensorType


def _broadcast_region(scale: float = 2.0):
    """x[?a, 4] * y[?b, 4] + scale: run-time shapes decide whether ?a and ?b broadcast."""
    x = placeholder(TensorType("float32", (SymDim(), 4)))
    y = placeholder(TensorType("float32", (SymDim(), 4)))
    body = Graph([x, y], [ew.add(ew.mul(x, y), np.float32(scale))], name="fused")
    return body, fused([x, y], body)[0].node


@pytest.fixture(scope="module")
def kernel():
    body, node = _broadcast_region()
    return body, compile_fused(node, small_on_numpy=False)


def test_mismatched_broadcast_is_a_shape_error_not_a_crash(kernel):
    body, k = kernel
    with pytest.raises(ShapeError, match=r"mul.*\(3, 4\) and \(5, 4\).*do not broadcast"):
        k(np.ones((3, 4), np.float32), np.ones((5, 4), np.float32))
    with pytest.raises(ShapeError, match="expected rank 2"):
        k(np.ones(4, np.float32), np.ones((5, 4), np.float32))


def test_broadcast_one_against_many(kernel):
    body, k = kernel
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    y = np.arange(4, dtype=np.float32).reshape(1, 4)
    np.testing.assert_array_equal(k(x, y), x * y + 2)
    np.testing.assert_array_equal(k(y, x), x * y + 2)


def test_empty_misaligned_readonly_and_negative_strides(kernel):
    body, k = kernel
    assert k(np.ones((0, 4), np.float32), np.ones((0, 4), np.float32)).shape == (0, 4)
    raw = np.zeros(12 * 4 + 1, np.uint8)
    misaligned = np.frombuffer(raw.data, dtype=np.float32, count=12, offset=1).reshape(3, 4)
    assert not misaligned.flags.aligned
    readonly = np.arange(12, dtype=np.float32).reshape(3, 4)[::-1, ::-1]
    readonly.setflags(write=False)
    np.testing.assert_array_equal(k(misaligned, readonly), misaligned * readonly + 2)


def test_other_dtypes_cast_or_fail_clearly(kernel):
    body, k = kernel
    x = np.ones((2, 4), np.float64)
    np.testing.assert_array_equal(k(x, x), np.full((2, 4), 3, np.float32))
    with pytest.raises(TypeError, match="dtype complex128, expected float32"):
        k(x.astype(complex), x)


def test_region_keys_ignore_names_symbols_and_locations():
    first, _ = _broadcast_region()
    second, _ = _broadcast_region()
    assert region_key(first) == region_key(second)
    assert region_key(_broadcast_region(3.0)[0]) != region_key(first)


def test_memory_cache_makes_recompiling_a_lookup():
    body, node = _broadcast_region(5.0)
    compile_fused(node)
    compiled = STATS["compiled"]
    compile_fused(_broadcast_region(5.0)[1])
    assert STATS["compiled"] == compiled


def _fresh(tmp_path, scale):
    """A region no cache has seen in this process (its constant is new)."""
    MEMORY.clear()
    return _broadcast_region(scale)


def test_disk_cache_round_trip_and_corruption(tmp_path):
    cache = set_disk_cache(str(tmp_path))
    try:
        body, node = _fresh(tmp_path, 7.25)
        compile_fused(node)
        files = [f for f in os.listdir(tmp_path) if f.endswith(".o")]
        assert len(files) == 1
        path = tmp_path / files[0]
        assert path.read_bytes().startswith(MAGIC)
        loads = STATS["from_disk"]
        _, node = _fresh(tmp_path, 7.25)
        compile_fused(node)
        assert STATS["from_disk"] == loads + 1
        x = np.ones((2, 4), np.float32)
        for damage in (lambda b: b[:-7], lambda b: b[:-20] + bytes(20), lambda b: b[:10]):
            path.write_bytes(damage(path.read_bytes()))
            compiled = STATS["compiled"]
            _, node = _fresh(tmp_path, 7.25)
            k = compile_fused(node, small_on_numpy=False)
            assert STATS["compiled"] == compiled + 1  # detected, recompiled, rewritten
            np.testing.assert_array_equal(k(x, x), x * x + 7.25)
        assert cache.enabled
    finally:
        set_disk_cache(None)


def test_unwritable_cache_directory_only_turns_the_disk_cache_off(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cache = set_disk_cache(str(blocker / "cache"))
    try:
        _, node = _fresh(tmp_path, 9.5)
        k = compile_fused(node, small_on_numpy=False)
        x = np.ones((2, 4), np.float32)
        np.testing.assert_array_equal(k(x, x), x * x + 9.5)
        assert not cache.enabled and cache.disabled_because
    finally:
        set_disk_cache(None)


def test_one_module_for_all_fused_nodes_of_a_function():
    MEMORY.clear()
    lowering = FunctionLowering()
    nodes = [_broadcast_region(scale)[1] for scale in (11.0, 12.0, 13.0)]
    kernels = [lowering(node) for node in nodes]
    compiled = STATS["compiled"] + STATS["from_disk"]
    lowering.finish()
    assert STATS["compiled"] + STATS["from_disk"] == compiled + 1
    x = np.ones((300, 4), np.float32)
    for scale, k in zip((11.0, 12.0, 13.0), kernels):
        np.testing.assert_array_equal(k(x, x), x * x + scale)


def test_k_function_backends_agree_and_report_says_what_ran():
    x = K.placeholder((None, 7))
    y = K.softmax(x) * 3.0 + K.tanh(x)
    data = np.random.default_rng(0).standard_normal((50, 7)).astype(np.float32)
    results = {}
    for backend in ("numpy", "llvm", "auto"):
        fn = K.function([x], [y], backend=backend)
        results[backend] = fn([data])[0]
        text = fn.report(show=False)
        assert f"lowering (backend={backend!r})" in text
        if backend == "llvm":
            assert ": llvm: nest" in text, text
    np.testing.assert_allclose(results["llvm"], results["numpy"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results["auto"], results["numpy"], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        K.function([x], [y], backend="cuda")


def test_unsupported_region_runs_on_numpy_and_says_why():
    x = placeholder(TensorType("int32", (3, 4)))
    body = Graph([x], [reduce_sum(ew.mul(x, x), (1,)), ew.floordiv(x, x)], name="fused")
    node = fused([x], body)[0].node
    lowering = FunctionLowering()
    from graphk.ir.ops.reduce import reduce_mean

    mean_body = Graph([x], [reduce_mean(x, (1,))], name="fused")
    mean_node = fused([x], mean_body)[0].node
    assert lowering(mean_node) is None
    assert "integer means truncate" in lowering.decisions[mean_node][1]
    k = lowering(node)
    lowering.finish()
    data = np.arange(1, 13, dtype=np.int32).reshape(3, 4)
    for got, want in zip(k(data), evaluate_body(body, [data])):
        np.testing.assert_array_equal(got, want)


def test_host_target_reports_its_vector_width():
    assert target.vector_bits() in (128, 256, 512)
    assert target.host_cpu()[0] in target.host_key()


def test_threads_split_rows_and_flat_ranges(monkeypatch):
    """With a budget of 3 and a tiny per-thread work, kernels split over threads; every
    split point (rows of a shared loop, ranges of a flat loop) gives NumPy's result."""
    import graphk.threads as threads
    from graphk.codegen.llvm import runtime

    monkeypatch.setattr(runtime, "WORK_PER_THREAD", 10)
    threads.set_num_threads(3)
    try:
        softmax_x = placeholder(TensorType("float64", (SymDim(), 5)))
        from graphk.ir.ops.reduce import reduce_max

        e = ew.exp(ew.sub(softmax_x, reduce_max(softmax_x, (1,), keepdims=True)))
        body = Graph([softmax_x], [ew.div(e, reduce_sum(e, (1,), keepdims=True))], name="fused")
        k = compile_fused(fused([softmax_x], body)[0].node, small_on_numpy=False)
        chain_body, chain_node = _broadcast_region(4.5)
        chain = compile_fused(chain_node, small_on_numpy=False)
        rng = np.random.default_rng(5)
        for rows in (1, 2, 3, 7, 1001):
            x = rng.standard_normal((rows, 5))
            np.testing.assert_allclose(k(x), evaluate_body(body, [x])[0], rtol=1e-13)
            a = rng.standard_normal((rows, 4)).astype(np.float32)
            np.testing.assert_array_equal(chain(a, a), a * a + np.float32(4.5))
    finally:
        threads.set_num_threads(None)

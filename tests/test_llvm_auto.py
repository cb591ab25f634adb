"""backend="auto" and the LLVM runtime's per-call path: compiling at the first native call,
what fn.report() says before and after, the cost model's choices, outputs written into
dead inputs, data pointers (codegen/llvm/__init__.py, cost.py, runtime.py, pointers.py)."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from graphk import backend as K
from graphk.codegen.llvm import cache, compile_fused, cost
from graphk.codegen.llvm.compiler import STATS
from graphk.codegen.llvm.extents import value_shapes
from graphk.codegen.llvm.pointers import DATA_OFFSET, buffer_word, data_address


def _chain(x, scale):
    return K.tanh(0.5 * x + 1) * K.sigmoid(x) + scale * K.exp(-x * x) - 0.3 * K.abs(x)


def _chain_numpy(x, scale):
    return (np.tanh(0.5 * x + 1) / (1 + np.exp(-x)) + np.float32(scale) * np.exp(-x * x)
            - np.float32(0.3) * np.abs(x))


def _kernels(fn) -> list:
    return [k for k in fn._executable.run.__globals__.values()
            if type(k).__name__ == "FusedKernel"]


def test_k_function_compiles_nothing_until_a_call_runs_native_code():
    cache.MEMORY.clear()
    x = K.placeholder((None,))
    before = STATS["compiled"] + STATS["from_disk"]
    fn = K.function([x], [_chain(x, 0.0625)], backend="auto")
    assert STATS["compiled"] + STATS["from_disk"] == before
    assert fn.lowering.code_source is None
    assert "compile pending" in fn.report(show=False)
    data = np.linspace(-3, 3, 20001, dtype=np.float32)  # large enough to go native
    np.testing.assert_allclose(fn([data])[0], _chain_numpy(data, 0.0625), rtol=2e-6, atol=1e-6)
    assert fn.lowering.code_source in ("compiled", "disk")
    text = fn.report(show=False)
    assert "compile pending" not in text and "at the first native call" in text
    assert "1 input pattern(s) native flat" in text


def test_a_function_only_called_where_numpy_is_faster_compiles_nothing():
    cache.MEMORY.clear()
    w, g = K.placeholder((None, 10)), K.placeholder((None, 10))
    fn = K.function([w, g], [w - 0.015625 * g], backend="auto")
    a, b = np.ones((4, 10), np.float32), np.full((4, 10), 2.0, np.float32)
    np.testing.assert_array_equal(fn([a, b])[0], a - np.float32(0.015625) * b)
    assert fn.lowering.code_source is None
    text = fn.report(show=False)
    assert "NumPy (faster there at this size)" in text and "compile pending" in text


def test_the_same_input_pattern_always_runs_the_same_way():
    x = K.placeholder((None, 16))
    fn = K.function([x], [K.softmax(x)], backend="auto")
    data = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
    results = [fn([data])[0] for _ in range(3)]
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])  # same bits on every call


@pytest.mark.parametrize("rows, native", [(1, False), (2, False), (512, True)])
def test_cost_model_softmax(rows, native):
    x = K.placeholder((None, 16))
    fn = K.function([x], [K.softmax(x)], backend="numpy")
    node = next(n for n in fn.ir.nodes if n.op.name == "fused")
    kernel = compile_fused(node)
    arrays = [np.zeros((rows, 16), np.float32)]
    shapes = value_shapes(kernel.body, arrays)
    extents = [shapes[stage.root] for stage in kernel.plan.stages]
    assert cost.numpy_is_faster(kernel.body, shapes, extents) is not native


def test_cost_model_keeps_an_update_on_numpy_and_a_long_chain_native():
    w, g = K.placeholder((None, 10)), K.placeholder((None, 10))
    update = K.function([w, g], [w - 0.01 * g], backend="numpy")
    x = K.placeholder((None,))
    chain = K.function([x], [_chain(x, 0.1)], backend="numpy")
    for fn, arrays, native in ((update, [np.zeros((256, 10), np.float32)] * 2, False),
                               (update, [np.zeros((40000, 10), np.float32)] * 2, False),
                               (chain, [np.zeros(16, np.float32)], False),  # saves too little
                               (chain, [np.zeros(65536, np.float32)], True)):
        node = next(n for n in fn.ir.nodes if n.op.name == "fused")
        body = node.attrs["body"]
        shapes = value_shapes(body, arrays)
        kernel = compile_fused(node)
        extents = [shapes[stage.root] for stage in kernel.plan.stages]
        numpy_us, native_us = cost.estimates(body, shapes, extents)
        assert numpy_us > 0 and native_us > 0
        assert cost.numpy_is_faster(body, shapes, extents) is not native


@pytest.mark.parametrize("backend", ["llvm", "auto"])
def test_an_output_is_written_into_a_dead_intermediate(backend):
    rng = np.random.default_rng(1)
    x, w = K.placeholder((None, 64)), K.placeholder((64, 512))
    fn = K.function([x, w], [K.tanh(K.dot(x, w)) * 1.5 - 0.25], backend=backend)
    xs, ws = rng.standard_normal((96, 64)).astype(np.float32), \
        rng.standard_normal((64, 512)).astype(np.float32) * 0.1
    want = np.tanh(xs @ ws) * np.float32(1.5) - np.float32(0.25)
    for _ in range(2):
        np.testing.assert_allclose(fn([xs, ws])[0], want, rtol=1e-5, atol=1e-5)
    [kernel] = _kernels(fn)
    assert kernel.donate == frozenset({0})
    [prepared] = kernel._prepared.values()
    assert prepared.donor == 0  # its output is the matmul's dead result (either lowering)
    assert backend == "auto" or prepared.variant == "flat"


def test_a_donated_input_that_is_read_only_is_not_written():
    x = K.placeholder((None, 8))
    fn = K.function([x], [_chain(x, 0.5)], backend="numpy")
    node = next(n for n in fn.ir.nodes if n.op.name == "fused")
    kernel = compile_fused(node, small_on_numpy=False)
    kernel.donate = frozenset({0})
    data = np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
    frozen = data.copy()
    frozen.flags.writeable = False
    out = kernel(frozen)
    assert not np.shares_memory(out, frozen)
    np.testing.assert_array_equal(frozen, data)
    mine = data.copy()
    out = kernel(mine)
    assert np.shares_memory(out, mine)  # writeable and dead: written in place
    np.testing.assert_allclose(out, _chain_numpy(data, 0.5), rtol=2e-6, atol=1e-6)


def test_regions_with_several_stores_never_write_into_an_input():
    x = K.placeholder((None, 8))
    fn = K.function([x], [K.exp(x) * 2.0, K.exp(x) + 1.0], backend="numpy")
    node = next(n for n in fn.ir.nodes if n.op.name == "fused")
    kernel = compile_fused(node, small_on_numpy=False)
    kernel.donate = frozenset({0})
    data = np.linspace(-1, 1, 32, dtype=np.float32).reshape(4, 8)
    mine = data.copy()
    first, second = kernel(mine)
    np.testing.assert_array_equal(mine, data)
    np.testing.assert_allclose(first, np.exp(data) * 2, rtol=2e-6)
    np.testing.assert_allclose(second, np.exp(data) + 1, rtol=2e-6)


@pytest.mark.parametrize("make", [
    lambda: np.empty(0, np.float32), lambda: np.ones(1, np.int8), lambda: np.zeros((7, 5))[::2],
    lambda: np.arange(24.0).reshape(2, 3, 4).transpose(2, 0, 1)[1:], lambda: np.ones((3, 3)).T,
    lambda: np.frombuffer(bytearray(64), np.float32)[3:]])
def test_data_address_is_the_arrays_data_pointer(make):
    array = make()
    assert data_address(array) == array.ctypes.data
    assert ctypes.c_void_p(data_address(array)).value == array.ctypes.data
    # what fused kernels' entries read the pointer from (kernel.py _entry)
    word = buffer_word(array)
    if DATA_OFFSET is None:
        assert word == array.ctypes.data
    else:
        assert word == id(array)
        assert (ctypes.c_void_p.from_address(word + DATA_OFFSET).value or 0) == \
            array.ctypes.data


@pytest.mark.parametrize("backend", ["numpy", "llvm", "auto"])
def test_nan_guard_names_the_fused_op_even_where_its_input_could_be_donated(backend):
    """A guarded kernel never writes into its inputs: the guard reads them after the call
    to tell "read a NaN" from "produced one"."""
    x, w = K.placeholder((None, 64)), K.placeholder((64, 64))
    fn = K.function([x, w], [K.log(K.dot(x, w)) * 2.0 - 1.0], backend=backend, nan_guard=True)
    with np.errstate(invalid="ignore"), pytest.raises(Exception) as error:
        fn([np.ones((8, 64), np.float32), -np.ones((64, 64), np.float32)])
    assert "produced NaN" in str(error.value) and "log at" in str(error.value)


def test_the_report_lists_fused_nodes_inside_loop_bodies():
    x, h0 = K.placeholder((None, 5, 8)), K.placeholder((None, 8))

    def step(x_t, states):
        h = K.tanh(x_t * 0.5 + states[0] * 0.25) * 2.0 - 1.0
        return h, [h]
    last, _, _ = K.rnn(step, x, [h0])
    fn = K.function([x, h0], [last], backend="auto")
    fn([np.ones((2, 5, 8), np.float32), np.zeros((2, 8), np.float32)])
    text = fn.report(show=False)
    assert "in a loop body" in text and "calls so far: 1 input pattern(s) NumPy" in text

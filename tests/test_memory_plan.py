"""codegen/memory_plan.py: which dead values fused kernels may overwrite, and peak bytes."""
from __future__ import annotations

import numpy as np
from graphk import backend as K
from graphk.codegen.memory_plan import donations, peak_intermediate_bytes


def _frees(graph):
    from graphk.codegen.numpy_backend import _last_uses

    return _last_uses(graph)


def _donated_values(fn) -> set:
    graph = fn.ir
    plan = donations(graph, _frees(graph))
    return {node.inputs[i].node.op.name for node, chosen in plan.items() for i in chosen.values()}


def test_a_dying_matmul_result_is_reused_and_the_result_is_right():
    x = K.placeholder((4, 3), name="x")
    w = K.variable(np.arange(6, dtype=np.float32).reshape(3, 2) / 10)
    y = K.tanh(K.dot(x, w) + 1.0) * 2.0
    fn = K.function([x], [y])
    assert _donated_values(fn) == {"matmul"}
    data = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    before = w.storage.copy()
    np.testing.assert_allclose(fn([data])[0], np.tanh(data @ before + 1) * 2, rtol=1e-6)
    np.testing.assert_array_equal(w.storage, before)


def test_feeds_variables_and_constants_are_never_written():
    x = K.placeholder((64, 64), name="x")
    w = K.variable(np.ones((64, 64), np.float32))
    c = K.constant(np.full((64, 64), 2.0, np.float32))
    y = K.exp(x * w) - c  # every input of the fused node is a leaf
    fn = K.function([x], [y])
    assert _donated_values(fn) == set()
    data = np.zeros((64, 64), np.float32)
    for _ in range(2):
        np.testing.assert_allclose(fn([data])[0], np.full((64, 64), -1.0))
    assert (data == 0).all() and (w.storage == 1).all()


def test_a_value_the_caller_gets_back_is_not_overwritten():
    x = K.placeholder((8, 4), name="x")
    w = K.variable(np.eye(4, dtype=np.float32))
    m = K.dot(x, w)
    fn = K.function([x], [m, K.exp(m) + 1])  # m is returned and read by the fused node
    data = np.arange(32, dtype=np.float32).reshape(8, 4) / 32
    m_out, y_out = fn([data])
    np.testing.assert_allclose(m_out, data, rtol=1e-6)
    np.testing.assert_allclose(y_out, np.exp(data) + 1, rtol=1e-6)


def test_a_views_base_is_not_overwritten():
    x = K.placeholder((8, 4), name="x")
    w = K.variable(np.eye(4, dtype=np.float32))
    m = K.dot(x, w)
    flat = K.reshape(m, (32,))  # a view of m, read after the fused node
    y = K.exp(m) + 1
    out = K.sum(y) + K.sum(flat * 3.0)
    fn = K.function([x], [out])
    assert "matmul" not in _donated_values(fn)
    data = np.arange(32, dtype=np.float32).reshape(8, 4) / 32
    np.testing.assert_allclose(fn([data])[0], (np.exp(data) + 1).sum() + 3 * data.sum(),
                               rtol=1e-5)


def test_an_update_keeps_its_own_array_and_the_training_step_is_right():
    x = K.placeholder((16, 8), name="x")
    w = K.variable(np.full((8, 8), 0.5, np.float32))
    grad = K.dot(K.transpose(x), K.dot(x, w))
    fn = K.function([x], [], updates=[K.update_sub(w, 0.01 * grad)])
    data = np.ones((16, 8), np.float32) / 4
    expected = w.storage - 0.01 * (data.T @ (data @ w.storage))
    fn([data])
    np.testing.assert_allclose(w.storage, expected, rtol=1e-6)


def test_peak_intermediate_bytes_follow_liveness():
    x = K.placeholder((1000,), name="x")  # 4,000 bytes per float32 intermediate
    a = K.exp(x)
    b = K.cumsum(a)  # cumsum is not fused: a and b are separate intermediates
    c = K.cumsum(b)
    fn = K.function([x], [c], passes="none")
    peak, unknown = peak_intermediate_bytes(fn.ir)
    assert peak == 8000 and unknown == []  # at most two of a, b, c alive at once
    text = K.function([x], [c]).report(show=False)
    assert "peak intermediate bytes" in text

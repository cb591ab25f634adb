"""Loop coalescing in the LLVM loop-nest entry (extents.coalesce): a stage's adjacent
axes that every operand walks as one run as one loop, so a multi-stage region of
differently shaped updates (inner dims 10, 3) vectorizes over whole parameters; the
results must match NumPy whatever the layout (transposed, sliced, broadcast, size 1)."""
from __future__ import annotations

import numpy as np
import pytest

from graphk.codegen.fused_numpy import compile_fused as compile_numpy
from graphk.codegen.llvm.extents import coalesce
from graphk.ir.ops import elementwise as ew
from graphk.ir.ops.fused import evaluate_body
from graphk.ir.ops.reduce import reduce_max, reduce_mean, reduce_sum
from graphk.ir.shapes import SymDim
from llvm_regions import fused_body, llvm_kernel


def _kernels(node):
    return llvm_kernel(node), compile_numpy(node)


def _check(body, node, *arrays):
    llvm, numpy = _kernels(node)
    expected = evaluate_body(body, list(arrays))
    for kernel in (llvm, numpy):
        got = kernel(*arrays)
        got = got if isinstance(got, tuple) else (got,)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=2e-6, atol=1e-6)
    return llvm


# --- the rule itself ----------------------------------------------------------------

def test_contiguous_axes_merge_into_the_innermost_loop():
    extents, strides = [1024, 10], [[10, 1], [10, 1]]
    coalesce(extents, strides, 0, (1024, 10), ())
    assert extents == [1, 10240] and strides == [[0, 1], [0, 1]]
    extents, strides = [3, 3, 32, 64], [[6144, 2048, 64, 1]]
    coalesce(extents, strides, 0, (3, 3, 32, 64), ())
    assert extents == [1, 1, 1, 18432]


def test_axes_an_operand_does_not_walk_as_one_stay_apart():
    # a broadcast row (stride 0 along axis 0) and a sliced input keep their two loops
    for other in ([0, 1], [20, 1]):
        extents, strides = [4, 10], [[10, 1], other]
        coalesce(extents, strides, 0, (4, 10), ())
        assert extents == [4, 10], other
    # a transposed operand merges nowhere; the contiguous outer pair of (2, 3, 5) does
    extents, strides = [2, 3, 5], [[15, 5, 1], [15, 1, 3]]
    coalesce(extents, strides, 0, (2, 3, 5), ())
    assert extents == [2, 3, 5]
    extents, strides = [2, 3, 5], [[15, 5, 1], [3, 1, 6]]
    coalesce(extents, strides, 0, (2, 3, 5), ())
    assert extents == [1, 6, 5] and strides[1] == [0, 1, 6]


def test_shared_static_one_and_reduced_axes_keep_their_meaning():
    extents, strides = [4, 5, 6], [[30, 6, 1]]
    coalesce(extents, strides, 1, (4, 5, 6), ())  # axis 0 is shared with other stages
    assert extents == [4, 1, 30]
    extents, strides = [4, 1, 6], [[6, 6, 1]]
    coalesce(extents, strides, 0, (4, 1, 6), ())  # a static 1 never takes an extent
    assert extents == [1, 1, 24]
    # kept axis 0 and reduced axes 1, 2: the reduced pair merges, the kept one does not
    extents, strides = [4, 5, 6], [[30, 6, 1], [1, 0, 0]]
    coalesce(extents, strides, 0, (4, 5, 6), (1, 2))
    assert extents == [4, 1, 30]
    extents, strides = [4, 5, 6], [[30, 6, 1], [5, 1, 0]]
    coalesce(extents, strides, 0, (4, 5, 6), (2,))  # kept 0, 1 merge; reduced 2 alone
    assert extents == [1, 20, 6]


# --- regions ---------------------------------------------------------------------------

def _adam(p, m, g, q, n, h, lr):
    """Two Adam-like updates of differently shaped parameters in one region."""
    outs = []
    for param, moment, grad in ((p, m, g), (q, n, h)):
        m2 = ew.add(ew.mul(moment, 0.9), ew.mul(grad, 0.1))
        outs += [m2, ew.sub(param, ew.div(ew.mul(lr, m2), ew.add(ew.sqrt(ew.mul(m2, m2)),
                                                                     1e-7)))]
    return tuple(outs)


def _arrays(rng, *shapes):
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def test_differently_shaped_contiguous_updates_match_numpy_and_run_as_one_loop():
    types = [("float32", (64, 10))] * 3 + [("float32", (7, 5, 3))] * 3 + [("float32", ())]
    body, node = fused_body(_adam, *types)
    rng = np.random.default_rng(0)
    arrays = _arrays(rng, *[(64, 10)] * 3, *[(7, 5, 3)] * 3) + [np.float32(1e-3)]
    kernel = _check(body, node, *arrays)
    (prepared,) = kernel._prepared.values()
    assert prepared.variant.startswith("nest")
    assert 640 in list(prepared.extents) and 105 in list(prepared.extents)


def test_non_contiguous_broadcast_and_size_one_operands_stay_correct():
    rows = SymDim()
    types = [("float32", (rows, 10)), ("float32", (rows, 10)), ("float32", (1, 10)),
             ("float32", (7, 5, 3)), ("float32", (7, 5, 3)), ("float32", (5, 1)),
             ("float32", ())]
    body, node = fused_body(_adam, *types)
    rng = np.random.default_rng(1)
    for n in (1, 2, 33):
        p, m = _arrays(rng, (n, 10), (n, 20))
        g = _arrays(rng, (1, 10))[0]
        q = _arrays(rng, (3, 5, 7))[0].transpose(2, 1, 0)   # not contiguous
        n_ = _arrays(rng, (14, 5, 3))[0][::2]                # sliced along axis 0
        h = _arrays(rng, (5, 1))[0]                          # broadcast
        _check(body, node, p, m[:, ::2], g, q, n_, h, np.float32(0.5))


@pytest.mark.parametrize("axes", [(1, 2), (0,), (2,), (0, 1, 2)])
def test_reductions_over_merged_axes_keep_their_sums(axes):
    def build(x, y):  # a mean divides by the product of the (merged) reduced extents
        return (ew.mul(x, 2.0), reduce_sum(ew.mul(x, y), axes, keepdims=False),
                reduce_mean(x, axes, keepdims=True), reduce_max(y, axes, keepdims=False))
    body, node = fused_body(build, ("float32", (4, 5, 6)), ("float32", (4, 5, 6)))
    rng = np.random.default_rng(2)
    x, y = _arrays(rng, (4, 5, 6), (4, 5, 6))
    _check(body, node, x, y)
    _check(body, node, x, y[:, ::-1])  # negative strides: no merge across axis 1

"""Reductions over a LEADING axis in an LLVM region (a bias gradient: g = relu_grad(d, a),
s = sum(g, axis 0), b - 0.1 * s): the reduce stage loops the reduced axis outside and the
kept, contiguous axis inside, accumulating into the result row in memory (kernel.py
_reduce_stage), so its inner loop is a vector add or max over contiguous elements. Results
match NumPy for any row count and layout; max stays exact and propagates NaN."""
from __future__ import annotations

import numpy as np
import pytest

from graphk.ir.ops import elementwise as ew
from graphk.ir.ops.fused import evaluate_body
from graphk.ir.ops.reduce import reduce_max, reduce_sum
from graphk.ir.shapes import SymDim
from llvm_regions import fused_body, llvm_kernel

COLUMNS = 40
_REDUCE = {"sum": reduce_sum, "max": reduce_max}


def _region(dtype, op):
    rows = SymDim()

    def build(d, a, b):
        g = ew.relu_grad(d, a)
        s = _REDUCE[op](g, (0,), False)
        return g, ew.sub(b, ew.mul(s, 0.1))
    return fused_body(build, (dtype, (rows, COLUMNS)), (dtype, (rows, COLUMNS)),
                      (dtype, (COLUMNS,)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", ["sum", "max"])
@pytest.mark.parametrize("layout", ["contiguous", "sliced", "transposed"])
def test_leading_axis_reduction_matches_numpy(dtype, op, layout):
    body, node = _region(dtype, op)
    kernel = llvm_kernel(node)
    rng = np.random.default_rng(11)
    for rows in (1, 7, 130):
        def make(rows=rows):
            if layout == "sliced":  # every other column of a wider array
                return rng.standard_normal((rows, 2 * COLUMNS)).astype(dtype)[:, ::2]
            if layout == "transposed":
                return np.ascontiguousarray(
                    rng.standard_normal((COLUMNS, rows)).astype(dtype)).T
            return rng.standard_normal((rows, COLUMNS)).astype(dtype)
        d, a = make(), make()
        b = rng.standard_normal(COLUMNS).astype(dtype)
        got = kernel(d, a, b)
        expected = evaluate_body(body, [d, a, b])
        for g, e in zip(got, expected):
            if op == "max":
                np.testing.assert_array_equal(g, e)
            else:
                tolerance = 1e-5 if dtype == "float32" else 1e-12
                np.testing.assert_allclose(g, e, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_leading_axis_max_propagates_nan(dtype):
    body, node = _region(dtype, "max")
    kernel = llvm_kernel(node)
    d = np.ones((7, COLUMNS), dtype)
    a = np.ones((7, COLUMNS), dtype)
    d[3, 5] = np.nan
    d[6, COLUMNS - 1] = np.nan
    got = kernel(d, a, np.zeros(COLUMNS, dtype))
    expected = evaluate_body(body, [d, a, np.zeros(COLUMNS, dtype)])
    np.testing.assert_array_equal(got[1], expected[1])
    assert np.isnan(got[1][5]) and np.isnan(got[1][COLUMNS - 1])
    assert np.count_nonzero(np.isnan(got[1])) == 2


def test_the_leading_axis_sum_loop_is_vectorized():
    """The reduce stage's inner loop walks the kept axis: packed adds at the host width."""
    from graphk.codegen.llvm.compiler import Region
    from graphk.codegen.llvm.target import assembly, vector_bits

    body, _ = _region("float32", "sum")
    region = Region(body)
    assert [(s.kind, s.reduced_axes) for s in region.plan.stages][0] == ("reduce", (0,))
    register = {512: "zmm", 256: "ymm"}.get(vector_bits())
    if register is None:
        pytest.skip("no AVX on this host")
    code = assembly(region.emit(region.expected_variant))
    packed = [line for line in code.splitlines() if "vaddps" in line]
    assert packed and all(register in line for line in packed), packed[:5]

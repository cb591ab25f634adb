"""Row-wise LLVM regions (codegen/llvm/rows.py): pipelined rows (the first stage of the
next row inside the second stage's loop) and pick stages (reduce_pick: v[k] along an axis),
against the body evaluated by NumPy: rows 0, 1 and more, None dims, index dtypes, indices
out of range, NaN and signed zeros, a middle axis, strided and reversed operands, threads
splitting the rows."""
from __future__ import annotations

import numpy as np
import pytest

from graphk.codegen.llvm import compile_fused
from graphk.codegen.llvm.kernel import Emitter
from graphk.codegen.llvm.plan import make_plan
from graphk.codegen.llvm.target import new_module
from graphk.ir.ops import elementwise as ew
from graphk.ir.ops.fused import evaluate_body
from graphk.ir.ops.labels import reduce_pick
from graphk.ir.ops.reduce import reduce_max, reduce_mean, reduce_sum
from graphk.ir.shapes import SymDim
from llvm_regions import fused_body, llvm_kernel

CLASSES = 5


def _pick(v, k, axis=-1):
    """v[k] along `axis`, keeping it."""
    return reduce_pick(v, k, (axis % v.type.ndim,), keepdims=True)


def _shifted_pick(x, k):
    """The sparse crossentropy's shape: the pick reads x minus its row max."""
    return _pick(ew.sub(x, reduce_max(x, (1,), keepdims=True)), k)


def _kinds(body) -> list:
    return [stage.kind for stage in make_plan(body).stages]


def test_the_picked_logit_is_a_pick_stage_and_softmax_rows_are_pipelined():
    rows = SymDim()
    body, _ = fused_body(_shifted_pick, ("float32", (rows, CLASSES)), ("int32", (rows, 1)))
    assert _kinds(body) == ["reduce", "pick"]
    softmax, _ = fused_body(lambda x: ew.div(ew.exp(ew.sub(x, reduce_max(x, (1,), True))),
                                        reduce_sum(ew.exp(ew.sub(x, reduce_max(x, (1,), True))),
                                                   (1,), True)),
                       ("float32", (rows, 7)))
    plan = make_plan(softmax)
    assert [s.kind for s in plan.stages] == ["reduce", "reduce", "output"]
    assert Emitter(new_module("t"), plan, "t").pipelined(plan.depth)


@pytest.mark.parametrize("index_dtype", ["int32", "int64", "uint8", "int8"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "reversed"])
def test_picks_match_numpy(index_dtype, dtype, layout):
    rows = SymDim()
    body, node = fused_body(_shifted_pick, (dtype, (rows, CLASSES)), (index_dtype, (rows, 1)))
    kernel = llvm_kernel(node)
    rng = np.random.default_rng(3)
    for count in (0, 1, 9):
        wide = rng.standard_normal((2 * count, 2 * CLASSES)).astype(dtype)
        x = {"contiguous": wide[:count, :CLASSES].copy(), "strided": wide[::2, ::2],
             "reversed": wide[count:, :CLASSES][::-1, ::-1]}[layout]
        low = 0 if index_dtype == "uint8" else -2
        k = rng.integers(low, CLASSES + 3, (count, 1)).astype(index_dtype)  # some outside
        if count:
            x[0, :] = np.nan  # a NaN row: its max is NaN, so every shifted value is
            x[-1, k[-1, 0] % CLASSES] = x[-1].max()  # a picked zero: +0 + 0
        with np.errstate(invalid="ignore"):
            want = evaluate_body(body, [x, k])[0]
            got = kernel(x, k)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # +0, never -0


@pytest.mark.parametrize("layout", ["contiguous", "fortran"])
def test_a_pick_along_a_middle_axis(layout):
    rows = SymDim()
    body, node = fused_body(lambda v, k: reduce_pick(v, k, (1,), keepdims=False),
                       ("float64", (rows, CLASSES, 3)), ("int64", (rows, 1, 3)))
    assert _kinds(body) == ["pick"]
    kernel = llvm_kernel(node)
    rng = np.random.default_rng(4)
    v = rng.standard_normal((4, CLASSES, 3))
    v = np.asfortranarray(v) if layout == "fortran" else v
    k = rng.integers(-1, CLASSES + 1, (4, 1, 3))
    np.testing.assert_array_equal(kernel(v, k), evaluate_body(body, [v, k])[0])


def _variance(x):
    """Two row reductions, the first a sum: pipelined with the next row's mean."""
    centered = ew.sub(x, reduce_mean(x, (x.type.ndim - 1,), keepdims=True))
    return reduce_mean(ew.mul(centered, centered), (x.type.ndim - 1,))


@pytest.mark.parametrize("shape", [(0, 40), (1, 40), (2, 40), (17, 3), (2, 5, 40)])
@pytest.mark.parametrize("layout", ["contiguous", "reversed"])
def test_pipelined_rows_match_numpy(shape, layout):
    symbolic = (SymDim(),) + shape[1:]
    body, node = fused_body(_variance, ("float64", symbolic))
    plan = make_plan(body)
    assert Emitter(new_module("t"), plan, "t").pipelined(plan.depth)
    kernel = llvm_kernel(node)
    x = np.random.default_rng(5).standard_normal(shape)
    if layout == "reversed":
        x = x[::-1]
    np.testing.assert_allclose(kernel(x), evaluate_body(body, [x])[0], rtol=1e-12, atol=1e-12)


def test_pipelined_rows_split_over_threads_match_numpy():
    body, node = fused_body(_variance, ("float32", (SymDim(), 40)))
    kernel = compile_fused(node, small_on_numpy=False)
    x = np.random.default_rng(6).standard_normal((20011, 40)).astype(np.float32)
    np.testing.assert_allclose(kernel(x), evaluate_body(body, [x])[0], rtol=1e-5, atol=1e-6)


def test_one_index_broadcast_over_the_rows():
    rows = SymDim()
    body, node = fused_body(_pick, ("float32", (rows, CLASSES)), ("uint8", (1, 1)))
    kernel = llvm_kernel(node)
    x = np.random.default_rng(7).standard_normal((3, CLASSES)).astype(np.float32)
    for k in (0, 4, 5, 255):
        k = np.full((1, 1), k, np.uint8)
        np.testing.assert_array_equal(kernel(x, k), evaluate_body(body, [x, k])[0])


def test_the_crossentropy_row_loop_is_vectorized_at_the_host_width():
    """The exp pass (and the next row's max inside it) uses full-width vectors: zmm on
    AVX-512 hosts, ymm on AVX2 ones (the whole point of the fused row kernel)."""
    from graphk.codegen.llvm.compiler import Region
    from graphk.codegen.llvm.target import assembly, vector_bits

    rows = SymDim()
    body, _ = fused_body(lambda x, k: ew.sub(ew.log(reduce_sum(ew.exp(ew.sub(
        x, reduce_max(x, (1,), True))), (1,), True)), _shifted_pick(x, k)),
        ("float32", (rows, 1000)), ("int32", (rows, 1)))
    region = Region(body)
    assert [stage.kind for stage in region.plan.stages] == ["reduce", "reduce", "pick", "output"]
    register = {512: "zmm", 256: "ymm"}.get(vector_bits())
    if register is None:
        pytest.skip("no AVX on this host")
    code = assembly(region.emit(region.expected_variant))
    packed = [line for line in code.splitlines() if "madd" in line and "ps\t" in line]
    assert packed and all(register in line for line in packed), packed[:5]  # (the per-row
    # log of the sum is scalar code: its fmas are "ss")

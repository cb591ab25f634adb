"""The LLVM backend against NumPy: every elementwise op through its scalar rule, fused
reductions, random fused regions, memory layouts, dtypes and sizes.

Oracles: for single ops, the op's scalar rule run by NumpyScalarBuilder (the same rule,
so the comparison isolates the LLVM builder and the math library); for regions, the
fused op's reference kernel (each body op's NumPy kernel). Bounds: integers and bools
exact; floats within ULPS units in the last place (the math library is within 4 ulp,
composite rules add a few roundings); float16 within 1 ulp (it rounds a float32 result).
Kernels of one test module are compiled together (one LLVM module), as a function's are.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from graphk.codegen.llvm import FunctionLowering, compile_fused
from graphk.ir.dtypes import DTYPES, DTypeError
from graphk.ir.graph import Graph
from graphk.ir.ops import REGISTRY
from graphk.ir.ops import elementwise as ew
from graphk.ir.ops.fused import evaluate_body, fused
from graphk.ir.ops.leaf import placeholder
from graphk.ir.ops.reduce import reduce_max, reduce_mean, reduce_min, reduce_prod, reduce_sum
from graphk.ir.ops.registry import apply
from graphk.ir.scalar import NumpyScalarBuilder
from graphk.ir.shapes import SymDim
from graphk.ir.types import TensorType

ULPS = {"float16": 1, "float32": 16, "float64": 16}
SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 1e-40, -1e-310, 0.5, -0.5, 2.5,
           -2.5, 1.0, -1.0, 3.0, 100.0, -100.0, 1e-7]


def ulp_distance(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Units in the last place between two float arrays (0 where both are NaN)."""
    bits = {2: np.int16, 4: np.int32, 8: np.int64}[got.dtype.itemsize]
    def ordered(a):
        i = a.view(bits).astype(np.int64)
        return np.where(i < 0, np.iinfo(bits).min - i, i)  # monotonic in the float value
    distance = np.abs(ordered(got) - ordered(want))
    both_nan = np.isnan(got) & np.isnan(want)
    return np.where(both_nan, 0, distance)


def assert_close(got, want, dtype: str, what: str = "") -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert got.dtype == want.dtype, (what, got.dtype, want.dtype)
    if got.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    distance = ulp_distance(got, want)
    # tiny results (denormal range) are compared absolutely: a few ulp of the smallest normal
    tiny = np.abs(want) < np.finfo(got.dtype).tiny
    close = (distance <= ULPS[dtype]) | (tiny & (np.abs(got - want) <= 8 * np.finfo(
        got.dtype).smallest_subnormal * 2 ** 10))
    bad = ~close
    assert not bad.any(), (f"{what}: {int(bad.sum())} elements beyond {ULPS[dtype]} ulp, "
                           f"e.g. got {got[bad][:4]} want {want[bad][:4]} "
                           f"(ulp {distance[bad][:4]})")


def sample_array(rng, shape, dtype: str) -> np.ndarray:
    """Values that exercise edges: specials for floats, extremes for ints."""
    size = int(np.prod(shape))
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype in ("float16", "float32", "float64"):
        with np.errstate(over="ignore"):
            specials = np.array(SPECIAL, dtype=dtype)
        values = (rng.standard_normal(size) * 3).astype(dtype)
        picks = rng.integers(0, len(specials), size)
        use = rng.random(size) < 0.3
        values[use] = specials[picks[use]]
        return values.reshape(shape)
    info = np.iinfo(dtype)
    values = rng.integers(-50, 50, size).astype(np.int64)
    extremes = np.array([0, -1, 1, info.min, info.max, info.min + 1], dtype=np.int64)
    use = rng.random(size) < 0.3
    values[use] = extremes[rng.integers(0, len(extremes), size)][use]
    return np.clip(values, info.min, info.max).astype(dtype).reshape(shape)


# --- every elementwise op through its scalar rule -------------------------------------------

# The default suite; GRAPHK_LLVM_FULL=1 runs every dtype and every sample (about 5x longer):
#   GRAPHK_LLVM_FULL=1 .venv/bin/python -m pytest tests/test_llvm.py -q -p no:cacheprovider
FULL = os.environ.get("GRAPHK_LLVM_FULL") == "1"
_OP_DTYPES = (("float32", "float64", "float16", "int32", "int8", "int16", "uint8", "int64",
               "bool") if FULL else ("float32", "float64", "int32", "uint8", "bool"))


def _op_cases() -> list:
    """(op name, attrs, input dtypes) for every elementwise op with a scalar rule."""
    cases = []
    for op in REGISTRY.values():
        if not op.elementwise or op.scalar is None:
            continue
        samples = op.samples or ()
        for sample in samples[:2 if FULL else 1]:
            arity = len(sample.shapes)
            if sample.dtypes is not None and len(set(sample.dtypes)) > 1:
                options = [sample.dtypes]
            else:
                options = [(d,) * arity for d in _OP_DTYPES]
            for dtypes in options:
                cases.append((op.name, dict(sample.attrs), tuple(dtypes), sample.shapes))
    return cases


def _build_op_body(name, attrs, dtypes, shapes):
    inputs = [placeholder(TensorType(d, s)) for d, s in zip(dtypes, shapes)]
    try:
        result = apply(name, inputs, **attrs)
    except (TypeError, ValueError):  # the op does not take these dtypes
        return None
    return Graph(inputs, [result], name="fused")


@pytest.fixture(scope="module")
def op_kernels():
    """Every (op, dtypes) case compiled into one LLVM module."""
    lowering = FunctionLowering(small_on_numpy=False)
    built = {}
    for case in _op_cases():
        body = _build_op_body(*case)
        if body is None:
            continue
        node = fused(body.inputs, body)[0].node
        key = (case[0], tuple(sorted(case[1].items())), case[2])
        built[key] = (body, node, lowering(node), case[3])
    lowering.finish()
    return built, lowering


def test_every_elementwise_op_matches_its_numpy_scalar_rule(op_kernels):
    built, lowering = op_kernels
    rng = np.random.default_rng(0)
    oracle = NumpyScalarBuilder()
    checked, failures = set(), []
    for (name, _, dtypes), (body, node, kernel, shapes) in built.items():
        arrays = [sample_array(rng, s, d) for s, d in zip(shapes, dtypes)]
        rule_node = body.outputs[0].node
        try:
            want = REGISTRY[name].scalar(oracle, *arrays, **rule_node.attrs)
        except DTypeError:  # the rule itself does not cover these dtypes (not LLVM's doing)
            continue
        chosen, reason = lowering.decisions[node]
        if chosen != "llvm":
            failures.append(reason)
            continue
        want = np.broadcast_to(want, body.outputs[0].type.shape)
        assert_close(kernel(*arrays), want, body.outputs[0].type.dtype, f"{name}{dtypes}")
        checked.add(name)
    assert not failures, failures
    every = {op.name for op in REGISTRY.values() if op.elementwise and op.scalar is not None}
    assert checked == every, every - checked


# --- regions: reductions, layouts, sizes ----------------------------------------------------

def softmax(x):
    e = ew.exp(ew.sub(x, reduce_max(x, (x.type.ndim - 1,), keepdims=True)))
    return ew.div(e, reduce_sum(e, (x.type.ndim - 1,), keepdims=True))


def crossentropy_rows(x, onehot):
    peak = reduce_max(x, (1,), keepdims=True)
    lse = ew.add(ew.log(reduce_sum(ew.exp(ew.sub(x, peak)), (1,))), reduce_max(x, (1,)))
    return ew.sub(lse, reduce_sum(ew.mul(onehot, x), (1,)))


def w1(x):
    half, one = np.asarray(0.5, x.type.dtype), np.asarray(1.0, x.type.dtype)
    return ew.add(ew.mul(ew.tanh(ew.add(ew.mul(x, half), one)), ew.sigmoid(x)),
                  ew.mul(ew.exp(ew.neg(ew.mul(x, x))), np.asarray(0.1, x.type.dtype)))


REGIONS = {
    "w1": ([("?", 7)], w1),
    "softmax": ([("?", 5)], softmax),
    "crossentropy": ([("?", 6), ("?", 6)], crossentropy_rows),
    "broadcast": ([("?", 4), (4,)], lambda x, b: ew.maximum(ew.add(x, b), ew.mul(x, b))),
    "column sums": ([("?", 3)], lambda x: (reduce_sum(x, (0,)), reduce_mean(x, (0,), True))),
    "all reductions": ([("?", 4)], lambda x: (reduce_max(x, (0, 1)), reduce_min(x, (1,)),
                                              reduce_prod(ew.tanh(x), (1,)),
                                              reduce_mean(x, (0, 1), True))),
    "centered": ([("?", 4)], lambda x: ew.sub(x, reduce_mean(x, (0,), keepdims=True))),
    "3d middle axis": ([(2, "?", 3)], lambda x: ew.div(x, reduce_sum(ew.absolute(x), (1,), True))),
    # rows sharing their loop while sums across it (and what reads them) follow: tail stages
    "rows then batch mean": ([("?", 5), (5,)], lambda x, b: _rows_then_batch(x, b)),
    "bias gradient": ([("?", 4), ("?", 4), (4,)],
                      lambda d, a, b: (ew.relu_grad(d, a),
                                       ew.sub(b, reduce_sum(ew.relu_grad(d, a), (0,))))),
    "3d leading sums": ([("?", 3, 4)], lambda x: (ew.tanh(x), ew.mul(
        reduce_sum(ew.tanh(x), (0, 1)), reduce_max(x, (0, 1, 2))))),
}


def _rows_then_batch(x, b):
    """Softmax rows of x + b, their mean log-probability over the batch, and the bias
    moved by the batch's summed softmax (W3's crossentropy region, shaped alike)."""
    p = softmax(ew.add(x, b))
    return (reduce_mean(ew.log(reduce_max(p, (1,))), (0,)), p,
            ew.sub(b, reduce_sum(p, (0,))))


def _region(name: str, dtype: str):
    shapes, build = REGIONS[name]
    symbol = SymDim()
    inputs = [placeholder(TensorType(dtype, tuple(symbol if d == "?" else d for d in s)))
              for s in shapes]
    outputs = build(*inputs)
    outputs = list(outputs) if isinstance(outputs, tuple) else [outputs]
    body = Graph(inputs, outputs, name="fused")
    return body, fused(inputs, body)[0].node


@pytest.fixture(scope="module")
def region_kernels():
    lowering = FunctionLowering(small_on_numpy=False)
    kernels = {}
    for name in REGIONS:
        for dtype in ("float32", "float64"):
            body, node = _region(name, dtype)
            kernels[(name, dtype)] = (body, lowering(node))
    lowering.finish()
    return kernels


def _inputs(rng, body, rows: int, layout: str) -> list:
    arrays = []
    for value in body.inputs:
        shape = tuple(rows if not isinstance(d, int) else d for d in value.type.shape)
        dtype = value.type.dtype
        base = (rng.standard_normal(shape) * 2).astype(dtype)
        if layout == "reversed":  # negative strides
            base = np.ascontiguousarray(base[::-1])[::-1]
        elif layout == "strided":  # every other element of a larger array
            big = np.zeros(tuple(2 * d for d in shape), dtype)
            big[tuple(slice(None, None, 2) for _ in shape)] = base
            base = big[tuple(slice(None, None, 2) for _ in shape)]
        elif layout == "fortran":
            base = np.asfortranarray(base)
        arrays.append(base)
    return arrays


@pytest.mark.parametrize("layout", ["contiguous", "reversed", "strided", "fortran"])
@pytest.mark.parametrize("rows", [0, 1, 2, 17, 1000])
def test_regions_match_numpy(region_kernels, rows, layout):
    rng = np.random.default_rng(rows)
    for (name, dtype), (body, kernel) in region_kernels.items():
        arrays = _inputs(rng, body, rows, layout)
        with np.errstate(all="ignore"):
            want = evaluate_body(body, arrays)
        got = kernel(*arrays)
        got = got if isinstance(got, tuple) else (got,)
        for g, w, value in zip(got, want, body.outputs):
            w = np.asarray(w, dtype=value.type.dtype)
            # reductions reassociate (vector lanes): compare them with a relative bound
            np.testing.assert_allclose(g, w, rtol=2e-5 if dtype == "float32" else 1e-12,
                                       atol=1e-5 if dtype == "float32" else 1e-12,
                                       err_msg=f"{name} {dtype} rows={rows} {layout}")


def test_large_region_uses_threads_and_matches():
    body, node = _region("softmax", "float32")
    kernel = compile_fused(node)
    x = np.random.default_rng(1).standard_normal((20011, 5)).astype(np.float32)
    np.testing.assert_allclose(kernel(x), evaluate_body(body, [x])[0], rtol=2e-6, atol=1e-7)


def test_flat_chain_at_chunk_and_thread_boundaries():
    body, node = _region("w1", "float32")
    kernel = compile_fused(node, small_on_numpy=False)
    rng = np.random.default_rng(2)
    for rows in (1, 15, 16, 17, 63, 64, 65, 4097, 300_001):
        x = rng.standard_normal((rows, 7)).astype(np.float32)
        # a sum of terms: its relative error is bounded by its terms', not in ulp of the sum
        np.testing.assert_allclose(kernel(x), evaluate_body(body, [x])[0], rtol=1e-5,
                                   atol=1e-6, err_msg=f"rows={rows}")


def test_float16_and_int_regions():
    rng = np.random.default_rng(3)
    for dtype in ("float16", "int32", "int8", "uint8"):
        x = placeholder(TensorType(dtype, (SymDim(), 5)))
        if dtype == "float16":
            out = [ew.add(ew.mul(x, x), x), reduce_sum(x, (1,))]
        else:
            out = [ew.sub(ew.mul(x, x), x), reduce_sum(x, (1,)), reduce_max(x, (0,))]
        body = Graph([x], out, name="fused")
        kernel = compile_fused(fused([x], body)[0].node, small_on_numpy=False)
        arrays = [sample_array(rng, (9, 5), dtype)]
        with np.errstate(all="ignore"):
            want = evaluate_body(body, arrays)
        for got, w in zip(kernel(*arrays), want):
            if dtype == "float16":  # sums accumulate in float32 and round once
                np.testing.assert_allclose(got.astype(np.float64), w, rtol=2e-3, atol=1e-2)
            else:
                np.testing.assert_array_equal(got, w)


def test_random_regions_match_numpy():
    """Random chains over unary, binary and reduction ops, with broadcasting."""
    rng = np.random.default_rng(4)
    unary = [ew.tanh, ew.exp, ew.sigmoid, ew.absolute, ew.neg, ew.square, ew.softplus]
    binary = [ew.add, ew.sub, ew.mul, ew.maximum, ew.minimum]
    lowering = FunctionLowering(small_on_numpy=False)
    cases = []
    for _ in range(12):
        x = placeholder(TensorType("float64", (SymDim(), 6)))
        b = placeholder(TensorType("float64", (6,)))
        values = [x, b]
        for _ in range(rng.integers(2, 7)):
            kind = rng.random()
            if kind < 0.4:
                values.append(unary[rng.integers(len(unary))](values[rng.integers(len(values))]))
            elif kind < 0.85:
                a, c = rng.integers(len(values), size=2)
                values.append(binary[rng.integers(len(binary))](values[a], values[c]))
            else:
                v = values[rng.integers(len(values))]
                if v.type.ndim == 2:
                    values.append(reduce_sum(ew.tanh(v), (1,), keepdims=True))
        out = values[-1] if values[-1].type.ndim else ew.add(values[-1], b)
        body = Graph([x, b], [out], name="fused")
        cases.append((body, lowering(fused([x, b], body)[0].node)))
    lowering.finish()
    for body, kernel in cases:
        arrays = [rng.standard_normal((7, 6)), rng.standard_normal(6)]
        np.testing.assert_allclose(kernel(*arrays), evaluate_body(body, arrays)[0],
                                   rtol=1e-12, atol=1e-12, err_msg=body.to_text())


def test_every_dtype_is_known_to_the_builder():
    from graphk.codegen.llvm.scalar_llvm import register_type

    for dtype in DTYPES:
        register_type(dtype)

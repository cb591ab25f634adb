"""Shared checks for op tests: both evaluation paths, static shapes, numerical gradients."""
from __future__ import annotations

import os

import numpy as np

from graphk import backend as K
from graphk.ir.graph import Graph
from graphk.ir.ops.leaf import constant
from graphk.ir.verify import verify
from graphk.passes.autodiff import gradients


# The lowering K.function uses here: the default unless GRAPHK_TEST_BACKEND names one, e.g.
#   GRAPHK_TEST_BACKEND=llvm .venv/bin/python -m pytest tests -q -p no:cacheprovider
BACKEND = {"backend": os.environ["GRAPHK_TEST_BACKEND"]} if os.environ.get(
    "GRAPHK_TEST_BACKEND") else {}


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def placeholders_for(arrays, symbolic: bool):
    """A placeholder per array; with `symbolic`, its leading dim is None."""
    result = []
    for a in arrays:
        a = np.asarray(a)
        shape = ((None,) + a.shape[1:]) if symbolic and a.ndim else a.shape
        result.append(K.placeholder(shape=shape, dtype=str(a.dtype)))
    return result


def check_static(outputs, results) -> None:
    """Inferred dtype and known dims agree with what the kernels produced."""
    for value, array in zip(outputs, results):
        array = np.asarray(array)
        assert value.type.ndim == array.ndim, (value.type, array.shape)
        assert value.type.dtype == str(array.dtype), (value.type, array.dtype)
        for dim, size in zip(value.type.shape, array.shape):
            if isinstance(dim, int):
                assert dim == size, (value.type, array.shape)


def run_function(build, arrays, symbolic=True, passes=None):
    """build(*placeholders) through K.function (with `passes`); returns (outputs, results)."""
    arrays = [np.asarray(a) for a in arrays]
    inputs = placeholders_for(arrays, symbolic)
    outputs = _as_list(build(*inputs))
    verify(Graph(inputs, outputs))
    results = K.function(inputs, outputs, passes=passes, **BACKEND)(arrays)
    check_static(outputs, results)
    return outputs, results


def run_eval(build, arrays):
    """build(*constants) through K.eval."""
    outputs = _as_list(build(*[constant(np.asarray(a)) for a in arrays]))
    results = [K.eval(v) for v in outputs]
    check_static(outputs, results)
    return results


def check_op(build, arrays, expected, rtol=1e-6, atol=1e-6, symbolic=True):
    """build on both paths (K.function with static and None dims, and K.eval) equals `expected`,
    with the whole pass pipeline and with none (passes="none": the graph as written)."""
    expected = [np.asarray(e) for e in _as_list(expected)]
    variants = [run_function(build, arrays, False)[1], run_eval(build, arrays),
                run_function(build, arrays, False, passes="none")[1]]
    if symbolic:
        variants.append(run_function(build, arrays, True)[1])
    for results in variants:
        assert len(results) == len(expected)
        for got, want in zip(results, expected):
            assert got.shape == want.shape, (got.shape, want.shape)
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def numeric_vjp(build_numpy, arrays, index, weights, eps=1e-6):
    """Central differences of sum(weights * f(arrays)) with respect to arrays[index]."""
    base = [np.array(a, dtype=np.float64) if i == index else np.asarray(a)
            for i, a in enumerate(arrays)]
    grad = np.zeros_like(base[index])
    flat = grad.reshape(-1)
    target = base[index].reshape(-1)
    for i in range(target.size):
        saved = target[i]
        target[i] = saved + eps
        plus = sum(np.sum(w * o) for w, o in zip(weights, _as_list(build_numpy(base))))
        target[i] = saved - eps
        minus = sum(np.sum(w * o) for w, o in zip(weights, _as_list(build_numpy(base))))
        target[i] = saved
        flat[i] = (plus - minus) / (2 * eps)
    return grad


def check_gradients(build, arrays, wrt=None, symbolic=True, rtol=1e-5, atol=1e-6, seed=0):
    """Symbolic vector-Jacobian products of `build` agree with central differences (float64).

    The cotangent is a fixed random array per output, so every element of the
    Jacobian is exercised. `wrt` lists input indices (default: every float input).
    """
    arrays = [np.asarray(a) for a in arrays]
    if wrt is None:
        wrt = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    rng = np.random.default_rng(seed)
    inputs = placeholders_for(arrays, symbolic)
    outputs = _as_list(build(*inputs))
    forward = K.function(inputs, outputs, **BACKEND)
    shapes = [np.shape(r) for r in forward(arrays)]
    weights = [rng.uniform(-1, 1, s) for s in shapes]
    total = None
    grads_per_output = [gradients(out, [inputs[i] for i in wrt],
                                  seed=constant(w.astype(out.type.dtype)))
                        for out, w in zip(outputs, weights)]
    symbolic_grads = []
    for k in range(len(wrt)):
        parts = [g[k] for g in grads_per_output if g[k] is not None]
        total = parts[0] if parts else None
        for part in parts[1:]:
            total = total + part
        symbolic_grads.append(total)
    present = [g for g in symbolic_grads if g is not None]
    values = K.function(inputs, present, **BACKEND)(arrays) if present else []
    if present:  # the optimized gradient graph computes what the graph as written does
        for got, plain in zip(values, K.function(inputs, present, passes="none",
                                                 **BACKEND)(arrays)):
            np.testing.assert_allclose(got, plain, rtol=rtol, atol=atol,
                                       err_msg="gradient with the passes and without")
    values = iter(values)

    def as_numpy(current):
        return forward(current)

    for k, index in enumerate(wrt):
        numeric = numeric_vjp(as_numpy, arrays, index, weights)
        got = next(values) if symbolic_grads[k] is not None else np.zeros_like(numeric)
        assert got.shape == arrays[index].shape
        np.testing.assert_allclose(got, numeric, rtol=rtol, atol=atol,
                                   err_msg=f"gradient with respect to input {index}")

"""Native batch normalization kernels (codegen/llvm/batch_norm_native.py): batch_norm_train
and batch_norm_train_grad match the NumPy kernels within rounding of the per-channel sums
for float32 and float64, every scale/center case, several kept axes, non-contiguous
inputs, one row, data far from zero, NaN and infinities; they are deterministic; what
they do not cover stays on NumPy with the reason; K.function's "llvm" lowering runs them
in a Keras-style training step and says so in fn.report()."""
from __future__ import annotations

import numpy as np
import pytest

from graphk import backend as K
from graphk.codegen.llvm import batch_norm_native
from graphk.codegen.llvm.batch_norm_native import batch_norm_kernel
from graphk.ir.ops.leaf import placeholder
from graphk.ir.ops.normalization import batch_norm_train, batch_norm_train_grad
from graphk.ir.types import TensorType
from llvm_regions import assert_loads_at_first_call

DTYPES = ("float32", "float64")
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
CASES = [  # x shape, reduced axes
    ((32, 8, 8, 32), (0, 1, 2)),
    ((5, 3), (0,)),
    ((1, 4), (0,)),  # one row: variance 0
    ((7, 2, 3, 5), (0, 1, 2)),
    ((7, 2, 3, 5), (0, 1)),  # two kept axes: mean and var are (3, 5)
    ((3, 37), (0,)),  # more channels than a block, the last block partial
]
FLAGS = [(True, True), (False, False), (True, False), (False, True)]


def _value(shape, dtype):
    return placeholder(TensorType(dtype, tuple(shape)))


def _kept(shape, axes):
    return tuple(shape[len(axes):])


def _forward(shape, axes, dtype, scale=True, center=True, seed=0, offset=0.0):
    """(native kernel, NumPy kernel, input arrays) of a batch_norm_train node."""
    rng = np.random.default_rng(seed)
    kept = _kept(shape, axes)
    arrays = [(offset + rng.standard_normal(shape)).astype(dtype)]
    if scale:
        arrays.append(rng.uniform(0.5, 2, kept).astype(dtype))
    if center:
        arrays.append(rng.standard_normal(kept).astype(dtype))
    values = [_value(a.shape, dtype) for a in arrays]
    gamma = values[1] if scale else None
    beta = values[-1] if center else None
    node = batch_norm_train(values[0], gamma, beta, axes)[0].node
    native, reason = batch_norm_kernel(node)
    assert native is not None, reason
    return native, node.op.bound_kernel(node.attrs), arrays


def _backward(shape, axes, dtype, scale=True, seed=1):
    """(native kernel, NumPy kernel, input arrays) of a batch_norm_train_grad node, at the
    batch moments of x."""
    rng = np.random.default_rng(seed)
    kept = _kept(shape, axes)
    gy, x = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    reduced = tuple(range(len(axes)))
    mean, var = x.mean(axis=reduced), x.var(axis=reduced)
    arrays = [gy, x] + ([rng.uniform(0.5, 2, kept).astype(dtype)] if scale else [])
    arrays += [mean.astype(dtype), var.astype(dtype)]
    values = [_value(a.shape, dtype) for a in arrays]
    gamma = values[2] if scale else None
    node = batch_norm_train_grad(values[0], values[1], gamma, values[-2], values[-1], axes,
                                 1e-3)[0].node
    native, reason = batch_norm_kernel(node)
    assert native is not None, reason
    return native, node.op.bound_kernel(node.attrs), arrays


def assert_close(got, expected, dtype):
    """Equal shapes and dtypes; values within the dtype's tolerance of the output's scale."""
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype, (g.shape, g.dtype, e.shape, e.dtype)
        finite = np.isfinite(e)
        scale = max(1.0, float(np.max(np.abs(e[finite]), initial=0.0)))
        tol = TOLERANCE[dtype]
        np.testing.assert_allclose(g, e, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("flags", FLAGS)
@pytest.mark.parametrize("case", CASES)
def test_forward_matches_numpy(case, flags, dtype):
    native, numpy_kernel, arrays = _forward(*case, dtype, *flags)
    assert_close(native(*arrays), numpy_kernel(*arrays), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("case", CASES)
def test_gradient_matches_numpy(case, scale, dtype):
    native, numpy_kernel, arrays = _backward(*case, dtype, scale)
    assert_close(native(*arrays), numpy_kernel(*arrays), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_inputs(dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 8, 5)).astype(dtype).transpose(1, 0, 2)  # (8, 6, 5)
    gamma = rng.uniform(0.5, 2, (6, 10)).astype(dtype)[:, ::2]
    beta = rng.standard_normal((6, 5)).astype(dtype)[::-1]
    native, numpy_kernel, _ = _forward((8, 6, 5), (0,), dtype)
    assert_close(native(x, gamma, beta), numpy_kernel(x, gamma, beta), dtype)
    native, numpy_kernel, arrays = _backward((8, 6, 5), (0,), dtype)
    gy = arrays[0][:, :, ::-1]
    assert_close(native(gy, x, *arrays[2:]), numpy_kernel(gy, x, *arrays[2:]), dtype)


def test_one_row_normalizes_to_beta():
    native, _, (x, gamma, beta) = _forward((1, 4), (0,), "float32")
    y, mean, var = native(x, gamma, beta)
    np.testing.assert_array_equal(mean, x[0])
    np.testing.assert_array_equal(var, np.zeros(4, np.float32))
    np.testing.assert_array_equal(y, beta[None])


def test_data_far_from_zero_keeps_its_variance():
    """Mean 1e4, standard deviation 1, float32: a one-pass variance (sum(x^2)/n - mean^2)
    would lose every digit; the native kernel's errors are at most NumPy's."""
    native, numpy_kernel, arrays = _forward((32, 8, 8, 32), (0, 1, 2), "float32", offset=1e4)
    x64 = arrays[0].astype(np.float64)
    mean, var = x64.mean(axis=(0, 1, 2)), x64.var(axis=(0, 1, 2))
    exact = (x64 - mean) / np.sqrt(var + 1e-3) * arrays[1] + arrays[2]
    got, expected = native(*arrays), numpy_kernel(*arrays)
    for reference, g, e in zip((exact, mean, var), got, expected):
        assert np.max(np.abs(g - reference)) <= np.max(np.abs(e - reference)) + 1e-3
    np.testing.assert_allclose(got[2], var, rtol=1e-3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_infinity_propagate_as_numpys(dtype):
    native, numpy_kernel, arrays = _forward((9, 4), (0,), dtype)
    arrays[0][2, 1], arrays[0][5, 2], arrays[0][6, 3] = np.nan, np.inf, -np.inf
    with np.errstate(invalid="ignore"):
        got, expected = native(*arrays), numpy_kernel(*arrays)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(e))
        np.testing.assert_array_equal(np.isposinf(g), np.isposinf(e))
        np.testing.assert_array_equal(np.isneginf(g), np.isneginf(e))
    assert_close(got, expected, dtype)  # assert_allclose compares NaN and inf positions
    native, numpy_kernel, arrays = _backward((9, 4), (0,), dtype)
    arrays[0][3, 0], arrays[1][4, 2] = np.nan, np.inf
    with np.errstate(invalid="ignore"):
        got, expected = native(*arrays), numpy_kernel(*arrays)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(e))
    assert_close(got, expected, dtype)


def test_every_call_gives_the_same_bits():
    native, _, arrays = _forward((32, 4, 4, 64), (0, 1, 2), "float32")
    first, second = native(*arrays), native(*arrays)
    for a, b in zip(first, second):
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32))
    native, _, arrays = _backward((32, 4, 4, 64), (0, 1, 2), "float32")
    for a, b in zip(native(*arrays), native(*arrays)):
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32))


def test_inconsistent_shapes_raise_naming_the_op():
    native, _, (x, gamma, beta) = _forward((5, 3), (0,), "float32")
    with pytest.raises(ValueError, match=r"batch_norm_train: gamma should have shape \(3,\) "
                                         r".* given \(2,\)"):
        native(x, gamma[:2], beta)
    native, _, arrays = _backward((5, 3), (0,), "float32")
    with pytest.raises(ValueError, match=r"batch_norm_train_grad: gy should have shape "
                                         r"\(5, 3\) .* given \(4, 3\)"):
        native(arrays[0][:4], *arrays[1:])
    with pytest.raises(ValueError, match=r"batch_norm_train_grad: var should have shape"):
        native(*arrays[:-1], arrays[-1][:1])


def test_empty_input_runs_numpys_kernel():
    native, numpy_kernel, _ = _forward((0, 3), (0,), "float32")
    x, gamma, beta = np.zeros((0, 3), np.float32), np.ones(3, np.float32), np.zeros(3, np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        got, expected = native(x, gamma, beta), numpy_kernel(x, gamma, beta)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


def test_other_dtypes_and_layouts_stay_on_numpy():
    half = batch_norm_train(_value((4, 3), "float16"), None, None, (0,))[0].node
    first = batch_norm_train(_value((2, 3, 4, 4), "float32"), None, None, (0, 2, 3))[0].node
    reasons = [batch_norm_kernel(node) for node in (half, first)]
    assert all(kernel is None for kernel, _ in reasons)
    assert "float32 and float64 only" in reasons[0][1]
    assert "do not lead" in reasons[1][1]


# --- K.function -------------------------------------------------------------------------------

def _conv_bn_model(axes=(0, 1, 2)):
    """Conv2D - BatchNormalization (training) - ReLU - Dense, as Keras' layers call the
    backend; the loss and its gradients."""
    rng = np.random.default_rng(3)
    x = K.placeholder((None, 6, 6, 2))
    kernel = K.variable(rng.standard_normal((3, 3, 2, 8)) * 0.3)
    kept = tuple(d for i, d in enumerate((5, 6, 6, 8)) if i not in axes)
    gamma = K.variable(rng.uniform(0.5, 2, kept))
    beta = K.variable(rng.standard_normal(kept) * 0.1)
    dense = K.variable(rng.standard_normal((6 * 6 * 8, 3)) * 0.1)
    h = K.conv2d(x, kernel, padding="same")
    h, _, _ = K.normalize_batch_in_training(h, gamma, beta, list(axes))
    logits = K.dot(K.reshape(K.relu(h), (-1, 6 * 6 * 8)), dense)
    loss = K.mean(K.square(logits))
    return x, [loss, h] + K.gradients(loss, [kernel, gamma, beta, dense])


@pytest.mark.parametrize("backend", ["llvm", "auto"])
def test_training_step_matches_numpys(backend):
    x, outputs = _conv_bn_model()
    feed = [np.random.default_rng(4).standard_normal((5, 6, 6, 2)).astype("float32")]
    expected = K.function([x], outputs, backend="numpy")(feed)
    fn = K.function([x], outputs, backend=backend)
    for got, want in zip(fn(feed), expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * max(1, np.abs(want).max()))
    report = fn.report(show=False)
    for op in ("batch_norm_train", "batch_norm_train_grad"):
        assert f"native batch normalization kernel graphk_{op}_float32" in report
    assert "LLVM batch normalization kernels (one library per process):" in report


def test_report_names_why_batch_norm_stays_on_numpy():
    x, outputs = _conv_bn_model(axes=(0, 2))  # kept (6, 8): not the trailing axes
    feed = [np.random.default_rng(5).standard_normal((5, 6, 6, 2)).astype("float32")]
    fn = K.function([x], outputs, backend="llvm")
    for got, want in zip(fn(feed), K.function([x], outputs, backend="numpy")(feed)):
        np.testing.assert_array_equal(got, want)
    report = fn.report(show=False)
    assert "batch_norm_train at" in report and "do not lead" in report


def test_library_loads_at_the_first_call_not_when_a_function_is_built():
    """In a fresh process: building a function compiles nothing; its first call loads
    the library (from the disk cache this process's load filled)."""
    batch_norm_native._LIBRARY.functions()
    assert_loads_at_first_call(
        "batch_norm_native",
        "x = K.placeholder((None, 3))\n"
        "fn = K.function([x], [K.normalize_batch_in_training(x, None, None, [0])[0]], "
        "backend='llvm')",
        "fn([np.ones((4, 3), 'float32')])")

"""Native window kernels (codegen/llvm/windows.py): im2col, col2im, max pooling and its
gradient give the NumPy kernels' exact bits (NaN, infinities, signed zeros and ties
included) for float32 and float64, 1-d to 3-d windows, every padding, strides, dilation,
odd and empty sizes and non-contiguous inputs; K.function's "llvm" lowering runs them and
says so in fn.report(), and what they do not cover stays on NumPy with the reason."""
from __future__ import annotations

import numpy as np
import pytest

from graphk import backend as K
from graphk.codegen.llvm import windows
from graphk.codegen.llvm.windows import window_kernel
from graphk.ir.ops import conv, pool
from graphk.ir.ops.leaf import placeholder
from graphk.ir.types import TensorType
from llvm_regions import assert_loads_at_first_call

DTYPES = ("float32", "float64")
SPECIALS = (np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0)


def _value(shape, dtype):
    return placeholder(TensorType(dtype, tuple(shape)))


def _kernels(out):
    """(native kernel, NumPy kernel) of the node computing `out`."""
    node = out.node
    native, reason = window_kernel(node)
    assert native is not None, reason
    return native, node.op.bound_kernel(node.attrs)


def _data(shape, dtype, seed, specials=0.2):
    """Normal values with a share of NaN, infinities, signed zeros and repeats (ties)."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape)
    picks = rng.random(shape) < specials
    values[picks] = rng.choice(SPECIALS, size=int(picks.sum()))
    return values.astype(dtype)


def assert_same_bits(got, expected):
    np.testing.assert_array_equal(got, expected)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    unsigned = np.uint32 if got.dtype == np.float32 else np.uint64
    assert np.array_equal(got.view(unsigned), np.ascontiguousarray(expected).view(unsigned))


# --- max pooling --------------------------------------------------------------------------

POOLS = [  # x shape, pool_size, strides, padding
    ((3, 8, 8, 4), (2, 2), (2, 2), "valid"),  # NumPy's tiled gradient
    ((3, 7, 9, 5), (2, 2), (2, 2), "valid"),  # ... with a remainder no window covers
    ((2, 7, 9, 3), (2, 3), (3, 3), "same"),  # padded, strides above the pool size
    ((2, 5, 5, 2), (2, 2), (3, 2), "valid"),
    ((2, 9, 3), (2,), (2,), "same"),
    ((2, 10, 4), (3,), (3,), "valid"),
    ((2, 4, 5, 3, 2), (2, 2, 2), (2, 2, 2), "same"),
    ((1, 4, 4, 1), (2, 2), (2, 2), "valid"),
    ((0, 4, 4, 3), (2, 2), (2, 2), "valid"),
]
OVERLAPPING = [((2, 7, 9, 3), (3, 3), (2, 2), "same"), ((2, 6, 6, 17), (3, 3), (1, 1), "valid")]


def _pool_case(case, dtype, seed=0, specials=0.2):
    shape, pool_size, strides, padding = case
    attrs = {"pool_size": pool_size, "strides": strides, "padding": padding}
    x = _data(shape, dtype, seed, specials)
    return x, attrs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOLS + OVERLAPPING)
def test_max_pool_matches_numpy(case, dtype):
    x, attrs = _pool_case(case, dtype)
    native, numpy_kernel = _kernels(pool.max_pool(_value(x.shape, dtype), **attrs))
    assert_same_bits(native(x), numpy_kernel(x))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOLS)
@pytest.mark.parametrize("g_kind", ["normal", "special"])
def test_max_pool_grad_matches_numpy(case, dtype, g_kind):
    x, attrs = _pool_case(case, dtype)
    y = pool._max_pool(x, data_format="channels_last", **attrs)
    # negative g: NumPy's tiled kernel leaves -0 beside the maxima; inf or NaN g: its
    # general kernel runs instead
    g = _data(y.shape, dtype, 1, specials=0.3 if g_kind == "special" else 0.0)
    out = pool.max_pool_grad(*(_value(a.shape, dtype) for a in (g, x, y)), **attrs)
    native, numpy_kernel = _kernels(out)
    assert_same_bits(native(g, x, y), numpy_kernel(g, x, y))


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_grad_ties_and_lost_padding(dtype):
    """All-zero windows (after a ReLU) give g to their first tap; an all -inf window whose
    first tap is padding loses its gradient there, as NumPy's padded buffer does."""
    attrs = {"pool_size": (3, 3), "strides": (3, 3), "padding": "same"}
    x = np.zeros((2, 4, 4, 3), dtype)
    x[1] = -np.inf
    y = pool._max_pool(x, data_format="channels_last", **attrs)
    g = _data(y.shape, dtype, 2, specials=0.0)
    native, numpy_kernel = _kernels(pool.max_pool_grad(
        *(_value(a.shape, dtype) for a in (g, x, y)), **attrs))
    result = native(g, x, y)
    assert_same_bits(result, numpy_kernel(g, x, y))
    # image 1's first window starts in the padding on both axes: its gradient is lost;
    # the last window's first tap is real and takes it
    assert not result[1, :2, :2].any()
    np.testing.assert_array_equal(result[1, 2, 2], g[1, 1, 1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_input_smaller_than_a_valid_window_has_no_windows(dtype):
    """A size only the run time knows may be below a 'valid' window: no windows, as in
    NumPy's kernels (the node here is typed for a larger input)."""
    x = _data((2, 1, 3, 3), dtype, 11)
    y = np.zeros((2, 0, 1, 3), dtype)
    attrs = {"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}
    native, numpy_kernel = _kernels(pool.max_pool(_value((2, 4, 4, 3), dtype), **attrs))
    assert_same_bits(native(x), numpy_kernel(x))
    native, numpy_kernel = _kernels(pool.max_pool_grad(
        *(_value(shape, dtype) for shape in ((2, 2, 2, 3), (2, 4, 4, 3), (2, 2, 2, 3))),
        **attrs))
    assert_same_bits(native(y, x, y), numpy_kernel(y, x, y))


# --- patches --------------------------------------------------------------------------------

WINDOWS = [  # x shape, kernel_size, strides, dilation, padding
    ((2, 5, 6, 3), (2, 3), (2, 1), (1, 1), "valid"),
    ((2, 5, 4, 4), (3, 2), (1, 1), (1, 2), "same"),
    ((2, 7, 1), (3,), (2,), (1,), "causal"),
    ((1, 4, 3, 4, 2), (2, 2, 3), (2, 1, 1), (1, 1, 1), "same"),
    ((3, 8, 8, 1), (3, 3), (1, 1), (1, 1), "same"),  # one channel
    ((2, 4, 4, 32), (3, 3), (1, 1), (1, 1), "same"),
    ((1, 5, 7, 17), (3, 3), (2, 3), (2, 1), "same"),
    ((0, 4, 4, 3), (3, 3), (1, 1), (1, 1), "same"),
    ((2, 3, 3, 2), (1, 1), (1, 1), (1, 1), "valid"),
]


def _window_attrs(case):
    _, kernel_size, strides, dilation, padding = case
    return {"kernel_size": kernel_size, "strides": strides, "dilation": dilation,
            "padding": padding}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", WINDOWS)
def test_extract_patches_matches_numpy(case, dtype):
    x = _data(case[0], dtype, 3)
    native, numpy_kernel = _kernels(conv.extract_patches(_value(x.shape, dtype),
                                                         **_window_attrs(case)))
    assert_same_bits(native(x), numpy_kernel(x))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", WINDOWS)
def test_scatter_patches_matches_numpy(case, dtype):
    attrs = _window_attrs(case)
    x = _value(case[0], dtype)
    like = tuple(("dim", 0, axis) for axis in range(1, len(case[0]) - 1))
    patches_shape = tuple(conv.extract_patches(x, **attrs).type.shape)
    patches = _data(patches_shape, dtype, 4, specials=0.05)
    native, numpy_kernel = _kernels(conv.scatter_patches(_value(patches_shape, dtype), like,
                                                         [x], **attrs))
    like_array = np.zeros(case[0], dtype)
    with np.errstate(invalid="ignore"):  # inf + -inf: NaN in both
        assert_same_bits(native(patches, like_array), numpy_kernel(patches, like_array))


def test_scatter_patches_with_a_size_fed_at_run_time():
    attrs = {"kernel_size": (2,), "strides": (3,), "dilation": (1,), "padding": "valid"}
    size = placeholder(TensorType("int64", ()))
    patches = _data((2, 3, 2, 4), "float32", 5)
    native, numpy_kernel = _kernels(conv.scatter_patches(
        _value(patches.shape, "float32"), (("input", 0),), [size], **attrs))
    assert_same_bits(native(patches, np.asarray(8)), numpy_kernel(patches, np.asarray(8)))


# --- layouts, errors, fallbacks --------------------------------------------------------------

def test_non_contiguous_inputs():
    base = _data((4, 9, 8, 6), "float64", 6)
    views = [base[:, :8], base.transpose(0, 2, 1, 3), base[::2, :, ::2], base[..., ::2]]
    for x in views:
        for out in (pool.max_pool(_value(x.shape, "float64"), (2, 2), (2, 2)),
                    conv.extract_patches(_value(x.shape, "float64"), (3, 3), (1, 1), (1, 1),
                                         "same")):
            native, numpy_kernel = _kernels(out)
            assert_same_bits(native(x), numpy_kernel(x))
    x = views[0]
    y = pool._max_pool(x, (2, 2), (2, 2), "valid", "channels_last")
    g = np.asfortranarray(_data(y.shape, "float64", 7))
    native, numpy_kernel = _kernels(pool.max_pool_grad(
        *(_value(a.shape, "float64") for a in (g, x, y)), (2, 2), (2, 2)))
    assert_same_bits(native(g, x, y[:, ::-1][:, ::-1]), numpy_kernel(g, x, y))


def test_inconsistent_shapes_raise_naming_the_op():
    x = np.zeros((2, 8, 8, 3), np.float32)
    y = np.zeros((2, 4, 4, 3), np.float32)
    native, _ = _kernels(pool.max_pool_grad(*(_value(a.shape, "float32") for a in (y, x, y)),
                                            (2, 2), (2, 2)))
    with pytest.raises(ValueError, match=r"max_pool_grad: the cotangent .* \(2, 4, 4, 3\), "
                                         r"given \(2, 4, 3, 3\)"):
        native(y[:, :, :3], x, y)
    patches = np.zeros((2, 4, 4, 3, 3, 3), np.float32)
    native, _ = _kernels(conv.scatter_patches(_value(patches.shape, "float32"), (4, 4), (),
                                              kernel_size=(3, 3), strides=(1, 1),
                                              dilation=(1, 1), padding="same"))
    with pytest.raises(ValueError, match="scatter_patches: patches"):
        native(patches[:, :3])


def test_other_dtypes_and_layouts_stay_on_numpy():
    ints = pool.max_pool(_value((2, 4, 4, 3), "int32"), (2, 2), (2, 2))
    first = pool.max_pool(_value((2, 3, 4, 4), "float32"), (2, 2), (2, 2),
                          data_format="channels_first")
    x, y = _value((2, 7, 7, 3), "float32"), _value((2, 4, 4, 3), "float32")
    overlapping = pool.max_pool_grad(y, x, y, (3, 3), (2, 2), "same")
    reasons = [window_kernel(out.node) for out in (ints, first, overlapping)]
    assert all(kernel is None for kernel, _ in reasons)
    assert "float32 and float64 only" in reasons[0][1]
    assert "channels_last only" in reasons[1][1]
    assert "overlapping windows" in reasons[2][1]


# --- K.function -------------------------------------------------------------------------------

def _conv_pool_model(pool_padding="valid"):
    rng = np.random.default_rng(8)
    x = K.placeholder((None, 8, 8, 1))
    k1 = K.variable(rng.standard_normal((3, 3, 1, 4)))
    k2 = K.variable(rng.standard_normal((3, 3, 4, 6)))
    h = K.relu(K.conv2d(x, k1, padding="same"))
    h = K.pool2d(h, (2, 2), strides=(2, 2), padding=pool_padding, pool_mode="max")
    h = K.conv2d(h, k2, padding="same")
    loss = K.mean(K.square(h))
    return x, [loss] + K.gradients(loss, [k1, k2])


@pytest.mark.parametrize("backend", ["llvm", "auto"])
def test_conv_pool_gradients_equal_numpys(backend):
    x, outputs = _conv_pool_model()
    feed = [np.random.default_rng(9).standard_normal((5, 8, 8, 1)).astype("float32")]
    expected = K.function([x], outputs, backend="numpy")(feed)
    fn = K.function([x], outputs, backend=backend)
    for got, want in zip(fn(feed), expected):
        np.testing.assert_array_equal(got, want)
    report = fn.report(show=False)
    for op in ("extract_patches", "scatter_patches", "max_pool", "max_pool_grad"):
        assert f"native window kernel graphk_window_{op}_float32" in report
    assert "LLVM window kernels (one library per process):" in report


def test_report_names_why_a_window_op_stays_on_numpy():
    x = K.placeholder((None, 7, 7, 3))
    pooled = K.pool2d(x, (3, 3), strides=(2, 2), padding="same", pool_mode="max")
    grad = K.gradients(K.sum(pooled), [x])[0]
    fn = K.function([x], [grad], backend="llvm")
    feed = [np.random.default_rng(10).standard_normal((2, 7, 7, 3)).astype("float32")]
    np.testing.assert_array_equal(fn(feed)[0], K.function([x], [grad], backend="numpy")(feed)[0])
    report = fn.report(show=False)
    assert "max_pool at" in report and "graphk_window_max_pool_float32" in report
    assert "max_pool_grad at" in report and "overlapping windows" in report


def test_library_loads_at_the_first_call_not_when_a_function_is_built():
    """In a fresh process: building a function compiles nothing; its first call loads
    the library (from the disk cache this process's load filled)."""
    windows._LIBRARY.functions()
    assert_loads_at_first_call(
        "windows",
        "x = K.placeholder((None, 4, 4, 2))\n"
        "fn = K.function([x], [K.pool2d(x, (2, 2), strides=(2, 2))], backend='llvm')",
        "fn([np.ones((1, 4, 4, 2), 'float32')])")

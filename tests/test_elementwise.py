"""Elementwise ops against NumPy, on both paths, with None dims and broadcasting."""
import math

import numpy as np
import pytest

from graphk import backend as K
from graphk.ir.ops import elementwise as ew

from harness import check_gradients, check_op

rng = np.random.default_rng(0)
A = rng.uniform(-2, 2, (3, 4)).astype(np.float32)
B = rng.uniform(-2, 2, (4,)).astype(np.float32)
POS = rng.uniform(0.5, 2, (3, 4)).astype(np.float32)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def tf_relu(x, alpha=0.0, max_value=None, threshold=0.0):
    """Keras 2.3.1's tensorflow_backend.relu, step by step, on NumPy (the reference)."""
    x = np.asarray(x)
    if alpha != 0.0:
        if max_value is None and threshold == 0.0:
            return np.where(x > 0, x, alpha * x).astype(x.dtype)  # tf.nn.leaky_relu
        negative_part = np.maximum(-x + threshold, 0)
    clip_max = max_value is not None
    if threshold != 0:
        x = x * (x > threshold).astype(x.dtype)
    elif max_value == 6:
        x, clip_max = np.clip(x, 0, 6), False  # tf.nn.relu6
    else:
        x = np.maximum(x, 0)
    if clip_max:
        x = np.clip(x, 0, max_value)
    if alpha != 0:
        x = x - alpha * negative_part
    return x


UNARY = [
    (K.abs, np.abs, A), (K.square, np.square, A), (K.sqrt, np.sqrt, POS),
    (K.exp, np.exp, A), (K.log, np.log, POS), (K.round, np.round, A), (K.sign, np.sign, A),
    (K.sin, np.sin, A), (K.cos, np.cos, A), (K.tanh, np.tanh, A), (K.sigmoid, _sigmoid, A),
    (K.hard_sigmoid, lambda x: np.clip(0.2 * x + 0.5, 0, 1), A),
    (K.relu, lambda x: np.maximum(x, 0), A),
    (lambda x: K.relu(x, alpha=0.1, max_value=1.5, threshold=0.25),
     lambda x: tf_relu(x, alpha=0.1, max_value=1.5, threshold=0.25), A),
    (K.elu, lambda x: np.where(x > 0, x, np.expm1(x)), A),
    (K.softplus, lambda x: np.log1p(np.exp(x)), A),
    (K.softsign, lambda x: x / (1 + np.abs(x)), A),
    (lambda x: -x, np.negative, A),
    (lambda x: K.clip(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5), A),
    (lambda x: K.clip(x, 0.5, -1.0), lambda x: np.clip(x, 0.5, 0.5), A),
    (lambda x: K.pow(x, 3), lambda x: x ** 3, A),
]


@pytest.mark.parametrize("k_fn, np_fn, x", UNARY)
def test_unary_matches_numpy(k_fn, np_fn, x):
    check_op(k_fn, [x], np_fn(x).astype(x.dtype), rtol=1e-5, atol=1e-6)


BINARY = [
    (lambda x, y: x + y, np.add), (lambda x, y: x - y, np.subtract),
    (lambda x, y: x * y, np.multiply), (lambda x, y: x / y, np.divide),
    (lambda x, y: x // y, np.floor_divide), (lambda x, y: x % y, np.mod),
    (K.maximum, np.maximum), (K.minimum, np.minimum),
    (K.equal, np.equal), (K.not_equal, np.not_equal), (K.greater, np.greater),
    (K.greater_equal, np.greater_equal), (K.less, np.less), (K.less_equal, np.less_equal),
    (lambda x, y: x < y, np.less), (lambda x, y: x >= y, np.greater_equal),
]


@pytest.mark.parametrize("k_fn, np_fn", BINARY)
def test_binary_broadcasts_like_numpy(k_fn, np_fn):
    check_op(k_fn, [A, B], np_fn(A, B), rtol=1e-6)
    check_op(k_fn, [A, A[:1]], np_fn(A, A[:1]), rtol=1e-6, symbolic=False)


def test_python_scalars_keep_the_tensor_dtype():
    x = K.placeholder((None, 4))
    assert (x * 2.0).dtype == "float32"
    assert (2 ** x).dtype == "float32"
    assert (1 - x).dtype == "float32"


def test_pow_with_two_tensors():
    check_op(lambda x, y: x ** y, [POS, B], POS ** B, rtol=1e-5)


def test_unknown_dims_unify_under_broadcasting():
    x = K.placeholder((None, 3))
    y = K.placeholder((None, 3))
    z = x + y
    assert x.type.shape[0] == y.type.shape[0] == z.type.shape[0]
    assert K.int_shape(z) == (None, 3)


def test_broadcast_mismatch_names_op_shapes_and_line():
    x = K.placeholder((None, 3))
    y = K.placeholder((4,))
    with pytest.raises(ValueError) as info:
        x + y  # noqa: B018
    message = str(info.value)
    assert "add" in message and "(?" in message and "(4,)" in message
    assert "test_elementwise.py" in message


DIFFERENTIABLE = [
    (lambda x: K.abs(x), [A]), (K.square, [A]), (K.sqrt, [POS]), (K.exp, [A]), (K.log, [POS]),
    (K.sin, [A]), (K.cos, [A]), (K.tanh, [A]), (K.sigmoid, [A]), (K.hard_sigmoid, [A]),
    (K.relu, [A]), (lambda x: K.relu(x, alpha=0.1, max_value=1.5, threshold=0.25), [A]),
    (K.elu, [A]), (K.softplus, [A]), (K.softsign, [A]),
    (lambda x: K.clip(x, -0.5, 0.5), [A]),
    (lambda x, y: x + y, [A, B]), (lambda x, y: x - y, [A, B]), (lambda x, y: x * y, [A, B]),
    (lambda x, y: x / y, [A, POS]), (lambda x, y: x ** y, [POS, B]),
    (K.maximum, [A, B]), (K.minimum, [A, B]), (lambda x, y: x % y, [A, POS]),
]


@pytest.mark.parametrize("build, arrays", DIFFERENTIABLE)
def test_gradients_match_finite_differences(build, arrays):
    arrays = [a.astype(np.float64) for a in arrays]
    check_gradients(build, arrays)


def _ulps(got, want):
    """Distance in units in the last place (float bits ordered as integers)."""
    ints = {4: np.int32, 8: np.int64}[got.dtype.itemsize]
    a, b = (v.view(ints).astype(np.int64) for v in (got, want))
    a = np.where(a < 0, np.iinfo(ints).min - a, a)
    b = np.where(b < 0, np.iinfo(ints).min - b, b)
    return np.abs(a - b)


@pytest.mark.parametrize("dtype, low, high", [("float32", -110, 100), ("float64", -760, 50)])
def test_sigmoid_is_accurate_over_the_whole_range(dtype, low, high):
    """Within 3 ulp of a long-double reference everywhere: 0.5 * (1 + tanh(x / 2)) had 2.6%
    relative error at -15 and gave 0 below -20."""
    if dtype == "float64" and np.finfo(np.longdouble).nmant <= 52:
        pytest.skip("no extended long double here to check float64 against")
    x = np.linspace(low, high, 40001).astype(dtype)
    wide = x.astype(np.longdouble)
    e = np.exp(-np.abs(wide))
    want = np.where(wide >= 0, 1 / (1 + e), e / (1 + e)).astype(dtype)
    got = K.eval(K.sigmoid(K.constant(x, dtype=dtype)))
    assert got.dtype == dtype and _ulps(got, want).max() <= 3
    specials = np.array([-np.inf, np.inf, np.nan, -0.0, -20.0], dtype)
    got = K.eval(K.sigmoid(K.constant(specials, dtype=dtype)))
    np.testing.assert_array_equal(got[:4], [0, 1, np.nan, 0.5])
    np.testing.assert_allclose(got[4], 2.0611536181902037e-09, rtol=1e-6)


RELU_ARGS = [dict(threshold=0.5), dict(threshold=-0.5), dict(threshold=-0.5, alpha=0.2),
             dict(threshold=0.5, alpha=0.2, max_value=1.0), dict(alpha=0.3),
             dict(max_value=6.0), dict(max_value=1.0, alpha=0.1), dict(threshold=0.25)]


@pytest.mark.parametrize("kwargs", RELU_ARGS, ids=[str(k) for k in RELU_ARGS])
def test_relu_follows_keras_on_tensorflow(kwargs):
    """Exactly the TF backend's steps, at the threshold and the bounds themselves too."""
    x = np.array([-2.0, -0.5, -0.25, -0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 6.0, 7.0, -np.inf,
                  np.inf], np.float32)
    got = K.eval(K.relu(K.constant(x), **kwargs))
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(got, tf_relu(x, **kwargs).astype(np.float32))


def test_relu_differs_from_keras_numpy_backend_where_tensorflow_does():
    x = K.constant(np.array([0.5, -0.25], np.float32))
    # at x == threshold TF multiplies by (x > threshold): 0, where numpy_backend gives 0.5
    assert K.eval(K.relu(x, threshold=0.5))[0] == 0.0
    # a negative threshold without max_value lets x in (threshold, 0) through unclipped
    assert K.eval(K.relu(x, threshold=-0.5))[1] == -0.25


@pytest.mark.parametrize("kwargs", RELU_ARGS, ids=[str(k) for k in RELU_ARGS])
def test_relu_gradient_is_tensorflows(kwargs):
    x = np.array([-2.0, -0.4, -0.1, 0.1, 0.3, 0.7, 0.9, 1.3, 5.5, 6.5], np.float64)
    check_gradients(lambda v: K.relu(v, **kwargs), [x])


def test_log1p_expm1_erf():
    tiny = np.array([1e-10, -1e-10, 3e-8, 0.5, -0.5, 2.0], np.float32)
    check_op(ew.log1p, [tiny], np.log1p(tiny), rtol=1e-6)
    check_op(ew.expm1, [tiny], np.expm1(tiny), rtol=1e-6)
    assert K.eval(ew.log1p(K.constant(tiny)))[0] != 0  # log(1 + x) would give 0
    x = np.linspace(-4, 4, 33)
    check_op(ew.erf, [x], np.array([math.erf(v) for v in x]), rtol=1e-15, atol=1e-16)
    for fn, arrays in ((ew.log1p, [POS - 0.4]), (ew.expm1, [A]), (ew.erf, [A])):
        check_gradients(fn, [a.astype(np.float64) for a in arrays])

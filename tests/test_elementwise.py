"""Elementwise ops against NumPy, on both paths, with None dims and broadcasting."""
import numpy as np
import pytest

from graphk import backend as K

from harness import check_gradients, check_op

rng = np.random.default_rng(0)
A = rng.uniform(-2, 2, (3, 4)).astype(np.float32)
B = rng.uniform(-2, 2, (4,)).astype(np.float32)
POS = rng.uniform(0.5, 2, (3, 4)).astype(np.float32)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


UNARY = [
    (K.abs, np.abs, A), (K.square, np.square, A), (K.sqrt, np.sqrt, POS),
    (K.exp, np.exp, A), (K.log, np.log, POS), (K.round, np.round, A), (K.sign, np.sign, A),
    (K.sin, np.sin, A), (K.cos, np.cos, A), (K.tanh, np.tanh, A), (K.sigmoid, _sigmoid, A),
    (K.hard_sigmoid, lambda x: np.clip(0.2 * x + 0.5, 0, 1), A),
    (K.relu, lambda x: np.maximum(x, 0), A),
    (lambda x: K.relu(x, alpha=0.1, max_value=1.5, threshold=0.25),
     lambda x: np.clip(x * (x >= 0.25), 0, 1.5) + 0.1 * (x - 0.25) * (x < 0.25), A),
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

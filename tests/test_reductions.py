"""Reductions and scans against NumPy, on both paths, with None dims, negative and list
axes, keepdims; their gradients against finite differences; their dtype rules and errors."""
import numpy as np
import pytest

from graphk import backend as K
from graphk.ir.ops.reduce import cumsum as ir_cumsum

from harness import check_gradients, check_op

rng = np.random.default_rng(0)
X = rng.uniform(-2, 2, (2, 3, 4)).astype(np.float32)
POS = rng.uniform(0.5, 1.5, (2, 3, 4)).astype(np.float32)
INTS = rng.integers(-9, 10, (2, 3, 4)).astype(np.int32)


def _np_axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _np_logsumexp(x, axis=None, keepdims=False):
    peak = np.max(x, axis=axis, keepdims=True)
    result = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    return result if keepdims else np.squeeze(result, axis=axis)


REDUCTIONS = [
    (K.sum, np.sum, X), (K.prod, np.prod, POS), (K.mean, np.mean, X), (K.var, np.var, X),
    (K.std, np.std, X), (K.max, np.max, X), (K.min, np.min, X),
    (K.logsumexp, _np_logsumexp, X), (K.any, np.any, X > 1), (K.all, np.all, X > -1.5),
]
AXES = [None, 0, -1, 1, [0, 2], [-1, 1], (0, 1, 2)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("k_fn, np_fn, x", REDUCTIONS, ids=lambda v: getattr(v, "__name__", ""))
def test_reduction_matches_numpy(k_fn, np_fn, x, axis, keepdims):
    expected = np.asarray(np_fn(x, axis=_np_axis(axis), keepdims=keepdims))
    if x.dtype != bool:
        expected = expected.astype(x.dtype)
    check_op(lambda t: k_fn(t, axis=axis, keepdims=keepdims), [x], expected, rtol=1e-5)


def test_static_shapes_keep_unknown_dims():
    x = K.placeholder((None, 3, 4))
    assert K.int_shape(K.sum(x, axis=-1)) == (None, 3)
    assert K.int_shape(K.max(x, axis=[1, 2], keepdims=True)) == (None, 1, 1)
    assert K.int_shape(K.mean(x, axis=0)) == (3, 4)
    assert K.int_shape(K.var(x)) == ()
    assert K.int_shape(K.argmax(x)) == (None, 3)
    assert K.int_shape(K.cumsum(x, axis=1)) == (None, 3, 4)


def test_integer_sums_keep_their_dtype():
    check_op(lambda t: K.sum(t, axis=1), [INTS], np.sum(INTS, axis=1).astype(np.int32))
    check_op(lambda t: K.prod(t, axis=-1), [INTS], np.prod(INTS, axis=-1).astype(np.int32))
    check_op(lambda t: K.max(t, axis=0), [INTS], np.max(INTS, axis=0))
    check_op(lambda t: K.cumsum(t, axis=2), [INTS], np.cumsum(INTS, axis=2).astype(np.int32))


def test_integer_mean_and_var_truncate_toward_zero_like_tensorflow():
    mean = np.trunc(np.sum(INTS, axis=1) / 3).astype(np.int32)
    check_op(lambda t: K.mean(t, axis=1), [INTS], mean)
    rounded = np.trunc(np.mean(INTS, axis=-1, keepdims=True))
    var = np.trunc(np.mean((INTS - rounded) ** 2, axis=-1)).astype(np.int32)
    check_op(lambda t: K.var(t, axis=-1), [INTS], var)


def test_mean_and_var_of_bools_are_floatx():
    flags = X > 0
    check_op(lambda t: K.mean(t, axis=0), [flags], np.mean(flags, axis=0).astype(np.float32))
    check_op(lambda t: K.var(t), [flags], np.var(flags.astype(np.float32)))


def test_any_and_all_treat_nonzero_as_true():
    values = np.array([[0, 2, 0], [0, 0, 0]], dtype=np.int32)
    check_op(lambda t: K.any(t, axis=1), [values], np.array([True, False]))
    check_op(lambda t: K.all(t, axis=0, keepdims=True), [values + 1],
             np.array([[True, True, True]]))
    assert K.any(K.placeholder((None, 3), dtype="float32")).dtype == "bool"


@pytest.mark.parametrize("axis", [-1, 0, 1, 2, None, [1]], ids=str)
def test_argmax_and_argmin_give_int64(axis):
    np_axis = 0 if axis is None else (axis[0] if isinstance(axis, list) else axis)
    check_op(lambda t: K.argmax(t, axis), [X], np.argmax(X, axis=np_axis).astype(np.int64))
    check_op(lambda t: K.argmin(t, axis), [X], np.argmin(X, axis=np_axis).astype(np.int64))
    assert K.argmax(K.placeholder((None, 4))).dtype == "int64"


def test_argmax_defaults_to_the_last_axis():
    check_op(K.argmax, [X], np.argmax(X, axis=-1))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cumulative_ops_match_numpy(axis):
    check_op(lambda t: K.cumsum(t, axis), [X], np.cumsum(X, axis=axis), rtol=1e-5)
    check_op(lambda t: K.cumprod(t, axis), [X], np.cumprod(X, axis=axis), rtol=1e-5)


def test_cumulative_ops_default_to_axis_zero():
    check_op(K.cumsum, [X], np.cumsum(X, axis=0), rtol=1e-5)
    check_op(K.cumprod, [POS], np.cumprod(POS, axis=0), rtol=1e-5)


def test_reverse_scan_runs_from_the_end():
    expected = np.flip(np.cumsum(np.flip(X, 1), axis=1), 1)
    check_op(lambda t: ir_cumsum(t, 1, reverse=True), [X], expected, rtol=1e-5)


def test_logsumexp_is_stable_for_large_and_infinite_inputs():
    big = np.array([[1000.0, 1000.0], [-1000.0, -1000.0]], dtype=np.float32)
    check_op(lambda t: K.logsumexp(t, axis=1), [big],
             np.array([1000 + np.log(2), -1000 + np.log(2)], dtype=np.float32))
    empty = np.full((2, 3), -np.inf, dtype=np.float32)
    check_op(lambda t: K.logsumexp(t, axis=-1), [empty], np.full(2, -np.inf, np.float32))


def test_reductions_of_a_scalar():
    scalar = np.float32(1.5)
    check_op(K.sum, [scalar], scalar, symbolic=False)
    check_op(lambda t: K.max(t, axis=0), [scalar], scalar, symbolic=False)


def test_a_reduction_over_an_empty_axis_gives_its_identity():
    empty = np.zeros((3, 0), dtype=np.float32)
    check_op(lambda t: K.sum(t, axis=1), [empty], np.zeros(3, np.float32))
    check_op(lambda t: K.max(t, axis=1), [empty], np.full(3, -np.inf, np.float32))


# --- gradients ------------------------------------------------------------------------

X64 = X.astype(np.float64)
POS64 = POS.astype(np.float64)

DIFFERENTIABLE = [(K.sum, X64), (K.mean, X64), (K.prod, POS64), (K.var, X64), (K.std, X64),
                  (K.max, X64), (K.min, X64), (K.logsumexp, X64)]
GRAD_AXES = [None, 0, -1, [0, 2]]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", GRAD_AXES, ids=str)
@pytest.mark.parametrize("k_fn, x", DIFFERENTIABLE, ids=lambda v: getattr(v, "__name__", ""))
def test_reduction_gradients_match_finite_differences(k_fn, x, axis, keepdims):
    check_gradients(lambda t: k_fn(t, axis=axis, keepdims=keepdims), [x])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_scan_gradients_match_finite_differences(axis):
    check_gradients(lambda t: K.cumsum(t, axis), [X64])
    check_gradients(lambda t: K.cumprod(t, axis), [POS64])


def test_prod_gradient_is_exact_with_zeros():
    one_zero = np.array([[2.0, 0.0, 3.0], [1.5, -2.0, 0.5]])
    two_zeros = np.array([[0.0, 0.0, 3.0], [0.0, 4.0, 0.5]])
    for x in (one_zero, two_zeros):
        check_gradients(lambda t: K.prod(t, axis=1), [x])
        check_gradients(lambda t: K.prod(t, keepdims=True), [x])


def test_max_gradient_splits_evenly_among_ties():
    x = K.placeholder((None, 3), dtype="float64")
    grad = K.gradients(K.sum(K.max(x, axis=1)), [x])[0]
    values = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
    got = K.function([x], [grad])([values])[0]
    np.testing.assert_allclose(got, [[0, 0.5, 0.5], [1, 0, 0]])


def test_second_order_gradient_of_logsumexp():
    check_gradients(lambda t: K.gradients(K.sum(K.logsumexp(t, axis=1) ** 2), [t])[0], [X64])


# --- errors ---------------------------------------------------------------------------


def test_axis_out_of_range_names_op_axis_and_line():
    x = K.placeholder((None, 3))
    with pytest.raises(ValueError) as info:
        K.sum(x, axis=2)
    message = str(info.value)
    assert "reduce_sum" in message and "axis 2" in message and "rank 2" in message
    assert "test_reductions.py" in message
    with pytest.raises(ValueError, match=r"argmax.*axis -3"):
        K.argmax(x, axis=-3)


def test_dtype_errors_say_what_to_do():
    with pytest.raises(TypeError, match=r"reduce_sum.*bool.*cast"):
        K.sum(K.placeholder((2, 3), dtype="bool"))
    with pytest.raises(TypeError, match=r"reduce_std.*float"):
        K.std(K.placeholder((2, 3), dtype="int32"))
    with pytest.raises(TypeError, match=r"reduce_logsumexp.*float"):
        K.logsumexp(K.placeholder((2, 3), dtype="int32"))


def test_prod_of_a_list_of_scalar_tensors_is_a_chain_of_products():
    x = K.placeholder((None, 3, 4))
    sizes = [K.shape(x)[0], K.shape(x)[1], K.shape(x)[2]]
    product = K.prod(sizes)
    fn = K.function([x], [product])
    assert fn([np.ones((5, 3, 4), np.float32)])[0] == 60
    assert "stack" not in str(fn.ir) and "reduce_prod" not in str(fn.ir)
    assert float(K.eval(K.prod([K.constant(2.0), K.constant(3.5)]))) == 7.0

"""dot, batch_dot, transpose and matmul against NumPy, with None dims, gradients and errors."""
import numpy as np
import pytest

from graphk import backend as K
from graphk.ir.graph import topological_order
from graphk.ir.ops import linalg
from graphk.ir.shapes import ShapeError
from graphk.threads import blas_limit

from harness import check_gradients, check_op

rng = np.random.default_rng(0)


def uniform(*shape, dtype=np.float32):
    return rng.uniform(-1, 1, shape).astype(dtype)


def reference_batch_dot(x, y, axes=None):
    """Keras 2.3.1's numpy_backend.batch_dot, written out (a loop over the batch)."""
    if isinstance(axes, int):
        axes = [axes, axes]
    if axes is None:
        axes = [x.ndim - 1, y.ndim - 1] if y.ndim == 2 else [x.ndim - 1, y.ndim - 2]
    axes = [a + nd if a < 0 else a for a, nd in zip(axes, (x.ndim, y.ndim))]
    result = np.array([np.tensordot(xi, yi, (axes[0] - 1, axes[1] - 1)) for xi, yi in zip(x, y)])
    return result[:, None] if result.ndim == 1 else result


# --- dot -----------------------------------------------------------------------------

DOT_CASES = [((2, 3), (3, 4)), ((4, 5, 3), (3, 4)), ((2, 3), (4, 3, 5)), ((2, 3, 4), (5, 4, 6)),
             ((3, 4), (4,)), ((4,), (4, 5))]


@pytest.mark.parametrize("x_shape, y_shape", DOT_CASES)
def test_dot_matches_numpy_dot(x_shape, y_shape):
    x, y = uniform(*x_shape), uniform(*y_shape)
    check_op(K.dot, [x, y], np.dot(x, y), rtol=1e-5)


def test_dot_shapes_from_the_keras_docs():
    assert K.int_shape(K.dot(K.placeholder((2, 3)), K.placeholder((3, 4)))) == (2, 4)
    assert K.int_shape(K.dot(K.placeholder((32, 28, 3)), K.placeholder((3, 4)))) == (32, 28, 4)
    assert K.int_shape(K.dot(K.variable(np.ones((2, 3))), K.ones((4, 3, 5)))) == (2, 4, 5)


def test_dot_keeps_the_batch_symbol_and_unifies_the_contracted_one():
    x = K.placeholder((None, 784))
    w = K.variable(np.zeros((784, 256)))
    y = K.dot(x, w)
    assert K.int_shape(y) == (None, 256) and y.type.shape[0] is x.type.shape[0]
    a, b = K.placeholder((3, None)), K.placeholder((None, 5))
    assert K.int_shape(K.dot(a, b)) == (3, 5) and a.type.shape[1] == b.type.shape[0]


def test_dot_mismatch_names_op_both_shapes_and_line():
    x = K.placeholder((None, 784))
    w = K.variable(np.zeros((785, 256)))
    with pytest.raises(ShapeError) as info:
        K.dot(x, w)
    message = str(info.value)
    assert message.startswith("dot at ") and "test_linalg.py" in message
    assert "784" in message and "(785, 256)" in message and "(?" in message


def test_dot_of_ints_stays_int():
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    check_op(K.dot, [x, x.T.copy()], x @ x.T)


# --- batch_dot -------------------------------------------------------------------------

BATCH_DOT_CASES = [
    ((4, 20, 1), (4, 30, 20), (1, 2), (4, 1, 30)),  # the Keras docs example
    ((4, 5), (4, 5), None, (4, 1)),
    ((4, 5), (4, 5), 1, (4, 1)),
    ((4, 5), (4, 5, 3), None, (4, 3)),
    ((4, 2, 5), (4, 5), None, (4, 2)),
    ((4, 2, 5), (4, 5, 3), None, (4, 2, 3)),
    ((4, 2, 5), (4, 3, 5), 2, (4, 2, 3)),
    ((4, 2, 5), (4, 3, 5), (-1, -1), (4, 2, 3)),
    ((4, 5, 2), (4, 5, 3), (1, 1), (4, 2, 3)),
    ((4, 2, 3, 5), (4, 5, 6), (3, 1), (4, 2, 3, 6)),
    ((4, 2, 5), (4, 6, 5, 3), None, (4, 2, 6, 3)),
    ((4, 3, 2), (4, 2, 3, 5), (1, 2), (4, 2, 2, 5)),
]


@pytest.mark.parametrize("x_shape, y_shape, axes, expected_shape", BATCH_DOT_CASES)
def test_batch_dot_matches_the_keras_reference(x_shape, y_shape, axes, expected_shape):
    x, y = uniform(*x_shape), uniform(*y_shape)
    expected = reference_batch_dot(x, y, axes)
    assert expected.shape == expected_shape
    check_op(lambda a, b: K.batch_dot(a, b, axes), [x, y], expected, rtol=1e-5)
    static = K.batch_dot(K.placeholder((None,) + x_shape[1:]), K.placeholder(y_shape), axes)
    assert K.int_shape(static) == expected_shape


def test_batch_dot_docstring_values():
    x = np.array([[1, 2], [3, 4]], np.float32)
    y = np.array([[5, 6], [7, 8]], np.float32)
    check_op(lambda a, b: K.batch_dot(a, b, axes=1), [x, y], np.array([[17.0], [53.0]]))


@pytest.mark.parametrize("x_shape, y_shape, axes, fragment", [
    ((4, 5), (4, 5), (0, 1), "axis 0"),
    ((4, 5), (4, 5), ((1,), (1,)), "Multiple target dimensions"),
    ((4,), (4, 5), None, "rank 2 or more"),
    ((4, 5), (3, 5), None, "batch sizes"),
    ((4, 5, 2), (4, 3, 5), (2, 2), "x.shape[2] and y.shape[2]"),
])
def test_batch_dot_errors(x_shape, y_shape, axes, fragment):
    with pytest.raises(ValueError) as info:
        K.batch_dot(K.placeholder(x_shape), K.placeholder(y_shape), axes)
    assert fragment in str(info.value) and "test_linalg.py" in str(info.value)


def test_batch_dot_unifies_unknown_batch_sizes():
    x, y = K.placeholder((None, 3, 5)), K.placeholder((None, 5))
    out = K.batch_dot(x, y)
    assert K.int_shape(out) == (None, 3) and x.type.shape[0] == y.type.shape[0]


# --- transpose and matmul -------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (5,)])
def test_transpose_reverses_all_axes(shape):
    x = uniform(*shape)
    check_op(K.transpose, [x], np.transpose(x))


@pytest.mark.parametrize("a_shape, b_shape", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)),
                                              ((2, 1, 3, 4), (3, 4, 5)), ((4,), (2, 4, 5)),
                                              ((2, 3, 4), (4,)), ((4,), (4,))])
def test_matmul_operator_broadcasts_like_numpy(a_shape, b_shape):
    a, b = uniform(*a_shape), uniform(*b_shape)
    check_op(lambda x, y: x @ y, [a, b], a @ b, rtol=1e-5, symbolic=False)


@pytest.mark.parametrize("transpose_a, transpose_b", [(False, True), (True, False), (True, True)])
def test_matmul_transpose_flags(transpose_a, transpose_b):
    a, b = uniform(2, 3, 4), uniform(2, 4, 5)
    a_in = a.swapaxes(-1, -2).copy() if transpose_a else a
    b_in = b.swapaxes(-1, -2).copy() if transpose_b else b
    build = lambda x, y: linalg.matmul(x, y, transpose_a, transpose_b)
    check_op(build, [a_in, b_in], a @ b, rtol=1e-5)
    check_gradients(build, [a_in.astype(np.float64), b_in.astype(np.float64)])


def test_matmul_errors_name_the_shapes():
    with pytest.raises(ShapeError, match=r"matmul at .*test_linalg.py.*\(3, 4\).*\(5, 6\)"):
        K.placeholder((3, 4)) @ K.placeholder((5, 6))
    with pytest.raises(ShapeError, match="do not broadcast"):
        K.placeholder((2, 3, 4)) @ K.placeholder((3, 4, 5))


@pytest.mark.parametrize("subscripts, x_shape, y_shape", [
    ("ij,jk->ik", (3, 4), (4, 5)), ("ji,jk->ki", (4, 3), (4, 5)),
    ("bij,bkj->bki", (2, 3, 4), (2, 5, 4)), ("ij,k->kji", (3, 4), (5,)),
    ("aij,ji->a", (2, 3, 4), (4, 3)), ("k,k->", (4,), (4,))])
def test_contract_matches_einsum(subscripts, x_shape, y_shape):
    x, y = uniform(*x_shape, dtype=np.float64), uniform(*y_shape, dtype=np.float64)
    build = lambda a, b: linalg.contract(a, b, subscripts)
    check_op(build, [x, y], np.einsum(subscripts, x, y), rtol=1e-10, symbolic=False)
    check_gradients(build, [x, y], symbolic=False)


def test_contract_rejects_traces_and_lone_sums():
    x = K.placeholder((3, 3))
    with pytest.raises(ValueError, match="only one term"):
        linalg.contract(x, x, "ij,jk->i")


# --- gradients ----------------------------------------------------------------------------

GRADIENT_CASES = [
    (K.dot, [(3, 4), (4, 5)]), (K.dot, [(2, 3, 4), (4, 5)]), (K.dot, [(2, 3), (4, 3, 5)]),
    (K.dot, [(3, 4), (4,)]), (K.dot, [(4,), (4, 5)]),
    (lambda x, y: K.batch_dot(x, y), [(3, 4), (3, 4)]),
    (lambda x, y: K.batch_dot(x, y, (1, 2)), [(3, 4, 2), (3, 5, 4)]),
    (lambda x, y: K.batch_dot(x, y, (1, 1)), [(3, 4, 2), (3, 4, 5)]),
    (lambda x, y: K.batch_dot(x, y, 2), [(3, 2, 4), (3, 5, 4)]),
    (lambda x, y: K.batch_dot(x, y), [(3, 4), (3, 4, 5)]),
    (lambda x, y: K.batch_dot(x, y, (3, 1)), [(2, 3, 2, 4), (2, 4, 3)]),
    (lambda x, y: x @ y, [(2, 3, 4), (4, 5)]),
    (lambda x: K.transpose(x), [(2, 3, 4)]),
]


@pytest.mark.parametrize("build, shapes", GRADIENT_CASES)
def test_gradients_match_finite_differences(build, shapes):
    arrays = [uniform(*s, dtype=np.float64) for s in shapes]
    check_gradients(build, arrays)


def test_dense_layer_gradients_are_two_plain_matmuls():
    x = K.placeholder((None, 6))
    w = K.variable(np.zeros((6, 3)))
    grads = K.gradients(K.sum(K.dot(x, w)), [x, w])
    ops = {node.op.name for node in topological_order(grads)}
    assert "matmul" in ops and not ops & {"transpose", "contract"}
    matmuls = [n for n in topological_order(grads) if n.op.name == "matmul"]
    assert {(n.attrs["transpose_a"], n.attrs["transpose_b"]) for n in matmuls} == {
        (False, True), (True, False)}


def test_second_order_through_dot():
    """A Hessian-vector product through two dots (gradient rules are differentiable)."""
    def build(x, w):
        loss = K.sum(K.square(K.dot(K.tanh(K.dot(x, w)), K.transpose(w))))
        return K.gradients(loss, [w])[0]
    check_gradients(build, [uniform(3, 4, dtype=np.float64), uniform(4, 2, dtype=np.float64)],
                    rtol=1e-4)


# --- kernels: layouts and the small-product path -------------------------------------

@pytest.mark.parametrize("perm", [(0, 1, 2), (1, 0, 2), (0, 2, 1)])
def test_dot_kernel_reads_leading_axes_in_memory_order(perm):
    """A time-major view of batch-major data (K.rnn's sequence) multiplies as one GEMM over
    the rows as laid out; the result is the same as NumPy's whatever the layout."""
    base = uniform(4, 5, 3)
    x = base.transpose(perm)
    y = uniform(x.shape[-1], 6)
    got = linalg._dot_kernel(x, y)
    np.testing.assert_allclose(got, np.dot(x, y), rtol=1e-5, atol=1e-6)
    assert got.shape == x.shape[:-1] + (6,)


def test_dot_kernel_on_strided_and_empty_operands():
    x = uniform(6, 4, 3)[::2]  # not contiguous, and no reordering makes it so
    y = uniform(3, 2)
    np.testing.assert_allclose(linalg._dot_kernel(x, y), np.dot(x, y), rtol=1e-5)
    empty = np.zeros((0, 4, 3), np.float32).transpose(1, 0, 2)
    assert linalg._dot_kernel(empty, y).shape == (4, 0, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.bool_])
def test_small_products_equal_matmul(dtype):
    a = (uniform(3, 4) * 3).astype(dtype)
    b = (uniform(4, 5) * 3).astype(dtype)
    want = np.matmul(a, b)
    with blas_limit(1):  # one BLAS thread: the np.dot path
        for left in (a, np.asfortranarray(a)):
            got = linalg.product(left, b)
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=1e-6)


def test_matrix_transpose_is_a_contiguous_copy():
    x = uniform(2, 3, 4)
    fn = K.function([xp := K.placeholder((None, 3, 4))], [linalg.matrix_transpose(xp)])
    got = fn([x])[0]
    np.testing.assert_array_equal(got, np.swapaxes(x, -1, -2))
    assert got.flags.c_contiguous
    with pytest.raises(ShapeError, match="matrix_transpose needs a matrix"):
        linalg.matrix_transpose(K.placeholder((3,)))


@pytest.mark.parametrize("shape, lead", [((50, 32, 64), 2), ((4096, 16), 1), ((3, 4), 1),
                                         ((600, 2, 3), 1), ((0, 5), 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_sum_over_leading_axes_matches_numpy(shape, lead, dtype):
    """Many short rows go through a ones-vector GEMV, the rest through NumPy's reduction."""
    from graphk.ir.ops.contraction import sum_leading_axes

    array = (uniform(*shape) * 10).astype(dtype)
    for given in (array, np.asfortranarray(array)):
        got = sum_leading_axes(given, lead)
        assert got.dtype == array.dtype and got.shape == shape[lead:]
        want = array.astype(np.float64).sum(axis=tuple(range(lead)))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)

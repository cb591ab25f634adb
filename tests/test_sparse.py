"""Sparse tensors: placeholders, both feed forms, to_dense, K.dot with a sparse operand and
its gradients, and the errors a wrong feed gives."""
import numpy as np
import pytest

from graphk import backend as K
from graphk.ir.errors import FeedError
from graphk.ir.ops import sparse as sparse_ops

from test_ctc import run_under_keras

scipy_sparse = pytest.importorskip("scipy.sparse")


def _random_matrix(rows, columns, density=0.4, seed=0):
    return scipy_sparse.random(rows, columns, density=density, format="csr", random_state=seed,
                               dtype=np.float32)


def _as_tuple(matrix):
    coo = matrix.tocoo()
    return np.stack([coo.row, coo.col], axis=1), coo.data, coo.shape


# --- the sparse placeholder ---------------------------------------------------------------------


def test_sparse_placeholder_reports_its_dense_type():
    x = K.placeholder(shape=(None, 7), sparse=True, name="bag")
    assert K.is_sparse(x) and K.is_tensor(x) and K.is_placeholder(x)
    assert K.int_shape(x) == (None, 7) and K.ndim(x) == 2 and K.dtype(x) == K.floatx()
    assert not K.is_sparse(K.placeholder(shape=(None, 7)))
    assert K.ndim(K.placeholder(ndim=3, sparse=True, dtype="float64")) == 3
    dense = K.placeholder(shape=(2, 2))
    assert K.to_dense(dense) is dense


@pytest.mark.parametrize("form", ["csr", "csc", "coo", "tuple", "list"])
def test_to_dense_accepts_scipy_matrices_and_tuples(form):
    x = K.placeholder(shape=(None, 6), sparse=True)
    dense = K.to_dense(x)
    assert not K.is_sparse(dense) and K.int_shape(dense) == (None, 6)
    f = K.function([x], [dense])
    matrix = _random_matrix(4, 6)
    feed = {"tuple": _as_tuple(matrix), "list": list(_as_tuple(matrix))}.get(form)
    if feed is None:
        feed = matrix.asformat(form)
    np.testing.assert_array_equal(f([feed])[0], matrix.toarray())


def test_to_dense_sums_duplicate_indices_and_handles_no_nonzeros():
    x = K.placeholder(shape=(2, 3), sparse=True)
    f = K.function([x], K.to_dense(x))
    indices = np.array([[0, 1], [1, 2], [0, 1]])
    np.testing.assert_array_equal(f([(indices, np.array([1.0, 2.0, 3.0]), (2, 3))]),
                                  [[0, 4, 0], [0, 0, 2]])
    np.testing.assert_array_equal(f([([], [], (2, 3))]), np.zeros((2, 3)))


def test_sparse_feeds_beside_dense_feeds():
    x = K.placeholder(shape=(None, 5), sparse=True)
    scale = K.placeholder(shape=())
    f = K.function([scale, x], [K.to_dense(x) * scale, scale + 1])
    matrix = _random_matrix(3, 5)
    scaled, plus_one = f([np.float32(2.0), matrix])
    np.testing.assert_allclose(scaled, 2 * matrix.toarray())
    assert plus_one == 3.0


def test_sparse_output_is_a_sparse_value():
    x = K.placeholder(shape=(None, 4), sparse=True)
    indices, values, shape = _as_tuple(_random_matrix(3, 4))
    result = K.function([x], x)([(indices, values, shape)])
    np.testing.assert_array_equal(result.indices, indices)
    np.testing.assert_array_equal(result.values, values)
    np.testing.assert_array_equal(result.dense_shape, shape)


# --- K.dot --------------------------------------------------------------------------------------


def test_sparse_dot_dense_matches_numpy():
    x = K.placeholder(shape=(None, 6), sparse=True)
    w = K.variable(np.random.default_rng(0).normal(size=(6, 3)))
    product = K.dot(x, w)
    assert K.int_shape(product) == (None, 3) and not K.is_sparse(product)
    matrix = _random_matrix(5, 6)
    np.testing.assert_allclose(K.function([x], product)([matrix]),
                               matrix.toarray() @ K.get_value(w), rtol=1e-6)


def test_dense_dot_sparse_matches_numpy():
    x = K.placeholder(shape=(None, 4))
    s = K.placeholder(shape=(4, 5), sparse=True)
    product = K.dot(x, s)
    assert K.int_shape(product) == (None, 5)
    dense = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    matrix = _random_matrix(4, 5, seed=2)
    np.testing.assert_allclose(K.function([x, s], product)([dense, matrix]),
                               dense @ matrix.toarray(), rtol=1e-5, atol=1e-6)


def test_sparse_dot_without_scipy_gives_the_same_product(monkeypatch):
    x = K.placeholder(shape=(None, 6), sparse=True)
    y = K.placeholder(shape=(6, 2))
    f = K.function([x, y], K.dot(x, y))
    matrix = _random_matrix(5, 6, seed=3)
    dense = np.random.default_rng(3).normal(size=(6, 2)).astype("float32")
    with_scipy = f([matrix, dense])
    monkeypatch.setattr(sparse_ops, "_scipy_sparse", False)
    indices, values, shape = _as_tuple(matrix)
    indices = np.concatenate([indices, indices[:1]])  # a duplicate adds up
    values = np.concatenate([values, values[:1]])
    without = f([(indices, values, shape), dense])
    expected = with_scipy.copy()
    expected[indices[0, 0]] += values[0] * dense[indices[0, 1]]
    np.testing.assert_allclose(without, expected, rtol=1e-5, atol=1e-6)


def test_gradients_of_sparse_dot():
    """d sum(c * (S @ W)) / dW = S^T c, and / d values[j] = c[r_j] . W[c_j]."""
    rng = np.random.default_rng(4)
    x = K.placeholder(shape=(None, 6), sparse=True, dtype="float64")
    w = K.variable(rng.normal(size=(6, 3)), dtype="float64")
    cotangent = rng.normal(size=(5, 3))
    loss = K.sum(K.dot(x, w) * cotangent)
    grad_w, grad_values = K.gradients(loss, [w, x.values])
    matrix = _random_matrix(5, 6, seed=4).astype(np.float64)
    indices, _, _ = _as_tuple(matrix)
    got_w, got_values = K.function([x], [grad_w, grad_values])([matrix])
    np.testing.assert_allclose(got_w, matrix.toarray().T @ cotangent, rtol=1e-10)
    expected = np.sum(cotangent[indices[:, 0]] * K.get_value(w)[indices[:, 1]], axis=1)
    np.testing.assert_allclose(got_values, expected, rtol=1e-10)


def test_gradient_of_to_dense_is_a_gather():
    x = K.placeholder(shape=(3, 4), sparse=True, dtype="float64")
    weights = np.arange(12.0).reshape(3, 4)
    grad = K.gradients(K.sum(K.to_dense(x) * weights), [x.values])[0]
    indices = np.array([[2, 1], [0, 3]])
    got = K.function([x], grad)([(indices, np.array([1.0, 1.0]), (3, 4))])
    np.testing.assert_array_equal(got, [weights[2, 1], weights[0, 3]])


# --- errors ---------------------------------------------------------------------------------------


def test_wrong_sparse_feeds_are_named():
    x = K.placeholder(shape=(None, 4), sparse=True)
    f = K.function([x], K.to_dense(x))
    with pytest.raises(FeedError, match="takes a scipy.sparse matrix or an"):
        f([np.zeros((2, 4))])
    with pytest.raises(FeedError, match=r"expects a dense shape \(\?\d+, 4\), got \(2, 5\)"):
        f([_random_matrix(2, 5)])
    with pytest.raises(FeedError, match="expects 1 feeds, got 2"):
        f([_random_matrix(2, 4), _random_matrix(2, 4)])
    with pytest.raises(ValueError, match=r"sparse index \[3, 0\] \(entry 1\) is out of bounds"):
        f([(np.array([[0, 0], [3, 0]]), np.ones(2, "float32"), (2, 4))])
    with pytest.raises(FeedError, match="share an unknown dimension"):
        f([(np.array([[0, 0], [1, 0]]), np.ones(3, "float32"), (2, 4))])


def test_sparse_dot_shape_errors():
    s = K.placeholder(shape=(None, 4), sparse=True)
    with pytest.raises(ValueError, match=r"inner dimensions differ: cannot multiply sparse "
                                          r"\(None, 4\) by dense \(5, 2\)"):
        K.dot(s, K.placeholder(shape=(5, 2)))
    with pytest.raises(ValueError, match="needs two matrices"):
        K.dot(s, K.placeholder(shape=(4, 2, 3)))
    with pytest.raises(TypeError, match="both operands are sparse"):
        K.dot(s, K.placeholder(shape=(4, 4), sparse=True))


# --- under Keras ------------------------------------------------------------------------------

KERAS_SPARSE_DENSE = """
import graphk.keras2
graphk.keras2.install_shims()
import keras
import numpy as np
import scipy.sparse as sp
inputs = keras.layers.Input(shape=(20,), sparse=True)
model = keras.models.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
model.compile("sgd", "categorical_crossentropy")
x = sp.random(16, 20, density=0.2, format="csr", random_state=0, dtype=np.float32)
y = np.eye(3)[np.arange(16) % 3]
history = model.fit(x, y, epochs=3, batch_size=4, verbose=0)
assert history.history["loss"][-1] < history.history["loss"][0]
kernel, bias = model.get_weights()
logits = x.toarray() @ kernel + bias
expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5)
print("ok")
"""


def test_keras_trains_a_dense_layer_on_sparse_input(tmp_path):
    run_under_keras(KERAS_SPARSE_DENSE, tmp_path)


def test_concatenate_sparse_stays_sparse_and_mixed_is_dense():
    a = K.placeholder((2, 3), sparse=True)
    b = K.placeholder((2, 2), sparse=True)
    dense = K.placeholder((2, 4))
    a_value = np.array([[1.0, 0, 2], [0, 0, 3]], dtype=np.float32)
    b_value = np.array([[0.0, 4], [5, 0]], dtype=np.float32)
    joined = K.concatenate([a, b], axis=-1)
    assert K.is_sparse(joined) and K.int_shape(joined) == (2, 5)
    mixed = K.concatenate([a, dense], axis=1)
    assert not K.is_sparse(mixed)

    def coo(m):
        rows, cols = np.nonzero(m)
        return np.stack([rows, cols], 1).astype(np.int64), m[rows, cols], np.array(m.shape)

    dense_value = np.ones((2, 4), np.float32)
    f = K.function([a, b, dense], [K.to_dense(joined), mixed])
    got_joined, got_mixed = f([coo(a_value), coo(b_value), dense_value])
    np.testing.assert_array_equal(got_joined, np.concatenate([a_value, b_value], 1))
    np.testing.assert_array_equal(got_mixed, np.concatenate([a_value, dense_value], 1))

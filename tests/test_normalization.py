"""Batch normalization (inference and training) and in_top_k against NumPy, on both paths,
with None batch dims, axis variants, gradients (first and second order) and errors."""
import numpy as np
import pytest

from graphk import backend as K

from harness import check_gradients, check_op

rng = np.random.default_rng(0)
EPS = 1e-3


def bn_ref(x, mean, var, beta, gamma, epsilon=EPS):
    result = (x - mean) / np.sqrt(var + epsilon)
    if gamma is not None:
        result = result * gamma
    return result + beta if beta is not None else result


def train_ref(x, gamma, beta, axes, epsilon=EPS):
    """Keras-TF: biased moments over axes; gamma/beta reshaped to ones at the reduced axes."""
    mean = x.mean(axis=tuple(axes), keepdims=True)
    var = x.var(axis=tuple(axes), keepdims=True)
    shape = mean.shape
    normed = bn_ref(x, mean, var, None if beta is None else beta.reshape(shape),
                    None if gamma is None else gamma.reshape(shape), epsilon)
    return [normed, mean.squeeze(axis=tuple(axes)), var.squeeze(axis=tuple(axes))]


def uniform(shape, low=-2.0, high=2.0, dtype=np.float32):
    return rng.uniform(low, high, shape).astype(dtype)


# --- batch_normalization (given moments) -------------------------------------------------

X2 = uniform((5, 3))
X4 = uniform((2, 3, 4, 5))
C3 = [uniform((3,)), uniform((3,), 0.5, 2.0), uniform((3,)), uniform((3,), 0.5, 2.0)]


def test_batch_normalization_last_axis():
    mean, var, beta, gamma = C3
    check_op(lambda x, m, v, b, g: K.batch_normalization(x, m, v, b, g),
             [X2, mean, var, beta, gamma], bn_ref(X2, mean, var, beta, gamma), rtol=1e-5)


@pytest.mark.parametrize("axis", [1, -3])
def test_batch_normalization_1d_parameters_apply_along_axis(axis):
    mean, var, beta, gamma = C3
    expected = bn_ref(X4, *(p.reshape(1, 3, 1, 1) for p in (mean, var, beta, gamma)))
    check_op(lambda x, m, v, b, g: K.batch_normalization(x, m, v, b, g, axis=axis),
             [X4, mean, var, beta, gamma], expected, rtol=1e-5, atol=1e-5)


def test_batch_normalization_broadcast_parameters():
    params = [p.reshape(1, 3, 1) for p in C3]
    x = uniform((4, 3, 2))
    check_op(lambda x, m, v, b, g: K.batch_normalization(x, m, v, b, g, axis=1),
             [x] + params, bn_ref(x, *params), rtol=1e-5, atol=1e-5, symbolic=False)
    # 1-D parameters along axis 1 of a rank-3 tensor give the same
    check_op(lambda x, m, v, b, g: K.batch_normalization(x, m, v, b, g, axis=1),
             [x] + C3, bn_ref(x, *params), rtol=1e-5, atol=1e-5)


def test_batch_normalization_without_beta_or_gamma():
    mean, var, beta, gamma = C3
    check_op(lambda x, m, v: K.batch_normalization(x, m, v, None, None, epsilon=0.1),
             [X2, mean, var], bn_ref(X2, mean, var, None, None, 0.1), rtol=1e-5)
    check_op(lambda x, m, v, g: K.batch_normalization(x, m, v, None, g),
             [X2, mean, var, gamma], bn_ref(X2, mean, var, None, gamma), rtol=1e-5)


def test_batch_normalization_gradients():
    mean, var, beta, gamma = (p.astype(np.float64) for p in C3)
    check_gradients(lambda x, m, v, b, g: K.batch_normalization(x, m, v, b, g),
                    [X2.astype(np.float64), mean, var, beta, gamma])
    check_gradients(lambda x, m, v, b, g: K.batch_normalization(x, m, v, b, g, axis=1),
                    [X4[:, :, :2, :2].astype(np.float64), mean, var, beta, gamma])


def test_batch_normalization_errors():
    x = K.placeholder((None, 3))
    with pytest.raises(ValueError, match=r"batch_normalization.*axis 2 is out of range"):
        K.batch_normalization(x, K.zeros((3,)), K.ones((3,)), None, None, axis=2)
    with pytest.raises(ValueError,
                       match=r"batch_normalization.*test_normalization.py.*mean of shape \(4,\)"):
        K.batch_normalization(x, K.zeros((4,)), K.ones((3,)), None, None)


# --- normalize_batch_in_training ---------------------------------------------------------------

TRAIN_CASES = [
    ((6, 3), [0]),  # dense: channels last
    ((2, 4, 3, 5), [0, 1, 2]),  # NHWC convolution
    ((2, 5, 3, 4), [0, 2, 3]),  # NCHW convolution
    ((3, 4, 5), [0, 1]),  # a sequence
    ((3, 4, 5), [0, 2]),  # channels in the middle
    ((4, 6), [1]),  # reduction over a non-leading axis
]


@pytest.mark.parametrize("shape, axes", TRAIN_CASES)
def test_normalize_batch_in_training_matches_numpy(shape, axes):
    x = uniform(shape, -1.0, 3.0)
    kept = tuple(d for i, d in enumerate(shape) if i not in axes)
    gamma, beta = uniform(kept, 0.5, 2.0), uniform(kept)
    check_op(lambda x, g, b: list(K.normalize_batch_in_training(x, g, b, axes)),
             [x, gamma, beta], train_ref(x, gamma, beta, axes), rtol=1e-4, atol=1e-5,
             symbolic=0 in axes)


@pytest.mark.parametrize("shape, axes", TRAIN_CASES)
def test_normalize_batch_in_training_gradients(shape, axes):
    x = uniform(shape, dtype=np.float64)
    kept = tuple(d for i, d in enumerate(shape) if i not in axes)
    gamma, beta = uniform(kept, 0.5, 2.0, np.float64), uniform(kept, dtype=np.float64)
    check_gradients(lambda x, g, b: list(K.normalize_batch_in_training(x, g, b, axes)),
                    [x, gamma, beta], symbolic=0 in axes, rtol=1e-4)


def test_normalize_batch_in_training_without_gamma_and_beta():
    x = uniform((5, 2, 3))
    check_op(lambda x: list(K.normalize_batch_in_training(x, None, None, [0, 2], epsilon=0.01)),
             [x], train_ref(x, None, None, [0, 2], 0.01), rtol=1e-4, atol=1e-5)
    gamma = uniform((2,), 0.5, 2.0)
    check_op(lambda x, g: list(K.normalize_batch_in_training(x, g, None, [0, 2])),
             [x, gamma], train_ref(x, gamma, None, [0, 2]), rtol=1e-4, atol=1e-5)
    check_gradients(lambda x, g: list(K.normalize_batch_in_training(x, g, None, [0, 2])),
                    [x.astype(np.float64), gamma.astype(np.float64)], rtol=1e-4)


def test_broadcast_shaped_gamma_and_beta_are_reshaped():
    x = uniform((2, 3, 4, 5))
    gamma, beta = uniform((1, 3, 1, 1), 0.5, 2.0), uniform((1, 3, 1, 1))
    check_op(lambda x, g, b: list(K.normalize_batch_in_training(x, g, b, [0, 2, 3])),
             [x, gamma, beta], train_ref(x, gamma, beta, [0, 2, 3]), rtol=1e-4, atol=1e-5,
             symbolic=False)


def test_second_order_gradients():
    """The gradient of a batchnorm gradient (e.g. a gradient penalty) is right too."""
    x = uniform((5, 3), dtype=np.float64)
    gamma, beta = uniform((3,), 0.5, 2.0, np.float64), uniform((3,), dtype=np.float64)
    weights = K.constant(uniform((5, 3), dtype=np.float64), dtype="float64")

    def penalty_gradients(x, g, b):
        normed, mean, var = K.normalize_batch_in_training(x, g, b, [0])
        loss = K.sum(K.square(normed) * normed * weights) + K.sum(mean * var)
        return K.gradients(loss, [x, g, b])

    check_gradients(penalty_gradients, [x, gamma, beta], rtol=1e-4)


def test_training_float16_is_computed_in_float32():
    x = uniform((64, 4), 100.0, 101.0, np.float16)
    normed, mean, var = K.normalize_batch_in_training(K.constant(x, dtype="float16"),
                                                      None, None, [0])
    assert normed.dtype == mean.dtype == var.dtype == "float16"
    expected = train_ref(x.astype(np.float32), None, None, [0])
    for got, want in zip(K.batch_get_value([normed, mean, var]), expected):
        np.testing.assert_allclose(got.astype(np.float32), want, rtol=2e-3, atol=2e-3)


def test_large_mean_does_not_lose_the_variance():
    x = (1000.0 + uniform((256, 8))).astype(np.float32)
    normed, _, var = K.batch_get_value(list(K.normalize_batch_in_training(
        K.constant(x), None, None, [0])))
    np.testing.assert_allclose(var, x.astype(np.float64).var(axis=0), rtol=1e-3)
    np.testing.assert_allclose(normed.std(axis=0), 1.0, rtol=1e-2)


def test_training_uses_the_fused_op():
    x = K.placeholder((None, 8))
    normed, _, _ = K.normalize_batch_in_training(x, K.ones((8,)), K.zeros((8,)), [0])
    (grad,) = K.gradients(K.sum(normed * normed), [x])
    assert normed.op_name == "batch_norm_train"
    assert "batch_norm_train_grad" in K.function([x], [grad]).source


def test_training_errors():
    x = K.placeholder((None, 3))
    with pytest.raises(ValueError, match=r"batch_norm_train.*gamma.*\(4,\)"):
        K.normalize_batch_in_training(x, K.ones((4,)), None, [0])
    with pytest.raises(ValueError, match="out of range"):
        K.normalize_batch_in_training(x, None, None, [2])
    with pytest.raises(TypeError, match="float tensor"):
        K.normalize_batch_in_training(K.placeholder((None, 3), dtype="int32"), None, None, [0])


# --- in_top_k --------------------------------------------------------------------------------


def top_k_ref(predictions, targets, k):
    """TF's rule: fewer than k classes score strictly higher than the target."""
    rows, classes = predictions.shape
    result = np.zeros(rows, bool)
    for i, t in enumerate(targets):
        if 0 <= t < classes and np.isfinite(predictions[i, t]):
            result[i] = np.sum(predictions[i] > predictions[i, t]) < k
    return result


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5, 7])
def test_in_top_k_with_ties(k):
    predictions = rng.integers(0, 3, (20, 5)).astype(np.float32)  # many ties
    targets = rng.integers(0, 5, 20).astype(np.int32)
    check_op(lambda p, t: K.in_top_k(p, t, k), [predictions, targets],
             top_k_ref(predictions, targets, k))


def test_in_top_k_without_ties_matches_keras_numpy_backend():
    predictions = rng.permuted(np.tile(np.arange(10, dtype=np.float32), (8, 1)), axis=1)
    targets = rng.integers(0, 10, 8).astype(np.int64)
    top = np.argsort(-predictions)[:, :3]
    expected = np.any(targets.reshape(-1, 1) == top, axis=-1)
    check_op(lambda p, t: K.in_top_k(p, t, 3), [predictions, targets], expected)


def test_in_top_k_ties_at_the_boundary_count():
    predictions = np.array([[0.1, 0.5, 0.5, 0.5, 0.2]], np.float32)
    for target in (1, 2, 3):
        assert K.eval(K.in_top_k(predictions, np.array([target], np.int32), 1)).tolist() == [True]
    assert K.eval(K.in_top_k(predictions, np.array([4], np.int32), 3)).tolist() == [False]


def test_in_top_k_bad_targets_and_scores_are_false():
    predictions = np.array([[0.1, np.nan, 0.3], [0.1, 0.2, 0.3]], np.float32)
    result = K.eval(K.in_top_k(predictions, np.array([1, 3], np.int32), 3))
    assert result.tolist() == [False, False]


def test_in_top_k_errors():
    p = K.placeholder((None, 5))
    with pytest.raises(TypeError, match=r"in_top_k.*targets must be an int vector"):
        K.in_top_k(p, K.placeholder((None,)), 1)
    with pytest.raises(ValueError, match="batch sizes"):
        K.in_top_k(K.placeholder((4, 5)), K.placeholder((3,), dtype="int32"), 1)
    with pytest.raises(TypeError, match="k must be an int"):
        K.in_top_k(p, K.placeholder((None,), dtype="int32"), 1.5)

"""softmax, l2_normalize and the crossentropies against NumPy references of Keras 2.3.1's
TensorFlow semantics, on both paths with None dims, with gradients and errors."""
import numpy as np
import pytest

from graphk import backend as K
from graphk.ir.shapes import ShapeError

from harness import check_gradients, check_op

rng = np.random.default_rng(0)
EPS = 1e-7


def uniform(*shape, low=-2.0, high=2.0, dtype=np.float32):
    return rng.uniform(low, high, shape).astype(dtype)


def onehot(labels, classes, dtype=np.float32):
    return np.eye(classes, dtype=dtype)[labels]


# --- NumPy references (float64) -----------------------------------------------------------


def ref_softmax(x, axis=-1):
    return np.exp(ref_log_softmax(x, axis))


def ref_log_softmax(x, axis=-1):
    x = np.asarray(x, np.float64)
    shifted = x - x.max(axis=axis, keepdims=True)
    with np.errstate(under="ignore"):
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def ref_l2_normalize(x, axis):
    x = np.asarray(x, np.float64)
    return x / np.sqrt(np.maximum(np.sum(x * x, axis=axis, keepdims=True), 1e-12))


def ref_categorical(target, output, from_logits=False, axis=-1):
    if from_logits:
        return -np.sum(target * ref_log_softmax(output, axis), axis=axis)
    p = output / output.sum(axis=axis, keepdims=True)
    return -np.sum(target * np.log(np.clip(p, EPS, 1 - EPS)), axis=axis)


def ref_sparse(labels, output, from_logits=False, axis=-1):
    logits = output if from_logits else np.log(np.clip(output, EPS, 1 - EPS))
    log_p = np.moveaxis(ref_log_softmax(logits, axis), axis, -1)
    labels = labels.astype(np.int64).reshape(log_p.shape[:-1])
    return -np.take_along_axis(log_p, labels[..., None], -1)[..., 0]


def ref_binary(target, output, from_logits=False):
    """tf.keras' formula, clipping in the output's dtype: from probabilities
    -(t log(p + eps) + (1 - t) log(1 - p + eps)) (a saturated miss costs 15.33 in float32,
    which Keras 2.3.1's own losses tests expect), from logits the stable logistic loss."""
    z = np.asarray(output)
    if not from_logits:
        one, eps = np.ones((), z.dtype), np.asarray(EPS, z.dtype)
        p = np.clip(z, eps, one - eps)
        return -(target * np.log(p + eps) + (1 - target) * np.log(one - p + eps))
    z = z.astype(np.float64)
    return np.maximum(z, 0) - z * target + np.log1p(np.exp(-np.abs(z)))


# --- softmax ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, axis", [((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1),
                                         ((2, 3, 4), -1), ((5,), 0)])
def test_softmax_matches_numpy(shape, axis):
    x = uniform(*shape)
    check_op(lambda t: K.softmax(t, axis), [x], ref_softmax(x, axis).astype(np.float32),
             rtol=1e-5)


def test_softmax_is_stable_for_large_inputs():
    x = np.array([[1000.0, 1001.0, -1000.0], [-1e4, -1e4, -1e4]], np.float32)
    check_op(K.softmax, [x], ref_softmax(x).astype(np.float32), rtol=1e-5)


def test_softmax_rejects_an_axis_out_of_range_with_the_line():
    with pytest.raises(ShapeError, match=r"softmax at .*test_nn.py.*axis 2"):
        K.softmax(K.placeholder((None, 3)), axis=2)


# --- l2_normalize ------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [None, 1, -1, 0, [0, 2]])
def test_l2_normalize_matches_tensorflow(axis):
    x = uniform(2, 3, 4)
    np_axis = tuple(axis) if isinstance(axis, list) else axis
    check_op(lambda t: K.l2_normalize(t, axis), [x],
             ref_l2_normalize(x, np_axis).astype(np.float32), rtol=1e-5)


def test_l2_normalize_of_zeros_is_zeros():
    check_op(lambda t: K.l2_normalize(t, -1), [np.zeros((2, 3), np.float32)],
             np.zeros((2, 3), np.float32))


# --- categorical crossentropy ------------------------------------------------------------------


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("shape, axis", [((4, 5), -1), ((2, 3, 5), -1), ((2, 5, 3), 1)])
def test_categorical_crossentropy_matches_reference(from_logits, shape, axis):
    target = uniform(*shape, low=0.0, high=1.0)
    output = uniform(*shape) if from_logits else uniform(*shape, low=0.01, high=1.0)
    expected = ref_categorical(target, output, from_logits, axis).astype(np.float32)
    check_op(lambda t, o: K.categorical_crossentropy(t, o, from_logits, axis), [target, output],
             expected, rtol=1e-5, atol=1e-5)


def test_categorical_crossentropy_clips_and_normalizes_probabilities():
    target = np.array([[0, 1, 0], [1, 0, 0]], np.float32)
    output = np.array([[0.5, 0.0, 0.5], [2.0, 1.0, 1.0]], np.float32)  # unnormalized, a zero
    expected = ref_categorical(target, output).astype(np.float32)
    assert np.isclose(expected[0], -np.log(EPS), rtol=1e-5)
    check_op(K.categorical_crossentropy, [target, output], expected, rtol=1e-5)


def test_categorical_crossentropy_from_extreme_logits_is_finite():
    target = onehot([0, 2], 3)
    logits = np.array([[1000.0, 0.0, -1000.0], [1000.0, 0.0, -1000.0]], np.float32)
    check_op(lambda t, o: K.categorical_crossentropy(t, o, from_logits=True), [target, logits],
             np.array([0.0, 2000.0], np.float32), rtol=1e-6)


def test_epsilon_is_read_when_the_loss_is_built():
    target, output = onehot([1], 2), np.array([[1.0, 0.0]], np.float32)
    saved = K.epsilon()
    try:
        K.set_epsilon(1e-3)
        t, o = K.placeholder((None, 2)), K.placeholder((None, 2))
        loss = K.categorical_crossentropy(t, o)
    finally:
        K.set_epsilon(saved)
    (value,) = K.function([t, o], [loss])([target, output])
    np.testing.assert_allclose(value, [-np.log(1e-3)], rtol=1e-5)


def test_integer_one_hot_targets_are_cast():
    target = onehot([0, 2], 3, dtype=np.int32)
    output = uniform(2, 3, low=0.1, high=1.0)
    check_op(K.categorical_crossentropy, [target, output],
             ref_categorical(target, output).astype(np.float32), rtol=1e-5)


def test_categorical_crossentropy_shape_mismatch_names_both_shapes():
    with pytest.raises(ShapeError, match=r"categorical_crossentropy at .*test_nn.py.*\(\?\d+, 4\)"):
        K.categorical_crossentropy(K.placeholder((None, 3)), K.placeholder((None, 4)))


# --- sparse categorical crossentropy ------------------------------------------------------------


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("label_shape, output_shape, axis", [
    ((4,), (4, 5), -1), ((4, 1), (4, 5), -1), ((2, 3), (2, 3, 5), -1), ((2, 3, 1), (2, 3, 5), -1),
    ((2, 3), (2, 5, 3), 1)])
def test_sparse_categorical_crossentropy_matches_reference(from_logits, label_shape,
                                                           output_shape, axis):
    labels = rng.integers(0, 5, label_shape).astype(np.int32)
    output = uniform(*output_shape) if from_logits else \
        uniform(*output_shape, low=0.01, high=1.0)
    expected = ref_sparse(labels, output, from_logits, axis).astype(np.float32)
    check_op(lambda t, o: K.sparse_categorical_crossentropy(t, o, from_logits, axis),
             [labels, output], expected, rtol=1e-5, atol=1e-5)


def test_sparse_categorical_crossentropy_accepts_float_labels():
    labels = np.array([[2.0], [0.0], [1.0]], np.float32)
    output = uniform(3, 3, low=0.05, high=1.0)
    check_op(K.sparse_categorical_crossentropy, [labels, output],
             ref_sparse(labels, output).astype(np.float32), rtol=1e-5)


def test_sparse_label_out_of_range_is_reported_at_run_time():
    t, o = K.placeholder((None,), dtype="int32"), K.placeholder((None, 3))
    f = K.function([t, o], [K.sparse_categorical_crossentropy(t, o, from_logits=True)])
    with pytest.raises(ValueError, match=r"label value of 3 .*\[0, 3\)"):
        f([np.array([0, 3], np.int32), np.zeros((2, 3), np.float32)])


def test_sparse_labels_of_the_wrong_size_fail_when_built():
    with pytest.raises(ShapeError, match="one class per position"):
        K.sparse_categorical_crossentropy(K.placeholder((4, 2), dtype="int32"),
                                          K.placeholder((4, 5)))


def test_sparse_and_dense_losses_agree():
    labels = np.array([1, 0, 3], np.int32)
    logits = uniform(3, 4)
    dense = ref_categorical(onehot(labels, 4), logits, from_logits=True)
    check_op(lambda t, o: K.sparse_categorical_crossentropy(t, o, from_logits=True),
             [labels, logits], dense.astype(np.float32), rtol=1e-5)


# --- binary crossentropy ---------------------------------------------------------------------


@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_crossentropy_matches_reference(from_logits):
    target = uniform(4, 3, low=0.0, high=1.0)
    output = uniform(4, 3) if from_logits else uniform(4, 3, low=0.0, high=1.0)
    check_op(lambda t, o: K.binary_crossentropy(t, o, from_logits), [target, output],
             ref_binary(target, output, from_logits).astype(np.float32), rtol=1e-4, atol=1e-5)


def test_binary_crossentropy_extremes_are_finite():
    target = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    logits = np.array([-500.0, 500.0, 500.0, -500.0], np.float32)
    check_op(lambda t, o: K.binary_crossentropy(t, o, from_logits=True), [target, logits],
             np.array([500.0, 500.0, 0.0, 0.0], np.float32))
    probabilities = np.array([0.0, 1.0, 1.0, 0.0], np.float32)
    expected = ref_binary(target, probabilities).astype(np.float32)
    assert np.all(np.isfinite(expected))
    check_op(K.binary_crossentropy, [target, probabilities], expected, rtol=1e-3)


# --- gradients ----------------------------------------------------------------------------------


def _probabilities(*shape):
    return rng.uniform(0.05, 1.0, shape)


def _targets(*shape):
    return rng.uniform(0.0, 1.0, shape)


GRADIENT_CASES = [
    (lambda x: K.softmax(x), [rng.normal(size=(3, 4))]),
    (lambda x: K.softmax(x, axis=0), [rng.normal(size=(3, 4))]),
    (lambda x: K.l2_normalize(x, -1), [rng.normal(size=(3, 4))]),
    (lambda x: K.l2_normalize(x), [rng.normal(size=(2, 3, 2))]),
    (lambda t, o: K.categorical_crossentropy(t, o), [_targets(3, 4), _probabilities(3, 4)]),
    (lambda t, o: K.categorical_crossentropy(t, o, axis=1),
     [_targets(2, 4, 3), _probabilities(2, 4, 3)]),
    (lambda t, o: K.categorical_crossentropy(t, o, from_logits=True),
     [_targets(3, 4), rng.normal(size=(3, 4))]),
    (lambda t, o: K.categorical_crossentropy(t, o, from_logits=True, axis=1),
     [_targets(2, 4, 3), rng.normal(size=(2, 4, 3))]),
    (lambda t, o: K.binary_crossentropy(t, o), [_targets(3, 4), rng.uniform(0.05, 0.95, (3, 4))]),
    (lambda t, o: K.binary_crossentropy(t, o, from_logits=True),
     [_targets(3, 4), rng.normal(size=(3, 4))]),
]


@pytest.mark.parametrize("build, arrays", GRADIENT_CASES)
def test_gradients_match_finite_differences(build, arrays):
    check_gradients(build, arrays)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("label_shape, output_shape, axis", [((3,), (3, 4), -1),
                                                              ((2, 3, 1), (2, 3, 4), -1),
                                                              ((2, 3), (2, 4, 3), 1)])
def test_sparse_gradients_match_finite_differences(from_logits, label_shape, output_shape, axis):
    labels = rng.integers(0, 4, label_shape).astype(np.int32)
    output = rng.normal(size=output_shape) if from_logits else \
        rng.uniform(0.05, 1.0, output_shape)
    check_gradients(lambda t, o: K.sparse_categorical_crossentropy(t, o, from_logits, axis),
                    [labels, output])


def test_integer_labels_get_no_gradient():
    t, o = K.placeholder((None,), dtype="int32"), K.placeholder((None, 3))
    loss = K.sparse_categorical_crossentropy(t, o, from_logits=True)
    g_t, g_o = K.gradients(loss, [t, o])
    assert g_t is None and g_o is not None


def test_logits_gradient_is_one_fused_kernel():
    """The training hot path: d loss / d logits is softmax - target in one op."""
    t, o = K.placeholder((None, 10)), K.placeholder((None, 10))
    (g,) = K.gradients(K.sum(K.categorical_crossentropy(t, o, from_logits=True)), [o])
    assert g.op_name == "softmax_cross_entropy_grad"
    labels = onehot(rng.integers(0, 10, 4), 10)
    logits = uniform(4, 10)
    (value,) = K.function([t, o], [g])([labels, logits])
    np.testing.assert_allclose(value, ref_softmax(logits) - labels, rtol=1e-5, atol=1e-6)


SECOND_ORDER_CASES = [
    (lambda t, o: K.softmax(o) * t, [_targets(3, 4), rng.normal(size=(3, 4))]),
    (lambda t, o: K.categorical_crossentropy(t, o, from_logits=True),
     [_targets(3, 4), rng.normal(size=(3, 4))]),
    (lambda t, o: K.categorical_crossentropy(t, o), [_targets(3, 4), _probabilities(3, 4)]),
    (lambda t, o: K.sparse_categorical_crossentropy(K.cast(t * 0 + 2, "int32"), o,
                                                    from_logits=True),
     [_targets(3,), rng.normal(size=(3, 4))]),
]


@pytest.mark.parametrize("loss, arrays", SECOND_ORDER_CASES)
def test_hessian_vector_products_match_finite_differences(loss, arrays):
    """Differentiating the (fused) gradients again: d/d(t, o) of sum(w * d loss / d o)."""
    weights = K.constant(rng.uniform(-1, 1, arrays[1].shape), dtype="float64")

    def build(t, o):
        (g,) = K.gradients(K.sum(loss(t, o) * K.constant(1.5, dtype="float64")), [o])
        return K.sum(g * weights, axis=-1)
    check_gradients(build, arrays, rtol=1e-4)


def test_crossentropy_of_a_softmax_uses_its_logits_as_tf_keras_does():
    """A saturated softmax keeps an exact loss and a live gradient (no clipping)."""
    z = K.placeholder((1, 2))
    target = K.constant([[1.0, 0.0]])
    loss = K.sum(K.categorical_crossentropy(target, K.softmax(z)))
    value, grad = K.function([z], [loss] + K.gradients(loss, [z]))(
        [np.array([[-50.0, 50.0]], np.float32)])
    assert abs(float(value) - 100.0) < 1e-3
    np.testing.assert_allclose(grad, [[-1.0, 1.0]], atol=1e-6)
    sparse = K.sum(K.sparse_categorical_crossentropy(K.constant([0.0]), K.softmax(z)))
    assert abs(float(K.function([z], [sparse])([np.array([[-50.0, 50.0]], np.float32)])[0])
               - 100.0) < 1e-3
    binary = K.sum(K.binary_crossentropy(K.constant([[1.0, 0.0]]), K.sigmoid(z)))
    assert float(K.function([z], [binary])([np.array([[-50.0, 50.0]], np.float32)])[0]) > 99.0

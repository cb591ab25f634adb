"""K.gradients as a graph transformation: semantics, scale, higher order, training."""
import numpy as np
import pytest

from graphk import backend as K
from graphk.ir.graph import topological_order


def test_gradients_are_symbolic_tensors_of_the_variables_shape_and_dtype():
    w = K.variable(np.ones((3, 2)), name="w")
    x = K.placeholder((None, 3), name="x")
    loss = K.sum(K.dot(x, w))
    (g,) = K.gradients(loss, [w])
    assert K.is_tensor(g) and K.int_shape(g) == (3, 2) and K.dtype(g) == "float32"
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    (value,) = K.function([x], [g])([data])
    np.testing.assert_allclose(value, np.repeat(data.sum(0)[:, None], 2, axis=1))


def test_unreached_and_integer_tensors_get_none():
    w = K.variable(np.ones(3), name="w")
    unused = K.variable(np.ones(3), name="unused")
    counts = K.placeholder((3,), dtype="int32")
    loss = K.sum(w * K.cast(counts, "float32"))
    g_w, g_unused, g_counts = K.gradients(loss, [w, unused, counts])
    assert g_w is not None and g_unused is None and g_counts is None
    assert K.gradients(K.sum(K.cast(K.argmax(K.reshape(w, (1, 3))), "float32")), [w]) == [None]


def test_non_scalar_loss_is_summed_and_intermediates_can_be_targets():
    x = K.placeholder((None, 2))
    h = x * 3.0
    y = K.square(h)
    g_x, g_h = K.gradients(y, [x, h])
    data = np.array([[1.0, 2.0]], dtype=np.float32)
    gx, gh = K.function([x], [g_x, g_h])([data])
    np.testing.assert_allclose(gh, 2 * 3 * data)
    np.testing.assert_allclose(gx, 2 * 9 * data)


def test_stop_gradient_blocks_tensors_and_lists():
    w = K.variable(2.0)
    assert K.gradients(K.stop_gradient(w) * w, [w])[0] is not None
    assert float(K.eval(K.gradients(K.stop_gradient(w) * w, [w])[0])) == 2.0
    a, b = K.stop_gradient([w, w * 2.0])
    assert K.gradients(a + b, [w]) == [None]


def test_float16_gradient_dtype():
    w = K.variable(np.ones(3), dtype="float16")
    (g,) = K.gradients(K.sum(K.square(w)), [w])
    assert K.dtype(g) == "float16"
    np.testing.assert_allclose(K.eval(g), 2 * np.ones(3))


def test_heavy_fan_out_stays_linear():
    x = K.variable(np.full(2, 0.5))
    y = x
    for _ in range(60):  # 2**60 paths from x to the loss
        y = K.sin(y) * y + y
    loss = K.sum(y)
    forward = len(topological_order([loss]))
    (g,) = K.gradients(loss, [x])
    backward = len(topological_order([g])) - forward
    assert backward <= 6 * forward
    assert np.all(np.isfinite(K.eval(g)))


def _mlp(x, params, activation=K.tanh):
    w1, b1, w2, b2 = params
    return K.dot(activation(K.dot(x, w1) + b1), w2) + b2


def test_hessian_vector_product_of_a_small_mlp():
    rng = np.random.default_rng(0)
    shapes = [(4, 5), (5,), (5, 3), (3,)]
    values = [rng.normal(0, 0.5, s) for s in shapes]
    params = [K.variable(v, dtype="float64") for v in values]
    x = K.constant(rng.normal(size=(6, 4)), dtype="float64")
    target = K.constant(rng.normal(size=(6, 3)), dtype="float64")
    loss = K.mean(K.square(_mlp(x, params) - target))
    grads = K.gradients(loss, params)
    vectors = [rng.normal(size=s) for s in shapes]
    dot = sum(K.sum(g * K.constant(v, dtype="float64")) for g, v in zip(grads, vectors))
    hvp = K.function([], K.gradients(dot, params))([])
    grad_fn = K.function([], grads)
    eps = 1e-5

    def grads_at(shift):
        for p, v, d in zip(params, values, vectors):
            K.set_value(p, v + shift * d)
        return grad_fn([])

    plus, minus = grads_at(eps), grads_at(-eps)
    grads_at(0.0)
    for got, p_, m_ in zip(hvp, plus, minus):
        np.testing.assert_allclose(got, (p_ - m_) / (2 * eps), rtol=1e-5, atol=1e-7)


def test_mlp_trained_by_sgd_with_gradients_checked():
    rng = np.random.default_rng(1)
    n, d, hidden, classes = 256, 784, 64, 10
    centers = rng.normal(size=(classes, d))
    labels = rng.integers(0, classes, n)
    data = (centers[labels] + rng.normal(size=(n, d))).astype(np.float32)
    onehot = np.eye(classes, dtype=np.float32)[labels]

    x = K.placeholder((None, d), name="x")
    y = K.placeholder((None, classes), name="y")
    params = [K.variable(rng.normal(0, 0.05, (d, hidden)), name="w1"), K.zeros((hidden,)),
              K.variable(rng.normal(0, 0.05, (hidden, classes)), name="w2"), K.zeros((classes,))]
    logits = _mlp(x, params, K.relu)
    loss = K.mean(K.categorical_crossentropy(y, K.softmax(logits)))
    grads = K.gradients(loss, params)

    # The gradients the step uses agree with finite differences on a few coordinates.
    loss_fn = K.function([x, y], [loss])
    g_w2 = K.function([x, y], [grads[2]])([data[:32], onehot[:32]])[0]
    w2 = K.get_value(params[2]).astype(np.float64)
    for i, j in [(0, 0), (5, 3), (63, 9)]:
        for sign, store in ((1, "plus"), (-1, "minus")):
            shifted = w2.copy()
            shifted[i, j] += sign * 1e-2
            K.set_value(params[2], shifted)
            if store == "plus":
                plus = float(loss_fn([data[:32], onehot[:32]])[0])
            else:
                minus = float(loss_fn([data[:32], onehot[:32]])[0])
        K.set_value(params[2], w2)
        assert abs((plus - minus) / 2e-2 - g_w2[i, j]) < 1e-3 + 1e-2 * abs(g_w2[i, j])

    step = K.function([x, y], [loss],
                      updates=[K.update_sub(p, 0.1 * g) for p, g in zip(params, grads)])
    first = float(step([data, onehot])[0])
    for _ in range(30):
        last = float(step([data, onehot])[0])
    assert last < 0.2 * first


@pytest.mark.parametrize("n_layers", [3])
def test_gradient_graph_size_is_a_small_multiple_of_the_forward(n_layers):
    x = K.placeholder((None, 8))
    h = x
    params = []
    for _ in range(n_layers):
        w = K.variable(np.ones((8, 8)))
        params.append(w)
        h = K.relu(K.dot(h, w))
    loss = K.mean(K.square(h))
    forward = len(topological_order([loss]))
    grads = K.gradients(loss, params)
    total = len(topological_order(grads + [loss]))
    assert total - forward <= 4 * forward

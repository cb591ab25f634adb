"""Cases with a backward pass: W3 MLP SGD step, W6 SimpleRNN, W7 conv2d (see cases.py).

The hand-written NumPy versions are the ones benchmarks/bench_mlp_step.py,
bench_rnn.py and bench_conv2d.py check graphk against: a forward pass and a
hand-derived backward. The W3 step updates weights in place, so its checked
result is the loss and the weights after one step (`run.state`).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .cases import Case, Unavailable, graphk_function, jax_module, pytensor_module, register

LEARNING_RATE = 0.01


# --- W3: one SGD step of a 784-256-256-10 MLP ----------------------------------------------

def _w3_make(sizes):
    batch, widths = sizes["W3"]
    rng = np.random.default_rng(0)
    params = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        params.append(rng.normal(0, np.sqrt(2 / fan_in), (fan_in, fan_out)).astype(np.float32))
        params.append(np.zeros(fan_out, np.float32))
    x = rng.normal(size=(batch, widths[0])).astype(np.float32)
    y = np.eye(widths[-1], dtype=np.float32)[rng.integers(0, widths[-1], batch)]
    return {"x": x, "y": y, "params": params}


def mlp_sgd_step_numpy(x, y, params, learning_rate=LEARNING_RATE):
    """Forward, hand-derived backward, in-place SGD; returns the loss before the step."""
    w1, b1, w2, b2, w3, b3 = params
    a1 = x @ w1 + b1
    h1 = np.maximum(a1, 0)
    a2 = h1 @ w2 + b2
    h2 = np.maximum(a2, 0)
    logits = h2 @ w3 + b3
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    loss = -(y * (shifted - np.log(total))).sum(axis=1).mean()
    d3 = (exp / total - y) / x.shape[0]
    d2 = (d3 @ w3.T) * (a2 > 0)
    d1 = (d2 @ w2.T) * (a1 > 0)
    for param, grad in ((w3, h2.T @ d3), (b3, d3.sum(0)), (w2, h1.T @ d2), (b2, d2.sum(0)),
                        (w1, x.T @ d1), (b1, d1.sum(0))):
        param -= learning_rate * grad
    return loss


def _w3_reference(data):
    params = [p.astype(np.float64) for p in data["params"]]
    loss = mlp_sgd_step_numpy(data["x"].astype(np.float64), data["y"], params)
    return [loss] + params


def _w3_numpy(data, lowering):
    params = [p.copy() for p in data["params"]]
    x, y = data["x"], data["y"]
    state = {}

    def run():
        state["loss"] = mlp_sgd_step_numpy(x, y, params)
    run.state = lambda: [state["loss"]] + params
    return run


def _w3_graphk(data, lowering):
    from graphk import backend as K

    x = K.placeholder((None, data["x"].shape[1]), name="x")
    y = K.placeholder((None, data["y"].shape[1]), name="y")
    params = [K.variable(p.copy()) for p in data["params"]]
    h = x
    for i in range(0, len(params), 2):
        h = K.dot(h, params[i]) + params[i + 1]
        if i + 2 < len(params):
            h = K.relu(h)
    loss = K.mean(K.categorical_crossentropy(y, h, from_logits=True))
    grads = K.gradients(loss, params)
    updates = [K.update_sub(p, LEARNING_RATE * g) for p, g in zip(params, grads)]
    fn = graphk_function([x, y], [loss], lowering, updates=updates, name="w3_sgd_step")
    feeds, state = [data["x"], data["y"]], {}

    def run():
        state["loss"] = fn(feeds)[0]
    run.state = lambda: [state["loss"]] + [K.get_value(p) for p in params]
    return run


def _w3_jax(data, lowering):
    jax = jax_module()
    jnp = jax.numpy

    def loss_of(params, x, y):
        h = x
        for i in range(0, len(params), 2):
            h = h @ params[i] + params[i + 1]
            if i + 2 < len(params):
                h = jax.nn.relu(h)
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(h), axis=1))

    @jax.jit
    def step(params, x, y):
        loss, grads = jax.value_and_grad(loss_of)(params, x, y)
        return loss, [p - LEARNING_RATE * g for p, g in zip(params, grads)]
    x, y = jax.device_put(data["x"]), jax.device_put(data["y"])
    state = {"params": [jax.device_put(p) for p in data["params"]]}

    def run():
        state["loss"], state["params"] = step(state["params"], x, y)
        jax.block_until_ready(state["params"])
    run.state = lambda: [state["loss"]] + [np.asarray(p) for p in state["params"]]
    return run


def _w3_pytensor(data, lowering):
    pytensor_module()
    import pytensor
    import pytensor.tensor as pt

    params = [pytensor.shared(p.copy()) for p in data["params"]]
    x, y = pt.matrix("x", dtype="float32"), pt.matrix("y", dtype="float32")
    h = x
    for i in range(0, len(params), 2):
        h = pt.dot(h, params[i]) + params[i + 1]
        if i + 2 < len(params):
            h = pt.maximum(h, 0)
    shifted = h - pt.max(h, axis=1, keepdims=True)
    log_softmax = shifted - pt.log(pt.sum(pt.exp(shifted), axis=1, keepdims=True))
    loss = -pt.mean(pt.sum(y * log_softmax, axis=1))
    grads = pytensor.grad(loss, params)
    fn = pytensor.function([x, y], loss, updates=[(p, p - np.float32(LEARNING_RATE) * g)
                                                  for p, g in zip(params, grads)])
    state = {}

    def run():
        state["loss"] = fn(data["x"], data["y"])
    run.state = lambda: [state["loss"]] + [p.get_value() for p in params]
    return run


register(Case("W3", "W3", "MLP SGD step (relu, softmax crossentropy)", make=_w3_make,
              reference=_w3_reference, builders={"graphk": _w3_graphk, "numpy": _w3_numpy,
                                                 "jax": _w3_jax, "pytensor": _w3_pytensor}))


# --- W6: SimpleRNN forward + backward ------------------------------------------------------

def _w6_make(sizes):
    steps, batch, features, units = sizes["W6"]
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=(batch, steps, features)).astype(np.float32),
            "h0": np.zeros((batch, units), np.float32),
            "target": rng.normal(size=(batch, steps, units)).astype(np.float32),
            "w": rng.normal(0, 1 / np.sqrt(features), (features, units)).astype(np.float32),
            "u": rng.normal(0, 1 / np.sqrt(units), (units, units)).astype(np.float32),
            "b": np.zeros(units, np.float32)}


def rnn_forward_backward_numpy(x, h0, target, w, u, b):
    """Loss sum(outputs * target) and its gradients wrt w, u, b: forward loop and BPTT."""
    steps = x.shape[1]
    hs = np.empty((steps + 1,) + h0.shape, dtype=h0.dtype)
    hs[0] = h0
    for t in range(steps):
        hs[t + 1] = np.tanh(x[:, t] @ w + hs[t] @ u + b)
    loss = np.sum(hs[1:].transpose(1, 0, 2) * target)
    dw, du, db, dh = np.zeros_like(w), np.zeros_like(u), np.zeros_like(b), np.zeros_like(h0)
    for t in range(steps - 1, -1, -1):
        dh += target[:, t]
        dpre = dh * (1 - hs[t + 1] * hs[t + 1])
        dw += x[:, t].T @ dpre
        du += hs[t].T @ dpre
        db += dpre.sum(axis=0)
        dh = dpre @ u.T
    return [loss, dw, du, db]


_W6_ORDER = ("x", "h0", "target", "w", "u", "b")


def _w6_graphk(data, lowering):
    from graphk import backend as K

    x = K.placeholder((None, None, data["x"].shape[2]), name="x")
    h0 = K.placeholder((None, data["u"].shape[0]), name="h0")
    target = K.placeholder((None, None, data["u"].shape[0]), name="target")
    weights = [K.variable(data[k], name=k) for k in ("w", "u", "b")]

    def step(x_t, states):
        h = K.tanh(K.dot(x_t, weights[0]) + K.dot(states[0], weights[1]) + weights[2])
        return h, [h]
    _, outputs, _ = K.rnn(step, x, [h0])
    loss = K.sum(outputs * target)
    fn = graphk_function([x, h0, target], [loss] + K.gradients(loss, weights), lowering,
                         name="w6_rnn")
    feeds = [data["x"], data["h0"], data["target"]]
    return lambda: fn(feeds)


def _w6_jax(data, lowering):
    jax = jax_module()
    jnp = jax.numpy

    def loss_of(weights, x, h0, target):
        w, u, b = weights

        def step(h, x_t):
            h = jnp.tanh(x_t @ w + h @ u + b)
            return h, h
        _, hs = jax.lax.scan(step, h0, jnp.swapaxes(x, 0, 1))
        return jnp.sum(jnp.swapaxes(hs, 0, 1) * target)
    grad = jax.jit(jax.value_and_grad(loss_of))
    args = [jax.device_put(data[k]) for k in ("x", "h0", "target")]
    weights = [jax.device_put(data[k]) for k in ("w", "u", "b")]

    def run():
        loss, grads = grad(weights, *args)
        return [np.asarray(loss)] + [np.asarray(g) for g in grads]
    return run


def _w6_pytensor(data, lowering):
    pytensor_module()
    import pytensor
    import pytensor.tensor as pt

    x, target = pt.tensor3("x", dtype="float32"), pt.tensor3("target", dtype="float32")
    h0 = pt.matrix("h0", dtype="float32")
    weights = [pytensor.shared(data[k], name=k) for k in ("w", "u", "b")]
    w, u, b = weights
    hs, _ = pytensor.scan(lambda x_t, h: pt.tanh(pt.dot(x_t, w) + pt.dot(h, u) + b),
                          sequences=x.dimshuffle(1, 0, 2), outputs_info=h0)
    loss = pt.sum(hs.dimshuffle(1, 0, 2) * target)
    fn = pytensor.function([x, h0, target], [loss] + pytensor.grad(loss, weights))
    return lambda: fn(data["x"], data["h0"], data["target"])


register(Case("W6", "W6", "SimpleRNN forward + backward", make=_w6_make,
              reference=lambda d: rnn_forward_backward_numpy(
                  *[d[k].astype(np.float64) for k in _W6_ORDER]),
              builders={"graphk": _w6_graphk, "jax": _w6_jax, "pytensor": _w6_pytensor,
                        "numpy": lambda d, lowering: lambda: rnn_forward_backward_numpy(
                            *[d[k] for k in _W6_ORDER])},
              tolerance=(2e-3, 2e-2)))


# --- W7: conv2d forward + backward ---------------------------------------------------------

def _w7_make(sizes):
    shape, filters = sizes["W7"]
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=shape).astype(np.float32),
            "kernel": rng.normal(0, 0.3, (3, 3, shape[-1], filters)).astype(np.float32)}


def conv_forward_backward_numpy(x, kernel):
    """Loss sum(relu(conv)), d kernel and d x: im2col, matmuls, col2im by strided adds."""
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    oh, ow = h - kh + 1, w - kw + 1
    columns = sliding_window_view(x, (kh, kw), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)
    columns = columns.reshape(n * oh * ow, kh * kw * c)
    weights = kernel.reshape(kh * kw * c, f)
    z = columns @ weights
    loss = np.maximum(z, 0).sum()
    dz = (z > 0).astype(x.dtype)
    d_kernel = (columns.T @ dz).reshape(kernel.shape)
    d_columns = (dz @ weights.T).reshape(n, oh, ow, kh, kw, c)
    d_x = np.zeros_like(x)
    for i in range(kh):
        for j in range(kw):
            d_x[:, i:i + oh, j:j + ow, :] += d_columns[:, :, :, i, j, :]
    return [loss, d_kernel, d_x]


def _w7_graphk(data, lowering):
    from graphk import backend as K

    x = K.placeholder((None,) + data["x"].shape[1:], name="x")
    kernel = K.variable(data["kernel"], name="kernel")
    loss = K.sum(K.relu(K.conv2d(x, kernel, padding="valid", data_format="channels_last")))
    fn = graphk_function([x], [loss] + K.gradients(loss, [kernel, x]), lowering,
                         name="w7_conv2d")
    feeds = [data["x"]]
    return lambda: fn(feeds)


def _w7_jax(data, lowering):
    jax = jax_module()

    def loss_of(kernel, x):
        z = jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jax.numpy.sum(jax.nn.relu(z))
    grad = jax.jit(jax.value_and_grad(loss_of, argnums=(0, 1)))
    kernel, x = jax.device_put(data["kernel"]), jax.device_put(data["x"])

    def run():
        loss, (d_kernel, d_x) = grad(kernel, x)
        return [np.asarray(loss), np.asarray(d_kernel), np.asarray(d_x)]
    return run


def _w7_pytensor(data, lowering):
    pytensor_module()
    import pytensor
    import pytensor.tensor as pt
    from pytensor.tensor.signal import convolve2d

    if data["x"].shape[-1] != 1:
        raise Unavailable("the PyTensor W7 is written for one input channel")
    x = pt.tensor4("x", dtype="float32")
    kernel = pytensor.shared(data["kernel"], name="kernel")
    # one image per (n, f) pair: (N, 1, H, W) with (1, F, 3, 3); convolve2d flips its
    # filter (a true convolution), so the kernel is flipped to get conv2d's correlation
    filters = kernel[::-1, ::-1, 0, :].dimshuffle(2, 0, 1)[None]
    z = convolve2d(x[:, None, :, :, 0], filters, mode="valid")
    loss = pt.sum(pt.maximum(z, 0))
    fn = pytensor.function([x], [loss] + pytensor.grad(loss, [kernel, x]))
    return lambda: fn(data["x"])


register(Case("W7", "W7", "conv2d forward + backward, loss sum(relu(conv))", make=_w7_make,
              reference=lambda d: conv_forward_backward_numpy(d["x"].astype(np.float64),
                                                 d["kernel"].astype(np.float64)),
              builders={"graphk": _w7_graphk, "jax": _w7_jax, "pytensor": _w7_pytensor,
                        "numpy": lambda d, lowering: lambda: conv_forward_backward_numpy(
                            d["x"], d["kernel"])},
              tolerance=(1e-3, 1e-2),
              notes={"quick_skip": {"pytensor": "PyTensor 3 runs this convolve2d and its "
                                                "gradient in Numba object mode, seconds a call"}}))

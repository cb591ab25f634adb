"""Long chains through every stage without recursion, and fusion's cycle checks in
linear work.

The figures for chains of 1k, 10k and 100k nodes (CPU seconds per stage) are
measured by a command, not asserted here (see the README's reliability section).
Here: a chain far longer than Python's recursion limit goes through build,
K.gradients, every pass, both lowerings and a call; and fusion's work per graph
node is bounded (it was quadratic in the region size: every cycle check walked
every member of a region lying wholly before the regions it protected).
"""
import numpy as np

from graphk import backend as K
from graphk.passes import fusion


def _chain(n, backend):
    """A forward chain of about n nodes (tanh, scale, sigmoid + skip), its loss and
    the gradient of the loss, compiled with the default passes."""
    x = K.placeholder((None, 8))
    w = K.variable(np.full((1, 8), 0.5))
    y = x * w
    for i in range(n // 3):
        y = K.tanh(y) if i % 2 else y * 1.0001 + K.sigmoid(y)
    loss = K.sum(y)
    return K.function([x], [loss, K.gradients(loss, [w])[0]], backend=backend)


def _reference(data, n):
    y = data * 0.5
    dy_dw = data.copy()  # d y / d w, elementwise (w broadcasts over rows)
    for i in range(n // 3):
        if i % 2:
            y = np.tanh(y)
            dy_dw = dy_dw * (1 - y * y)
        else:
            s = 1 / (1 + np.exp(-y))
            dy_dw = dy_dw * (1.0001 + s * (1 - s))
            y = y * 1.0001 + s
    return y.sum(), dy_dw.sum(axis=0, keepdims=True)


def test_a_chain_longer_than_the_recursion_limit_compiles_differentiates_and_runs():
    n = 1200  # about 3,000 graph nodes with the gradient: recursion would fail
    data = np.random.default_rng(0).standard_normal((3, 8)).astype("float32")
    want_loss, want_grad = _reference(data.astype(np.float64), n)
    for backend in ("numpy", "llvm"):
        loss, grad = _chain(n, backend)([data])
        np.testing.assert_allclose(loss, want_loss, rtol=1e-3)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-3, atol=1e-5)


def test_fusion_work_per_node_is_bounded(monkeypatch):
    counts = {"find": 0, "nodes": 0}
    find, init = fusion._Regions.find, fusion._Regions.__init__

    def counting_find(self, node):
        counts["find"] += 1
        return find(self, node)

    def counting_init(self, graph):
        counts["nodes"] += len(graph.nodes)
        init(self, graph)

    monkeypatch.setattr(fusion._Regions, "find", counting_find)
    monkeypatch.setattr(fusion._Regions, "__init__", counting_init)
    _chain(1800, "numpy")
    # ~70 lookups per node now; the walk over whole earlier regions made it ~3,000
    assert counts["find"] < 300 * counts["nodes"], counts

"""codegen/fused_numpy.py: regions reducing along their rows are blocked by whole rows.

A row softmax crossentropy (max, exp, sum, log and the picked logit per row) is
split along its rows into blocks of ROW_BLOCK_BYTES, equal in size; a per-row
result that drops rank (keepdims=False) stays blocked. Results match NumPy
across block boundaries, with odd row counts and a tail block.
"""
from __future__ import annotations

import numpy as np
import pytest
from graphk import backend as K
from graphk.codegen import fused_numpy


def _sparse_loss(classes):
    logits = K.placeholder((None, classes), name="logits")
    labels = K.placeholder((None,), dtype="int32", name="labels")
    return [logits, labels], K.sparse_categorical_crossentropy(labels, logits, from_logits=True)


def _onehot_loss(classes):
    logits = K.placeholder((None, classes), name="logits")
    labels = K.placeholder((None,), dtype="int32", name="labels")
    loss = K.logsumexp(logits, axis=1) - K.sum(K.one_hot(labels, classes) * logits, axis=1)
    return [logits, labels], loss


def _reference(logits, labels):
    x = logits.astype(np.float64)
    peak = x.max(axis=1, keepdims=True)
    lse = np.log(np.exp(x - peak).sum(axis=1)) + peak[:, 0]
    return lse - x[np.arange(len(labels)), labels]


def _data(rows, classes, seed=0):
    rng = np.random.default_rng(seed)
    return ((3 * rng.standard_normal((rows, classes))).astype(np.float32),
            rng.integers(0, classes, rows).astype(np.int32))


def _sources(fn) -> list:
    kernels = [k for k in fn._executable.run.__globals__.values()
               if type(k).__name__ == "FusedKernel"]
    return [s for k in kernels for s in k.sources.values()]


@pytest.fixture
def fresh_plans(monkeypatch):
    """Plans made under this test's block sizes (not shared with other tests' programs)."""
    monkeypatch.setattr(fused_numpy, "_SHARED", {})
    return monkeypatch


@pytest.mark.parametrize("build", [_sparse_loss, _onehot_loss])
@pytest.mark.parametrize("rows", [1, 7, 1031])
def test_row_losses_match_numpy_across_blocks_with_odd_rows(build, rows, fresh_plans):
    classes = 37
    # blocks of 3 rows (and a region this small is blocked at all): many boundaries, a tail
    fresh_plans.setattr(fused_numpy, "WHOLE_BELOW", 0)
    fresh_plans.setattr(fused_numpy, "ROW_BLOCK_BYTES", 3 * classes * 4)
    inputs, loss = build(classes)
    fn = K.function(inputs, [loss], backend="numpy")
    logits, labels = _data(rows, classes)
    np.testing.assert_allclose(fn([logits, labels])[0], _reference(logits, labels),
                               rtol=1e-5, atol=1e-5)
    if rows > 3:
        assert any("for s in range(0, " in s for s in _sources(fn))


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_w2_sized_loss_at_the_default_block_size(backend, fresh_plans):
    """Over WHOLE_BELOW: blocked on NumPy by equal blocks of whole rows (1031 rows, odd)."""
    inputs, loss = _onehot_loss(300)
    fn = K.function(inputs, [loss], backend=backend)
    logits, labels = _data(1031, 300, seed=1)
    np.testing.assert_allclose(fn([logits, labels])[0], _reference(logits, labels),
                               rtol=1e-5, atol=1e-5)
    if backend == "numpy":
        assert any("for s in range(0, " in s for s in _sources(fn))


def _plan(build_body, shapes):
    """choose_blocking of the one fused region of build_body's function, for these shapes."""
    args = [K.placeholder((None,) * len(s), name=f"a{k}") for k, s in enumerate(shapes)]
    fn = K.function(args, [build_body(*args)], backend="numpy")
    node = next(n for n in fn.ir.nodes if n.op.name == "fused")
    body = node.attrs["body"]
    return fused_numpy.choose_blocking(body, fused_numpy.runtime_shapes(body, shapes))


def test_a_row_region_takes_equal_blocks_of_whole_rows():
    blocking = _plan(lambda x: K.logsumexp(x, axis=1), [(4096, 1000)])
    blocked, per_block, rows = blocking
    assert rows == 4096 and rows % per_block == 0
    assert per_block * 1000 * 4 <= fused_numpy.ROW_BLOCK_BYTES  # balancing never grows it
    assert per_block > fused_numpy.BLOCK_BYTES // (1000 * 4)  # more rows than a plain block
    assert any(v.type.ndim == 1 for v in blocked)  # the per-row result (keepdims=False)


def test_an_elementwise_region_keeps_the_plain_block_size():
    blocked, per_block, rows = _plan(lambda x: K.exp(x) * 2, [(4096, 1000)])
    assert per_block == fused_numpy.BLOCK_BYTES // (1000 * 4)


@pytest.mark.parametrize("build, reference", [
    (lambda x: K.sum(x, axis=0) * 2, lambda x: x.sum(0) * 2),  # sums over the blocked axis
    # a per-row sum (n,) broadcast against (n, n) lines up with the columns, not the rows
    (lambda x: x - K.sum(x, axis=1), lambda x: x - x.sum(1)),
])
def test_regions_that_cannot_be_split_by_rows_run_whole(build, reference, fresh_plans):
    fresh_plans.setattr(fused_numpy, "WHOLE_BELOW", 0)
    assert _plan(build, [(600, 600)]) is None
    x = K.placeholder((None, None), name="x")
    fn = K.function([x], [build(x)], backend="numpy")
    data = np.random.default_rng(2).normal(size=(601, 601)).astype(np.float32)
    np.testing.assert_allclose(fn([data])[0], reference(data), rtol=1e-4, atol=1e-3)

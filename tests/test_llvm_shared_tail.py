"""Stages that share the row loop while others run after it (plan.py _shared_group).

A crossentropy's rows (max, sum of exp, loss, gradient) share the row loop even
though its mean over the rows and a bias gradient summed over them reduce across
it: those accumulate row by row inside the loop, and what reads them (the mean
output, the bias update) runs after the loop as a tail stage. Such a kernel is
never split over threads (each part would run the tail again), its scratch is
reset on every call, and two threads may call it at once (buffers.py)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from graphk import threads
from graphk.codegen.llvm.plan import make_plan
from graphk.ir.ops import elementwise as ew
from graphk.ir.ops.fused import evaluate_body
from graphk.ir.ops.reduce import reduce_max, reduce_mean, reduce_sum
from graphk.ir.shapes import SymDim
from llvm_regions import fused_body, llvm_kernel

CLASSES = 10


def _crossentropy(dtype):
    """Logits + bias, the mean crossentropy against one-hot y, its logits gradient and
    the bias update (W3's last region)."""
    rows = SymDim()

    def build(z, b, y):
        logits = ew.add(z, b)
        shifted = ew.sub(logits, reduce_max(logits, (1,), True))
        exp = ew.exp(shifted)
        total = reduce_sum(exp, (1,), True)
        loss = reduce_mean(ew.neg(reduce_sum(ew.mul(y, ew.sub(shifted, ew.log(total))),
                                             (1,), False)), (0,), False)
        grad = ew.sub(ew.div(exp, total), y)
        return loss, grad, ew.sub(b, ew.mul(reduce_sum(grad, (0,), False), 0.01))
    return fused_body(build, (dtype, (rows, CLASSES)), (dtype, (CLASSES,)),
                      (dtype, (rows, CLASSES)))


def _bias_gradient(dtype):
    rows = SymDim()

    def build(d, a, b):
        g = ew.relu_grad(d, a)
        return g, ew.sub(b, ew.mul(reduce_sum(g, (0,), False), 0.1))
    return fused_body(build, (dtype, (rows, 32)), (dtype, (rows, 32)), (dtype, (32,)))


def _feeds(rng, dtype, rows):
    z = rng.standard_normal((rows, CLASSES)).astype(dtype) * 3
    b = rng.standard_normal(CLASSES).astype(dtype)
    y = np.eye(CLASSES, dtype=dtype)[rng.integers(0, CLASSES, rows)]
    return [z, b, y]


def _check(got, expected, dtype):
    tolerance = 2e-5 if dtype == "float32" else 1e-12
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=tolerance, atol=tolerance)


def test_crossentropy_rows_share_the_row_loop_and_the_mean_and_bias_update_follow():
    body, _ = _crossentropy("float32")
    plan = make_plan(body)
    assert plan.depth == 1
    tails = [plan.stages[s] for s in plan.tail_stages(1)]
    assert [stage.root.type.ndim for stage in tails] == [0, 1]  # the mean, the bias update
    assert all(stage.kind == "output" for stage in tails)
    assert len(plan.shared_stages(1)) == len(plan.stages) - 2
    assert not plan.splittable


def test_bias_gradient_accumulates_inside_the_loop_that_stores_the_gradient():
    body, _ = _bias_gradient("float32")
    plan = make_plan(body)
    assert plan.depth == 2  # one nest over (rows, columns) for the reduce and the store
    assert [plan.stages[s].kind for s in plan.shared_stages(2)] == ["reduce", "output"]
    assert [plan.stages[s].root.type.ndim for s in plan.tail_stages(2)] == [1]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shared_rows_with_tail_stages_match_numpy(dtype):
    body, node = _crossentropy(dtype)
    kernel = llvm_kernel(node)
    rng = np.random.default_rng(3)
    for rows in (1, 7, 130):
        feeds = _feeds(rng, dtype, rows)
        _check(kernel(*feeds), evaluate_body(body, feeds), dtype)
        feeds[0] = np.asfortranarray(feeds[0])  # strided rows: the generic entry
        _check(kernel(*feeds), evaluate_body(body, feeds), dtype)


def test_bias_gradient_in_one_nest_matches_numpy():
    body, node = _bias_gradient("float64")
    kernel = llvm_kernel(node)
    rng = np.random.default_rng(4)
    for rows in (1, 9, 257):
        feeds = [rng.standard_normal((rows, 32)), rng.standard_normal((rows, 32)),
                 rng.standard_normal(32)]
        _check(kernel(*feeds), evaluate_body(body, feeds), "float64")


def test_a_kernel_with_tail_stages_is_never_split_over_threads():
    body, node = _crossentropy("float32")
    kernel = llvm_kernel(node)
    feeds = _feeds(np.random.default_rng(5), "float32", 20_000)  # large enough to split
    before = threads.get_num_threads()
    threads.set_num_threads(2)
    try:
        got = kernel(*feeds)
    finally:
        threads.set_num_threads(before)
    _check(got, evaluate_body(body, feeds), "float32")


def test_scratch_is_reset_between_calls_and_private_to_each_thread():
    body, node = _crossentropy("float64")
    kernel = llvm_kernel(node)
    rng = np.random.default_rng(6)
    inputs = [_feeds(rng, "float64", rows) for rows in (50, 50, 50, 50)]
    expected = [evaluate_body(body, feeds) for feeds in inputs]
    for feeds, want in zip(inputs, expected):  # sums restart from zero on every call
        _check(kernel(*feeds), want, "float64")
    failures = []

    def worker(feeds, want):
        for _ in range(200):
            got = kernel(*feeds)
            if not all(np.allclose(g, e, rtol=1e-12, atol=1e-12) for g, e in zip(got, want)):
                failures.append(got)
                return
    workers = [threading.Thread(target=worker, args=pair) for pair in zip(inputs, expected)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert not failures


def test_stages_with_nothing_in_common_do_not_share_loops():
    """Two Adam-like updates whose leading dims happen to agree read nothing in common
    but scalars: sharing their (3, 3) loops would only stop each from running as one
    coalesced loop, so the plan keeps them apart."""
    def build(p, g, q, h, lr):
        return ew.sub(p, ew.mul(lr, g)), ew.sub(q, ew.mul(lr, h))
    body, _ = fused_body(build, ("float32", (3, 3, 1, 32)), ("float32", (3, 3, 1, 32)),
                         ("float32", (3, 3, 32, 64)), ("float32", (3, 3, 32, 64)),
                         ("float32", ()))
    assert make_plan(body).depth == 0


def test_auto_runs_a_small_crossentropy_region_natively():
    """W3's batch, 128 rows of 10 classes: ~50 us on NumPy (five reductions), ~20 native;
    the cost model must see it (codegen/llvm/cost.py)."""
    from graphk.codegen.llvm import cost
    from graphk.codegen.llvm.extents import value_shapes
    body, _ = _crossentropy("float32")
    plan = make_plan(body)
    shapes = value_shapes(body, _feeds(np.random.default_rng(7), "float32", 128))
    extents = [shapes[stage.root] for stage in plan.stages]
    assert not cost.numpy_is_faster(body, shapes, extents, plan.shared)

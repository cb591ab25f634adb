"""matmul_update: the SGD-update rule (IR in, IR out), its kernel, and the in-place write
into a variable's buffer (codegen/in_place.py) only when nothing else sees the old value."""
from __future__ import annotations

import numpy as np
import pytest
from graphk import backend as K
from graphk.codegen.in_place import in_place_nodes
from graphk.ir.ops import blas_gemm
from graphk.passes.matmul_update import fold_products_into_updates
from test_pass_helpers import check_pass, unchanged

from harness import BACKEND

RNG = np.random.default_rng(0)


def _graph(value_lines: str, update: str = "%new", extra_inputs: str = "",
           scale: str = "0.01", dtype: str = "float32", result: str = "%x") -> str:
    return f"""graph @f(%x, %d{extra_inputs}) {{
  %x = placeholder {{name="x", default=none}} : {dtype}[8,3]
  %d = placeholder {{name="d", default=none}} : {dtype}[8,4]
  %w = variable {{name="w"}} : {dtype}[3,4]
  %lr = constant {{value=dense<{dtype}[]>{scale}}} : {dtype}[]
  %g = matmul(%x, %d) {{transpose_a=true, transpose_b=false}} : {dtype}[3,4]
{value_lines}
  return {result}
  update %w = {update}
}}"""


SGD = "  %s = mul(%lr, %g) : float32[3,4]\n  %new = sub(%w, %s) : float32[3,4]"
FOLDED = ("  %m = constant {value=dense<float32[]>-0.01} : float32[]\n"
          "  %new = matmul_update(%w, %x, %d, %m) {transpose_a=true, transpose_b=false}"
          " : float32[3,4]")


def test_sgd_update_becomes_one_matmul_update():
    after = _graph(FOLDED).replace("  %lr = constant {value=dense<float32[]>0.01} : "
                                   "float32[]\n", "").replace(
        "  %g = matmul(%x, %d) {transpose_a=true, transpose_b=false} : float32[3,4]\n", "")
    check_pass(fold_products_into_updates, _graph(SGD), after)


def test_added_product_in_either_order_keeps_its_sign():
    before = _graph("  %s = mul(%g, %lr) : float32[3,4]\n  %new = add(%s, %w) : float32[3,4]")
    after = _graph("  %new = matmul_update(%w, %x, %d, %lr) {transpose_a=true, "
                   "transpose_b=false} : float32[3,4]").replace(
        "  %g = matmul(%x, %d) {transpose_a=true, transpose_b=false} : float32[3,4]\n", "")
    check_pass(fold_products_into_updates, before, after)


LEFT_ALONE = {
    "the product is read elsewhere": (SGD, "%new", "%g"),
    "the scaled product is read elsewhere": (SGD, "%new", "%s"),
    "the value is not a variable update": (SGD, "%w", "%new"),
    "the scale is not a scalar": (
        "  %s = mul(%w, %g) : float32[3,4]\n  %new = sub(%w, %s) : float32[3,4]", "%new", "%x"),
}


@pytest.mark.parametrize("name", sorted(LEFT_ALONE))
def test_updates_it_cannot_fold_stay(name):
    lines, update, result = LEFT_ALONE[name]
    unchanged(fold_products_into_updates, _graph(lines, update=update, result=result))


def test_integer_updates_stay():
    lines = SGD.replace("float32", "int32")
    unchanged(fold_products_into_updates, _graph(lines, scale="2", dtype="int32"))


# --- the kernel and the in-place write ---------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transpose_a, transpose_b", [(False, False), (True, False),
                                                      (False, True), (True, True)])
def test_kernel_matches_numpy_for_every_layout(dtype, transpose_a, transpose_b):
    a = RNG.uniform(-1, 1, (4, 3) if transpose_a else (3, 4)).astype(dtype)
    b = RNG.uniform(-1, 1, (5, 4) if transpose_b else (4, 5)).astype(dtype)
    c = RNG.uniform(-1, 1, (3, 5)).astype(dtype)
    want = c + 0.5 * ((a.T if transpose_a else a) @ (b.T if transpose_b else b))
    kernel = blas_gemm.MatmulUpdate(transpose_a, transpose_b)
    got = kernel(c, a, b, np.asarray(0.5, dtype))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert got is not c  # not in place unless the lowering says so
    kernel.in_place = True
    for strided in (a, np.asfortranarray(a)):  # either memory order, transposed or not
        target = c.copy()
        assert kernel(target, strided, b, np.asarray(0.5, dtype)) is target
        np.testing.assert_allclose(target, want, rtol=1e-5)


def test_kernel_falls_back_to_numpy_for_empty_and_strided_operands():
    kernel = blas_gemm.MatmulUpdate()
    kernel.in_place = True
    c = np.ones((3, 2), np.float32)
    np.testing.assert_array_equal(kernel(c, np.zeros((3, 0), np.float32),
                                         np.zeros((0, 2), np.float32), np.float32(2)), 1)
    a = RNG.uniform(-1, 1, (3, 8)).astype(np.float32)[:, ::2]  # no leading dimension fits
    b = RNG.uniform(-1, 1, (4, 2)).astype(np.float32)
    c = np.zeros((3, 2), np.float32)
    np.testing.assert_allclose(kernel(c, a, b, np.float32(1)), a @ b, rtol=1e-5)


def _sgd_function(extra_outputs=()):
    x = K.placeholder((None, 3))
    d = K.placeholder((None, 4))
    w = K.variable(RNG.uniform(-1, 1, (3, 4)).astype(np.float32))
    new = w - 0.1 * K.dot(K.transpose(x), d)
    outputs = [K.sum(d)] + [f(w) for f in extra_outputs]
    return w, K.function([x, d], outputs, updates=[K.update(w, new)], **BACKEND)


def test_sgd_step_writes_into_the_variable_buffer():
    w, fn = _sgd_function()
    x, d = RNG.uniform(-1, 1, (8, 3)), RNG.uniform(-1, 1, (8, 4))
    before = K.get_value(w)
    storage = w.storage
    fn([x, d])
    expected = before - 0.1 * (x.T @ d)
    np.testing.assert_allclose(K.get_value(w), expected, rtol=1e-5, atol=1e-6)
    assert w.storage is storage, "the update should reuse the variable's buffer"
    assert "matmul_update" in fn.ir.to_text()


def test_a_returned_or_later_read_variable_is_not_overwritten():
    """The old weights are returned (or read after the update's product): fresh memory."""
    for extra in ((lambda w: w * 1.0),), ((lambda w: K.sum(w)),):
        w, fn = _sgd_function(extra)
        x, d = RNG.uniform(-1, 1, (8, 3)), RNG.uniform(-1, 1, (8, 4))
        before = K.get_value(w)
        result = fn([x, d])[1]
        np.testing.assert_allclose(result, before if np.ndim(result) else before.sum(),
                                   rtol=1e-5)
        np.testing.assert_allclose(K.get_value(w), before - 0.1 * (x.T @ d), rtol=1e-5,
                                   atol=1e-6)


def test_values_the_caller_holds_never_change():
    w, fn = _sgd_function()
    held = K.get_value(w)
    copy = held.copy()
    fn([RNG.uniform(-1, 1, (8, 3)), RNG.uniform(-1, 1, (8, 4))])
    np.testing.assert_array_equal(held, copy)


def test_a_guarded_step_that_fails_changes_no_variable():
    """nan_guard functions never update in place: a NaN product leaves the weights as they were."""
    x = K.placeholder((None, 3))
    d = K.placeholder((None, 4))
    w = K.variable(np.ones((3, 4), np.float32))
    fn = K.function([x, d], [K.sum(d)], updates=[K.update(w, w - 0.1 * K.dot(K.transpose(x), d))],
                    nan_guard=True, **BACKEND)
    bad = np.full((8, 3), np.nan, np.float32)
    with pytest.raises(FloatingPointError):
        fn([bad, np.ones((8, 4), np.float32)])
    np.testing.assert_array_equal(K.get_value(w), 1)


def test_a_step_failing_after_its_product_changes_no_variable():
    """Work after a weight update (here another update's gather, fed an index out of range)
    keeps the update out of place: the failed call leaves the weights as they were."""
    x, d = K.placeholder((None, 3)), K.placeholder((None, 4))
    index = K.placeholder((None,), dtype="int32")
    w = K.variable(np.ones((3, 4), np.float32))
    v = K.variable(np.zeros((), np.float32))
    table = K.constant(np.arange(5, dtype=np.float32))
    fn = K.function([x, d, index], [K.sum(d)],
                    updates=[K.update(w, w - 0.1 * K.dot(K.transpose(x), d)),
                             K.update(v, v + K.sum(K.gather(table, index)))], **BACKEND)
    assert in_place_nodes(fn.ir) == set(), fn.ir
    ones = np.ones((8, 3), np.float32), np.ones((8, 4), np.float32)
    with pytest.raises(IndexError, match="gather"):
        fn([*ones, np.array([7], np.int32)])
    np.testing.assert_array_equal(K.get_value(w), 1)
    fn([*ones, np.array([1], np.int32)])
    np.testing.assert_allclose(K.get_value(w), 1 - 0.1 * 8, rtol=1e-6)


def test_sums_with_a_product_in_loop_bodies():
    """fold_products_into_sums (scan bodies): x + a @ b -> matmul_update(x, a, b, 1); a product
    read twice, or a broadcasting sum, stays."""
    from graphk.passes.matmul_update import fold_products_into_sums

    before = _graph("  %new = add(%w, %g) : float32[3,4]", update="%w", result="%new")
    after = _graph("  %one = constant {value=dense<float32[]>1.0} : float32[]\n"
                   "  %new = matmul_update(%w, %x, %d, %one) {transpose_a=true, "
                   "transpose_b=false} : float32[3,4]", update="%w", result="%new").replace(
        "  %lr = constant {value=dense<float32[]>0.01} : float32[]\n", "").replace(
        "  %g = matmul(%x, %d) {transpose_a=true, transpose_b=false} : float32[3,4]\n", "")
    check_pass(fold_products_into_sums, before, after)
    unchanged(fold_products_into_sums, _graph(
        "  %new = add(%w, %g) : float32[3,4]\n  %twice = add(%new, %g) : float32[3,4]",
        update="%w", result="%twice"))
    unchanged(fold_products_into_sums, _graph(
        "  %r = reduce_sum(%w) {axes=(0,), keepdims=true} : float32[1,4]\n"
        "  %new = add(%r, %g) : float32[3,4]", update="%w", result="%new"))

"""passes/decompose.py on integer labels: sparse_softmax_cross_entropy, its gradient and
one_hot as comparisons with a class-index arange (IR text in and out), and the fused
results on both lowerings against NumPy: None dims fed 1, negative axes, classes on a
middle axis, non-contiguous logits, float64, float labels, out-of-range labels, NaN and
infinite logits, gradients."""
from __future__ import annotations

import numpy as np
import pytest
from graphk import backend as K
from graphk.ir.dtypes import DTypeError
from graphk.ir.ops.labels import class_indices
from graphk.passes.decompose import decompose
from test_pass_helpers import check_pass, unchanged

LOWERINGS = ("numpy", "llvm")
rng = np.random.default_rng(7)


def _ir(inputs: str, body: str, out: str = "%r") -> str:
    return f"graph @f({', '.join(name for name, _ in inputs)}) {{\n" + "".join(
        f'  {name} = placeholder {{name="{name[1:]}", default=none}} : {ty}\n'
        for name, ty in inputs) + body + f"  return {out}\n}}"


# --- IR text in and out ------------------------------------------------------------------

def test_sparse_crossentropy_picks_the_shifted_logit():
    before = _ir([("%t", "int32[?0]"), ("%o", "float32[?0,4]")],
                 "  %r = sparse_softmax_cross_entropy(%t, %o) {axis=1} : float32[?0]\n")
    after = _ir([("%t", "int32[?0]"), ("%o", "float32[?0,4]")], """\
  %0 = reduce_max(%o) {axes=(1,), keepdims=true} : float32[?0,1]
  %1 = sub(%o, %0) : float32[?0,4]
  %2 = exp(%1) : float32[?0,4]
  %3 = reduce_sum(%2) {axes=(1,), keepdims=true} : float32[?0,1]
  %4 = log(%3) : float32[?0,1]
  %5 = class_indices(%t) {classes=4, axis=1, shape=none} : int32[?0,1]
  %6 = reduce_pick(%1, %5) {axes=(1,), keepdims=true} : float32[?0,1]
  %7 = sub(%4, %6) : float32[?0,1]
  %r = squeeze(%7) {axis=1} : float32[?0]
""")
    check_pass(decompose, before, after)


def test_float_labels_with_the_class_axis_keep_it():
    before = _ir([("%t", "float32[?0,1]"), ("%o", "float64[?0,3]")],
                 "  %r = sparse_softmax_cross_entropy(%t, %o) {axis=1} : float64[?0]\n")
    result = check_pass(decompose, before, _ir([("%t", "float32[?0,1]"), ("%o", "float64[?0,3]")],
                                               """\
  %0 = reduce_max(%o) {axes=(1,), keepdims=true} : float64[?0,1]
  %1 = sub(%o, %0) : float64[?0,3]
  %2 = exp(%1) : float64[?0,3]
  %3 = reduce_sum(%2) {axes=(1,), keepdims=true} : float64[?0,1]
  %4 = log(%3) : float64[?0,1]
  %5 = class_indices(%t) {classes=3, axis=none, shape=none} : int32[?0,1]
  %6 = reduce_pick(%1, %5) {axes=(1,), keepdims=true} : float64[?0,1]
  %7 = sub(%4, %6) : float64[?0,1]
  %r = squeeze(%7) {axis=1} : float64[?0]
"""))
    assert result.outputs[0].type.dtype == "float64"


def test_classes_on_a_middle_axis_pick_along_it():
    before = _ir([("%t", "int32[2,3]"), ("%o", "float32[2,4,3]")],
                 "  %r = sparse_softmax_cross_entropy(%t, %o) {axis=1} : float32[2,3]\n")
    graph = decompose(_parse(before))
    nodes = {n.op.name: n for n in graph.nodes}
    assert nodes["class_indices"].outputs[0].type.shape == (2, 1, 3)
    assert nodes["reduce_pick"].attrs["axes"] == (1,)
    assert nodes["reduce_pick"].outputs[0].type.shape == (2, 1, 3)


def _parse(text):
    from graphk.ir import parse
    return parse(text)


@pytest.mark.parametrize("labels, logits, axis, loss", [
    ("int32[?0]", "float32[?0,?1]", 1, "float32[?0]"),      # symbolic class count
    ("int32[2,3,1]", "float32[2,5,3]", 1, "float32[2,3]"),  # labels not in the loss's layout
])
def test_sparse_crossentropy_stays_whole_when_it_cannot_line_up(labels, logits, axis, loss):
    unchanged(decompose, _ir([("%t", labels), ("%o", logits)],
                             f"  %r = sparse_softmax_cross_entropy(%t, %o) {{axis={axis}}} "
                             f": {loss}\n"))


def test_labels_of_unknown_dims_are_reshaped_to_the_logits_rows():
    """Keras' (None, None) target: its dims are not the logits', so class_indices reshapes
    it, the rows read from the graph input the logits come from (checked at run time)."""
    inputs = [("%x", "float32[?0,6]"), ("%t", "float32[?1,?2]"), ("%w", "float32[6,4]")]
    before = _ir(inputs, """\
  %o = matmul(%x, %w) {transpose_a=false, transpose_b=false} : float32[?0,4]
  %r = sparse_softmax_cross_entropy(%t, %o) {axis=1} : float32[?0]
""")
    after = _ir(inputs, """\
  %0 = matmul(%x, %w) {transpose_a=false, transpose_b=false} : float32[?0,4]
  %1 = reduce_max(%0) {axes=(1,), keepdims=true} : float32[?0,1]
  %2 = sub(%0, %1) : float32[?0,4]
  %3 = exp(%2) : float32[?0,4]
  %4 = reduce_sum(%3) {axes=(1,), keepdims=true} : float32[?0,1]
  %5 = log(%4) : float32[?0,1]
  %6 = class_indices(%t, %x) {classes=4, axis=1, shape=(("dim", 0), 1)} : int32[?0,1]
  %7 = reduce_pick(%2, %6) {axes=(1,), keepdims=true} : float32[?0,1]
  %8 = sub(%5, %7) : float32[?0,1]
  %r = squeeze(%8) {axis=1} : float32[?0]
""")
    check_pass(decompose, before, after)


def test_sparse_gradient_is_softmax_minus_the_hits():
    inputs = [("%t", "int32[?0]"), ("%o", "float32[?0,3]"), ("%g", "float32[?0]")]
    before = _ir(inputs, "  %r = sparse_softmax_cross_entropy_grad(%t, %o, %g) {axis=1} "
                         ": float32[?0,3]\n")
    after = _ir(inputs, """\
  %0 = constant {value=dense<int32[3]>[0, 1, 2]} : int32[3]
  %1 = class_indices(%t) {classes=3, axis=1, shape=none} : int32[?0,1]
  %2 = equal(%0, %1) : bool[?0,3]
  %3 = cast(%2) {dtype="float32"} : float32[?0,3]
  %4 = reduce_max(%o) {axes=(1,), keepdims=true} : float32[?0,1]
  %5 = sub(%o, %4) : float32[?0,3]
  %6 = exp(%5) : float32[?0,3]
  %7 = reduce_sum(%6) {axes=(1,), keepdims=true} : float32[?0,1]
  %8 = div(%6, %7) : float32[?0,3]
  %9 = sub(%8, %3) : float32[?0,3]
  %10 = expand_dims(%g) {axis=1} : float32[?0,1]
  %r = mul(%9, %10) : float32[?0,3]
""")
    check_pass(decompose, before, after)


def test_one_hot_is_a_cast_comparison():
    before = _ir([("%i", "int64[?0]")],
                 "  %r = one_hot(%i) {num_classes=3} : float32[?0,3]\n")
    after = _ir([("%i", "int64[?0]")], """\
  %0 = constant {value=dense<int64[3]>[0, 1, 2]} : int64[3]
  %1 = expand_dims(%i) {axis=1} : int64[?0,1]
  %2 = equal(%0, %1) : bool[?0,3]
  %r = cast(%2) {dtype="float32"} : float32[?0,3]
""")
    check_pass(decompose, before, after)


def test_one_hot_of_indices_too_narrow_for_the_classes_stays_whole():
    unchanged(decompose, _ir([("%i", "uint8[4]")],
                             "  %r = one_hot(%i) {num_classes=300} : float32[4,300]\n"))


def test_the_one_hot_masked_sum_stays_a_masked_sum():
    """sum(one_hot(k) * x) is not reduce_pick(x, class_indices(k)) under IEEE: 0 * inf and
    0 * NaN in the other columns make the sum NaN, an out-of-range label gives +0 where
    class_indices raises, and a picked -0.0 sums to +0.0. So the pass must leave it alone."""
    text = _ir([("%i", "int32[?0]"), ("%x", "float32[?0,3]")], """\
  %0 = constant {value=dense<int32[3]>[0, 1, 2]} : int32[3]
  %1 = expand_dims(%i) {axis=1} : int32[?0,1]
  %2 = equal(%0, %1) : bool[?0,3]
  %3 = cast(%2) {dtype="float32"} : float32[?0,3]
  %4 = mul(%3, %x) : float32[?0,3]
  %r = reduce_sum(%4) {axes=(1,), keepdims=false} : float32[?0]
""")
    unchanged(decompose, text)


# --- the label check ------------------------------------------------------------------------

def test_class_indices_checks_range_truncates_floats_and_places_the_axis():
    labels = K.placeholder((None,), dtype="float32")
    fn = K.function([labels], [class_indices(labels, 4, 1)])
    (got,) = fn([np.array([3.9, 0.0, 2.5], np.float32)])
    assert got.dtype == np.int32 and got.tolist() == [[3], [0], [2]]
    with pytest.raises(ValueError, match=r"label value of 4 .*\[0, 4\)"):
        fn([np.array([1.0, 4.0], np.float32)])


def test_class_indices_rejects_bool_labels_and_bad_axes():
    with pytest.raises(DTypeError, match="bool"):
        class_indices(K.placeholder((3,), dtype="bool"), 4, 1)
    with pytest.raises(Exception, match="axis"):
        class_indices(K.placeholder((3,), dtype="int32"), 4, 2)


def test_reshaped_class_indices_check_the_count_and_the_shape_attr():
    labels, x = K.placeholder((None, None)), K.placeholder((None, 3))
    out = class_indices(labels, 4, 1, shape=(("dim", 0), 1), like=x)
    assert out.type.shape == (x.type.shape[0], 1)
    fn = K.function([labels, x], [out])
    (got,) = fn([np.array([[2.0, 3.0]], np.float32), np.zeros((2, 3), np.float32)])
    assert got.tolist() == [[2], [3]]
    with pytest.raises(ValueError, match=r"^class_indices at .*test_decompose_labels\.py:\d+: "
                                         r"labels of shape \(3, 1\) .* loss, shape \(2,\)"):
        fn([np.zeros((3, 1), np.float32), np.zeros((2, 3), np.float32)])
    with pytest.raises(Exception, match="1 at axis"):
        class_indices(labels, 4, 1, shape=(("dim", 0), 2), like=x)
    with pytest.raises(Exception, match="axis of the source"):
        class_indices(labels, 4, 1, shape=(("dim", 5), 1), like=x)
    with pytest.raises(Exception, match=r"do not hold one class .* shape \(3,\)"):
        class_indices(K.placeholder((2, 2)), 4, 1, shape=(3, 1), like=x)


# --- fused results on both lowerings -------------------------------------------------------

def _reference(labels, logits, axis):
    """-log_softmax(logits)[label] along axis, in float64."""
    x = np.moveaxis(np.asarray(logits, np.float64), axis, -1)
    shifted = x - x.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_p, labels.astype(np.int64).reshape(x.shape[:-1])[..., None],
                                -1)
    return -picked[..., 0]


def _sparse(t, o, axis=-1):
    return K.sparse_categorical_crossentropy(t, o, from_logits=True, axis=axis)


def _onehot_form(t, o):
    classes = o.type.shape[-1]
    return K.logsumexp(o, axis=1) - K.sum(K.one_hot(t, classes) * o, axis=1)


def _ops(fn) -> list:
    return sorted(n.op.name for n in fn.ir.nodes if not n.op.leaf)


@pytest.mark.parametrize("lowering", LOWERINGS)
@pytest.mark.parametrize("form", ["sparse", "onehot"])
@pytest.mark.parametrize("rows", [1, 5])
def test_both_formulations_fuse_and_match_numpy(lowering, form, rows):
    t, o = K.placeholder((None,), dtype="int32"), K.placeholder((None, 7))
    loss = _sparse(t, o) if form == "sparse" else _onehot_form(t, o)
    fn = K.function([t, o], [loss], backend=lowering)
    assert _ops(fn) == (["class_indices", "fused", "squeeze"] if form == "sparse"
                        else ["expand_dims", "fused"])
    if lowering == "llvm":  # compiled, not handed back to NumPy
        assert [chosen for chosen, _ in fn.lowering.decisions.values()] == ["llvm"]
    labels = rng.integers(0, 7, rows).astype(np.int32)
    logits = (3 * rng.standard_normal((rows, 7))).astype(np.float32)
    np.testing.assert_allclose(fn([labels, logits])[0], _reference(labels, logits, 1),
                               rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("lowering", LOWERINGS)
@pytest.mark.parametrize("layout", ["contiguous", "strided", "fortran", "reversed"])
def test_non_contiguous_logits_and_float64(lowering, layout):
    t, o = K.placeholder((None,), dtype="int32"), K.placeholder((None, 5), dtype="float64")
    fn = K.function([t, o], [_sparse(t, o)], backend=lowering)
    wide = rng.standard_normal((6, 10))
    logits = {"contiguous": wide[:, :5].copy(), "strided": wide[:, ::2],
              "fortran": np.asfortranarray(wide[:, :5]), "reversed": wide[::-1, 5:]}[layout]
    labels = rng.integers(0, 5, 6).astype(np.int32)
    np.testing.assert_allclose(fn([labels, logits])[0], _reference(labels, logits, 1),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("lowering", LOWERINGS)
def test_classes_on_a_middle_axis_and_negative_axes(lowering):
    t, o = K.placeholder((None, 3), dtype="int64"), K.placeholder((None, 4, 3))
    fn = K.function([t, o], [_sparse(t, o, axis=-2)], backend=lowering)
    labels = rng.integers(0, 4, (2, 3))
    logits = rng.standard_normal((2, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(fn([labels, logits])[0], _reference(labels, logits, 1),
                               rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("lowering", LOWERINGS)
def test_keras_style_float_labels_with_the_class_axis(lowering):
    t, o = K.placeholder((None, 1)), K.placeholder((None, 4))
    fn = K.function([t, o], [_sparse(t, o)], backend=lowering)
    labels = np.array([[3.0], [0.0], [2.0]], np.float32)
    logits = rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(fn([labels, logits])[0], _reference(labels, logits, 1),
                               rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("lowering", LOWERINGS)
@pytest.mark.parametrize("bad", [5, -1])
def test_labels_out_of_range_fail_like_the_kernel(lowering, bad):
    t, o = K.placeholder((None,), dtype="int32"), K.placeholder((None, 5))
    fn = K.function([t, o], [_sparse(t, o)], backend=lowering)
    with pytest.raises(ValueError, match=rf"label value of {bad} .*\[0, 5\)"):
        fn([np.array([0, bad], np.int32), np.zeros((2, 5), np.float32)])


@pytest.mark.parametrize("lowering", LOWERINGS)
@pytest.mark.parametrize("form", ["sparse", "onehot"])
def test_nan_and_infinite_logits_behave_like_the_unfused_ops(lowering, form):
    t, o = K.placeholder((None,), dtype="int32"), K.placeholder((None, 4))
    loss = _sparse(t, o) if form == "sparse" else _onehot_form(t, o)
    fused = K.function([t, o], [loss], backend=lowering)
    plain = K.function([t, o], [loss], passes="none")
    inf, nan = np.inf, np.nan
    logits = np.array([[1, 2, 3, 4], [nan, 0, 1, 2], [inf, 0, 1, 2], [-inf, 0, 1, 2],
                       [inf, inf, 0, 1], [-inf, -inf, -inf, -inf], [0, 1, nan, inf],
                       [1e30, -1e30, 0, 3]], np.float32)
    labels = np.array([1, 1, 0, 0, 1, 2, 3, 1], np.int32)
    with np.errstate(all="ignore"):  # inf - inf, log(0): NumPy warns on both paths
        want = plain([labels, logits])[0]
        got = fused([labels, logits])[0]
    assert np.isnan(want).any() and np.isinf(want).any()  # the cases reach both
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("lowering", LOWERINGS)
def test_the_gradient_fuses_and_is_softmax_minus_onehot(lowering):
    t, o = K.placeholder((None,), dtype="int32"), K.placeholder((None, 6))
    loss = K.mean(_sparse(t, o))
    (grad,) = K.gradients(loss, [o])
    fn = K.function([t, o], [loss, grad], backend=lowering)
    assert _ops(fn).count("fused") >= 1 and "sparse_softmax_cross_entropy_grad" not in _ops(fn)
    labels = rng.integers(0, 6, 4).astype(np.int32)
    logits = rng.standard_normal((4, 6)).astype(np.float32)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    want = (probs - np.eye(6)[labels]) / 4
    got_loss, got_grad = fn([labels, logits])
    np.testing.assert_allclose(got_grad, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_loss, _reference(labels, logits, 1).mean(), rtol=1e-5)


@pytest.mark.parametrize("lowering", LOWERINGS)
def test_large_batches_match_numpy(lowering):
    """Past 1 MB the NumPy lowering evaluates the region in blocks of rows (reduce_pick by
    take_along_axis per block); LLVM splits the rows over threads."""
    t, o = K.placeholder((None,), dtype="int32"), K.placeholder((None, 500))
    fn = K.function([t, o], [_sparse(t, o)], backend=lowering)
    labels = rng.integers(0, 500, 700).astype(np.int32)
    logits = (3 * rng.standard_normal((700, 500))).astype(np.float32)
    np.testing.assert_allclose(fn([labels, logits])[0], _reference(labels, logits, 1),
                               rtol=2e-6, atol=4e-6)


def _keras_loss():
    """Keras' train graph in small: a (None, None) float target, logits from the input."""
    x, t = K.placeholder((None, 6)), K.placeholder((None, None))
    w = K.variable(rng.standard_normal((6, 5)).astype(np.float32))
    logits = K.dot(x, w)
    loss = K.mean(K.sparse_categorical_crossentropy(t, K.softmax(logits)))
    return x, t, w, logits, loss


@pytest.mark.parametrize("lowering", LOWERINGS)
@pytest.mark.parametrize("rows, layout", [(1, "column"), (5, "column"), (5, "row"), (4, "strided")])
def test_keras_target_of_unknown_dims_fuses_and_matches_the_whole_ops(lowering, rows, layout):
    x, t, w, logits, loss = _keras_loss()
    (grad,) = K.gradients(loss, [w])
    fused = K.function([x, t], [loss, grad], backend=lowering)
    plain = K.function([x, t], [loss, grad], passes="none")
    ops = _ops(fused)
    assert "sparse_softmax_cross_entropy" not in ops and ops.count("class_indices") == 1
    assert "sparse_softmax_cross_entropy_grad" not in ops
    xs = rng.standard_normal((rows, 6)).astype(np.float32)
    labels = rng.integers(0, 5, rows).astype(np.float32)
    labels = {"column": labels[:, None], "row": labels[None, :],
              "strided": np.repeat(labels[:, None], 2, axis=1)[:, :1]}[layout]
    for got, want in zip(fused([xs, labels]), plain([xs, labels])):
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("lowering", LOWERINGS)
def test_keras_target_with_the_wrong_row_count_names_the_op_and_shapes(lowering):
    x, t, w, logits, loss = _keras_loss()
    fn = K.function([x, t], [loss], backend=lowering)
    with pytest.raises(ValueError, match=r"class_indices at .*test_decompose_labels\.py:\d+: "
                                         r"labels of shape \(3, 1\) .* loss, shape \(4,\)"):
        fn([np.zeros((4, 6), np.float32), np.zeros((3, 1), np.float32)])


@pytest.mark.parametrize("keepdims", [True, False])
def test_reduce_pick_with_every_index_inside_matches_the_masked_path(keepdims):
    """All indices in range (what class_indices guarantees) take a path without the mask; it
    gives what the masked path gives, -0 picked as +0 included."""
    from graphk.ir.ops.labels import _pick_kernel
    v = np.array([[-0.0, 1.5, 2.0], [3.0, -0.0, 4.0]], np.float32)
    inside = np.array([[0], [1]], np.int32)
    got = _pick_kernel(v, inside, (1,), keepdims)
    assert np.signbit(got).sum() == 0 and got.tolist() == ([[0.0], [0.0]] if keepdims
                                                             else [0.0, 0.0])
    mixed = np.array([[2], [3]], np.int32)  # one outside: the masked path, 0 there
    assert _pick_kernel(v, mixed, (1,), keepdims).reshape(-1).tolist() == [2.0, 0.0]
    v3 = rng.standard_normal((2, 4, 3))
    k3 = rng.integers(0, 4, (2, 1, 3)).astype(np.int64)
    want = np.take_along_axis(v3, k3, 1)
    np.testing.assert_array_equal(_pick_kernel(v3, k3, (1,), True), want)


@pytest.mark.parametrize("lowering", LOWERINGS)
def test_one_hot_masked_sum_keeps_nan_zero_rows_and_signed_zero(lowering):
    """What a cheaper form of sum(one_hot(k, C) * x) must keep (see the IR test above)."""
    t, o = K.placeholder((None,), dtype="int32"), K.placeholder((None, 4))
    picked = K.sum(K.one_hot(t, 4) * o, axis=1)
    fused = K.function([t, o], [picked], backend=lowering)
    plain = K.function([t, o], [picked], passes="none")
    inf, nan = np.inf, np.nan
    logits = np.array([[1, 2, 3, 4], [nan, 0, 1, 2], [inf, 0, 1, 2], [-inf, 0, 1, 2],
                       [inf, 0, 1, 2], [1, 2, 3, 4], [1, 2, 3, 4], [-0.0, -1, -2, -3],
                       [3e38, 3e38, 3e38, 1]], np.float32)
    labels = np.array([1, 1, 1, 2, 0, 4, -1, 0, 3], np.int32)
    want = np.array([2, nan, nan, nan, inf, 0, 0, 0, 1], np.float32)
    with np.errstate(all="ignore"):  # 0 * inf: NumPy warns
        for got in (fused([labels, logits])[0], plain([labels, logits])[0]):
            np.testing.assert_array_equal(got, want)
            assert not np.signbit(got[7])  # -0.0 picked, +0.0 summed

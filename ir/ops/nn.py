"""Neural-network ops: softmax, l2 normalization and the crossentropies, fused.

Each is one kernel written for numerical stability (max-shifted exponentials,
log-sum-exp, the logistic loss in the max(z, 0) form), with a hand-derived
gradient: the first-order gradients that training runs are fused kernels too
(`softmax_grad`, `softmax_cross_entropy_grad`, ...). Those gradient ops are
differentiable in turn, through rules composed of elementwise ops and
reductions, so Hessian-vector products work; they are not on the hot path.

Attributes are canonical: `axis` a non-negative int, `axes` a sorted tuple,
`epsilon` a float fixed when the graph is built (the front end reads
`K.epsilon()` then, as Keras does).
"""
from __future__ import annotations


import numpy as np

from ..dtypes import DTypeError, promote, require_float
from ..shapes import ShapeError, SymbolicSize, format_shape, merge_shapes
from ..types import TensorType
from . import elementwise as ew
from .leaf import constant
from .reduce import reduce_sum, unreduce
from .axes import check_canonical_axis
from .kernels import ignoring_underflow
from .kernels import log_softmax as log_softmax_kernel
from .registry import REQUIRED, OpDef, Sample, apply, register

# --- shared type rules ------------------------------------------------------------------


def _without(shape: tuple, axis: int) -> tuple:
    return shape[:axis] + shape[axis + 1:]


def _check_cotangent(g: TensorType, reduced: tuple) -> None:
    """A loss cotangent is the loss's shape, or a scalar (used by the second-order rules)."""
    if g.ndim:
        merge_shapes(g.shape, reduced, "the cotangent and the loss")


def _with_cotangent_infer(y: TensorType, g: TensorType, axis: int) -> TensorType:
    require_float(y.dtype, "the input")
    check_canonical_axis(axis, y.ndim)
    shape = merge_shapes(y.shape, g.shape, "input and cotangent")
    return TensorType(promote(y.dtype, g.dtype), shape)


def _loss_infer(target: TensorType, output: TensorType, axis: int, **_) -> TensorType:
    require_float(output.dtype, "the output")
    require_float(target.dtype, "the target")
    check_canonical_axis(axis, output.ndim)
    shape = merge_shapes(target.shape, output.shape, "target and output")
    return TensorType(promote(target.dtype, output.dtype), _without(shape, axis))


def _loss_grad_infer(target: TensorType, output: TensorType, g: TensorType, axis: int, **_):
    """The gradient has the output's shape and the loss's dtype (kernels scale by g in place)."""
    loss = _loss_infer(target, output, axis)
    _check_cotangent(g, loss.shape)
    return TensorType(loss.dtype, merge_shapes(target.shape, output.shape, "target and output"))


# --- kernel helpers ------------------------------------------------------------------------


@ignoring_underflow
def _softmax(x, axis):
    exps = np.exp(x - np.max(x, axis=axis, keepdims=True))
    exps /= np.sum(exps, axis=axis, keepdims=True)
    return exps


def _spread(g, axis):
    """A loss cotangent broadcastable against the tensor the loss reduced over `axis`."""
    return np.expand_dims(g, axis) if g.ndim else g


def _clipped_ratio(output, axis, epsilon):
    """output / sum(output) along axis, clipped to [epsilon, 1 - epsilon] (Keras' rule)."""
    ratio = output / np.sum(output, axis=axis, keepdims=True)
    return np.clip(ratio, epsilon, 1.0 - epsilon), ratio


# --- helpers for gradient rules --------------------------------------------------------------


def _scalar(number, like):
    return constant(np.asarray(number, dtype=like.type.dtype))


def _spread_value(g, like, axis: int):
    """The loss cotangent g broadcast back over `axis` of `like` (a scalar stays a scalar)."""
    return unreduce(g, like, (axis,)) if g.type.ndim else g


def _reduce_to_cotangent(value, g, axis: int):
    """Sum over `axis` so a full-shape cotangent matches a loss cotangent g's shape."""
    return reduce_sum(value, axis) if g.type.ndim else value


def _sum_keep(x, axis: int):
    return reduce_sum(x, axis, keepdims=True)


# --- softmax and its gradient ------------------------------------------------------------


def _softmax_infer(x: TensorType, axis: int) -> TensorType:
    require_float(x.dtype, "softmax's input")
    check_canonical_axis(axis, x.ndim)
    return x


def _softmax_grad_kernel(y, g, axis):
    product = g * y
    product -= y * np.sum(product, axis=axis, keepdims=True)
    return product


def _softmax_grad_grad(node, h):
    """out = y*(g - s), s = sum(g*y): d/dg = softmax_grad(y, h); d/dy = h*(g - s) - g*t."""
    y, g = node.inputs
    axis = node.attrs["axis"]
    s = _sum_keep(ew.mul(g, y), axis)
    t = _sum_keep(ew.mul(h, y), axis)
    dy = ew.sub(ew.mul(h, ew.sub(g, s)), ew.mul(g, t))
    return dy, softmax_grad(y, h, axis)


register(OpDef(
    "softmax", "nn", infer=_softmax_infer, kernel=_softmax, attrs={"axis": REQUIRED},
    grad=lambda n, g: (softmax_grad(n.outputs[0], g, n.attrs["axis"]),),
    samples=(Sample(((3, 4),), {"axis": 1}), Sample(((2, 3, 4),), {"axis": 0})),
    doc="exp(x - max) / sum(exp(x - max)) along axis."))

register(OpDef(
    "softmax_grad", "nn", infer=_with_cotangent_infer, kernel=_softmax_grad_kernel,
    attrs={"axis": REQUIRED}, grad=_softmax_grad_grad,
    samples=(Sample(((3, 4), (3, 4)), {"axis": 1}), Sample(((2, 3, 4), (2, 3, 4)), {"axis": 1})),
    doc="y * (g - sum(g * y, axis)): the vector-Jacobian product of softmax output y."))


def softmax(x, axis: int):
    return apply("softmax", [x], axis=axis)


def softmax_grad(y, g, axis: int):
    return apply("softmax_grad", [y, g], axis=axis)


# --- log_softmax ----------------------------------------------------------------------------

register(OpDef(
    "log_softmax", "nn", infer=_softmax_infer, kernel=log_softmax_kernel, attrs={"axis": REQUIRED},
    grad=lambda n, g: (ew.sub(g, ew.mul(ew.exp(n.outputs[0]), _sum_keep(g, n.attrs["axis"]))),),
    samples=(Sample(((3, 4),), {"axis": 1}), Sample(((2, 3, 4),), {"axis": 0})),
    doc="x - logsumexp(x) along axis, without overflow."))


def log_softmax(x, axis: int):
    return apply("log_softmax", [x], axis=axis)


# --- l2 normalization -----------------------------------------------------------------------


def _l2_normalize_infer(x: TensorType, axes, epsilon) -> TensorType:
    require_float(x.dtype, "l2_normalize's input")
    if not isinstance(axes, tuple) or tuple(sorted(set(axes))) != axes or any(
            not isinstance(a, int) or not 0 <= a < x.ndim for a in axes):
        raise ShapeError(f"axes {axes!r} must be distinct sorted ints in [0, {x.ndim})")
    return x


def _l2_normalize(x, axes, epsilon):
    squares = np.sum(x * x, axis=axes, keepdims=True)
    return x / np.sqrt(np.maximum(squares, np.asarray(epsilon, x.dtype)))


def _l2_normalize_grad(node, g):
    """y = x r with r = max(sum x^2, eps)^-1/2: dx = r (g - y sum(g y)) where the sum
    exceeds eps, and g r where eps bounds it (r is then constant)."""
    x, y = node.inputs[0], node.outputs[0]
    axes, epsilon = node.attrs["axes"], node.attrs["epsilon"]
    squares = reduce_sum(ew.square(x), axes, keepdims=True)
    inverse_norm = ew.power(ew.maximum(squares, _scalar(epsilon, x)), _scalar(-0.5, x))
    active = ew.cast(ew.greater(squares, _scalar(epsilon, x)), dtype=x.type.dtype)
    along = ew.mul(y, ew.mul(active, reduce_sum(ew.mul(g, y), axes, keepdims=True)))
    return (ew.mul(inverse_norm, ew.sub(g, along)),)


register(OpDef(
    "l2_normalize", "nn", infer=_l2_normalize_infer, kernel=_l2_normalize,
    attrs={"axes": REQUIRED, "epsilon": 1e-12}, grad=_l2_normalize_grad,
    samples=(Sample(((3, 4),), {"axes": (1,)}), Sample(((2, 3, 4),), {"axes": (0, 2)})),
    doc="x / sqrt(max(sum(x**2, axes), epsilon)), TensorFlow's l2_normalize."))


def l2_normalize(x, axes, epsilon: float = 1e-12):
    return apply("l2_normalize", [x], axes=tuple(axes), epsilon=float(epsilon))


# --- categorical crossentropy from logits --------------------------------------------------


def _softmax_cross_entropy(target, logits, axis):
    return -np.sum(target * log_softmax_kernel(logits, axis), axis=axis)


def _softmax_cross_entropy_grad(target, logits, g, axis):
    """(softmax * sum(target) - target) * g; the sum is 1 for proper targets."""
    result = _softmax(logits, axis) * np.sum(target, axis=axis, keepdims=True) - target
    result *= _spread(g, axis)
    return result


def _softmax_cross_entropy_grad_grad(node, h):
    """out = G (P S - T) with P = softmax(x), S = sum(T), G = g spread over axis."""
    target, logits, g = node.inputs
    axis = node.attrs["axis"]
    spread, probs = _spread_value(g, logits, axis), softmax(logits, axis)
    total = _sum_keep(target, axis)
    d_target = ew.mul(spread, ew.sub(_sum_keep(ew.mul(h, probs), axis), h))
    d_logits = softmax_grad(probs, ew.mul(h, ew.mul(spread, total)), axis)
    unit = ew.sub(ew.mul(probs, total), target)
    return d_target, d_logits, _reduce_to_cotangent(ew.mul(h, unit), g, axis)


register(OpDef(
    "softmax_cross_entropy", "nn", infer=_loss_infer, kernel=_softmax_cross_entropy,
    attrs={"axis": REQUIRED},
    grad=lambda n, g: (
        ew.mul(_spread_value(g, n.inputs[1], n.attrs["axis"]),
               ew.neg(log_softmax(n.inputs[1], n.attrs["axis"]))),
        softmax_cross_entropy_grad(*n.inputs, g, axis=n.attrs["axis"])),
    samples=(Sample(((3, 4), (3, 4)), {"axis": 1}, low=0.0, high=1.0),
             Sample(((2, 3, 4), (2, 3, 4)), {"axis": 1}, low=0.0, high=1.0)),
    doc="-sum(target * log_softmax(logits), axis): categorical crossentropy from logits."))

register(OpDef(
    "softmax_cross_entropy_grad", "nn", infer=_loss_grad_infer,
    kernel=_softmax_cross_entropy_grad, attrs={"axis": REQUIRED},
    grad=_softmax_cross_entropy_grad_grad,
    samples=(Sample(((3, 4), (3, 4), (3,)), {"axis": 1}, low=0.0, high=1.0),
             Sample(((3, 4), (3, 4), ()), {"axis": 1}, low=0.0, high=1.0, symbolic=False)),
    doc="d softmax_cross_entropy / d logits for loss cotangent g (a loss-shaped tensor or a "
        "scalar)."))


def softmax_cross_entropy(target, logits, axis: int):
    return apply("softmax_cross_entropy", [target, logits], axis=axis)


def softmax_cross_entropy_grad(target, logits, g, axis: int):
    return apply("softmax_cross_entropy_grad", [target, logits, g], axis=axis)


# --- sparse categorical crossentropy from logits -----------------------------------------


def _sparse_infer(labels: TensorType, logits: TensorType, axis: int) -> TensorType:
    """Labels hold one class per position of the loss; like TensorFlow's backend, any
    labels shape with that many elements is accepted ((batch,) and (batch, 1) alike)."""
    require_float(logits.dtype, "the logits")
    if labels.dtype == "bool":
        raise DTypeError("labels must be ints (or floats holding ints), got bool")
    check_canonical_axis(axis, logits.ndim)
    loss = _without(logits.shape, axis)
    squeezed = tuple(d for d in labels.shape if d != 1)
    if len(squeezed) == len(tuple(d for d in loss if d != 1)):
        merge_shapes(squeezed, tuple(d for d in loss if d != 1), "labels and loss positions")
    else:
        have, want = SymbolicSize(labels.shape), SymbolicSize(loss)
        if have.symbols == want.symbols and have.factor != want.factor:
            raise ShapeError(f"labels of shape {format_shape(labels.shape)} do not hold one "
                             f"class per position of the loss, shape {format_shape(loss)}")
    return TensorType(logits.dtype, loss)


def _label_indices(labels, logits, axis):
    """Labels as int64 indices of shape logits.shape with axis at size 1, range-checked."""
    loss_shape = _without(logits.shape, axis)
    if labels.size != int(np.prod(loss_shape, dtype=np.int64)):
        raise ValueError(f"labels of shape {labels.shape} do not hold one class per position "
                         f"of logits of shape {logits.shape} (classes on axis {axis})")
    indices = labels.astype(np.int64).reshape(loss_shape)
    classes = logits.shape[axis]
    if indices.size and (indices.min() < 0 or indices.max() >= classes):
        bad = indices[(indices < 0) | (indices >= classes)].flat[0]
        raise ValueError(f"received a label value of {bad} which is outside the valid range "
                         f"of [0, {classes})")
    return np.expand_dims(indices, axis)


def _sparse_softmax_cross_entropy(labels, logits, axis):
    indices = _label_indices(labels, logits, axis)
    picked = np.take_along_axis(log_softmax_kernel(logits, axis), indices, axis)
    return -np.squeeze(picked, axis)


def _sparse_grad_infer(labels, logits, g, axis):
    loss = _sparse_infer(labels, logits, axis)
    _check_cotangent(g, loss.shape)
    return TensorType(logits.dtype, logits.shape)


def _sparse_softmax_cross_entropy_grad(labels, logits, g, axis):
    """(softmax - onehot(labels)) * g, the onehot never built."""
    indices = _label_indices(labels, logits, axis)
    result = _softmax(logits, axis)
    np.put_along_axis(result, indices, np.take_along_axis(result, indices, axis) - 1, axis)
    result *= _spread(g, axis)
    return result


def _sparse_grad_grad(node, h):
    """out = G (P - onehot): d/dlogits = softmax_grad(P, h G); d/dg = sum(h (P - onehot))."""
    labels, logits, g = node.inputs
    axis = node.attrs["axis"]
    probs = softmax(logits, axis)
    d_logits = softmax_grad(probs, ew.mul(h, _spread_value(g, logits, axis)), axis)
    unit = sparse_softmax_cross_entropy_grad(labels, logits, _scalar(1.0, logits), axis)
    return None, d_logits, _reduce_to_cotangent(ew.mul(h, unit), g, axis)


def _sparse_sample(*shapes, axis=1, classes=4):
    def make(rng):
        logits = rng.uniform(-2, 2, shapes[1])
        labels = rng.integers(0, classes, shapes[0]).astype(np.int32)
        return [labels, logits] + [rng.uniform(-1, 1, s) for s in shapes[2:]]
    return Sample(shapes, {"axis": axis}, make=make, symbolic=len(shapes[0]) > 0)


register(OpDef(
    "sparse_softmax_cross_entropy", "nn", infer=_sparse_infer,
    kernel=_sparse_softmax_cross_entropy, attrs={"axis": REQUIRED},
    grad=lambda n, g: (None, sparse_softmax_cross_entropy_grad(*n.inputs, g, n.attrs["axis"])),
    samples=(_sparse_sample((3,), (3, 4)), _sparse_sample((3, 1), (3, 4)),
             _sparse_sample((2, 4), (2, 3, 4), classes=3)),
    doc="-log_softmax(logits)[label] along axis; labels are ints (or floats holding ints)."))

register(OpDef(
    "sparse_softmax_cross_entropy_grad", "nn", infer=_sparse_grad_infer,
    kernel=_sparse_softmax_cross_entropy_grad, attrs={"axis": REQUIRED},
    grad=_sparse_grad_grad,
    samples=(_sparse_sample((3,), (3, 4), (3,)), _sparse_sample((2, 4), (2, 3, 4), (2, 4),
                                                                  classes=3)),
    doc="d sparse_softmax_cross_entropy / d logits for loss cotangent g."))


def sparse_softmax_cross_entropy(labels, logits, axis: int):
    return apply("sparse_softmax_cross_entropy", [labels, logits], axis=axis)


def sparse_softmax_cross_entropy_grad(labels, logits, g, axis: int):
    return apply("sparse_softmax_cross_entropy_grad", [labels, logits, g], axis=axis)


# --- categorical crossentropy from probabilities ---------------------------------------------


def _categorical_crossentropy(target, output, axis, epsilon):
    clipped, _ = _clipped_ratio(output, axis, epsilon)
    return -np.sum(target * np.log(clipped), axis=axis)


def _categorical_crossentropy_grad(target, output, g, axis, epsilon):
    """With q = output/S clipped to [eps, 1-eps] where mask m is set: the loss is
    -sum(t log q), and its gradient G (A/S - t m / output), A = sum(t m)."""
    _, ratio = _clipped_ratio(output, axis, epsilon)
    inside = (ratio >= epsilon) & (ratio <= 1.0 - epsilon)  # TF's clip passes ties
    weighted = np.where(inside, target, np.zeros((), target.dtype))
    total = np.sum(output, axis=axis, keepdims=True)
    per_output = np.divide(weighted, output, out=np.zeros_like(ratio), where=inside)
    result = np.sum(weighted, axis=axis, keepdims=True) / total - per_output
    result *= _spread(g, axis)
    return result


def _categorical_grad_grad(node, h):
    """out = G (A/S - t m / o), m, A piecewise constant. With o' = o where m, else 1:
    d/dt = G m (sum(h)/S - h/o'); d/do = G (h t m / o'^2 - A sum(h) / S^2);
    d/dg = sum(h (A/S - t m / o'))."""
    target, output, g = node.inputs
    axis, epsilon = node.attrs["axis"], node.attrs["epsilon"]
    total = _sum_keep(output, axis)
    ratio = ew.div(output, total)
    inside = ew.logical_and(ew.greater_equal(ratio, _scalar(epsilon, output)),
                            ew.less_equal(ratio, _scalar(1.0 - epsilon, output)))
    mask = ew.cast(inside, dtype=output.type.dtype)
    safe = ew.switch(inside, output, _scalar(1.0, output))
    spread = _spread_value(g, output, axis)
    weighted = ew.mul(target, mask)
    kept = _sum_keep(weighted, axis)
    h_total = _sum_keep(h, axis)
    d_target = ew.mul(ew.mul(spread, mask), ew.sub(ew.div(h_total, total), ew.div(h, safe)))
    d_output = ew.mul(spread, ew.sub(ew.div(ew.mul(h, weighted), ew.square(safe)),
                                     ew.div(ew.mul(kept, h_total), ew.square(total))))
    unit = ew.sub(ew.div(kept, total), ew.div(weighted, safe))
    return d_target, d_output, _reduce_to_cotangent(ew.mul(h, unit), g, axis)


def _categorical_target_grad(node, g):
    """-G log(clip(o / sum(o))), composed (only needed when the target is differentiated)."""
    output = node.inputs[1]
    axis, epsilon = node.attrs["axis"], node.attrs["epsilon"]
    ratio = ew.div(output, _sum_keep(output, axis))
    clipped = ew.clip(ratio, _scalar(epsilon, output), _scalar(1.0 - epsilon, output))
    return ew.mul(_spread_value(g, output, axis), ew.neg(ew.log(clipped)))


def _probability_sample(*shapes, symbolic=True):
    def make(rng):
        return [rng.uniform(0, 1, shapes[0]), rng.uniform(0.1, 1, shapes[1])] + [
            rng.uniform(-1, 1, s) for s in shapes[2:]]
    return Sample(shapes, {"axis": 1, "epsilon": 1e-7}, make=make, symbolic=symbolic)


register(OpDef(
    "categorical_crossentropy", "nn", infer=_loss_infer, kernel=_categorical_crossentropy,
    attrs={"axis": REQUIRED, "epsilon": REQUIRED},
    grad=lambda n, g: (_categorical_target_grad(n, g),
                       categorical_crossentropy_grad(*n.inputs, g, **n.attrs)),
    samples=(_probability_sample((3, 4), (3, 4)), _probability_sample((2, 3, 4), (2, 3, 4))),
    doc="-sum(target * log(clip(output / sum(output), eps, 1 - eps)), axis), as Keras' "
        "TensorFlow backend computes it from probabilities."))

register(OpDef(
    "categorical_crossentropy_grad", "nn", infer=_loss_grad_infer,
    kernel=_categorical_crossentropy_grad, attrs={"axis": REQUIRED, "epsilon": REQUIRED},
    grad=_categorical_grad_grad,
    samples=(_probability_sample((3, 4), (3, 4), (3,)),
             _probability_sample((3, 4), (3, 4), (), symbolic=False)),
    doc="d categorical_crossentropy / d output for loss cotangent g."))


def categorical_crossentropy(target, output, axis: int, epsilon: float):
    return apply("categorical_crossentropy", [target, output], axis=axis, epsilon=float(epsilon))


def categorical_crossentropy_grad(target, output, g, axis: int, epsilon: float):
    return apply("categorical_crossentropy_grad", [target, output, g], axis=axis,
                 epsilon=float(epsilon))


# --- binary crossentropy from logits ---------------------------------------------------------


@ignoring_underflow
def _sigmoid_cross_entropy(target, logits):
    """max(z, 0) - z t + log1p(exp(-|z|)): no overflow for any z (TensorFlow's form)."""
    return np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))


def _sigmoid_cross_entropy_scalar(b, target, logits):
    """The kernel's formula, operation for operation, on the scalar builder."""
    zero = b.const(0, b.dtype_of(logits))
    softplus_tail = b.math("log1p", b.math("exp", b.neg(b.abs(logits))))
    return b.add(b.sub(b.maximum(logits, zero), b.mul(logits, target)), softplus_tail)


sigmoid_cross_entropy = ew.define(
    "sigmoid_cross_entropy", _sigmoid_cross_entropy, 2,
    lambda n, g: (ew.mul(g, ew.neg(n.inputs[1])),
                  ew.mul(g, ew.sub(ew.sigmoid(n.inputs[1]), n.inputs[0]))),
    scalar=_sigmoid_cross_entropy_scalar,
    samples=(Sample(((3, 4), (3, 4))), Sample(((3, 4), (4,)))),
    doc="Elementwise binary crossentropy of target t and logits z, computed stably.")

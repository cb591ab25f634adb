"""Batch normalization in training, fused, and in_top_k (the top-k metrics' test).

Training batchnorm is hot in Keras models, so it is one op forward
(`batch_norm_train`: x, gamma, beta -> normalized, mean, var) and one op
backward (`batch_norm_train_grad`), each a handful of NumPy passes with
in-place arithmetic, where a composition of reductions and elementwise ops
would take three times as many. The kernels are in batch_norm_kernels.py.

The backward op treats mean and var as inputs of its own: at the forward
node's outputs they are the batch moments, and a second derivative reaches x
through them via the forward op's rule. The backward op's own gradient is
built from reductions and elementwise ops, so every order of derivative works.

Inference batchnorm needs no op of its own: `x * inv + (beta - mean * inv)`
with `inv = gamma / sqrt(var + eps)` is two passes over x as elementwise ops
(see graphk/backend/normalization.py).
"""
from __future__ import annotations

import numpy as np

from ..dtypes import DTypeError, require_float, require_integer
from ..graph import Value
from ..shapes import ShapeError, format_shape, merge_dim, merge_shapes
from ..types import TensorType
from . import elementwise as ew
from .leaf import constant
from .reduce import reduce_mean, reduce_sum, reduced_shape, reduced_size
from .axes import check_canonical_axes
from .batch_norm_kernels import _batch_norm_train, _batch_norm_train_grad
from .registry import NOT_DIFFERENTIABLE, REQUIRED, OpDef, Sample, apply, register
from .shape import reshape

# --- type rules --------------------------------------------------------------------------------


def _kept_type(x: TensorType, axes, params, names) -> TensorType:
    """The type of the per-channel tensors; each parameter must have it."""
    require_float(x.dtype, "batch normalization's input")
    check_canonical_axes(axes, x.ndim)
    kept = reduced_shape(x.shape, axes, False)
    for name, param in zip(names, params):
        if param.dtype != x.dtype:
            raise DTypeError(f"{name} has dtype {param.dtype}, x has {x.dtype}")
        kept = merge_shapes(kept, param.shape, f"the shape x {format_shape(x.shape)} keeps "
                                               f"over axes {axes}, and {name}")
    return TensorType(x.dtype, kept)


def _param_names(scale: bool, center: bool) -> list:
    return (["gamma"] if scale else []) + (["beta"] if center else [])


def _check_count(params, names) -> None:
    if len(params) != len(names):
        raise ShapeError(f"expected {len(names)} parameter input(s) {names}, got {len(params)}")


def _batch_norm_train_infer(x, *params, axes, epsilon, scale, center):
    names = _param_names(scale, center)
    _check_count(params, names)
    kept = _kept_type(x, axes, params, names)
    return TensorType(x.dtype, x.shape), kept, kept


def _batch_norm_train_grad_infer(gy, x, *params, axes, epsilon, scale):
    names = (["gamma"] if scale else []) + ["mean", "var"]
    _check_count(params, names)
    if gy.dtype != x.dtype:
        raise DTypeError(f"the cotangent has dtype {gy.dtype}, x has {x.dtype}")
    x = TensorType(x.dtype, merge_shapes(gy.shape, x.shape, "the cotangent and x"))
    kept = _kept_type(x, axes, params, names)
    return x, kept, kept


# --- gradient rules ----------------------------------------------------------------------


def _expand(value: Value, axes: tuple, ndim: int) -> Value:
    """A kept-shape tensor reshaped to broadcast against x (ones at the reduced axes).

    When the reduced axes lead, NumPy broadcasting already lines it up.
    """
    if axes == tuple(range(len(axes))):
        return value
    kept = iter(range(ndim - len(axes)))
    return reshape(value, tuple(1 if i in axes else ("dim", next(kept)) for i in range(ndim)))


def _plus(a: Value | None, b: Value | None) -> Value | None:
    if a is None:
        return b
    return a if b is None else ew.add(a, b)


def _count(x: Value, axes: tuple) -> Value:
    """How many elements each channel gathers, as a scalar of x's dtype."""
    dims = [x.type.shape[a] for a in axes]
    if all(isinstance(d, int) for d in dims):
        return constant(np.asarray(np.prod(dims, dtype=np.int64), dtype=x.type.dtype))
    return reduced_size(x, axes, dtype=x.type.dtype)


def _moments_vjp(x, mean, gmean, gvar, axes) -> Value:
    """The cotangent of x from those of mean(x) and var(x) = mean((x - mean)^2)."""
    total = None
    if gmean is not None:
        total = _expand(gmean, axes, x.type.ndim)
    if gvar is not None:
        centered = ew.sub(x, _expand(mean, axes, x.type.ndim))
        total = _plus(total, ew.mul(centered, _expand(ew.mul(gvar, 2.0), axes, x.type.ndim)))
    return ew.div(total, _count(x, axes))


def _batch_norm_train_vjp(node, cotangents):
    gy, gmean, gvar = cotangents
    x = node.inputs[0]
    axes, epsilon, scale = node.attrs["axes"], node.attrs["epsilon"], node.attrs["scale"]
    gamma = node.inputs[1] if scale else None
    _, mean, var = node.outputs
    dx = dgamma = dbeta = None
    if gy is not None:
        dx, dgamma, dbeta = batch_norm_train_grad(gy, x, gamma, mean, var, axes, epsilon)
    if gmean is not None or gvar is not None:
        dx = _plus(dx, _moments_vjp(x, mean, gmean, gvar, axes))
    return (dx,) + ((dgamma,) if scale else ()) + ((dbeta,) if node.attrs["center"] else ())


def _batch_norm_train_grad_vjp(node, cotangents):
    """Cotangents of (gy, x, gamma, mean, var) from those of (dx, dgamma, dbeta).

    With s = 1/sqrt(var + eps), xhat = (x - mean) s, r = gy - mean(gy) - xhat mean(gy xhat)
    (so dx = gamma s r) and a, b, c the cotangents of dx, dgamma, dbeta (means and sums
    over the reduced axes):
      d gy    = gamma s (a - mean(a) - xhat mean(a xhat)) + b xhat + c
      d gamma = s sum(a r)
      d xhat  = -gamma s (a mean(gy xhat) + gy mean(a xhat)) + b gy
      d x     = s d xhat,   d mean = -s sum(d xhat)
      d var   = -s^2 / 2 (gamma s sum(a r) + sum(d xhat xhat))
    """
    a, b, c = cotangents
    axes, epsilon, scale = node.attrs["axes"], node.attrs["epsilon"], node.attrs["scale"]
    gy, x = node.inputs[:2]
    gamma = node.inputs[2] if scale else None
    mean, var = node.inputs[-2:]
    ndim = x.type.ndim

    def spread(value):
        return _expand(value, axes, ndim)

    def mean_of(value):
        return reduce_mean(value, axes, keepdims=True)

    def sum_of(value):
        return reduce_sum(value, axes)

    inv = ew.div(1.0, ew.sqrt(ew.add(var, epsilon)))
    gain = ew.mul(inv, gamma) if scale else inv
    half_inv_sq = ew.mul(ew.mul(inv, inv), -0.5)
    xhat = ew.mul(ew.sub(x, spread(mean)), spread(inv))
    d_gy = d_xhat = d_gamma = d_var = None
    if a is not None:
        mean_gy_xhat, mean_a_xhat = mean_of(ew.mul(gy, xhat)), mean_of(ew.mul(a, xhat))
        r = ew.sub(ew.sub(gy, mean_of(gy)), ew.mul(xhat, mean_gy_xhat))
        sum_ar = sum_of(ew.mul(a, r))
        d_gy = ew.mul(spread(gain), ew.sub(ew.sub(a, mean_of(a)), ew.mul(xhat, mean_a_xhat)))
        d_gamma = ew.mul(sum_ar, inv)
        d_xhat = ew.neg(ew.mul(spread(gain), ew.add(ew.mul(a, mean_gy_xhat),
                                                    ew.mul(gy, mean_a_xhat))))
        d_var = ew.mul(half_inv_sq, ew.mul(gain, sum_ar))
    if b is not None:
        d_gy = _plus(d_gy, ew.mul(spread(b), xhat))
        d_xhat = _plus(d_xhat, ew.mul(spread(b), gy))
    if c is not None:
        d_gy = _plus(d_gy, spread(c))
    d_x = d_mean = None
    if d_xhat is not None:
        d_x = ew.mul(spread(inv), d_xhat)
        d_mean = ew.neg(ew.mul(inv, sum_of(d_xhat)))
        d_var = _plus(d_var, ew.mul(half_inv_sq, sum_of(ew.mul(d_xhat, xhat))))
    return (d_gy, d_x) + ((d_gamma,) if scale else ()) + (d_mean, d_var)


# --- in_top_k ------------------------------------------------------------------------------------


def _in_top_k_infer(predictions, targets, k):
    if predictions.ndim != 2:
        raise ShapeError(f"predictions must be a float matrix (batch, classes), got {predictions}")
    require_float(predictions.dtype, "predictions", "matrix (batch, classes)")
    if targets.ndim != 1:
        raise ShapeError(f"targets must be an int vector (batch,), got {targets}")
    require_integer(targets.dtype, "targets", "vector (batch,)")
    if not isinstance(k, int) or isinstance(k, bool):
        raise TypeError(f"k must be an int, got {k!r}")
    batch = merge_dim(predictions.shape[0], targets.shape[0],
                      "batch sizes of predictions and targets")
    return TensorType("bool", (batch,))


def _in_top_k(predictions, targets, k):
    """TensorFlow's rule: fewer than k classes score strictly higher than the target.

    So ties at the k-th place all count as in the top k; a target out of range,
    or whose score is not finite, is not in it.
    """
    rows, classes = predictions.shape
    valid = (targets >= 0) & (targets < classes)
    scores = predictions[np.arange(rows), np.where(valid, targets, 0)]
    higher = np.count_nonzero(predictions > scores[:, None], axis=1)
    return valid & np.isfinite(scores) & (higher < k)


def _tied_scores(rng):
    """Scores on a coarse grid (so ties happen), and targets with one out of range."""
    predictions = rng.integers(0, 3, (6, 5)).astype(np.float32)
    return [predictions, np.array([0, 1, 2, 3, 4, 7], np.int32)]


# --- registration and constructors ---------------------------------------------------------------


def _bn_sample(shapes, axes, scale=True, center=True):
    return Sample(shapes, {"axes": axes, "epsilon": 1e-3, "scale": scale, "center": center})


def _bn_grad_sample(x_shape, kept, axes, scale):
    def make(rng):
        arrays = [rng.uniform(-2, 2, x_shape), rng.uniform(-2, 2, x_shape)]
        if scale:
            arrays.append(rng.uniform(0.5, 2, kept))
        return arrays + [rng.uniform(-1, 1, kept), rng.uniform(0.5, 2, kept)]  # mean, var > 0
    shapes = (x_shape, x_shape) + ((kept,) if scale else ()) + (kept, kept)
    return Sample(shapes, {"axes": axes, "epsilon": 1e-3, "scale": scale}, make=make)


register(OpDef(
    "batch_norm_train", "normalization", infer=_batch_norm_train_infer, kernel=_batch_norm_train,
    attrs={"axes": REQUIRED, "epsilon": 1e-3, "scale": True, "center": True}, num_outputs=3,
    grad=_batch_norm_train_vjp,
    samples=(_bn_sample(((5, 3), (3,), (3,)), (0,)),
             _bn_sample(((2, 3, 2, 2), (3,), (3,)), (0, 2, 3)),
             _bn_sample(((4, 3, 2), (3, 2)), (0,), center=False),
             _bn_sample(((4, 3, 2),), (0, 1), scale=False, center=False),
             _bn_sample(((3, 4), (3,)), (1,), scale=False)),
    doc="(normalized, mean, var) of x over axes: (x - mean) / sqrt(var + epsilon) * gamma + beta "
        "with the batch's mean and (biased) variance; gamma and beta are inputs when scale and "
        "center are set, shaped like mean."))

register(OpDef(
    "batch_norm_train_grad", "normalization", infer=_batch_norm_train_grad_infer,
    kernel=_batch_norm_train_grad, attrs={"axes": REQUIRED, "epsilon": 1e-3, "scale": True},
    num_outputs=3, grad=_batch_norm_train_grad_vjp,
    samples=(_bn_grad_sample((5, 3), (3,), (0,), True),
             _bn_grad_sample((2, 3, 2), (3,), (0, 2), False),
             _bn_grad_sample((2, 3, 2), (3, 2), (0,), True)),
    doc="(dx, dgamma, dbeta) of batch_norm_train for the cotangent gy of its normalized output; "
        "mean and var are its batch moments."))

register(OpDef(
    "in_top_k", "normalization", infer=_in_top_k_infer, kernel=_in_top_k,
    attrs={"k": REQUIRED}, grad=NOT_DIFFERENTIABLE,
    samples=(Sample(((6, 5), (6,)), {"k": 2}, dtypes=("float32", "int32"), make=_tied_scores),
             Sample(((6, 5), (6,)), {"k": 0}, dtypes=("float32", "int32"), make=_tied_scores)),
    doc="Whether each row's target class is among its k highest predictions (ties included)."))


def batch_norm_train(x: Value, gamma: Value | None, beta: Value | None, axes: tuple,
                     epsilon: float = 1e-3) -> tuple[Value, Value, Value]:
    """(normalized, mean, var) of x over `axes` (canonical: sorted, non-negative)."""
    params = [p for p in (gamma, beta) if p is not None]
    return apply("batch_norm_train", [x, *params], axes=tuple(axes), epsilon=float(epsilon),
                 scale=gamma is not None, center=beta is not None)


def batch_norm_train_grad(gy: Value, x: Value, gamma: Value | None, mean: Value, var: Value,
                          axes: tuple, epsilon: float) -> tuple[Value, Value, Value]:
    params = [gamma] if gamma is not None else []
    return apply("batch_norm_train_grad", [gy, x, *params, mean, var], axes=tuple(axes),
                 epsilon=float(epsilon), scale=gamma is not None)


def in_top_k(predictions: Value, targets: Value, k: int) -> Value:
    return apply("in_top_k", [predictions, targets], k=int(k))

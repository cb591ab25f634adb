"""Batch normalization and in_top_k with Keras' (TensorFlow backend's) arguments.

`batch_normalization` (inference, given mean and var) is TensorFlow's
`x * inv + (beta - mean * inv)` with `inv = gamma / sqrt(var + epsilon)`: two
elementwise passes over x, differentiable in every argument through the
elementwise ops. Parameters broadcast against x as NumPy does; a 1-D
parameter applies along `axis` (TensorFlow's fused rule for NCHW, extended to
any rank). `normalize_batch_in_training` is the fused op of
ir/ops/normalization.py; it returns the biased batch variance, as Keras 2.3.1
on TensorFlow 2 does (the BatchNormalization layer applies Bessel's correction
itself).
"""
from __future__ import annotations

import numpy as np

from ..ir.dtypes import is_floating
from ..ir.graph import Value
from ..ir.ops import elementwise as ew
from ..ir.ops import normalization as ops
from ..ir.ops.reduce import reduced_shape
from ..ir.ops.shape import reshape
from ..ir.shapes import (ShapeError, broadcast_shapes, format_shape, normalize_axes,
                         normalize_axis)
from .arguments import argument_error, static_int
from .tensors import _as_tensor


def _param(value, x: Value) -> Value | None:
    """A parameter as a tensor of x's dtype (None stays None)."""
    if value is None:
        return None
    value = _as_tensor(value)
    if value.type.dtype != x.type.dtype and is_floating(x.type.dtype):
        value = ew.cast(value, dtype=x.type.dtype)
    return value


def _along(param: Value | None, axis: int, ndim: int) -> Value | None:
    """A 1-D parameter reshaped to lie along `axis` of a rank-`ndim` tensor."""
    if param is None or param.type.ndim != 1 or ndim < 2 or axis == ndim - 1:
        return param
    return reshape(param, tuple(("dim", 0) if i == axis else 1 for i in range(ndim)))


def _check_broadcast(x: Value, **params) -> None:
    """Each parameter must broadcast to x's shape (checked here to name the parameter)."""
    for name, param in params.items():
        if param is None:
            continue
        try:
            if broadcast_shapes(x.type.shape, param.type.shape) != x.type.shape:
                raise ShapeError("it would enlarge x")
        except ShapeError:
            raise argument_error("batch_normalization",
                                 f"{name} of shape {format_shape(param.type.shape)} does not "
                                 f"broadcast to x's shape {format_shape(x.type.shape)}") from None


def batch_normalization(x, mean, var, beta, gamma, axis=-1, epsilon=1e-3) -> Value:
    """(x - mean) / sqrt(var + epsilon) * gamma + beta.

    Arguments:
        x: a tensor.
        mean: the mean, broadcast against x (a vector applies along `axis`).
        var: the variance, like mean.
        beta: the offset, like mean, or None.
        gamma: the scale, like mean, or None.
        axis: the channel axis a vector parameter applies along.
        epsilon: added to var before the square root.

    Returns:
        A tensor of x's shape.
    """
    x = _as_tensor(x)
    try:
        axis = normalize_axis(int(axis), x.type.ndim)
    except ShapeError as error:
        raise argument_error("batch_normalization", str(error), type(error)) from None
    mean, var, beta, gamma = (_along(_param(p, x), axis, x.type.ndim)
                              for p in (mean, var, beta, gamma))
    _check_broadcast(x, mean=mean, var=var, beta=beta, gamma=gamma)
    inv = ew.div(1.0, ew.sqrt(ew.add(var, float(epsilon))))
    if gamma is not None:
        inv = ew.mul(inv, gamma)
    shift = ew.neg(ew.mul(mean, inv)) if beta is None else ew.sub(beta, ew.mul(mean, inv))
    return ew.add(ew.mul(x, inv), shift)


def _channel_param(param: Value | None, x: Value, axes: tuple, name: str) -> Value | None:
    """gamma or beta in the shape x keeps when reduced over axes (as TF's tf.reshape does)."""
    if param is None:
        return None
    kept = reduced_shape(x.type.shape, axes, False)
    if param.type.ndim == len(kept):
        return param  # the op's type rule checks the sizes
    if param.type.ndim == x.type.ndim:  # a broadcastable form, ones at the reduced axes
        return reshape(param, tuple(("dim", i) for i in range(x.type.ndim) if i not in axes))
    if all(isinstance(d, int) for d in kept):
        return reshape(param, kept)
    raise argument_error("normalize_batch_in_training",
                         f"{name} of shape {format_shape(param.type.shape)} cannot be reshaped to "
                         f"x's kept shape {format_shape(kept)} (x {format_shape(x.type.shape)}, "
                         f"axes {axes})")


def normalize_batch_in_training(x, gamma, beta, reduction_axes, epsilon=1e-3) -> tuple:
    """x normalized with the batch's own moments, and those moments.

    Arguments:
        x: a tensor.
        gamma: the scale (x's shape without the reduced axes), or None.
        beta: the offset, like gamma, or None.
        reduction_axes: the axes the moments are taken over (an int or a list).
        epsilon: added to the variance before the square root.

    Returns:
        (normalized x, mean, var); mean and var have x's shape without the
        reduced axes, and gamma and beta are reshaped to that shape.
    """
    x = _as_tensor(x)
    try:
        if not isinstance(reduction_axes, (int, np.integer)):
            reduction_axes = [int(a) for a in reduction_axes]
        axes = normalize_axes(reduction_axes, x.type.ndim)
    except (ShapeError, TypeError) as error:
        raise argument_error("normalize_batch_in_training", str(error), type(error)) from None
    gamma = _channel_param(_param(gamma, x), x, axes, "gamma")
    beta = _channel_param(_param(beta, x), x, axes, "beta")
    return tuple(ops.batch_norm_train(x, gamma, beta, axes, float(epsilon)))


def in_top_k(predictions, targets, k) -> Value:
    """Whether each target is among the k highest predictions of its row.

    Ties count as TensorFlow counts them: a target whose score ties the k-th
    highest is in the top k.

    Arguments:
        predictions: a (batch, classes) float tensor.
        targets: a (batch,) int tensor of class indices.
        k: a Python int.

    Returns:
        A (batch,) bool tensor.

    Example:
        >>> targets = K.constant([1, 1], dtype="int32")
        >>> K.eval(K.in_top_k(K.constant([[0.1, 0.9], [0.8, 0.2]]), targets, 1))
        array([ True, False])
    """
    predictions, targets = _as_tensor(predictions), _as_tensor(targets)
    return ops.in_top_k(predictions, targets, static_int(k, "k", "in_top_k"))


__all__ = ["batch_normalization", "normalize_batch_in_training", "in_top_k"]

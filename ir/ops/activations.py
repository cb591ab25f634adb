"""Keras' relu with alpha, max_value and threshold, as its TensorFlow backend computes it.

Keras 2.3.1's numpy_backend is not the reference: keras/backend/tensorflow_backend.py
is. With alpha != 0 and neither max_value nor threshold it is TF's leaky_relu
(x > 0 ? x : alpha * x). Otherwise, step by step:
    y = x * (x > threshold)       if threshold != 0  (so relu(threshold) = 0, and a
                                                       negative threshold lets x in
                                                       (threshold, 0) through unclipped)
    y = max(x, 0)                 otherwise (relu6 when max_value == 6)
    y = clip(y, 0, max_value)     if max_value is given
    y = y - alpha * max(threshold - x, 0)   if alpha != 0
The gradient is TF's through the same steps: (x > threshold) or (x > 0), then
where 0 <= y <= max_value (relu6: 0 < x < 6), plus alpha where x < threshold.
The kernels and scalar rules here see inputs already in their compute dtype
(see elementwise.define).
"""
from __future__ import annotations

import numpy as np

from ..dtypes import DTypeError, is_integer, numeric_rule
from .registry import Sample

RELU_ATTRS = {"alpha": 0.0, "max_value": None, "threshold": 0.0}
RELU_SAMPLES = (
    Sample(((3, 4),)),
    Sample(((3, 4),), {"alpha": 0.1, "max_value": 1.5, "threshold": 0.25}),
    Sample(((3, 4),), {"threshold": -0.5}),
    Sample(((3, 4),), {"alpha": 0.3}),
    Sample(((3, 4),), {"max_value": 6.0}, low=-3.0, high=9.0),
    Sample(((3, 4),), {"alpha": 0.2, "max_value": 1.0}),
)


def relu_rule(dtypes, attrs):
    """relu and relu_grad: numeric; ints only without alpha, max_value or threshold."""
    out, computes = numeric_rule(dtypes, attrs)
    plain = (attrs.get("alpha", 0.0) == 0.0 and attrs.get("max_value") is None
             and attrs.get("threshold", 0.0) == 0.0)
    if is_integer(out) and not plain:
        raise DTypeError(f"relu with alpha, max_value or threshold needs a float tensor, got "
                         f"{out}; K.cast(x, K.floatx()) first")
    return out, computes


def _is_leaky(alpha, max_value, threshold) -> bool:
    return alpha != 0.0 and max_value is None and threshold == 0.0


def relu_kernel(x, alpha=0.0, max_value=None, threshold=0.0):
    zero = np.zeros((), x.dtype)
    if _is_leaky(alpha, max_value, threshold):
        return np.where(x > 0, x, x * x.dtype.type(alpha))
    if threshold != 0.0:
        y = x * (x > x.dtype.type(threshold)).astype(x.dtype)
    else:
        y = np.maximum(x, zero)
    if max_value is not None:
        y = np.clip(y, zero, x.dtype.type(max_value))
    if alpha != 0.0:
        y = y - x.dtype.type(alpha) * np.maximum(x.dtype.type(threshold) - x, zero)
    return y


def relu_scalar(b, x, alpha=0.0, max_value=None, threshold=0.0):
    dtype = b.dtype_of(x)
    zero = b.const(0, dtype)
    if _is_leaky(alpha, max_value, threshold):
        return b.select(b.compare("gt", x, zero), x, b.mul(x, b.const(alpha, dtype)))
    if threshold != 0.0:
        above = b.compare("gt", x, b.const(threshold, dtype))
        y = b.mul(x, b.cast(above, dtype))
    else:
        y = b.maximum(x, zero)
    if max_value is not None:
        y = b.minimum(b.maximum(y, zero), b.const(max_value, dtype))
    if alpha != 0.0:
        below = b.maximum(b.sub(b.const(threshold, dtype), x), zero)
        y = b.sub(y, b.mul(b.const(alpha, dtype), below))
    return y


def relu_grad_kernel(g, x, alpha=0.0, max_value=None, threshold=0.0):
    """g times the slope of relu at x, TF's way (see the module docstring)."""
    dtype = g.dtype.type
    if _is_leaky(alpha, max_value, threshold):
        return g * np.where(x > 0, dtype(1), dtype(alpha))
    if max_value == 6.0 and threshold == 0.0:
        slope = (x > 0) & (x < 6)
    else:
        slope = x > dtype(threshold)
        if max_value is not None:
            y = x * slope.astype(x.dtype)
            slope &= (y >= 0) & (y <= dtype(max_value))
    result = g * slope.astype(g.dtype)
    if alpha != 0.0:
        result = result + g * (dtype(alpha) * (x < dtype(threshold)).astype(g.dtype))
    return result


def relu_grad_scalar(b, g, x, alpha=0.0, max_value=None, threshold=0.0):
    dtype = b.dtype_of(g)
    zero, one = b.const(0, dtype), b.const(1, dtype)
    if _is_leaky(alpha, max_value, threshold):
        return b.mul(g, b.select(b.compare("gt", x, zero), one, b.const(alpha, dtype)))
    if max_value == 6.0 and threshold == 0.0:
        slope = b.logical_and(b.compare("gt", x, zero), b.compare("lt", x, b.const(6, dtype)))
    else:
        slope = b.compare("gt", x, b.const(threshold, dtype))
        if max_value is not None:
            y = b.mul(x, b.cast(slope, dtype))
            inside = b.logical_and(b.compare("ge", y, zero),
                                   b.compare("le", y, b.const(max_value, dtype)))
            slope = b.logical_and(slope, inside)
    result = b.mul(g, b.cast(slope, dtype))
    if alpha != 0.0:
        below = b.cast(b.compare("lt", x, b.const(threshold, dtype)), dtype)
        result = b.add(result, b.mul(g, b.mul(b.const(alpha, dtype), below)))
    return result

"""Reductions and scans with Keras 2.3.1's TensorFlow-backend semantics.

`axis` is an int, a list of ints (negatives count from the end) or None for
every axis. Dtypes follow tensorflow_backend.py: mean and var cast a bool
tensor to floatx first, any and all treat nonzero as True, argmax and argmin
give int64, and other reductions keep the input's dtype (a sum of int32 is
int32; the mean of ints is an int, truncated toward zero).

The names shadow Python builtins (sum, max, any, ...), as Keras' backend does;
`graphk.backend` keeps the builtins as py_sum, py_any, ...
"""
from __future__ import annotations

from .. import config
from ..ir.graph import Value
from ..ir.ops import elementwise as ew
from ..ir.ops import reduce as ops
from .tensors import _as_tensor


def _bool_to_floatx(x: Value) -> Value:
    """Keras' TensorFlow backend casts bools to floatx before mean and var."""
    return ew.cast(x, dtype=config.floatx()) if x.type.dtype == "bool" else x


def sum(x, axis=None, keepdims: bool = False) -> Value:
    """Sum over `axis`; the dtype is kept (int32 in, int32 out)."""
    return ops.reduce_sum(_as_tensor(x), axis, keepdims)


def prod(x, axis=None, keepdims: bool = False) -> Value:
    return ops.reduce_prod(_as_tensor(x), axis, keepdims)


def mean(x, axis=None, keepdims: bool = False) -> Value:
    """Mean over `axis`; bools become floatx first, ints give an int (truncated)."""
    return ops.reduce_mean(_bool_to_floatx(_as_tensor(x)), axis, keepdims)


def var(x, axis=None, keepdims: bool = False) -> Value:
    """Population variance (divides by the count, not count - 1)."""
    return ops.reduce_var(_bool_to_floatx(_as_tensor(x)), axis, keepdims)


def std(x, axis=None, keepdims: bool = False) -> Value:
    """sqrt(var(x)); an int tensor is an error, as tf.sqrt of an int is."""
    return ops.reduce_std(_bool_to_floatx(_as_tensor(x)), axis, keepdims)


def max(x, axis=None, keepdims: bool = False) -> Value:
    return ops.reduce_max(_as_tensor(x), axis, keepdims)


def min(x, axis=None, keepdims: bool = False) -> Value:
    return ops.reduce_min(_as_tensor(x), axis, keepdims)


def any(x, axis=None, keepdims: bool = False) -> Value:
    """Logical or of x != 0 over `axis`: a bool tensor."""
    return ops.reduce_any(_as_tensor(x), axis, keepdims)


def all(x, axis=None, keepdims: bool = False) -> Value:
    """Logical and of x != 0 over `axis`: a bool tensor."""
    return ops.reduce_all(_as_tensor(x), axis, keepdims)


def _single_axis(axis):
    """tf.argmax takes axis None as 0 (not as 'flatten', which NumPy does)."""
    return 0 if axis is None else axis


def argmax(x, axis: int = -1) -> Value:
    """Index (int64) of the first maximum along `axis`."""
    return ops.argmax(_as_tensor(x), _single_axis(axis))


def argmin(x, axis: int = -1) -> Value:
    """Index (int64) of the first minimum along `axis`."""
    return ops.argmin(_as_tensor(x), _single_axis(axis))


def logsumexp(x, axis=None, keepdims: bool = False) -> Value:
    """log(sum(exp(x))) over `axis`, stable for large inputs (the max is subtracted)."""
    return ops.reduce_logsumexp(_as_tensor(x), axis, keepdims)


def cumsum(x, axis: int = 0) -> Value:
    """Running sum along `axis`."""
    return ops.cumsum(_as_tensor(x), axis)


def cumprod(x, axis: int = 0) -> Value:
    """Running product along `axis`; its gradient needs x free of zeros."""
    return ops.cumprod(_as_tensor(x), axis)


__all__ = [
    "all",
    "any",
    "argmax",
    "argmin",
    "cumprod",
    "cumsum",
    "logsumexp",
    "max",
    "mean",
    "min",
    "prod",
    "std",
    "sum",
    "var",
]

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

import builtins

from .. import config
from ..ir.graph import Value
from ..ir.ops import elementwise as ew
from ..ir.ops import reduce as ops
from .tensors import _as_tensor


def _bool_to_floatx(x: Value) -> Value:
    """Keras' TensorFlow backend casts bools to floatx before mean and var."""
    return ew.cast(x, dtype=config.floatx()) if x.type.dtype == "bool" else x


def sum(x, axis=None, keepdims: bool = False) -> Value:
    """Sum over `axis`.

    Arguments:
        x: a tensor.
        axis: an int, a list of ints (negative ones count from the end),
            or None for every axis.
        keepdims: keep the reduced axes with size 1.

    Returns:
        A tensor of x's dtype (int32 in, int32 out).

    Example:
        >>> K.eval(K.sum(K.constant([[1, 2], [3, 4]]), axis=0))
        array([4., 6.], dtype=float32)
    """
    return ops.reduce_sum(_as_tensor(x), axis, keepdims)


def prod(x, axis=None, keepdims: bool = False) -> Value:
    """Product over `axis`.

    Arguments:
        x: a tensor.
        axis: an int, a list of ints (negative ones count from the end),
            or None for every axis.
        keepdims: keep the reduced axes with size 1.

    Returns:
        A tensor of x's dtype.
    """
    if _scalar_tensors(x) and axis in (None, 0, -1) and not keepdims:
        # Keras' BatchNormalization multiplies K.shape(x)[axis] for its sample size every
        # step: a chain of products fuses with what follows, a stack is a kernel call
        result = x[0]
        for item in x[1:]:
            result = ew.mul(result, item)
        return result
    return ops.reduce_prod(_as_tensor(x), axis, keepdims)


def _scalar_tensors(x) -> bool:
    """A non-empty list of rank-0 tensors of one dtype (what stacking would make a vector)."""
    return (isinstance(x, (list, tuple)) and len(x) > 0
            and builtins.all(isinstance(item, Value) and item.type.ndim == 0 for item in x)
            and len({item.type.dtype for item in x}) == 1)


def mean(x, axis=None, keepdims: bool = False) -> Value:
    """Mean over `axis`.

    Arguments:
        x: a tensor.
        axis: an int, a list of ints (negative ones count from the end),
            or None for every axis.
        keepdims: keep the reduced axes with size 1.

    Returns:
        A tensor of x's dtype: bools become floatx first, and the mean of ints is an int,
        truncated toward zero (as Keras' TensorFlow backend).
    """
    return ops.reduce_mean(_bool_to_floatx(_as_tensor(x)), axis, keepdims)


def var(x, axis=None, keepdims: bool = False) -> Value:
    """Population variance over `axis` (divided by the count, not count - 1).

    Arguments:
        x: a tensor.
        axis: an int, a list of ints (negative ones count from the end),
            or None for every axis.
        keepdims: keep the reduced axes with size 1.

    Returns:
        A tensor of x's dtype (bools become floatx first).
    """
    return ops.reduce_var(_bool_to_floatx(_as_tensor(x)), axis, keepdims)


def std(x, axis=None, keepdims: bool = False) -> Value:
    """Population standard deviation over `axis`: sqrt(var(x)).

    Arguments:
        x: a tensor.
        axis: an int, a list of ints (negative ones count from the end),
            or None for every axis.
        keepdims: keep the reduced axes with size 1.

    Returns:
        A tensor of x's dtype; an int tensor is an error, as tf.sqrt of an int is.
    """
    return ops.reduce_std(_bool_to_floatx(_as_tensor(x)), axis, keepdims)


def max(x, axis=None, keepdims: bool = False) -> Value:
    """Maximum over `axis`.

    Arguments:
        x: a tensor.
        axis: an int, a list of ints (negative ones count from the end),
            or None for every axis.
        keepdims: keep the reduced axes with size 1.

    Returns:
        A tensor of x's dtype.
    """
    return ops.reduce_max(_as_tensor(x), axis, keepdims)


def min(x, axis=None, keepdims: bool = False) -> Value:
    """Minimum over `axis`.

    Arguments:
        x: a tensor.
        axis: an int, a list of ints (negative ones count from the end),
            or None for every axis.
        keepdims: keep the reduced axes with size 1.

    Returns:
        A tensor of x's dtype.
    """
    return ops.reduce_min(_as_tensor(x), axis, keepdims)


def any(x, axis=None, keepdims: bool = False) -> Value:
    """Logical or of x != 0 over `axis`.

    Arguments:
        x: a tensor.
        axis: an int, a list of ints (negative ones count from the end),
            or None for every axis.
        keepdims: keep the reduced axes with size 1.

    Returns:
        A bool tensor.

    Example:
        >>> K.eval(K.any(K.constant([[0, 1], [0, 0]]), axis=1))
        array([ True, False])
    """
    return ops.reduce_any(_as_tensor(x), axis, keepdims)


def all(x, axis=None, keepdims: bool = False) -> Value:
    """Logical and of x != 0 over `axis`.

    Arguments:
        x: a tensor.
        axis: an int, a list of ints (negative ones count from the end),
            or None for every axis.
        keepdims: keep the reduced axes with size 1.

    Returns:
        A bool tensor.
    """
    return ops.reduce_all(_as_tensor(x), axis, keepdims)


def _single_axis(axis):
    """tf.argmax takes axis None as 0 (not as 'flatten', which NumPy does)."""
    return 0 if axis is None else axis


def argmax(x, axis: int = -1) -> Value:
    """Index of the first maximum along `axis`.

    Arguments:
        x: a tensor.
        axis: the axis to search (None means 0, as tf.argmax).

    Returns:
        An int64 tensor with `axis` removed.

    Example:
        >>> K.eval(K.argmax(K.constant([[1, 3, 2]])))
        array([1])
    """
    return ops.argmax(_as_tensor(x), _single_axis(axis))


def argmin(x, axis: int = -1) -> Value:
    """Index of the first minimum along `axis`.

    Arguments:
        x: a tensor.
        axis: the axis to search (None means 0, as tf.argmin).

    Returns:
        An int64 tensor with `axis` removed.
    """
    return ops.argmin(_as_tensor(x), _single_axis(axis))


def logsumexp(x, axis=None, keepdims: bool = False) -> Value:
    """log(sum(exp(x))) over `axis`, stable for large inputs (the max is subtracted).

    Arguments:
        x: a tensor.
        axis: an int, a list of ints (negative ones count from the end),
            or None for every axis.
        keepdims: keep the reduced axes with size 1.

    Returns:
        A tensor of x's dtype.

    Example:
        >>> K.eval(K.logsumexp(K.constant([1000.0, 1000.0])))
        np.float32(1000.6932)
    """
    return ops.reduce_logsumexp(_as_tensor(x), axis, keepdims)


def cumsum(x, axis: int = 0) -> Value:
    """Running sum along `axis`.

    Arguments:
        x: a tensor.
        axis: the axis to accumulate along.

    Returns:
        A tensor of x's shape and dtype.

    Example:
        >>> K.eval(K.cumsum(K.constant([1, 2, 3])))
        array([1., 3., 6.], dtype=float32)
    """
    return ops.cumsum(_as_tensor(x), axis)


def cumprod(x, axis: int = 0) -> Value:
    """Running product along `axis`.

    Arguments:
        x: a tensor.
        axis: the axis to accumulate along.

    Returns:
        A tensor of x's shape and dtype; its gradient needs x free of zeros.
    """
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

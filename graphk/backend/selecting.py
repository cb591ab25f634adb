"""Selecting with Keras semantics: K.slice, K.gather, K.one_hot, and K.arange.

`start` and `size` of K.slice may mix ints and int scalar tensors; those
known when the graph is built (constants, or computed from constants alone)
are read now, so the result keeps a static shape where TensorFlow's would.
"""
from __future__ import annotations

import numpy as np

from ..ir.dtypes import as_dtype
from ..ir.graph import Value
from ..ir.ops import elementwise as ew
from ..ir.ops import indexing
from ..ir.ops import shape as ops
from ..ir.ops.leaf import constant
from ..passes.fold import static_value
from .arguments import argument_error, static_int, to_int32
from .shaping import _with_known_sizes
from .tensors import _as_tensor

py_slice = slice  # `slice` is a Keras function below


def _vector(value, op_name: str) -> list:
    """A start/size argument as a list of ints and int scalar tensors."""
    if isinstance(value, Value):
        fixed = static_value(value)
        if fixed is not None:
            return [int(v) for v in np.ravel(fixed)]
        length = value.type.shape[0] if value.type.ndim == 1 else None
        if not isinstance(length, int):
            raise argument_error(op_name, f"start and size must be int vectors of known length, "
                                          f"got {value.type}")
        return [indexing.getitem(value, i) for i in range(length)]
    result = []
    for item in value:
        fixed = static_value(item) if isinstance(item, Value) else None
        result.append(int(fixed) if fixed is not None else
                      item if isinstance(item, Value) else int(item))
    return result


def _slice_bounds(x: Value, axis: int, start, size) -> py_slice:
    """tf.slice's start/size on one axis as a Python slice (size -1: to the end)."""
    dim = x.type.shape[axis]
    if isinstance(start, int) and isinstance(size, int):
        end = dim if size == -1 else start + size
        if start < 0 or size < -1 or (isinstance(dim, int) and not start <= end <= dim):
            raise argument_error("slice", f"start {start} and size {size} do not fit axis "
                                          f"{axis} of shape {x.shape}")
        return py_slice(start, None if size == -1 else start + size)
    if isinstance(size, int):
        return py_slice(start, None if size == -1 else ew.add(to_int32(start), size))
    start = to_int32(start) if isinstance(start, Value) else start
    to_end = indexing.getitem(ops.shape_of(x), axis)
    stop = ew.switch(ew.equal(size, -1), to_end, ew.add(start, to_int32(size)))
    return py_slice(start, stop)


def slice(x, start, size) -> Value:
    """tf.slice: the block of `size` elements from `start` on each axis.

    Arguments:
        x: a tensor.
        start: the first index on each axis (ints, or int scalar tensors).
        size: how many elements on each axis; -1 takes the rest of the axis.

    Returns:
        The block. Where a size is a known int (not -1), the result has that
        size in its static shape (K.int_shape) even when x's axis is unknown,
        as TensorFlow's shape inference gives it; a block reaching past the
        end of such an axis is an error when the function runs.

    Example:
        >>> x = K.placeholder((None, 5))
        >>> K.int_shape(K.slice(x, [0, 1], [2, 3]))
        (2, 3)
    """
    x = _as_tensor(x)
    starts, sizes = _vector(start, "slice"), _vector(size, "slice")
    if not x.type.ndim == len(starts) == len(sizes):
        raise argument_error("slice", "The dimension and the size of indices should match. "
                                      f"(rank {x.type.ndim}, {len(starts)} starts, "
                                      f"{len(sizes)} sizes)", ValueError)
    key = tuple(_slice_bounds(x, axis, s, n) for axis, (s, n) in enumerate(zip(starts, sizes)))
    return _with_known_sizes(indexing.getitem(x, key), sizes)


def gather(reference, indices) -> Value:
    """Entries of `reference` along its first axis, picked by indices.

    Arguments:
        reference: a tensor.
        indices: an int tensor, or a list or array of ints.

    Returns:
        A tensor of shape indices.shape + reference.shape[1:].

    Example:
        >>> K.eval(K.gather(K.constant([[1, 2], [3, 4], [5, 6]]), [2, 0]))
        array([[5., 6.],
               [1., 2.]], dtype=float32)
    """
    reference = _as_tensor(reference)
    if not isinstance(indices, Value):
        indices = np.asarray(indices)
        if indices.dtype.kind not in "iu":
            raise argument_error("gather", f"indices must be integers, got {indices.dtype}",
                                 TypeError)
        indices = constant(indices.astype(np.int32))
    return indexing.gather(reference, indices)


def one_hot(indices, num_classes) -> Value:
    """One-hot vectors along a new last axis (tf.one_hot).

    Arguments:
        indices: an int tensor of class indices (out-of-range ones give zeros).
        num_classes: the vectors' length (a Python int).

    Returns:
        A float32 tensor of shape indices.shape + (num_classes,).

    Example:
        >>> K.eval(K.one_hot(K.constant([0, 2], dtype="int32"), 3))
        array([[1., 0., 0.],
               [0., 0., 1.]], dtype=float32)
    """
    indices = _as_tensor(indices)
    return indexing.one_hot(indices, static_int(num_classes, "num_classes", "one_hot",
                                                truncate=True))


def _range_dtype(*bounds) -> str:
    """tf.range's dtype: int32 for ints, float32 if any bound is a float."""
    floats = any(np.asarray(b).dtype.kind == "f" for b in bounds)
    return "float32" if floats else "int32"


def arange(start, stop=None, step=1, dtype="int32") -> Value:
    """start, start + step, ... below stop, as Keras' TensorFlow backend gives it.

    Like tf.range: float bounds give float32 (then cast only if `dtype` is not
    'int32', exactly as Keras does), and a single negative bound gives an empty
    range. Tensor bounds build a run-time range.

    Arguments:
        start: the first value, or the end when stop is None.
        stop: the end (excluded).
        step: the increment.
        dtype: the result's dtype.

    Returns:
        A rank-1 tensor.

    Example:
        >>> K.eval(K.arange(2, 8, 2))
        array([2, 4, 6], dtype=int32)
    """
    if stop is None:
        start, stop = 0, start
    bounds = (start, stop, step)
    if any(isinstance(b, Value) for b in bounds):
        like = next(b for b in bounds if isinstance(b, Value))
        values = [b if isinstance(b, Value) else constant(np.asarray(b, dtype=like.type.dtype))
                  for b in bounds]
        result = ops.arange(*values)
    else:  # an empty range where tf.range would refuse (Keras clamps start < 0 to 0)
        result = constant(np.arange(start, stop, step).astype(_range_dtype(*bounds)))
    if dtype != "int32" and result.type.dtype != as_dtype(dtype):
        result = ew.cast(result, dtype=as_dtype(dtype))
    return result


__all__ = ["arange", "gather", "one_hot", "slice"]

"""Shapes with Keras semantics: K.shape, K.reshape, K.flatten, K.permute_dimensions, ...

The ops live in `ir/ops/shape.py`; this module turns Keras' arguments into
them. The one clever part is `reshape`: Keras passes targets such as
`(K.shape(x)[0], 10)`, and a target entry that reads a dim of some tensor's
runtime shape is resolved to that dim at build time, so the reshape stays
static (and its output keeps the symbol `?0`) whenever it can.
"""
from __future__ import annotations

import numpy as np

from ..ir.dtypes import is_integer
from ..ir.graph import Value
from ..ir.ops import elementwise as ew
from ..ir.ops import indexing
from ..ir.ops import shape as ops
from ..ir.ops.leaf import constant
from ..passes.fold import static_value  # constant_value, seeing through small constant subgraphs
from ..ir.shapes import SymDim, same_dim
from .arguments import argument_error, to_int32
from .tensors import _as_tensor


def shape(x) -> Value:
    """The run-time shape of x.

    Arguments:
        x: a tensor.

    Returns:
        An int32 vector tensor; its entries (K.shape(x)[0]) may be used as
        reshape targets, which graphk resolves to x's own (symbolic) dims.

    Example:
        >>> x = K.placeholder((None, 3))
        >>> K.function([x], [K.shape(x)])([np.ones((5, 3))])[0]
        array([5, 3], dtype=int32)
    """
    return ops.shape_of(_as_tensor(x))


def size(x, name=None) -> Value:
    """The run-time number of elements of x.

    Arguments:
        x: a tensor.
        name: ignored (accepted for Keras).

    Returns:
        An int32 scalar tensor.
    """
    return ops.size_of(_as_tensor(x))


# --- reshape --------------------------------------------------------------------------

def _dim_reference(value: Value):
    """(y, axis) if value is K.shape(y)[axis], else None."""
    node = value.node
    if value.op_name != "getitem" or len(node.inputs) != 1:
        return None
    source, key = node.inputs[0], node.attrs["key"]
    if source.op_name != "shape_of" or len(key) != 1 or not isinstance(key[0], int):
        return None
    y = source.node.inputs[0]
    return y, key[0] % y.type.ndim


def _entry(item):
    """One target entry: an int, a (tensor, axis) dim reference, or an int scalar tensor."""
    if isinstance(item, Value):
        fixed = static_value(item)
        if fixed is not None and fixed.ndim == 0:
            return int(fixed)
        if item.type.ndim != 0 or not is_integer(item.type.dtype):
            raise argument_error("reshape", f"a target entry must be an int or an int scalar "
                                            f"tensor, got {item.type}", TypeError)
        return _dim_reference(item) or item
    if item is None or isinstance(item, (bool, float)):
        raise argument_error("reshape", f"a target entry must be an int or an int scalar tensor, "
                                        f"got {item!r}", TypeError)
    return int(item)


def _target_entries(target):
    """The target's entries, or None for a runtime vector graphk cannot see into."""
    if isinstance(target, (list, tuple)):
        return [_entry(item) for item in target]
    if not isinstance(target, Value):
        return [_entry(item) for item in np.ravel(target).tolist()]
    fixed = static_value(target)
    if fixed is not None:
        return [int(v) for v in np.ravel(fixed)]
    if target.op_name == "shape_of":
        y = target.node.inputs[0]
        return [(y, axis) for axis in range(y.type.ndim)]
    node = target.node
    if (target.op_name == "stack" and node.attrs["axis"] == 0
            and all(v.type.ndim == 0 for v in node.inputs)):
        return [_entry(v) for v in node.inputs]
    return None


def _static_item(x: Value, entry):
    """An entry as a static target item where possible: int, ('dim', j) or a SymDim."""
    if not isinstance(entry, tuple):
        return entry
    y, axis = entry
    dim = y.type.shape[axis]
    if isinstance(dim, int):
        return dim
    for j, d in enumerate(x.type.shape):
        if same_dim(d, dim):
            return ("dim", j)
    return dim


def _scalar(x: Value, entry) -> Value:
    """An entry as an int32 scalar tensor, for a runtime target vector."""
    if isinstance(entry, int):
        return constant(np.int32(entry))
    if isinstance(entry, tuple):
        y, axis = entry
        return indexing.getitem(ops.shape_of(y), axis)
    return to_int32(entry)


def reshape(x, shape) -> Value:
    """x with a new shape.

    A target entry that is `K.shape(y)[i]` becomes y's dim i when it is
    known, the matching dim of x when they are the same symbol, or -1 when
    it is the only unknown; any other tensor entry makes the reshape read
    its target at run time.

    Arguments:
        x: a tensor.
        shape: a tuple or list of ints (one may be -1) and int scalar tensors,
            or an int vector tensor.

    Returns:
        A tensor with x's elements in the new shape.

    Example:
        >>> x = K.placeholder((None, 6))
        >>> K.int_shape(K.reshape(x, (K.shape(x)[0], 2, 3)))
        (None, 2, 3)
    """
    x = _as_tensor(x)
    entries = _target_entries(shape)
    if entries is None:  # an opaque runtime vector
        target = shape if is_integer(shape.type.dtype) else ew.cast(shape, dtype="int32")
        length = target.type.shape[0] if target.type.ndim == 1 else None
        if not isinstance(length, int):
            raise argument_error("reshape", f"a target tensor must be an int vector of known "
                                            f"length, got {shape.type}")
        return ops.reshape_dynamic(x, target, (None,) * length)
    items = [_static_item(x, e) for e in entries]
    symbols = [i for i, item in enumerate(items) if isinstance(item, SymDim)]
    runtime = any(isinstance(item, Value) for item in items)
    if not runtime and len(symbols) == 1 and -1 not in items:
        items[symbols[0]] = -1  # the one unknown size is what the element count leaves
        symbols = []
    if not runtime and not symbols:
        return ops.reshape(x, items)
    target = ops.stack([_scalar(x, e) for e in entries], axis=0)
    known = [item if isinstance(item, int) else None for item in items]
    return ops.reshape_dynamic(x, target, known)


def copied_dim(x: Value, axis: int):
    """A reshape target entry for dim `axis`: its size, or ("dim", axis) to keep a symbol."""
    dim = x.type.shape[axis]
    return dim if isinstance(dim, int) else ("dim", axis)


def flatten(x) -> Value:
    """x as a vector.

    Arguments:
        x: a tensor.

    Returns:
        A rank-1 tensor of all of x's elements.
    """
    return ops.reshape(_as_tensor(x), (-1,))


def batch_flatten(x) -> Value:
    """x as a matrix: (batch, everything else).

    Arguments:
        x: a tensor of rank >= 1.

    Returns:
        A rank-2 tensor; the batch dim keeps its (symbolic) size.

    Example:
        >>> K.int_shape(K.batch_flatten(K.placeholder((None, 2, 3))))
        (None, 6)
    """
    x = _as_tensor(x)
    if x.type.ndim == 0:
        raise argument_error("batch_flatten", "cannot batch_flatten a scalar")
    return ops.reshape(x, (copied_dim(x, 0), -1))


# --- axes -----------------------------------------------------------------------------

def permute_dimensions(x, pattern) -> Value:
    """x with its axes permuted.

    Arguments:
        x: a tensor.
        pattern: a tuple of axes: output axis i is input axis pattern[i]
            (negative entries count from the end).

    Returns:
        The transposed tensor.

    Example:
        >>> K.int_shape(K.permute_dimensions(K.placeholder((2, 3, 4)), (0, 2, 1)))
        (2, 4, 3)
    """
    x = _as_tensor(x)
    ndim = x.type.ndim
    perm = tuple(int(p) + ndim if int(p) < 0 else int(p) for p in pattern)
    return ops.transpose(x, perm)


def expand_dims(x, axis=-1) -> Value:
    """x with a new axis of size 1.

    Arguments:
        x: a tensor.
        axis: where the new axis goes (-1 appends it).

    Returns:
        A tensor of rank ndim(x) + 1.
    """
    return ops.expand_dims(_as_tensor(x), axis)


def squeeze(x, axis) -> Value:
    """x without its size-1 axis `axis`.

    Arguments:
        x: a tensor.
        axis: the axis to remove; its size must be 1.

    Returns:
        A tensor of rank ndim(x) - 1.
    """
    return ops.squeeze(_as_tensor(x), axis)


def reverse(x, axes) -> Value:
    """x reversed along some axes.

    Arguments:
        x: a tensor.
        axes: an int or a list of ints.

    Returns:
        A tensor of x's shape.
    """
    return ops.reverse(_as_tensor(x), axes)


def _with_known_sizes(block: Value, sizes: list) -> Value:
    """block, its dims pinned to the sizes given as ints (a static reshape, free at run time).

    NumPy's slicing shortens a block that runs past the end, so its type rule
    cannot promise the size on an unknown axis; tf.slice promises it and fails
    instead, which the reshape's element-count check reproduces.
    """
    dims = block.type.shape
    pinned = [n if isinstance(n, int) and n != -1 else copied_dim(block, axis)
              for axis, n in enumerate(sizes)]
    if all(isinstance(d, int) or not isinstance(p, int) for d, p in zip(dims, pinned)):
        return block  # nothing to pin
    return ops.reshape(block, pinned)


__all__ = [
    "batch_flatten",
    "expand_dims",
    "flatten",
    "permute_dimensions",
    "reshape",
    "reverse",
    "shape",
    "size",
    "squeeze",
]

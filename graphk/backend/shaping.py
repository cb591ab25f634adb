"""Shapes with Keras semantics: K.shape, K.reshape, K.concatenate, K.tile, K.slice, ...

The ops live in `ir/ops/shape.py`; this module turns Keras' arguments into
them. The one clever part is `reshape`: Keras passes targets such as
`(K.shape(x)[0], 10)`, and a target entry that reads a dim of some tensor's
runtime shape is resolved to that dim at build time, so the reshape stays
static (and its output keeps the symbol `?0`) whenever it can.
"""
from __future__ import annotations

import numpy as np

from ..ir.dtypes import as_dtype, is_integer
from ..ir.graph import Value
from ..ir.ops import elementwise as ew
from ..ir.ops import indexing
from ..ir.ops import shape as ops
from ..ir.ops.leaf import constant
from ..passes.fold import static_value  # constant_value, seeing through small constant subgraphs
from ..ir.shapes import SymDim, same_dim
from .arguments import argument_error, static_int, to_int32
from .sparse import SparseTensor, sparse_concatenate, to_dense
from .tensors import _as_tensor

py_slice = slice  # `slice` is a Keras function below


def shape(x) -> Value:
    """The runtime shape of x as an int32 vector."""
    return ops.shape_of(_as_tensor(x))


def size(x, name=None) -> Value:
    """The runtime number of elements of x as an int32 scalar."""
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
    """x with a new shape; entries may be ints, -1, or int scalar tensors such as K.shape(y)[0].

    A tensor entry that is `K.shape(y)[i]` becomes y's dim i when it is
    known, the matching dim of x when they are the same symbol, or -1 when
    it is the only unknown; any other tensor entry makes the reshape read
    its target at runtime.
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
    """x as a vector."""
    return ops.reshape(_as_tensor(x), (-1,))


def batch_flatten(x) -> Value:
    """x as a matrix (batch, everything else); the batch dim keeps its symbol."""
    x = _as_tensor(x)
    if x.type.ndim == 0:
        raise argument_error("batch_flatten", "cannot batch_flatten a scalar")
    return ops.reshape(x, (copied_dim(x, 0), -1))


# --- axes -----------------------------------------------------------------------------

def permute_dimensions(x, pattern) -> Value:
    """Axes permuted: output axis i is input axis pattern[i] (negative entries count back)."""
    x = _as_tensor(x)
    ndim = x.type.ndim
    perm = tuple(int(p) + ndim if int(p) < 0 else int(p) for p in pattern)
    return ops.transpose(x, perm)


def expand_dims(x, axis=-1) -> Value:
    """A new size-1 axis at `axis` (-1 appends it)."""
    return ops.expand_dims(_as_tensor(x), axis)


def squeeze(x, axis) -> Value:
    """The size-1 axis `axis` removed."""
    return ops.squeeze(_as_tensor(x), axis)


def reverse(x, axes) -> Value:
    """x reversed along `axes` (an int or a list)."""
    return ops.reverse(_as_tensor(x), axes)


# --- joining and repeating --------------------------------------------------------------

def _as_tensors(values) -> list:
    """Tensors for a join: non-tensors take the dtype of the first tensor, as TF converts them."""
    values = list(values)
    like = next((v for v in values if isinstance(v, Value)), None)
    if like is None:
        return [_as_tensor(v) for v in values]
    return [v if isinstance(v, Value) else constant(np.asarray(v, dtype=like.type.dtype))
            for v in values]


def concatenate(tensors, axis=-1):
    """Tensors joined along an existing axis (negative axes count back).

    As Keras' TensorFlow backend: sparse tensors join into a sparse tensor; a mix
    of sparse and dense tensors is joined densely.
    """
    tensors = list(tensors)
    if tensors and all(isinstance(t, SparseTensor) for t in tensors):
        return sparse_concatenate(tensors, axis)
    tensors = [to_dense(t) if isinstance(t, SparseTensor) else t for t in tensors]
    return ops.concatenate(_as_tensors(tensors), axis)


def stack(x, axis=0) -> Value:
    """Tensors of one shape joined along a new axis."""
    return ops.stack(_as_tensors(x), axis)


def _tile_at_run_time(x: Value, n) -> Value:
    """tile with counts known only when the function runs (an int vector or int scalars)."""
    if isinstance(n, list):
        n = ops.stack([ew.cast(r, dtype="int64") for r in n], axis=0)
    if n.type.ndim == 0:
        n = ops.expand_dims(n, 0)
    count = n.type.shape[0]
    if isinstance(count, int) and count < x.type.ndim:  # pad with leading 1s, as Keras does
        ones = constant(np.ones(x.type.ndim - count, dtype=n.type.dtype))
        n = ops.concatenate([ones, n], axis=0)
    return ops.tile_dynamic(x, n)


def _static_counts(n):
    """n's counts as Python values if they are known now (constant tensors included), else
    None: TensorFlow's shape inference reads constant values, so tile's shape is static."""
    if isinstance(n, Value):
        fixed = static_value(n)
        return None if fixed is None else fixed.tolist()
    if np.ndim(n) == 0 or not any(isinstance(r, Value) for r in n):
        return n
    fixed = [static_value(r) if isinstance(r, Value) else r for r in n]
    return None if any(f is None for f in fixed) else fixed


def _known_int(count):
    """A count as an int if it is known now, else None."""
    fixed = static_value(count) if isinstance(count, Value) else count
    return None if fixed is None else int(fixed)


def tile(x, n) -> Value:
    """x repeated n[i] times along axis i; a shorter n is padded with leading 1s.

    Arguments:
        x: a tensor.
        n: an int, a list of ints, or int tensors; counts computed from
            constants alone are read now, so the result's shape is static.

    Returns:
        The tiled tensor.

    Example:
        >>> x = K.placeholder((None, 4))
        >>> K.int_shape(K.tile(x, K.constant([1, 3], dtype="int32")))
        (None, 12)
    """
    x = _as_tensor(x)
    counts = _static_counts(n)
    if counts is None and isinstance(n, Value):
        return _tile_at_run_time(x, n)
    if counts is None:  # some counts known now: they still fix those axes' sizes
        known = [_known_int(r) for r in n]
        known = [1] * (x.type.ndim - len(known)) + known
        sizes = [d * c if isinstance(d, int) and isinstance(c, int) else None
                 for d, c in zip(x.type.shape, known)]
        return _with_known_sizes(_tile_at_run_time(x, _as_tensors(n)), sizes)
    n = counts
    reps = [n] if np.ndim(n) == 0 else list(n)
    reps = [static_int(r, "a count in `n`", "tile", truncate=True) for r in reps]
    if len(reps) < x.type.ndim:
        reps = [1] * (x.type.ndim - len(reps)) + reps
    elif len(reps) != x.type.ndim:
        raise argument_error("tile", f"`n` has {len(reps)} counts for a tensor of rank "
                                     f"{x.type.ndim}")
    return ops.tile(x, reps)


def repeat_elements(x, rep, axis) -> Value:
    """Each element repeated `rep` times along `axis`, like np.repeat.

    Arguments:
        x: a tensor.
        rep: how many times (a Python int, or a constant scalar tensor).
        axis: the axis to repeat along.

    Returns:
        A tensor whose `axis` is `rep` times longer (unknown if it was), with
        `_keras_shape` set as Keras' TensorFlow backend sets it.

    Example:
        >>> K.eval(K.repeat_elements(K.constant([[1, 2]]), 2, axis=1))
        array([[1., 1., 2., 2.]], dtype=float32)
    """
    x = _as_tensor(x)
    result = ops.repeat_elements(x, static_int(rep, "rep", "repeat_elements", truncate=True),
                                 axis)
    result._keras_shape = result.type.int_shape
    return result


def repeat(x, n) -> Value:
    """A (batch, dim) matrix repeated n times along a new axis 1: (batch, n, dim)."""
    x = _as_tensor(x)
    if x.type.ndim != 2:
        raise argument_error("repeat", f"repeat needs a 2D tensor, got {x.type}")
    return ops.tile(ops.expand_dims(x, 1), (1, static_int(n, "n", "repeat", truncate=True), 1))


# --- selecting --------------------------------------------------------------------------

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


def gather(reference, indices) -> Value:
    """Rows of `reference` picked by an int tensor (or list) of indices."""
    reference = _as_tensor(reference)
    if not isinstance(indices, Value):
        indices = np.asarray(indices)
        if indices.dtype.kind not in "iu":
            raise argument_error("gather", f"indices must be integers, got {indices.dtype}",
                                 TypeError)
        indices = constant(indices.astype(np.int32))
    return indexing.gather(reference, indices)


def one_hot(indices, num_classes) -> Value:
    """float32 one-hot vectors of length num_classes along a new last axis (tf.one_hot)."""
    indices = _as_tensor(indices)
    return indexing.one_hot(indices, static_int(num_classes, "num_classes", "one_hot",
                                                truncate=True))


def _range_dtype(*bounds) -> str:
    """tf.range's dtype: int32 for ints, float32 if any bound is a float."""
    floats = any(np.asarray(b).dtype.kind == "f" for b in bounds)
    return "float32" if floats else "int32"


def arange(start, stop=None, step=1, dtype="int32") -> Value:
    """start, start + step, ... below stop, as Keras' TF backend gives it.

    Like tf.range: float bounds give float32 (then cast only if `dtype` is not
    'int32', exactly as Keras does), and a single negative bound gives an
    empty range. Tensor bounds build a runtime range.
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


__all__ = [
    "arange",
    "batch_flatten",
    "concatenate",
    "expand_dims",
    "flatten",
    "gather",
    "one_hot",
    "permute_dimensions",
    "repeat",
    "repeat_elements",
    "reshape",
    "reverse",
    "shape",
    "size",
    "slice",
    "squeeze",
    "stack",
    "tile",
]

"""Joining and repeating with Keras semantics: K.concatenate, K.stack, K.tile, K.repeat*.

Counts known when the graph is built (Python ints, constants, or tensors
computed from constants alone) are read now, so results keep the static
shapes TensorFlow's shape inference would give them.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Value
from ..ir.ops import elementwise as ew
from ..ir.ops import shape as ops
from ..ir.ops.leaf import constant
from ..passes.fold import static_value
from .arguments import argument_error, static_int
from .shaping import _with_known_sizes
from .sparse import SparseTensor, sparse_concatenate, to_dense
from .tensors import _as_tensor


def _as_tensors(values) -> list:
    """Tensors for a join: non-tensors take the dtype of the first tensor, as TF converts them."""
    values = list(values)
    like = next((v for v in values if isinstance(v, Value)), None)
    if like is None:
        return [_as_tensor(v) for v in values]
    return [v if isinstance(v, Value) else constant(np.asarray(v, dtype=like.type.dtype))
            for v in values]


def concatenate(tensors, axis=-1):
    """Tensors joined along an existing axis.

    As Keras' TensorFlow backend: sparse tensors join into a sparse tensor; a
    mix of sparse and dense tensors is joined densely.

    Arguments:
        tensors: a list of tensors (arrays and numbers take the first
            tensor's dtype).
        axis: the axis to join along (negative axes count from the end).

    Returns:
        A tensor (sparse when all inputs are).

    Example:
        >>> K.eval(K.concatenate([K.constant([[1]]), K.constant([[2]])], axis=0))
        array([[1.],
               [2.]], dtype=float32)
    """
    tensors = list(tensors)
    if tensors and all(isinstance(t, SparseTensor) for t in tensors):
        return sparse_concatenate(tensors, axis)
    tensors = [to_dense(t) if isinstance(t, SparseTensor) else t for t in tensors]
    return ops.concatenate(_as_tensors(tensors), axis)


def stack(x, axis=0) -> Value:
    """Tensors of one shape joined along a new axis.

    Arguments:
        x: a list of tensors of the same shape.
        axis: where the new axis goes.

    Returns:
        A tensor of rank one more than the inputs'.
    """
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
    """A (batch, dim) matrix repeated n times along a new axis 1.

    Arguments:
        x: a rank-2 tensor.
        n: how many times (a Python int or a constant scalar tensor).

    Returns:
        A (batch, n, dim) tensor.

    Example:
        >>> K.int_shape(K.repeat(K.placeholder((None, 4)), 3))
        (None, 3, 4)
    """
    x = _as_tensor(x)
    if x.type.ndim != 2:
        raise argument_error("repeat", f"repeat needs a 2D tensor, got {x.type}")
    return ops.tile(ops.expand_dims(x, 1), (1, static_int(n, "n", "repeat", truncate=True), 1))


__all__ = ["concatenate", "repeat", "repeat_elements", "stack", "tile"]

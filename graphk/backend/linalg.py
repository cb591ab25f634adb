"""Linear algebra with Keras 2.3.1 semantics: dot, batch_dot, transpose."""
from __future__ import annotations

import numpy as np

from ..ir.graph import Value
from ..ir.ops import linalg
from ..ir.ops import shape as shape_ops
from .arguments import argument_error
from .sparse import SparseTensor, sparse_dot
from .tensors import _as_tensor


def dot(x, y) -> Value:
    """Keras dot: x's last axis against y's second-to-last (Theano's N-d rule).

    (2, 3) . (3, 4) -> (2, 4); (32, 28, 3) . (3, 4) -> (32, 28, 4);
    (2, 3) . (4, 3, 5) -> (2, 4, 5). A vector operand behaves as in np.dot.
    A sparse matrix operand (K.placeholder(sparse=True), or K.variable of a
    scipy.sparse matrix) multiplies without being densified.

    Arguments:
        x: a tensor (or a sparse matrix).
        y: a tensor (or a sparse matrix).

    Returns:
        The product tensor.

    Example:
        >>> K.int_shape(K.dot(K.placeholder((None, 3)), K.variable(np.ones((3, 4)))))
        (None, 4)
    """
    if isinstance(x, SparseTensor) or isinstance(y, SparseTensor):
        x = x if isinstance(x, SparseTensor) else _as_tensor(x)
        y = y if isinstance(y, SparseTensor) else _as_tensor(y)
        return sparse_dot(x, y)
    return linalg.dot(_as_tensor(x), _as_tensor(y))


def _batch_dot_axes(x_ndim: int, y_ndim: int, axes) -> tuple[int, int]:
    """Keras 2.3.1's axes argument (None, an int, or a pair; negatives allowed) as a pair."""
    if isinstance(axes, (int, np.integer)):
        axes = (axes, axes)
    if axes is None:
        axes = (x_ndim - 1, y_ndim - 1) if y_ndim == 2 else (x_ndim - 1, y_ndim - 2)
    axes = list(axes)
    if any(isinstance(a, (list, tuple)) for a in axes) or len(axes) != 2:
        raise argument_error("batch_dot", "Multiple target dimensions are not supported. "
                                          f"Expected: None, int, (int, int), Provided: {axes}",
                             ValueError)
    x_axis, y_axis = (int(a) for a in axes)
    x_axis += x_ndim if x_axis < 0 else 0
    y_axis += y_ndim if y_axis < 0 else 0
    if 0 in (x_axis, y_axis):
        raise argument_error("batch_dot", "Can not perform batch_dot over axis 0. If your inputs "
                                          "are not batched, add a dummy batch dimension to your "
                                          "inputs using K.expand_dims(x, 0)", ValueError)
    return x_axis, y_axis


def batch_dot(x, y, axes=None) -> Value:
    """Batchwise dot product, Keras 2.3.1's rule.

    Axis 0 is the batch; x's axis axes[0] is summed against y's axis axes[1].
    The result has x's remaining axes, then y's (without its batch axis); a
    rank-1 result becomes (batch_size, 1). E.g. x (32, 20, 1), y (32, 30, 20),
    axes=(1, 2) -> (32, 1, 30). With axes None it is (x.ndim - 1, y.ndim - 2),
    or (1, 1) between two matrices.

    Arguments:
        x: a tensor of rank >= 2.
        y: a tensor of rank >= 2 with x's batch size.
        axes: an int (the same axis of both) or a pair of ints; None as above.

    Returns:
        A tensor of rank ndim(x) + ndim(y) - 3 (at least 2).

    Example:
        >>> x, y = K.placeholder((32, 20, 1)), K.placeholder((32, 30, 20))
        >>> K.int_shape(K.batch_dot(x, y, axes=(1, 2)))
        (32, 1, 30)
    """
    x, y = _as_tensor(x), _as_tensor(y)
    if x.type.ndim < 2 or y.type.ndim < 2:
        axes = (1, 1)  # the op reports the ranks
    else:
        axes = _batch_dot_axes(x.type.ndim, y.type.ndim, axes)
    return linalg.batch_dot(x, y, axes)


def transpose(x) -> Value:
    """x with all its axes reversed (a matrix's transpose).

    Arguments:
        x: a tensor.

    Returns:
        The transposed tensor.
    """
    return shape_ops.transpose(_as_tensor(x))


__all__ = ["batch_dot", "dot", "transpose"]

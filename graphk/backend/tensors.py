"""Tensors: placeholders and constants, inspecting them (int_shape, dtype, ...), K.eval, cast.

Variables and updates live in graphk/backend/variables.py.
"""
from __future__ import annotations

import numpy as np

from .. import config
from ..ir.dtypes import as_dtype
from ..ir.graph import Value
from ..ir.ops import elementwise as ew
from ..ir.ops import leaf
from ..ir.ops import shape as shape_ops
from ..ir.shapes import from_user
from ..ir.types import TensorType
from .function import Function, Update
from .sparse import SparseTensor, sparse_placeholder, to_dense


def _keras_tensor(value: Value) -> Value:
    """Attributes Keras' engine reads on the tensors a backend hands it."""
    value._keras_shape = value.type.int_shape
    value._uses_learning_phase = False
    return value


def placeholder(shape=None, ndim=None, dtype=None, sparse=False, name=None) -> Value:
    """A tensor fed at each call of a compiled function.

    Arguments:
        shape: the shape, a tuple whose `None` entries become named symbolic
            sizes (?0, ?1, ...) that shape rules unify and feeds must agree on.
        ndim: the rank, when `shape` is not given (every dim unknown).
        dtype: the dtype; floatx when None.
        sparse: True for a sparse tensor, fed with a scipy.sparse matrix or an
            (indices, values, dense_shape) tuple (see graphk/backend/sparse.py).
        name: an optional name, shown in the IR and in feed errors.

    Returns:
        A placeholder tensor (a SparseTensor when sparse is True), with
        `_keras_shape` set.

    Example:
        >>> x = K.placeholder(shape=(None, 3))
        >>> K.int_shape(x)
        (None, 3)
    """
    if shape is None:
        if ndim is None:
            raise ValueError("placeholder: give `shape` or `ndim`")
        shape = (None,) * ndim
    dtype = as_dtype(dtype or config.floatx())
    if sparse:
        return sparse_placeholder(shape, dtype, name)
    value = leaf.placeholder(TensorType(dtype, from_user(shape, "placeholder shape")), name=name)
    return _keras_tensor(value)


def constant(value, dtype=None, shape=None, name=None) -> Value:
    """A constant tensor.

    Arguments:
        value: a number, a list or a NumPy array.
        dtype: the dtype; floatx when None.
        shape: an optional shape: a scalar value fills it, otherwise the values
            are reshaped to it (as tf.constant does).
        name: an optional name.

    Returns:
        A constant tensor.

    Example:
        >>> K.eval(K.constant(1.5, shape=(2,)))
        array([1.5, 1.5], dtype=float32)
    """
    dtype = as_dtype(dtype or config.floatx())
    array = np.asarray(value, dtype=dtype)
    if shape is not None:  # as tf.constant: a scalar fills the shape, else values are reshaped
        shape = _shape_tuple(shape)
        if array.ndim == 0:
            array = np.broadcast_to(array, shape)
        elif array.size == int(np.prod(shape)):
            array = array.reshape(shape)
        else:
            raise ValueError(f"constant: {array.size} values cannot fill shape {shape}")
    result = leaf.constant(array)
    result.name = name
    return _keras_tensor(result)


def _shape_tuple(shape) -> tuple:
    """Keras passes shapes as ints, tuples or lists."""
    return (int(shape),) if np.ndim(shape) == 0 else tuple(int(d) for d in shape)


def zeros_like(x, dtype=None, name=None) -> Value:
    """Zeros of x's shape (its run-time shape when some dims are unknown).

    Arguments:
        x: a tensor.
        dtype: the dtype; floatx when None (what Keras 2.3.1's code does; its
            docstring's "the dtype of x" is not what it runs).
        name: ignored (accepted for Keras).

    Returns:
        A tensor of zeros.

    Example:
        >>> K.eval(K.zeros_like(K.constant([[1, 2, 3]])))
        array([[0., 0., 0.]], dtype=float32)
    """
    return shape_ops.full_like(_as_tensor(x), 0, as_dtype(dtype or config.floatx()))


def ones_like(x, dtype=None, name=None) -> Value:
    """Ones of x's shape (its run-time shape when some dims are unknown).

    Arguments:
        x: a tensor.
        dtype: the dtype; floatx when None (as zeros_like).
        name: ignored (accepted for Keras).

    Returns:
        A tensor of ones.
    """
    return shape_ops.full_like(_as_tensor(x), 1, as_dtype(dtype or config.floatx()))


def identity(x, name=None) -> Value:
    """A new tensor with the value of x.

    Keras wraps metric results in it; graphk builds a copy node.

    Arguments:
        x: a tensor.
        name: ignored (accepted for Keras).

    Returns:
        A tensor equal to x.
    """
    x = _as_tensor(x)
    return ew.cast(x, dtype=x.type.dtype)


def is_variable(x) -> bool:
    """Whether x is a variable (made by K.variable, K.zeros, ...).

    Arguments:
        x: anything.

    Returns:
        A bool.
    """
    return isinstance(x, leaf.Variable)


def is_tensor(x) -> bool:
    """Whether x is a graphk tensor (dense or sparse).

    Arguments:
        x: anything.

    Returns:
        A bool: True for placeholders, variables, constants and computed
        tensors; False for NumPy arrays and numbers.
    """
    return isinstance(x, (Value, SparseTensor))


def is_placeholder(x) -> bool:
    """Whether x is a placeholder (dense or sparse).

    Arguments:
        x: anything.

    Returns:
        A bool.
    """
    if isinstance(x, SparseTensor):
        return x.is_placeholder
    return isinstance(x, Value) and x.op_name == "placeholder"


def is_keras_tensor(x) -> bool:
    """Whether x is a Keras tensor: a tensor produced by a Keras layer or Input.

    Arguments:
        x: a tensor.

    Returns:
        A bool: whether x carries Keras' `_keras_history`.

    Raises:
        ValueError: x is not a tensor (as Keras' backends do).
    """
    if not is_tensor(x):
        raise ValueError(f"Unexpectedly found an instance of type `{type(x)}`. "
                         "Expected a symbolic tensor instance.")
    return hasattr(x, "_keras_history")


def is_sparse(x) -> bool:
    """Whether x is a sparse tensor.

    Arguments:
        x: anything.

    Returns:
        A bool.

    Example:
        >>> K.is_sparse(K.placeholder((2, 2), sparse=True))
        True
    """
    return isinstance(x, SparseTensor)


def int_shape(x) -> tuple:
    """The static shape of a tensor, variable or array.

    Arguments:
        x: a tensor, a variable, or anything NumPy gives a shape.

    Returns:
        A tuple: ints where known, None where the size is known only when the
        function runs.

    Example:
        >>> K.int_shape(K.placeholder((None, 4)))
        (None, 4)
    """
    if hasattr(x, "_keras_shape"):
        shape = tuple(x._keras_shape)
        if isinstance(x, Value) and len(shape) == x.type.ndim:  # sizes bound since (shapes.py)
            return tuple(d if d is not None else k for d, k in zip(shape, x.type.int_shape))
        return shape
    if isinstance(x, Value):
        return x.type.int_shape
    return tuple(np.shape(x))


def get_variable_shape(x) -> tuple:
    """The static shape of a variable (or any tensor): `K.int_shape(x)`.

    Every Keras 2.3.1 backend defines it so.

    Arguments:
        x: a variable or tensor.

    Returns:
        A tuple of ints (None where unknown).

    Example:
        >>> K.get_variable_shape(K.variable(np.zeros((2, 3))))
        (2, 3)
    """
    return int_shape(x)


def ndim(x) -> int:
    """The rank of a tensor.

    Arguments:
        x: a tensor (or an array).

    Returns:
        An int, the number of axes.
    """
    return x.type.ndim if isinstance(x, (Value, SparseTensor)) else np.ndim(x)


def dtype(x) -> str:
    """The dtype of a tensor, as a string.

    Arguments:
        x: a tensor (or an array).

    Returns:
        A string such as 'float32'.

    Example:
        >>> K.dtype(K.placeholder((2,), dtype="int32"))
        'int32'
    """
    if isinstance(x, (Value, SparseTensor)):
        return x.type.dtype
    return as_dtype(np.asarray(x).dtype)


def count_params(x) -> int:
    """The number of scalars in a tensor of static shape.

    Arguments:
        x: a tensor or variable whose shape is fully known.

    Returns:
        An int.

    Raises:
        ValueError: a dim of x is unknown.
    """
    shape = int_shape(x)
    if any(d is None for d in shape):
        raise ValueError(f"count_params: shape {shape} has unknown dimensions")
    return int(np.prod(shape, dtype=np.int64))


def eval(x):
    """The value of a tensor that needs no feeds, as a NumPy array.

    Arguments:
        x: a tensor, a variable, a sparse tensor, or what K.update returns.

    Returns:
        A NumPy array; a NumPy scalar (np.float32, ...) for a rank-0 tensor,
        as TensorFlow's session returns. A sparse tensor comes back dense.
        Evaluating an update applies it (and returns the variable's new value),
        and evaluating a tensor built under K.control_dependencies applies the
        updates it depends on, as in TensorFlow.

    Example:
        >>> v = K.variable(np.ones((2, 2)))
        >>> K.eval(K.update_add(v, 0.5))
        array([[1.5, 1.5],
               [1.5, 1.5]], dtype=float32)
        >>> K.eval(K.sum(v))
        np.float32(6.0)
    """
    if isinstance(x, Update):
        updates = [x, *(u for u in getattr(x, "control_inputs", ()) if isinstance(u, Update))]
        return Function([], [x.value], updates=updates, name="eval")([])[0]
    if isinstance(x, leaf.Variable):
        return _numpy_result(x.storage.copy())
    if isinstance(x, SparseTensor):
        x = to_dense(x)
    if not is_tensor(x):
        return np.asarray(x)
    return Function([], [x], name="eval")([])[0]


def _numpy_result(array: np.ndarray):
    """What a TensorFlow session returns for a value: a NumPy scalar when it has rank 0."""
    return array[()] if array.ndim == 0 else array


def cast(x, dtype) -> Value:
    """x converted to another dtype.

    Arguments:
        x: a tensor (or an array or number).
        dtype: the target dtype, e.g. 'float16', 'int32'.

    Returns:
        A tensor of x's shape in `dtype` (floats to ints truncate toward zero).

    Example:
        >>> K.eval(K.cast(K.constant([1.7, -1.7]), "int32"))
        array([ 1, -1], dtype=int32)
    """
    return ew.cast(_as_tensor(x), dtype=as_dtype(dtype))


def _as_tensor(x) -> Value:
    """x as a graph value: arrays and numbers become constants (floats in floatx), and a
    list holding tensors is stacked (TensorFlow's convert_to_tensor packs it)."""
    if isinstance(x, Value):
        return x
    if isinstance(x, (list, tuple)) and any(isinstance(item, Value) for item in x):
        like = next(item for item in x if isinstance(item, Value))  # numbers take its dtype
        return shape_ops.stack([item if isinstance(item, Value)
                                else leaf.constant(np.asarray(item, dtype=like.type.dtype))
                                for item in x], axis=0)
    array = np.asarray(x)
    if array.dtype.kind == "f":
        array = array.astype(config.floatx())
    return leaf.constant(array)


__all__ = [
    "placeholder", "constant", "zeros_like", "ones_like", "identity", "is_variable",
    "is_tensor", "is_placeholder", "is_keras_tensor", "is_sparse", "int_shape",
    "get_variable_shape", "ndim", "dtype", "count_params", "eval", "cast",
]

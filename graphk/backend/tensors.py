"""Creating and inspecting tensors: placeholders, variables, constants, values, updates."""
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
from .session import get_uid, scoped_name
from .sparse import SparseTensor, sparse_placeholder


def _keras_tensor(value: Value) -> Value:
    """Attributes Keras' engine reads on the tensors a backend hands it."""
    value._keras_shape = value.type.int_shape
    value._uses_learning_phase = False
    return value


def placeholder(shape=None, ndim=None, dtype=None, sparse=False, name=None) -> Value:
    """A tensor fed at each call; `None` dims become named symbolic sizes.

    With sparse=True, a SparseTensor fed with a scipy.sparse matrix or an
    (indices, values, dense_shape) tuple (see graphk/backend/sparse.py).
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


def _initial_array(value, dtype):
    if isinstance(value, Value):
        value = eval(value)
    return np.asarray(value, dtype=as_dtype(dtype) if dtype else None)


def variable(value, dtype=None, name=None, constraint=None) -> leaf.Variable:
    """A variable holding a copy of `value` (an array, a number, or a tensor to evaluate)."""
    if dtype is None:
        dtype = value.type.dtype if isinstance(value, Value) else config.floatx()
    array = _initial_array(value, dtype)
    name = scoped_name(name) or f"variable_{get_uid('graphk_variable')}"
    result = leaf.variable(array, name=name)
    result.constraint = constraint
    return _keras_tensor(result)


def constant(value, dtype=None, shape=None, name=None) -> Value:
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


def _filled(fill, shape, dtype, name) -> Value:
    dtype = as_dtype(dtype or config.floatx())
    array = fill(_shape_tuple(shape), dtype=dtype)
    return variable(array, dtype=dtype, name=name)


def zeros(shape, dtype=None, name=None) -> leaf.Variable:
    """A variable of zeros (Keras' optimizers update these, so they are variables)."""
    return _filled(np.zeros, shape, dtype, name)


def ones(shape, dtype=None, name=None) -> leaf.Variable:
    return _filled(np.ones, shape, dtype, name)


def eye(size, dtype=None, name=None) -> leaf.Variable:
    """An identity matrix variable: `size` is n, or (rows, columns)."""
    rows, cols = (size, size) if np.ndim(size) == 0 else tuple(size)
    return variable(np.eye(rows, cols), dtype=dtype or config.floatx(), name=name)


def zeros_like(x, dtype=None, name=None) -> Value:
    """Zeros of x's runtime shape, in `dtype` (floatx when None, as Keras 2.3.1's code does:
    its docstring's "the dtype of x" is not what it runs)."""
    return shape_ops.full_like(_as_tensor(x), 0, as_dtype(dtype or config.floatx()))


def ones_like(x, dtype=None, name=None) -> Value:
    """Ones of x's runtime shape, in `dtype` (floatx when None, as zeros_like)."""
    return shape_ops.full_like(_as_tensor(x), 1, as_dtype(dtype or config.floatx()))


def identity(x, name=None) -> Value:
    """A copy of x (a new tensor with the same value)."""
    x = _as_tensor(x)
    return ew.cast(x, dtype=x.type.dtype)


def _random_variable(sample, shape, dtype, name, seed):
    seed = np.random.randint(10 ** 8) if seed is None else seed
    array = sample(np.random.RandomState(seed), _shape_tuple(shape))
    return variable(array, dtype=dtype or config.floatx(), name=name)


def random_uniform_variable(shape, low, high, dtype=None, name=None, seed=None):
    return _random_variable(lambda rng, s: rng.uniform(low, high, s), shape, dtype, name, seed)


def random_normal_variable(shape, mean, scale, dtype=None, name=None, seed=None):
    return _random_variable(lambda rng, s: rng.normal(mean, scale, s), shape, dtype, name, seed)


def is_variable(x) -> bool:
    return isinstance(x, leaf.Variable)


def is_tensor(x) -> bool:
    return isinstance(x, (Value, SparseTensor))


def is_placeholder(x) -> bool:
    if isinstance(x, SparseTensor):
        return x.is_placeholder
    return isinstance(x, Value) and x.op_name == "placeholder"


def is_keras_tensor(x) -> bool:
    if not is_tensor(x):
        raise ValueError(f"Unexpectedly found an instance of type `{type(x)}`. "
                         "Expected a symbolic tensor instance.")
    return hasattr(x, "_keras_history")


def is_sparse(x) -> bool:
    return isinstance(x, SparseTensor)


def int_shape(x) -> tuple:
    """The static shape: ints where known, None where unknown."""
    if hasattr(x, "_keras_shape"):
        shape = tuple(x._keras_shape)
        if isinstance(x, Value) and len(shape) == x.type.ndim:  # sizes bound since (shapes.py)
            return tuple(d if d is not None else k for d, k in zip(shape, x.type.int_shape))
        return shape
    if isinstance(x, Value):
        return x.type.int_shape
    return tuple(np.shape(x))


def ndim(x) -> int:
    return x.type.ndim if isinstance(x, (Value, SparseTensor)) else np.ndim(x)


def dtype(x) -> str:
    if isinstance(x, (Value, SparseTensor)):
        return x.type.dtype
    return as_dtype(np.asarray(x).dtype)


def count_params(x) -> int:
    shape = int_shape(x)
    if any(d is None for d in shape):
        raise ValueError(f"count_params: shape {shape} has unknown dimensions")
    return int(np.prod(shape, dtype=np.int64))


def eval(x) -> np.ndarray:
    """The value of a tensor that needs no feeds."""
    if isinstance(x, leaf.Variable):
        return x.storage.copy()
    if not is_tensor(x):
        return np.asarray(x)
    return Function([], [x], name="eval")([])[0]  # a sparse tensor gives a SparseValue


def get_value(x) -> np.ndarray:
    return eval(x)


def batch_get_value(xs) -> list:
    return [get_value(x) for x in xs]


def set_value(x, value) -> None:
    if not isinstance(x, leaf.Variable):
        raise TypeError(f"set_value: {x!r} is not a variable")
    x.assign(value)


def batch_set_value(tuples) -> None:
    for x, value in tuples:
        set_value(x, value)


def cast(x, dtype) -> Value:
    return ew.cast(_as_tensor(x), dtype=as_dtype(dtype))


def update(x, new_x) -> Update:
    """Set `x` to `new_x` when a K.function that lists this update runs."""
    if not isinstance(x, leaf.Variable):
        raise TypeError(f"update: {x!r} is not a variable")
    from .control import active_control_inputs

    result = Update(x, leaf.as_value(new_x, like=x))
    result.control_inputs = active_control_inputs()  # applied before this one (TF semantics)
    return result


def update_add(x, increment) -> Update:
    return update(x, x + increment)


def update_sub(x, decrement) -> Update:
    return update(x, x - decrement)


def moving_average_update(x, value, momentum) -> Update:
    """x <- x * momentum + value * (1 - momentum) (no zero-debiasing, as Theano's backend)."""
    return update(x, x * momentum + value * (1.0 - momentum))


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
    "placeholder", "variable", "constant", "zeros", "ones", "eye", "zeros_like", "ones_like",
    "identity", "random_uniform_variable", "random_normal_variable", "is_variable", "is_tensor",
    "is_placeholder", "is_keras_tensor", "is_sparse", "int_shape", "ndim", "dtype",
    "count_params", "eval", "get_value", "batch_get_value", "set_value", "batch_set_value",
    "cast", "update", "update_add", "update_sub", "moving_average_update",
]

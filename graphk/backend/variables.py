"""Variables and their updates: K.variable, zeros/ones/eye, random variables, values, updates.

A variable holds its contents in `storage`, read by every call of a compiled
function; an update is a (variable, new value) pair that K.function applies
after computing its outputs, or that K.eval applies at once.
"""
from __future__ import annotations

import numpy as np

from .. import config
from ..ir.dtypes import as_dtype
from ..ir.graph import Value
from ..ir.ops import leaf
from .function import Update
from .session import get_uid, scoped_name
from .sparse import sparse_constant
from .tensors import _keras_tensor, _shape_tuple, eval


def _initial_array(value, dtype):
    if isinstance(value, Value):
        value = eval(value)
    return np.asarray(value, dtype=as_dtype(dtype) if dtype else None)


def variable(value, dtype=None, name=None, constraint=None):
    """A variable holding a copy of `value`.

    Arguments:
        value: a NumPy array, a number, a tensor (evaluated now), or a
            scipy.sparse matrix.
        dtype: the variable's dtype; floatx (or a tensor's own dtype) when None.
        name: an optional name, prefixed by the active K.name_scope.
        constraint: an optional projection Keras' optimizers apply after updates.

    Returns:
        A variable (trainable, as TensorFlow's are by default). A scipy.sparse
        matrix gives a sparse tensor of constants, as Keras' TensorFlow backend
        makes one: K.is_sparse is True and K.eval returns its dense value.

    Example:
        >>> v = K.variable(np.array([[1, 2], [3, 4]]), name="example_var")
        >>> K.eval(v)
        array([[1., 2.],
               [3., 4.]], dtype=float32)
    """
    if dtype is None:
        dtype = value.type.dtype if isinstance(value, Value) else config.floatx()
    if hasattr(value, "tocoo"):
        return _keras_tensor(sparse_constant(value, as_dtype(dtype), name))
    array = _initial_array(value, dtype)
    name = scoped_name(name) or f"variable_{get_uid('graphk_variable')}"
    result = leaf.variable(array, name=name)
    result.constraint = constraint
    result.trainable = True  # Keras' Layer.__setattr__ tracks variables by this flag
    return _keras_tensor(result)


def _filled(fill, shape, dtype, name) -> Value:
    dtype = as_dtype(dtype or config.floatx())
    array = fill(_shape_tuple(shape), dtype=dtype)
    return variable(array, dtype=dtype, name=name)


def zeros(shape, dtype=None, name=None) -> leaf.Variable:
    """A variable filled with zeros.

    Keras' optimizers create their accumulators with it and update them, so
    it is a variable, not a constant.

    Arguments:
        shape: an int or a tuple of ints.
        dtype: the dtype; floatx when None.
        name: an optional name.

    Returns:
        A variable.

    Example:
        >>> K.eval(K.zeros((2, 2)))
        array([[0., 0.],
               [0., 0.]], dtype=float32)
    """
    return _filled(np.zeros, shape, dtype, name)


def ones(shape, dtype=None, name=None) -> leaf.Variable:
    """A variable filled with ones.

    Arguments:
        shape: an int or a tuple of ints.
        dtype: the dtype; floatx when None.
        name: an optional name.

    Returns:
        A variable.

    Example:
        >>> K.eval(K.ones(3))
        array([1., 1., 1.], dtype=float32)
    """
    return _filled(np.ones, shape, dtype, name)


def eye(size, dtype=None, name=None) -> leaf.Variable:
    """An identity matrix, as a variable.

    Arguments:
        size: n for an n x n matrix, or a (rows, columns) pair.
        dtype: the dtype; floatx when None.
        name: an optional name.

    Returns:
        A variable holding the identity matrix.

    Example:
        >>> K.eval(K.eye(2))
        array([[1., 0.],
               [0., 1.]], dtype=float32)
    """
    rows, cols = (size, size) if np.ndim(size) == 0 else tuple(size)
    return variable(np.eye(rows, cols), dtype=dtype or config.floatx(), name=name)


def _random_variable(sample, shape, dtype, name, seed):
    seed = np.random.randint(10 ** 8) if seed is None else seed
    array = sample(np.random.RandomState(seed), _shape_tuple(shape))
    return variable(array, dtype=dtype or config.floatx(), name=name)


def random_uniform_variable(shape, low, high, dtype=None, name=None, seed=None):
    """A variable holding values drawn uniformly from [low, high).

    Arguments:
        shape: an int or a tuple of ints.
        low: the lower bound.
        high: the upper bound (excluded).
        dtype: the dtype; floatx when None.
        name: an optional name.
        seed: an int seed; a random one when None.

    Returns:
        A variable.

    Example:
        >>> v = K.random_uniform_variable((2, 3), 0, 1, seed=7)
        >>> K.int_shape(v)
        (2, 3)
    """
    return _random_variable(lambda rng, s: rng.uniform(low, high, s), shape, dtype, name, seed)


def random_normal_variable(shape, mean, scale, dtype=None, name=None, seed=None):
    """A variable holding values drawn from a normal distribution.

    Arguments:
        shape: an int or a tuple of ints.
        mean: the mean of the distribution.
        scale: its standard deviation.
        dtype: the dtype; floatx when None.
        name: an optional name.
        seed: an int seed; a random one when None.

    Returns:
        A variable.
    """
    return _random_variable(lambda rng, s: rng.normal(mean, scale, s), shape, dtype, name, seed)


def get_value(x) -> np.ndarray:
    """The value of a variable (or of any tensor needing no feeds).

    Arguments:
        x: a variable or tensor.

    Returns:
        A NumPy array (a NumPy scalar for rank 0), as K.eval.
    """
    return eval(x)


def batch_get_value(xs) -> list:
    """The values of several variables.

    Arguments:
        xs: a list of variables or tensors.

    Returns:
        A list of NumPy arrays.
    """
    return [get_value(x) for x in xs]


def set_value(x, value) -> None:
    """Set the contents of a variable; compiled functions see it at their next call.

    Arguments:
        x: a variable.
        value: an array of x's shape (cast to x's dtype).

    Raises:
        TypeError: x is not a variable.
    """
    if not isinstance(x, leaf.Variable):
        raise TypeError(f"set_value: {x!r} is not a variable")
    x.assign(value)


def batch_set_value(tuples) -> None:
    """Set several variables.

    Arguments:
        tuples: a list of (variable, value) pairs.
    """
    for x, value in tuples:
        set_value(x, value)


def update(x, new_x) -> Update:
    """The update that sets variable x to new_x.

    Nothing changes until it runs: list it in K.function's `updates`, or
    evaluate it with K.eval. Updates built inside K.control_dependencies
    run after those controls.

    Arguments:
        x: a variable.
        new_x: its new value (a tensor, an array or a number of x's shape).

    Returns:
        An Update, the (variable, new value) pair Keras keeps in its lists.

    Example:
        >>> v = K.variable(1.0)
        >>> K.eval(K.update(v, 3.0))
        np.float32(3.0)
    """
    if not isinstance(x, leaf.Variable):
        raise TypeError(f"update: {x!r} is not a variable")
    from .control import active_control_inputs

    result = Update(x, leaf.as_value(new_x, like=x))
    result.control_inputs = active_control_inputs()  # applied before this one (TF semantics)
    return result


def update_add(x, increment) -> Update:
    """The update x <- x + increment.

    Arguments:
        x: a variable.
        increment: a tensor, array or number of x's shape (or broadcastable).

    Returns:
        An Update (see K.update).

    Example:
        >>> v = K.variable(np.ones((2, 2)))
        >>> _ = K.eval(K.update_add(v, 0.5))
        >>> K.eval(v)
        array([[1.5, 1.5],
               [1.5, 1.5]], dtype=float32)
    """
    return update(x, x + increment)


def update_sub(x, decrement) -> Update:
    """The update x <- x - decrement.

    Arguments:
        x: a variable.
        decrement: a tensor, array or number of x's shape (or broadcastable).

    Returns:
        An Update (see K.update).
    """
    return update(x, x - decrement)


def moving_average_update(x, value, momentum) -> Update:
    """The update x <- x * momentum + value * (1 - momentum).

    No zero-debiasing (as Keras' Theano backend); batch normalization
    updates its moving mean and variance with it.

    Arguments:
        x: a variable.
        value: a tensor of x's shape.
        momentum: a number in [0, 1].

    Returns:
        An Update (see K.update).
    """
    return update(x, x * momentum + value * (1.0 - momentum))


__all__ = [
    "variable", "zeros", "ones", "eye", "random_uniform_variable", "random_normal_variable",
    "get_value", "batch_get_value", "set_value", "batch_set_value", "update", "update_add",
    "update_sub", "moving_average_update",
]

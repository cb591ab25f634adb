"""Checking the Keras arguments a K.* call was given.

Keras accepts several spellings of one argument: strides as an int or a
tuple, `data_format=None` for the configured format, a count as a Python int
or a constant tensor. Each helper here reads one kind of argument into the
form the ops take, and a wrong one raises `argument_error`: an error that
names the K.* function and the user's call site, as the ops' type rules do.
"""
from __future__ import annotations

import operator

import numpy as np

from .. import config
from ..ir.errors import located
from ..ir.graph import Value
from ..ir.ops import elementwise as ew
from ..ir.ops.leaf import constant_value
from ..ir.shapes import ShapeError
from ..ir.source import user_location


def argument_error(op_name: str, message: str, kind: type[Exception] = ShapeError) -> Exception:
    """A `kind` error, its message prefixed with the K.* function and the user's call site."""
    return located(kind(message), op_name, user_location())


def int_tuple(value, rank: int, what: str, op_name: str) -> tuple[int, ...]:
    """An int or a sequence of `rank` ints (Python or NumPy) as a tuple of positive ints."""
    try:
        values = (operator.index(value),) * rank if not hasattr(value, "__len__") else \
            tuple(operator.index(v) for v in value)
    except TypeError:
        values = ()
    if len(values) != rank or min(values) < 1:
        raise argument_error(op_name, f"{what} must be a positive int or {rank} positive ints, "
                                      f"got {value!r}", ValueError)
    return values


def padding(value, op_name: str, causal_ok: bool = False) -> str:
    """'valid' or 'same' (or 'causal' where the op allows it), checked."""
    allowed = ("valid", "same", "causal") if causal_ok else ("valid", "same")
    if value not in allowed:
        raise argument_error(op_name, f"Invalid padding: {value} (expected one of {allowed})",
                             ValueError)
    return value


def data_format(op_name: str, value) -> str:
    """'channels_last' or 'channels_first'; None means K.image_data_format()."""
    try:
        return config.normalize_data_format(value)
    except ValueError as error:
        raise argument_error(op_name, str(error), ValueError) from None


def static_int(value, what: str, op_name: str, truncate: bool = False) -> int:
    """An int known when the graph is built: a Python or NumPy int, or a constant scalar tensor.

    A computed tensor raises NotImplementedError. Anything else that is not an
    integer scalar raises TypeError, unless `truncate`: then any scalar int()
    accepts is taken, floats truncated, as the shape functions always have.
    """
    if isinstance(value, Value):
        fixed = constant_value(value)
        if fixed is None:
            raise argument_error(op_name, f"{what} must be an int known when the graph is "
                                          "built, not a computed tensor", NotImplementedError)
        value = fixed
    if np.ndim(value) != 0 or not (truncate or np.asarray(value).dtype.kind in "iu"):
        raise argument_error(op_name, f"{what} must be an int, got {value!r}", TypeError)
    return int(value)


def to_int32(value: Value) -> Value:
    """value as int32: itself if it is, else cast (floats truncate, as tf.cast does)."""
    return value if value.type.dtype == "int32" else ew.cast(value, dtype="int32")

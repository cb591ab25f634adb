"""Leaves of the graph: placeholders (fed per call), variables (state), constants."""
from __future__ import annotations

import numpy as np

from ..dtypes import as_dtype
from ..graph import Value
from ..shapes import ShapeError, format_shape
from ..source import user_location
from ..types import TensorType
from .registry import OpDef, make_node, register

PLACEHOLDER = register(OpDef(
    "placeholder", "leaf", infer=None, kernel=None, leaf=True, grad=None,
    attrs={"name": None, "default": None},
    doc="A value fed at each call; `default` is used when it is not fed."))

VARIABLE = register(OpDef(
    "variable", "leaf", infer=None, kernel=None, leaf=True, grad=None,
    attrs={"name": None},
    doc="Mutable state read at each call and changed only by updates."))

CONSTANT = register(OpDef(
    "constant", "leaf", infer=None, kernel=None, leaf=True, grad=None,
    attrs={"value": None},
    doc="A fixed array."))


class Variable(Value):
    """A variable's value in the graph, holding its current contents in `storage`.

    The storage is read by every call of a compiled function, so `set_value`
    between calls is seen by the next one.
    """

    def assign(self, array) -> None:
        """Replace the contents; shape must match and dtype is cast."""
        array = np.asarray(array)
        if array.shape != self.type.shape:
            raise ShapeError(f"variable {self.name!r} has shape {format_shape(self.type.shape)}; "
                             f"cannot assign a value of shape {format_shape(array.shape)}")
        self.storage = np.array(array, dtype=self.type.dtype, copy=True)


def placeholder(type: TensorType, name: str | None = None, default=None, location=None) -> Value:
    if default is not None:
        default = np.asarray(default, dtype=type.dtype)
    value = make_node(PLACEHOLDER, (), {"name": name, "default": default}, (type,),
                      location or user_location())
    value.name = name
    return value


def variable(array, name: str | None = None, dtype=None, location=None) -> Variable:
    array = np.array(array, dtype=as_dtype(dtype) if dtype else None, copy=True)
    type = TensorType(array.dtype, array.shape)
    value = make_node(VARIABLE, (), {"name": name}, (type,), location or user_location(),
                      value_class=Variable)
    value.name = name
    value.storage = array
    return value


def constant(array, dtype=None, location=None) -> Value:
    array = np.array(array, dtype=as_dtype(dtype) if dtype else None, copy=True)
    array.setflags(write=False)
    return make_node(CONSTANT, (), {"value": array}, (TensorType(array.dtype, array.shape),),
                     location or user_location())


def constant_value(value: Value):
    """The array of a constant value, or None if `value` is not a constant."""
    node = value.node
    if node is not None and node.op is CONSTANT:
        return node.attrs["value"]
    return None


def _is_number_data(x) -> bool:
    """A number or array of numbers (not bools), which a float tensor beside it converts."""
    return not isinstance(x, bool) and np.asarray(x).dtype.kind in "iuf"


def as_value(x, like: Value | None = None) -> Value:
    """`x` as a graph value; a Python or NumPy number becomes a constant.

    Numbers and arrays beside a float `like` take its dtype (as TensorFlow
    converts them; NumPy 2 would widen float32 beside an np.float64).
    Otherwise a bare number takes the dtype NumPy would give it beside `like`
    (NEP 50 weak scalars: 0.5 next to int32 is float64).
    """
    if isinstance(x, Value):
        return x
    if like is not None and like.type.dtype.startswith("float") and _is_number_data(x):
        return constant(np.asarray(x, dtype=like.type.dtype))  # np.float64 is not weak in NEP 50
    if like is not None and np.ndim(x) == 0 and isinstance(x, (int, float, bool)):
        probe = np.empty(0, dtype=like.type.dtype)
        dtype = (probe + x).dtype if not isinstance(x, bool) else np.dtype(bool)
        return constant(np.asarray(x, dtype=dtype))
    return constant(np.asarray(x))

"""Python operators on graph values (+, -, *, /, //, %, **, @, unary -, abs, <, <=, >, >=, [...]).

`==` and `!=` stay identity comparisons, as on TensorFlow 1 tensors: Keras
keeps tensors in lists and dicts and relies on that. Use K.equal for the
elementwise comparison.
"""
from __future__ import annotations

from .graph import Value
from .ops import elementwise as ew


def _binary(op, reflected=False):
    if reflected:
        return lambda self, other: op(other, self)
    return lambda self, other: op(self, other)


def _matmul(a, b):
    from .ops.linalg import matmul

    return matmul(a, b)


def _getitem(self, key):
    from .ops.indexing import getitem

    return getitem(self, key)


for _name, _op in {"add": ew.add, "sub": ew.sub, "mul": ew.mul, "truediv": ew.div,
                   "floordiv": ew.floordiv, "mod": ew.mod, "pow": ew.power,
                   "matmul": _matmul}.items():
    setattr(Value, f"__{_name}__", _binary(_op))
    setattr(Value, f"__r{_name}__", _binary(_op, reflected=True))

Value.__neg__ = lambda self: ew.neg(self)
Value.__pos__ = lambda self: self
Value.__abs__ = lambda self: ew.absolute(self)
Value.__lt__ = _binary(ew.less)
Value.__le__ = _binary(ew.less_equal)
Value.__gt__ = _binary(ew.greater)
Value.__ge__ = _binary(ew.greater_equal)
Value.__invert__ = lambda self: ew.logical_not(self)
Value.__and__ = _binary(ew.logical_and)
Value.__or__ = _binary(ew.logical_or)
Value.__getitem__ = _getitem

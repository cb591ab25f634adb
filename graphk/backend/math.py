"""Elementwise math with Keras semantics (argument conventions, clipping rules)."""
from __future__ import annotations

import numpy as np

from ..ir.graph import Value
from ..ir.ops import elementwise as ew
from ..ir.ops import shape as shape_ops
from ..ir.ops.leaf import as_value
from .tensors import _as_tensor


def abs(x):
    return ew.absolute(_as_tensor(x))


def square(x):
    return ew.square(_as_tensor(x))


def sqrt(x):
    """sqrt of x clipped at 0, as Keras' TensorFlow backend does."""
    x = _as_tensor(x)
    return ew.sqrt(ew.maximum(x, 0.0))


def exp(x):
    return ew.exp(_as_tensor(x))


def log(x):
    return ew.log(_as_tensor(x))


def round(x):
    return ew.round_(_as_tensor(x))


def sign(x):
    return ew.sign(_as_tensor(x))


def pow(x, a):
    return ew.power(_as_tensor(x), a)


def clip(x, min_value, max_value):
    """Clip to [min_value, max_value]; None means unbounded; max < min means max = min."""
    x = _as_tensor(x)
    low = -np.inf if min_value is None else min_value
    high = np.inf if max_value is None else max_value
    if not isinstance(low, Value) and not isinstance(high, Value) and high < low:
        high = low
    return ew.clip(x, as_value(low, like=x), as_value(high, like=x))


def _comparison(op):
    def compare(x, y):
        x = _as_tensor(x)
        return op(x, as_value(y, like=x))
    compare.__name__ = op.__name__
    compare.__doc__ = f"Elementwise {op.__name__}, with broadcasting; returns a bool tensor."
    return compare


equal = _comparison(ew.equal)
not_equal = _comparison(ew.not_equal)
greater = _comparison(ew.greater)
greater_equal = _comparison(ew.greater_equal)
less = _comparison(ew.less)
less_equal = _comparison(ew.less_equal)
maximum = _comparison(ew.maximum)
minimum = _comparison(ew.minimum)
maximum.__doc__ = "Elementwise maximum, with broadcasting."
minimum.__doc__ = "Elementwise minimum, with broadcasting."


def sin(x):
    return ew.sin(_as_tensor(x))


def cos(x):
    return ew.cos(_as_tensor(x))


def tanh(x):
    return ew.tanh(_as_tensor(x))


def sigmoid(x):
    return ew.sigmoid(_as_tensor(x))


def hard_sigmoid(x):
    return ew.hard_sigmoid(_as_tensor(x))


def relu(x, alpha=0.0, max_value=None, threshold=0.0):
    """max(x, threshold), alpha * (x - threshold) below it, capped at max_value."""
    return ew.relu(_as_tensor(x), alpha=float(alpha),
                   max_value=None if max_value is None else float(max_value),
                   threshold=float(threshold))


def elu(x, alpha=1.0):
    return ew.elu(_as_tensor(x), alpha=float(alpha))


def softplus(x):
    return ew.softplus(_as_tensor(x))


def softsign(x):
    return ew.softsign(_as_tensor(x))


def branch_value(branch):
    """A branch of switch or in_train_phase: given as a value, or as a callable building it."""
    return branch() if callable(branch) else branch


def switch(condition, then_expression, else_expression):
    """then_expression where condition holds, else else_expression (either may be a callable).

    A condition of lower rank than the branches applies to their leading axes
    (Keras' rule), so a (batch,) condition selects whole rows.
    """
    then = _as_tensor(branch_value(then_expression))
    otherwise = as_value(branch_value(else_expression), like=then)
    condition = _as_tensor(condition)
    if condition.type.dtype != "bool":
        condition = ew.cast(condition, dtype="bool")
    missing = max(then.type.ndim, otherwise.type.ndim) - condition.type.ndim
    for _ in range(missing if condition.type.ndim else 0):
        condition = shape_ops.expand_dims(condition, -1)
    return ew.switch(condition, then, otherwise)


__all__ = ["switch", "abs", "square", "sqrt", "exp", "log", "round", "sign", "pow", "clip", "equal",
           "not_equal", "greater", "greater_equal", "less", "less_equal", "maximum", "minimum",
           "sin", "cos", "tanh", "sigmoid", "hard_sigmoid", "relu", "elu", "softplus", "softsign"]

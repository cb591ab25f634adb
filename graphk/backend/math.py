"""Elementwise math with Keras semantics (argument conventions, clipping rules)."""
from __future__ import annotations

import numpy as np

from ..ir.graph import Value
from ..ir.ops import elementwise as ew
from ..ir.ops import shape as shape_ops
from ..ir.ops.leaf import as_value
from .tensors import _as_tensor


def abs(x):
    """Elementwise absolute value.

    Arguments:
        x: a tensor (or an array or number).

    Returns:
        A tensor of x's shape and dtype.

    Example:
        >>> K.eval(K.abs(K.constant([-1.5, 2])))
        array([1.5, 2. ], dtype=float32)
    """
    return ew.absolute(_as_tensor(x))


def square(x):
    """Elementwise square, x * x.

    Arguments:
        x: a tensor (or an array or number).

    Returns:
        A tensor of x's shape and dtype.
    """
    return ew.square(_as_tensor(x))


def sqrt(x):
    """Elementwise square root of x clipped at 0, as Keras' TensorFlow backend does.

    A negative input gives 0, not NaN.

    Arguments:
        x: a tensor (or an array or number).

    Returns:
        A tensor of x's shape and dtype.

    Example:
        >>> K.eval(K.sqrt(K.constant([4.0, -1.0])))
        array([2., 0.], dtype=float32)
    """
    x = _as_tensor(x)
    return ew.sqrt(ew.maximum(x, 0.0))


def exp(x):
    """Elementwise exponential, e ** x.

    Arguments:
        x: a tensor (or an array or number).

    Returns:
        A tensor of x's shape and dtype.
    """
    return ew.exp(_as_tensor(x))


def log(x):
    """Elementwise natural logarithm (NaN below 0, -inf at 0, as NumPy).

    Arguments:
        x: a tensor (or an array or number).

    Returns:
        A tensor of x's shape and dtype.
    """
    return ew.log(_as_tensor(x))


def round(x):
    """Elementwise rounding to the nearest integer, halves to even (as tf.round).

    Arguments:
        x: a tensor (or an array or number).

    Returns:
        A tensor of x's shape and dtype.

    Example:
        >>> K.eval(K.round(K.constant([0.5, 1.5, 2.7])))
        array([0., 2., 3.], dtype=float32)
    """
    return ew.round_(_as_tensor(x))


def sign(x):
    """Elementwise sign: -1, 0 or 1.

    Arguments:
        x: a tensor (or an array or number).

    Returns:
        A tensor of x's shape and dtype.
    """
    return ew.sign(_as_tensor(x))


def pow(x, a):
    """Elementwise x ** a.

    Arguments:
        x: a tensor.
        a: the exponent: a number or a tensor broadcast against x.

    Returns:
        A tensor of x's dtype.

    Example:
        >>> K.eval(K.pow(K.constant([2.0, 3.0]), 2))
        array([4., 9.], dtype=float32)
    """
    return ew.power(_as_tensor(x), a)


def clip(x, min_value, max_value):
    """x clipped to [min_value, max_value].

    Arguments:
        x: a tensor.
        min_value: the lower bound (a number or tensor); None means unbounded.
        max_value: the upper bound; None means unbounded. A max_value below
            min_value is taken as min_value (Keras' rule).

    Returns:
        A tensor of x's shape and dtype.

    Example:
        >>> K.eval(K.clip(K.constant([-2.0, 0.5, 3.0]), 0, 1))
        array([0. , 0.5, 1. ], dtype=float32)
    """
    x = _as_tensor(x)
    low = -np.inf if min_value is None else min_value
    high = np.inf if max_value is None else max_value
    if not isinstance(low, Value) and not isinstance(high, Value) and high < low:
        high = low
    return ew.clip(x, as_value(low, like=x), as_value(high, like=x))


def _binary(op, summary: str, returns: str, call: str, result: str):
    """A Keras two-argument elementwise function of `op`, y converted beside x; `call` and
    `result` make its docstring's example."""
    def elementwise(x, y):
        x = _as_tensor(x)
        return op(x, as_value(y, like=x))
    elementwise.__name__ = elementwise.__qualname__ = op.__name__
    elementwise.__doc__ = f"""{summary}

    Arguments:
        x: a tensor.
        y: a tensor, array or number, broadcast against x (numbers take x's dtype).

    Returns:
        {returns}

    Example:
        >>> K.eval({call})
        {result}
    """
    return elementwise


_BOOL = "A bool tensor of the broadcast shape."
_SAME = "A tensor of the broadcast shape, in x's dtype."
equal = _binary(ew.equal, "Elementwise x == y.", _BOOL,
                "K.equal(K.constant([1, 2]), 2)", "array([False,  True])")
not_equal = _binary(ew.not_equal, "Elementwise x != y.", _BOOL,
                    "K.not_equal(K.constant([1, 2]), 2)", "array([ True, False])")
greater = _binary(ew.greater, "Elementwise x > y.", _BOOL,
                  "K.greater(K.constant([1, 2]), 1)", "array([False,  True])")
greater_equal = _binary(ew.greater_equal, "Elementwise x >= y.", _BOOL,
                        "K.greater_equal(K.constant([1, 2]), 2)", "array([False,  True])")
less = _binary(ew.less, "Elementwise x < y.", _BOOL,
               "K.less(K.constant([1, 2]), 2)", "array([ True, False])")
less_equal = _binary(ew.less_equal, "Elementwise x <= y.", _BOOL,
                     "K.less_equal(K.constant([1, 2]), 1)", "array([ True, False])")
maximum = _binary(ew.maximum, "Elementwise maximum of x and y (NaN if either is NaN).", _SAME,
                  "K.maximum(K.constant([1, 5]), 3)", "array([3., 5.], dtype=float32)")
minimum = _binary(ew.minimum, "Elementwise minimum of x and y (NaN if either is NaN).", _SAME,
                  "K.minimum(K.constant([1, 5]), 3)", "array([1., 3.], dtype=float32)")


def sin(x):
    """Elementwise sine.

    Arguments:
        x: a tensor (or an array or number).

    Returns:
        A tensor of x's shape and dtype.
    """
    return ew.sin(_as_tensor(x))


def cos(x):
    """Elementwise cosine.

    Arguments:
        x: a tensor (or an array or number).

    Returns:
        A tensor of x's shape and dtype.
    """
    return ew.cos(_as_tensor(x))


def tanh(x):
    """Elementwise hyperbolic tangent.

    Arguments:
        x: a tensor (or an array or number).

    Returns:
        A tensor of x's shape and dtype.
    """
    return ew.tanh(_as_tensor(x))


def sigmoid(x):
    """Elementwise logistic sigmoid, 1 / (1 + exp(-x)), exact for large |x|.

    The crossentropies recognize a sigmoid output and use its logits.

    Arguments:
        x: a tensor (or an array or number).

    Returns:
        A tensor of x's shape and dtype.
    """
    return ew.sigmoid(_as_tensor(x))


def hard_sigmoid(x):
    """Elementwise piecewise-linear sigmoid: clip(0.2 * x + 0.5, 0, 1).

    0 below -2.5, 1 above 2.5.

    Arguments:
        x: a tensor (or an array or number).

    Returns:
        A tensor of x's shape and dtype.
    """
    return ew.hard_sigmoid(_as_tensor(x))


def relu(x, alpha=0.0, max_value=None, threshold=0.0):
    """Rectified linear unit, with Keras' options.

    As Keras' TensorFlow backend defines it: x where x > threshold (clipped to
    [0, max_value] when max_value is given), and alpha * (x - threshold) at or
    below the threshold (0 when alpha is 0).

    Arguments:
        x: a tensor.
        alpha: the slope below the threshold (a leaky relu when nonzero).
        max_value: an optional cap (relu6 is max_value=6).
        threshold: where the unit turns on.

    Returns:
        A tensor of x's shape and dtype.

    Example:
        >>> K.eval(K.relu(K.constant([-2.0, 1.0, 8.0]), alpha=0.1, max_value=6))
        array([-0.2,  1. ,  6. ], dtype=float32)
    """
    return ew.relu(_as_tensor(x), alpha=float(alpha),
                   max_value=None if max_value is None else float(max_value),
                   threshold=float(threshold))


def elu(x, alpha=1.0):
    """Exponential linear unit: x for x > 0, alpha * (exp(x) - 1) otherwise.

    Arguments:
        x: a tensor.
        alpha: the scale of the negative part.

    Returns:
        A tensor of x's shape and dtype.
    """
    return ew.elu(_as_tensor(x), alpha=float(alpha))


def softplus(x):
    """Elementwise softplus, log(1 + exp(x)), without overflow.

    Arguments:
        x: a tensor (or an array or number).

    Returns:
        A tensor of x's shape and dtype.
    """
    return ew.softplus(_as_tensor(x))


def softsign(x):
    """Elementwise softsign, x / (1 + |x|).

    Arguments:
        x: a tensor (or an array or number).

    Returns:
        A tensor of x's shape and dtype.
    """
    return ew.softsign(_as_tensor(x))


def branch_value(branch):
    """A branch of switch or in_train_phase: given as a value, or as a callable building it."""
    return branch() if callable(branch) else branch


def switch(condition, then_expression, else_expression):
    """then_expression where condition holds, else else_expression.

    A condition of lower rank than the branches applies to their leading axes
    (Keras' rule), so a (batch,) condition selects whole rows.

    Arguments:
        condition: a bool (or numeric, nonzero meaning true) tensor or a number.
        then_expression: a tensor, or a callable returning one.
        else_expression: a tensor, or a callable returning one.

    Returns:
        A tensor of the branches' broadcast shape.

    Example:
        >>> K.eval(K.switch(K.constant([1, 0]) > 0, K.constant([1, 2]), K.constant([9, 9])))
        array([1., 9.], dtype=float32)
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

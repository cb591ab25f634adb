"""Elementwise ops: NumPy broadcasting over symbolic shapes.

Each op is a NumPy kernel plus a gradient rule. The output dtype is whatever
the kernel gives for the input dtypes (probed once on empty arrays), so the
type rule and the kernel can never disagree.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..dtypes import DTypeError, as_dtype, is_floating
from ..shapes import broadcast_shapes
from ..types import TensorType
from .leaf import as_value
from .registry import NOT_DIFFERENTIABLE, OpDef, Sample, apply, register


@lru_cache(maxsize=None)
def _probe_dtype(kernel, dtypes: tuple, attrs: tuple) -> str:
    arrays = [np.empty(0, dtype=d) for d in dtypes]
    try:
        result = kernel(*arrays, **dict(attrs))
    except TypeError as error:
        raise DTypeError(f"not defined for dtypes {', '.join(dtypes)} ({error})") from None
    return as_dtype(result.dtype)


def _elementwise_infer(kernel):
    def infer(*types, **attrs):
        shape = broadcast_shapes(*[t.shape for t in types])
        dtype = _probe_dtype(kernel, tuple(t.dtype for t in types), tuple(sorted(attrs.items())))
        return TensorType(dtype, shape)
    return infer


def define(name: str, kernel, arity: int, grad, *, attrs=None, samples=(), low=-2.0, high=2.0,
           dtypes=None, doc=""):
    """Register an elementwise op and return its constructor."""
    if not samples:
        shapes = [((3, 4),) * arity, ((3, 4), (4,))[:arity] if arity == 2 else ((2, 3),) * arity]
        samples = tuple(Sample(s, low=low, high=high, dtypes=dtypes) for s in shapes)
    register(OpDef(name, "elementwise", infer=_elementwise_infer(kernel), kernel=kernel,
                   attrs=attrs or {}, grad=grad, samples=samples, elementwise=True, doc=doc))

    def construct(*args, **kwargs):
        like = next((a for a in args if hasattr(a, "type")), None)
        return apply(name, [as_value(a, like) for a in args], **kwargs)

    construct.__name__ = name
    construct.__doc__ = doc
    return construct


# --- kernels that are not a single NumPy ufunc --------------------------------

def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for large |x|, unlike 1/(1+exp(-x))


def _hard_sigmoid(x):
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


def _relu(x, alpha=0.0, max_value=None, threshold=0.0):
    """Keras' relu: clip(x * (x >= threshold), 0, max_value) + alpha * (x - threshold) below it."""
    if alpha == 0.0 and max_value is None and threshold == 0.0:
        return np.maximum(x, np.zeros((), x.dtype))
    above = np.clip(x * (x >= threshold), 0, np.inf if max_value is None else max_value)
    below = alpha * (x - threshold) * (x < threshold)
    return (above + below).astype(x.dtype, copy=False)


def _relu_grad(g, x, alpha=0.0, max_value=None, threshold=0.0):
    """g times relu's slope at x (the slope is 0 or 1 above threshold, alpha below)."""
    if alpha == 0.0 and max_value is None and threshold == 0.0:
        return g * (x > 0)
    slope = (x >= threshold) & (x > 0)
    if max_value is not None:
        slope &= x < max_value
    result = g * slope
    if alpha != 0.0:
        result = result + g * (alpha * (x < threshold))
    return result.astype(g.dtype, copy=False)


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)


def _softplus(x):
    return np.logaddexp(np.zeros((), x.dtype), x)


def _softsign(x):
    return x / (1 + np.abs(x))


def _clip(x, low, high):
    return np.clip(x, low, np.maximum(low, high))


def _switch(condition, then, otherwise):
    return np.where(condition, then, otherwise)


def _cast(x, dtype="float32"):
    return x.astype(dtype)


# --- gradient rules (node, g) -> one cotangent per input --------------------------

def _where_positive(mask, g):
    return switch(mask, g, 0.0 * g)


add = define("add", np.add, 2, lambda n, g: (g, g))
sub = define("sub", np.subtract, 2, lambda n, g: (g, neg(g)))
mul = define("mul", np.multiply, 2, lambda n, g: (mul(g, n.inputs[1]), mul(g, n.inputs[0])))
div = define("div", np.true_divide, 2,
             lambda n, g: (div(g, n.inputs[1]),
                           neg(mul(g, div(n.outputs[0], n.inputs[1])))),
             samples=(Sample(((3, 4), (3, 4)), low=0.5, high=2.0),
                      Sample(((3, 4), (4,)), low=0.5, high=2.0)))
floordiv = define("floordiv", np.floor_divide, 2, NOT_DIFFERENTIABLE,
                  samples=(Sample(((3, 4), (4,)), low=0.5, high=3.0),))
mod = define("mod", np.mod, 2,
             lambda n, g: (g, neg(mul(g, floordiv(n.inputs[0], n.inputs[1])))),
             samples=(Sample(((3, 4), (4,)), low=0.5, high=3.0),))
power = define("pow", np.power, 2,
               lambda n, g: (mul(g, mul(n.inputs[1], power(n.inputs[0], sub(n.inputs[1], 1)))),
                             mul(g, mul(log(n.inputs[0]), n.outputs[0]))),
               samples=(Sample(((3, 4), (3, 4)), low=0.5, high=2.0),
                        Sample(((3, 4), (4,)), low=0.5, high=2.0)))
maximum = define("maximum", np.maximum, 2,
                 lambda n, g: (_where_positive(greater_equal(*n.inputs), g),
                               _where_positive(less(*n.inputs), g)))
minimum = define("minimum", np.minimum, 2,
                 lambda n, g: (_where_positive(less_equal(*n.inputs), g),
                               _where_positive(greater(*n.inputs), g)))

neg = define("neg", np.negative, 1, lambda n, g: (neg(g),))
absolute = define("abs", np.abs, 1, lambda n, g: (mul(g, sign(n.inputs[0])),))
square = define("square", np.square, 1, lambda n, g: (mul(g, mul(n.inputs[0], 2)),))
sqrt = define("sqrt", np.sqrt, 1, lambda n, g: (div(mul(g, 0.5), n.outputs[0]),),
              low=0.5, high=3.0)
exp = define("exp", np.exp, 1, lambda n, g: (mul(g, n.outputs[0]),))
log = define("log", np.log, 1, lambda n, g: (div(g, n.inputs[0]),), low=0.5, high=3.0)
sin = define("sin", np.sin, 1, lambda n, g: (mul(g, cos(n.inputs[0])),))
cos = define("cos", np.cos, 1, lambda n, g: (neg(mul(g, sin(n.inputs[0]))),))
tanh = define("tanh", np.tanh, 1,
              lambda n, g: (mul(g, sub(1, square(n.outputs[0]))),))
sigmoid = define("sigmoid", _sigmoid, 1,
                 lambda n, g: (mul(g, mul(n.outputs[0], sub(1, n.outputs[0]))),))
hard_sigmoid = define(
    "hard_sigmoid", _hard_sigmoid, 1,
    lambda n, g: (_where_positive(less(absolute(n.inputs[0]), 2.5), mul(g, 0.2)),),
    doc="clip(0.2 x + 0.5, 0, 1), as Keras defines it.")
_RELU_ATTRS = {"alpha": 0.0, "max_value": None, "threshold": 0.0}
_RELU_SAMPLES = (Sample(((3, 4),)), Sample(((3, 4),), {"alpha": 0.1, "max_value": 1.5,
                                                        "threshold": 0.25}))
relu = define("relu", _relu, 1, lambda n, g: (relu_grad(g, n.inputs[0], **n.attrs),),
              attrs=_RELU_ATTRS, samples=_RELU_SAMPLES)
relu_grad = define(
    "relu_grad", _relu_grad, 2,
    lambda n, g: (relu_grad(g, n.inputs[1], **n.attrs), None),
    attrs=_RELU_ATTRS,
    samples=(Sample(((3, 4), (3, 4)), differentiable_inputs=(0,)),
             Sample(((3, 4), (3, 4)), _RELU_SAMPLES[1].attrs, differentiable_inputs=(0,))),
    doc="The gradient of relu: g * relu'(x); linear in g, so its own gradient is itself.")
elu = define("elu", _elu, 1,
             lambda n, g: (switch(greater(n.inputs[0], 0), g,
                                  mul(g, add(n.outputs[0], n.attrs["alpha"]))),),
             attrs={"alpha": 1.0})
softplus = define("softplus", _softplus, 1, lambda n, g: (mul(g, sigmoid(n.inputs[0])),))
softsign = define("softsign", _softsign, 1,
                  lambda n, g: (div(g, square(add(absolute(n.inputs[0]), 1))),))
sign = define("sign", np.sign, 1, NOT_DIFFERENTIABLE)
round_ = define("round", np.round, 1, NOT_DIFFERENTIABLE,
                doc="Round half to even, as NumPy and TensorFlow do.")
clip = define(
    "clip", _clip, 3,
    lambda n, g: (_where_positive(logical_and(greater_equal(n.inputs[0], n.inputs[1]),
                                              less_equal(n.inputs[0], n.inputs[2])), g),
                  None, None),
    samples=(Sample(((3, 4), (), ()), make=lambda rng: [
        rng.uniform(-2, 2, (3, 4)), np.asarray(-1.0), np.asarray(1.0)],
        differentiable_inputs=(0,)),),
    doc="clip(x, low, high); if high < low, high is taken as low (Keras' rule).")

_compare_sample = (Sample(((3, 4), (4,))),)
equal = define("equal", np.equal, 2, NOT_DIFFERENTIABLE, samples=_compare_sample)
not_equal = define("not_equal", np.not_equal, 2, NOT_DIFFERENTIABLE, samples=_compare_sample)
greater = define("greater", np.greater, 2, NOT_DIFFERENTIABLE, samples=_compare_sample)
greater_equal = define("greater_equal", np.greater_equal, 2, NOT_DIFFERENTIABLE,
                       samples=_compare_sample)
less = define("less", np.less, 2, NOT_DIFFERENTIABLE, samples=_compare_sample)
less_equal = define("less_equal", np.less_equal, 2, NOT_DIFFERENTIABLE, samples=_compare_sample)

_logic_sample = (Sample(((3, 4), (4,)), dtypes=("bool", "bool")),)
logical_and = define("logical_and", np.logical_and, 2, NOT_DIFFERENTIABLE, samples=_logic_sample)
logical_or = define("logical_or", np.logical_or, 2, NOT_DIFFERENTIABLE, samples=_logic_sample)
logical_not = define("logical_not", np.logical_not, 1, NOT_DIFFERENTIABLE,
                     samples=(Sample(((3, 4),), dtypes=("bool",)),))

switch = define(
    "switch", _switch, 3,
    lambda n, g: (None, switch(n.inputs[0], g, mul(g, 0.0)), switch(n.inputs[0], mul(g, 0.0), g)),
    samples=(Sample(((3, 4), (3, 4), (3, 4)), dtypes=("bool", "float64", "float64"),
                    differentiable_inputs=(1, 2)),
             Sample(((3, 1), (3, 4), (4,)), dtypes=("bool", "float64", "float64"),
                    differentiable_inputs=(1, 2))),
    doc="Elementwise select: where(condition, then, otherwise).")

cast = define(
    "cast", _cast, 1,
    lambda n, g: (cast(g, dtype=n.inputs[0].type.dtype)
                  if is_floating(n.inputs[0].type.dtype) else None,),
    attrs={"dtype": "float32"},
    samples=(Sample(((3, 4),), {"dtype": "float64"}), Sample(((3, 4),), {"dtype": "int32"})))

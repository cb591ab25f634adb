"""Elementwise ops: NumPy broadcasting over symbolic shapes, explicit dtype rules.

Each op is one record: a NumPy kernel, a gradient rule, a dtype rule and a
scalar rule (`OpDef.scalar`, written against ir/scalar.py's builder, which
fusion and the LLVM backend compile).

Dtype policy (JAX-like; TensorFlow would reject most mixes outright):
- Operands meet in `dtypes.result_type`: bool < ints < floats. An int or a
  bool beside a float takes the float's dtype, so float32 is never silently
  widened to float64; two floats give the wider; ints promote as NumPy does
  among ints (int8 with uint8 is int16).
- Arithmetic (add sub mul floordiv mod pow maximum minimum neg abs square
  sign round clip relu) keeps that dtype, ints included (wrapping around).
  On bools alone it is a DTypeError (bool + bool is not a logical or here).
- True division and the float functions (div sqrt exp log log1p expm1 erf
  sin cos tanh sigmoid ...) give float32 for ints and bools, whatever
  floatx is (as JAX does without x64): int64 inputs lose precision.
- Comparisons give bool (compared in the operands' common dtype); the
  logical ops and switch's condition take bool only.
- Operands are cast to the compute dtype inside the kernel (and the scalar
  rule), so kernels produce exactly the dtype the rule states. float16 is
  stored, not computed: an op on float16 computes in float32 and rounds on
  store (a fused region computes all of its float16 work in float32).
"""
from __future__ import annotations

import numpy as np

from ..dtypes import (cast_rule, comparison_rule, float_rule, is_floating, logical_rule,
                      numeric_rule, switch_rule)
from ..shapes import broadcast_shapes
from ..types import TensorType
from .activations import RELU_ATTRS, RELU_SAMPLES, relu_grad_kernel, relu_grad_scalar
from .activations import relu_kernel, relu_rule, relu_scalar
from .leaf import as_value
from .registry import NOT_DIFFERENTIABLE, OpDef, Sample, apply, register


def _typed_kernel(rule, kernel):
    """`kernel` with its inputs cast to the compute dtypes and its result to the output's.

    The rule runs once per dtype (and attribute) combination; after that a call costs
    one dict lookup, since kernels run at every call of a compiled function.
    """
    plans = {}

    def plan(arrays, attrs):
        out, computes = rule(tuple(a.dtype.name for a in arrays), attrs)
        computes = tuple(np.dtype(c) for c in computes)
        exact = all(a.dtype == c for a, c in zip(arrays, computes))
        return np.dtype(out), None if exact else computes

    def typed(*arrays, **attrs):
        key = tuple([a.dtype for a in arrays])
        if attrs:
            key += tuple(attrs.items())
        found = plans.get(key)
        if found is None:
            found = plans[key] = plan(arrays, attrs)
        out, computes = found
        if computes is not None:
            arrays = [a if a.dtype == c else a.astype(c) for a, c in zip(arrays, computes)]
        result = kernel(*arrays, **attrs)
        return result if result.dtype == out else result.astype(out)
    typed.__name__ = getattr(kernel, "__name__", "kernel")
    typed.raw = kernel  # the NumPy kernel on its own, for the dtype-probe oracle in tests
    return typed


def _typed_scalar(rule, body):
    """The scalar rule: inputs cast to the compute dtypes, `body`, result cast to the output's."""
    def scalar(b, *args, **attrs):
        out, computes = rule(tuple(b.dtype_of(a) for a in args), attrs)
        args = [a if b.dtype_of(a) == c else b.cast(a, c) for a, c in zip(args, computes)]
        result = body(b, *args, **attrs)
        return result if b.dtype_of(result) == out else b.cast(result, out)
    return scalar


def _infer(rule):
    def infer(*types, **attrs):
        out, _ = rule(tuple(t.dtype for t in types), attrs)
        return TensorType(out, broadcast_shapes(*[t.shape for t in types]))
    return infer


def define(name: str, kernel, arity: int, grad, *, scalar, rule=float_rule, attrs=None,
           samples=(), low=-2.0, high=2.0, dtypes=None, doc=""):
    """Register an elementwise op and return its constructor.

    `kernel` and `scalar` (body(b, *args, **attrs)) see their inputs already cast
    to the compute dtypes `rule` gives; their result is cast to its output dtype.
    """
    if not samples:
        shapes = [((3, 4),) * arity, ((3, 4), (4,))[:arity] if arity == 2 else ((2, 3),) * arity]
        samples = tuple(Sample(s, low=low, high=high, dtypes=dtypes) for s in shapes)
    register(OpDef(name, "elementwise", infer=_infer(rule), kernel=_typed_kernel(rule, kernel),
                   attrs=attrs or {}, grad=grad, scalar=_typed_scalar(rule, scalar),
                   samples=samples, elementwise=True, doc=doc))
    DTYPE_RULES[name] = rule

    def construct(*args, **kwargs):
        like = next((a for a in args if hasattr(a, "type")), None)
        return apply(name, [as_value(a, like) for a in args], **kwargs)

    construct.__name__ = name
    construct.__doc__ = doc
    return construct


DTYPE_RULES: dict = {}  # op name -> its dtype rule, for tests and passes


def _const(b, value, like):
    return b.const(value, b.dtype_of(like))


def _math(name):
    return lambda b, *args: b.math(name, *args)


def _method(name):
    return lambda b, *args: getattr(b, name)(*args)


# --- kernels and scalar bodies that are not a single NumPy ufunc ------------------------------

def _select(condition, then, otherwise):
    """np.where; a rank-0 condition (Keras' learning-phase switch: Dropout, BatchNormalization)
    takes one side whole, as a fresh copy: 6x faster than np.where's elementwise select on a
    (32, 1024) float32 (measured)."""
    if np.ndim(condition) == 0:
        chosen = then if condition else otherwise
        if isinstance(then, np.ndarray) and isinstance(otherwise, np.ndarray) \
                and then.shape == otherwise.shape and then.dtype == otherwise.dtype:
            return chosen.copy()  # the common case, without the broadcasting machinery
        shape = np.broadcast_shapes(np.shape(condition), np.shape(then), np.shape(otherwise))
        return np.array(np.broadcast_to(chosen, shape), dtype=np.result_type(then, otherwise))
    return np.where(condition, then, otherwise)


def _sigmoid(x):
    """1 / (1 + exp(-x)) from e = exp(-|x|) <= 1: 1 / (1 + e) for x >= 0, e / (1 + e) below,
    so no exp overflows and tiny results keep their relative accuracy (within a few ulp;
    0.5 * (1 + tanh(x / 2)) lost all of it below x = -15)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, e) / (1 + e)


def _hard_sigmoid(x):
    return np.clip(x * x.dtype.type(0.2) + x.dtype.type(0.5), 0, 1)


def _hard_sigmoid_scalar(b, x):
    y = b.add(b.mul(x, _const(b, 0.2, x)), _const(b, 0.5, x))
    return b.minimum(b.maximum(y, _const(b, 0, x)), _const(b, 1, x))


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0)))


def _elu_scalar(b, x, alpha=1.0):
    zero = _const(b, 0, x)
    below = b.mul(_const(b, alpha, x), b.math("expm1", b.minimum(x, zero)))
    return b.select(b.compare("gt", x, zero), x, below)


def _softplus(x):
    return np.logaddexp(np.zeros((), x.dtype), x)


def _softsign(x):
    return x / (1 + np.abs(x))


def _softsign_scalar(b, x):
    return b.div(x, b.add(_const(b, 1, x), b.abs(x)))


def _clip(x, low, high):
    return np.clip(x, low, np.maximum(low, high))


def _clip_scalar(b, x, low, high):
    return b.minimum(b.maximum(x, low), b.maximum(low, high))


def _round(x):
    return np.round(x) if x.dtype.kind == "f" else x.copy()


def _round_scalar(b, x):
    return b.round_half_even(x) if b.dtype_of(x).startswith("float") else x


def _power(x, y):
    """NumPy's power; for ints, a negative exponent gives trunc(x ** y) (1 and -1 are their
    own inverses, everything else is 0) instead of NumPy's ValueError."""
    if x.dtype.kind == "f":
        return np.power(x, y)
    negative = y < 0
    result = np.power(x, np.where(negative, 0, y).astype(y.dtype))
    if np.any(negative):
        odd = (y % 2) != 0
        inverse = np.where(x == 1, 1, np.where(x == -1, np.where(odd, -1, 1), 0))
        result = np.where(negative, inverse.astype(x.dtype), result)
    return result


def _power_scalar(b, x, y):
    if b.dtype_of(x).startswith("float"):
        return b.math("pow", x, y)
    one, two, zero = (_const(b, v, x) for v in (1, 2, 0))
    result, base, exponent = one, x, b.select(b.compare("lt", y, zero), zero, y)
    for _ in range(8 * np.dtype(b.dtype_of(x)).itemsize):  # square and multiply, every bit
        bit = b.compare("ne", b.mod(exponent, two), zero)
        result = b.select(bit, b.mul(result, base), result)
        base, exponent = b.mul(base, base), b.floordiv(exponent, two)
    if np.iinfo(b.dtype_of(x)).min < 0:
        odd = b.compare("ne", b.mod(y, two), zero)
        minus_one = b.select(odd, b.neg(one), one)
        inverse = b.select(b.compare("eq", x, b.neg(one)), minus_one, zero)
    else:
        inverse = zero
    inverse = b.select(b.compare("eq", x, one), one, inverse)
    return b.select(b.compare("lt", y, zero), inverse, result)


def _cast(x, dtype="float32"):
    return x.astype(dtype)


def _log1p(x):
    return np.log1p(x)


def _erf(x):
    """erf through SciPy's ufunc when it is installed, else math.erf element by element."""
    try:
        from scipy.special import erf
    except ImportError:  # pragma: no cover - SciPy is installed with the test extras
        from ..scalar import NumpyScalarBuilder
        return NumpyScalarBuilder().math("erf", x)
    return erf(x)


# --- gradient rules (node, g) -> one cotangent per input --------------------------

def _where_positive(mask, g):
    return switch(mask, g, 0.0 * g)


add = define("add", np.add, 2, lambda n, g: (g, g), rule=numeric_rule, scalar=_method("add"))
sub = define("sub", np.subtract, 2, lambda n, g: (g, neg(g)), rule=numeric_rule,
             scalar=_method("sub"))
mul = define("mul", np.multiply, 2, lambda n, g: (mul(g, n.inputs[1]), mul(g, n.inputs[0])),
             rule=numeric_rule, scalar=_method("mul"))
div = define("div", np.true_divide, 2,
             lambda n, g: (div(g, n.inputs[1]),
                           neg(mul(g, div(n.outputs[0], n.inputs[1])))),
             scalar=_method("div"),
             samples=(Sample(((3, 4), (3, 4)), low=0.5, high=2.0),
                      Sample(((3, 4), (4,)), low=0.5, high=2.0)))
floordiv = define("floordiv", np.floor_divide, 2, NOT_DIFFERENTIABLE, rule=numeric_rule,
                  scalar=_method("floordiv"),
                  samples=(Sample(((3, 4), (4,)), low=0.5, high=3.0),))
mod = define("mod", np.mod, 2,
             lambda n, g: (g, neg(mul(g, floordiv(n.inputs[0], n.inputs[1])))),
             rule=numeric_rule, scalar=_method("mod"),
             samples=(Sample(((3, 4), (4,)), low=0.5, high=3.0),))
power = define("pow", _power, 2,
               lambda n, g: (mul(g, mul(n.inputs[1], power(n.inputs[0], sub(n.inputs[1], 1)))),
                             mul(g, mul(log(n.inputs[0]), n.outputs[0]))),
               rule=numeric_rule, scalar=_power_scalar,
               samples=(Sample(((3, 4), (3, 4)), low=0.5, high=2.0),
                        Sample(((3, 4), (4,)), low=0.5, high=2.0)))
maximum = define("maximum", np.maximum, 2,
                 lambda n, g: (_where_positive(greater_equal(*n.inputs), g),
                               _where_positive(less(*n.inputs), g)),
                 rule=numeric_rule, scalar=_method("maximum"))
minimum = define("minimum", np.minimum, 2,
                 lambda n, g: (_where_positive(less_equal(*n.inputs), g),
                               _where_positive(greater(*n.inputs), g)),
                 rule=numeric_rule, scalar=_method("minimum"))

neg = define("neg", np.negative, 1, lambda n, g: (neg(g),), rule=numeric_rule,
             scalar=_method("neg"))
absolute = define("abs", np.abs, 1, lambda n, g: (mul(g, sign(n.inputs[0])),),
                  rule=numeric_rule, scalar=_method("abs"))
square = define("square", np.square, 1, lambda n, g: (mul(g, mul(n.inputs[0], 2)),),
                rule=numeric_rule, scalar=lambda b, x: b.mul(x, x))
sqrt = define("sqrt", np.sqrt, 1, lambda n, g: (div(mul(g, 0.5), n.outputs[0]),),
              scalar=_method("sqrt"), low=0.5, high=3.0)
exp = define("exp", np.exp, 1, lambda n, g: (mul(g, n.outputs[0]),), scalar=_math("exp"))
expm1 = define("expm1", np.expm1, 1, lambda n, g: (mul(g, exp(n.inputs[0])),),
               scalar=_math("expm1"), doc="exp(x) - 1, accurate for small x.")
log = define("log", np.log, 1, lambda n, g: (div(g, n.inputs[0]),), scalar=_math("log"),
             low=0.5, high=3.0)
log1p = define("log1p", _log1p, 1, lambda n, g: (div(g, add(n.inputs[0], 1)),),
               scalar=_math("log1p"), low=-0.5, high=2.0, doc="log(1 + x), accurate for small x.")
erf = define("erf", _erf, 1,
             lambda n, g: (mul(g, mul(exp(neg(square(n.inputs[0]))), 2 / np.sqrt(np.pi))),),
             scalar=_math("erf"), doc="The error function.")
sin = define("sin", np.sin, 1, lambda n, g: (mul(g, cos(n.inputs[0])),), scalar=_math("sin"))
cos = define("cos", np.cos, 1, lambda n, g: (neg(mul(g, sin(n.inputs[0]))),),
             scalar=_math("cos"))
tanh = define("tanh", np.tanh, 1,
              lambda n, g: (mul(g, sub(1, square(n.outputs[0]))),), scalar=_math("tanh"))
sigmoid = define("sigmoid", _sigmoid, 1,
                 lambda n, g: (mul(g, mul(n.outputs[0], sub(1, n.outputs[0]))),),
                 scalar=_math("sigmoid"),
                 samples=(Sample(((3, 4),)), Sample(((2, 3),), low=-40.0, high=40.0)))
hard_sigmoid = define(
    "hard_sigmoid", _hard_sigmoid, 1,
    lambda n, g: (_where_positive(less(absolute(n.inputs[0]), 2.5), mul(g, 0.2)),),
    scalar=_hard_sigmoid_scalar, doc="clip(0.2 x + 0.5, 0, 1), as Keras defines it.")
relu = define("relu", relu_kernel, 1, lambda n, g: (relu_grad(g, n.inputs[0], **n.attrs),),
              rule=relu_rule, scalar=relu_scalar, attrs=RELU_ATTRS, samples=RELU_SAMPLES,
              doc="Keras 2.3.1's relu as its TensorFlow backend computes it.")
relu_grad = define(
    "relu_grad", relu_grad_kernel, 2,
    lambda n, g: (relu_grad(g, n.inputs[1], **n.attrs), None),
    rule=relu_rule, scalar=relu_grad_scalar, attrs=RELU_ATTRS,
    samples=tuple(Sample(((3, 4), (3, 4)), s.attrs, differentiable_inputs=(0,))
                  for s in RELU_SAMPLES),
    doc="The gradient of relu: g * relu'(x); linear in g, so its own gradient is itself.")
elu = define("elu", _elu, 1,
             lambda n, g: (switch(greater(n.inputs[0], 0), g,
                                  mul(g, add(n.outputs[0], n.attrs["alpha"]))),),
             scalar=_elu_scalar, attrs={"alpha": 1.0})
softplus = define("softplus", _softplus, 1, lambda n, g: (mul(g, sigmoid(n.inputs[0])),),
                  scalar=_math("softplus"))
softsign = define("softsign", _softsign, 1,
                  lambda n, g: (div(g, square(add(absolute(n.inputs[0]), 1))),),
                  scalar=_softsign_scalar)
sign = define("sign", np.sign, 1, NOT_DIFFERENTIABLE, rule=numeric_rule, scalar=_method("sign"))
round_ = define("round", _round, 1, NOT_DIFFERENTIABLE, rule=numeric_rule, scalar=_round_scalar,
                doc="Round half to even, as NumPy and TensorFlow do; ints stay as they are.")
clip = define(
    "clip", _clip, 3,
    lambda n, g: (_where_positive(logical_and(greater_equal(n.inputs[0], n.inputs[1]),
                                              less_equal(n.inputs[0], n.inputs[2])), g),
                  None, None),
    rule=numeric_rule, scalar=_clip_scalar,
    samples=(Sample(((3, 4), (), ()), make=lambda rng: [
        rng.uniform(-2, 2, (3, 4)), np.asarray(-1.0), np.asarray(1.0)],
        differentiable_inputs=(0,)),),
    doc="clip(x, low, high); if high < low, high is taken as low (Keras' rule).")


def _comparison(name, ufunc, pred):
    return define(name, ufunc, 2, NOT_DIFFERENTIABLE, rule=comparison_rule,
                  scalar=lambda b, x, y: b.compare(pred, x, y),
                  samples=(Sample(((3, 4), (4,))),))


equal = _comparison("equal", np.equal, "eq")
not_equal = _comparison("not_equal", np.not_equal, "ne")
greater = _comparison("greater", np.greater, "gt")
greater_equal = _comparison("greater_equal", np.greater_equal, "ge")
less = _comparison("less", np.less, "lt")
less_equal = _comparison("less_equal", np.less_equal, "le")

_logic_sample = (Sample(((3, 4), (4,)), dtypes=("bool", "bool")),)
logical_and = define("logical_and", np.logical_and, 2, NOT_DIFFERENTIABLE, rule=logical_rule,
                     scalar=_method("logical_and"), samples=_logic_sample)
logical_or = define("logical_or", np.logical_or, 2, NOT_DIFFERENTIABLE, rule=logical_rule,
                    scalar=_method("logical_or"), samples=_logic_sample)
logical_not = define("logical_not", np.logical_not, 1, NOT_DIFFERENTIABLE, rule=logical_rule,
                     scalar=_method("logical_not"),
                     samples=(Sample(((3, 4),), dtypes=("bool",)),))

switch = define(
    "switch", _select, 3,
    lambda n, g: (None, switch(n.inputs[0], g, mul(g, 0.0)), switch(n.inputs[0], mul(g, 0.0), g)),
    rule=switch_rule, scalar=_method("select"),
    samples=(Sample(((3, 4), (3, 4), (3, 4)), dtypes=("bool", "float64", "float64"),
                    differentiable_inputs=(1, 2)),
             Sample(((3, 1), (3, 4), (4,)), dtypes=("bool", "float64", "float64"),
                    differentiable_inputs=(1, 2))),
    doc="Elementwise select: where(condition, then, otherwise).")

cast = define(
    "cast", _cast, 1,
    lambda n, g: (cast(g, dtype=n.inputs[0].type.dtype)
                  if is_floating(n.inputs[0].type.dtype) else None,),
    rule=cast_rule, scalar=lambda b, x, dtype: b.cast(x, dtype),
    attrs={"dtype": "float32"},
    samples=(Sample(((3, 4),), {"dtype": "float64"}), Sample(((3, 4),), {"dtype": "int32"})))

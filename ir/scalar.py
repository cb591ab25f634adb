"""The scalar builder: the typed scalar language elementwise ops are written in.

An elementwise op's scalar rule (`OpDef.scalar(b, *args, **attrs)`) computes
one output element from one element of each input, calling only the methods
of a `ScalarBuilder` `b`. Two builders implement it: `NumpyScalarBuilder`
below (values are NumPy arrays, so one call computes every element at once;
it is the test oracle) and the LLVM one in codegen/llvm/, which emits IR.

Typing, shared by every implementation:
- A value has one dtype (`b.dtype_of(v)`), a graphk dtype name. Binary and
  ternary methods take operands of one dtype and never promote: rules cast
  explicitly, so each builder only implements same-dtype operations.
- float16 is a storage dtype: it may be cast, bitcast and selected, but
  arithmetic, comparisons and math on it raise DTypeError. Rules compute
  float16 inputs in float32 and cast the result back (rounding on store).
- bool takes part only in select, compare, logical_* and casts.
- A method given a dtype it does not define raises DTypeError (see `_check`).
Semantics are NumPy's (2.x, x86-64), element by element, stated per method.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from .dtypes import DTYPES, INT_DTYPES, DTypeError

COMPUTE_FLOATS = ("float32", "float64")
NUMERIC = COMPUTE_FLOATS + INT_DTYPES
PREDICATES = ("eq", "ne", "lt", "le", "gt", "ge")
MATH_FUNCTIONS = {  # name -> arity
    "exp": 1, "expm1": 1, "log": 1, "log1p": 1, "tanh": 1, "sigmoid": 1, "softplus": 1,
    "pow": 2, "sin": 1, "cos": 1, "erf": 1,
}


class ScalarBuilder(ABC):
    """The interface scalar rules are written against (see the module docstring)."""

    # --- values -----------------------------------------------------------------
    @abstractmethod
    def dtype_of(self, v) -> str:
        """The graphk dtype name of value `v`."""

    @abstractmethod
    def const(self, value, dtype: str):
        """A constant of `dtype` from a Python number, as `np.asarray(value, dtype)` gives:
        floats round to nearest even (overflow to +-inf), bool is `value != 0`; for an int
        dtype the value must be integral (2 or 2.0) and in range: no wraparound, no rounding."""

    # --- arithmetic (float32, float64, ints) -------------------------------------------
    @abstractmethod
    def add(self, a, b):
        """a + b. Ints wrap around (two's complement); floats are IEEE (-0 + -0 = -0)."""

    @abstractmethod
    def sub(self, a, b):
        """a - b, wrapping for ints."""

    @abstractmethod
    def mul(self, a, b):
        """a * b, wrapping for ints (the low bits of the product)."""

    @abstractmethod
    def div(self, a, b):
        """True division, floats only: IEEE a / b (x/0 = +-inf by the signs, 0/0 = nan)."""

    @abstractmethod
    def fma(self, a, b, c):
        """a * b + c. Floats: rounded once where the target fuses (LLVM's fmuladd), else
        twice; rules must not depend on which (results agree within 1 ulp). Ints wrap."""

    @abstractmethod
    def neg(self, a):
        """-a. Floats flip the sign bit (-0.0 from 0.0, NaN stays NaN); ints wrap (-MIN = MIN)."""

    @abstractmethod
    def abs(self, a):
        """|a|. Floats clear the sign bit; ints wrap (abs(MIN) = MIN)."""

    @abstractmethod
    def floordiv(self, a, b):
        """NumPy's floor_divide.
        Ints: floor(a / b); b == 0 gives 0; MIN // -1 gives MIN (wraps).
        Floats (npy_divmod): if b == 0: a / b (+-inf, or nan for 0 or nan a). Else
        m = fmod(a, b); d = (a - m) / b; if m != 0 and (b < 0) != (m < 0): d -= 1;
        if d != 0: f = floor(d), plus 1 if d - f > 0.5; else f = copysign(0, a / b).
        So -5 // inf = -1, inf // 2 = nan, 5 // -0.0 = -inf."""

    @abstractmethod
    def mod(self, a, b):
        """NumPy's remainder (the sign of b).
        Ints: a - floor(a / b) * b; b == 0 gives 0; MIN % -1 gives 0.
        Floats: m = fmod(a, b); if b == 0: m (nan). If m != 0 and (b < 0) != (m < 0): m += b.
        If m == 0: copysign(0, b). So -5 % inf = inf, inf % 2 = nan, -0.0 % 3 = 0.0."""

    @abstractmethod
    def maximum(self, a, b):
        """NumPy's maximum: NaN-propagating; `a if (a > b or a is nan) else b`, so a tie
        (0.0 and -0.0) gives b: maximum(-0.0, 0.0) = 0.0, maximum(0.0, -0.0) = -0.0."""

    @abstractmethod
    def minimum(self, a, b):
        """NumPy's minimum: `a if (a < b or a is nan) else b` (NaN-propagating, ties give b)."""

    # --- selection and predicates -------------------------------------------------------
    @abstractmethod
    def select(self, cond, a, b):
        """cond ? a : b, elementwise; cond is bool, a and b of one dtype (any dtype)."""

    @abstractmethod
    def compare(self, pred: str, a, b):
        """a <pred> b as bool, pred in PREDICATES. Floats are IEEE ordered comparisons: any
        comparison with NaN is False except "ne", which is True; -0.0 == 0.0. bools compare
        as unsigned integers (False < True)."""

    @abstractmethod
    def logical_and(self, a, b):
        """a and b, bool operands only."""

    @abstractmethod
    def logical_or(self, a, b):
        """a or b, bool operands only."""

    @abstractmethod
    def logical_not(self, a):
        """not a, bool operand only."""

    # --- conversions --------------------------------------------------------------
    @abstractmethod
    def cast(self, v, dtype: str):
        """NumPy's astype on x86-64, any dtype to any dtype:
        - float -> wider or narrower float: round to nearest even, overflow to +-inf.
        - int/bool -> float: round to nearest even; above float16's range (65504 and a
          half ulp) an int becomes +-inf.
        - int -> int: two's complement wraparound (keep the low bits / sign-extend).
        - anything -> bool: v != 0 (NaN -> True, -0.0 -> False); bool -> number: 0 or 1.
        - float -> int64: truncate toward zero; NaN, +-inf and values outside
          [-2**63, 2**63) give -2**63 (cvttsd2si's "integer indefinite").
        - float -> int32: the same with -2**31 for NaN, +-inf and values outside
          [-2**31, 2**31).
        - float -> int8, int16, uint8: first float -> int32 as above, then the int32 wraps
          to the narrow type: 300.7 -> int8 44, -44.5 -> uint8 212, NaN -> 0,
          65536.0 -> int16 0, 1e20 -> 0 (the low bits of -2**31).
        (Measured on NumPy 2.4, x86-64, for small and large arrays; tests/test_scalar.py.)"""

    @abstractmethod
    def bitcast(self, v, dtype: str):
        """Reinterpret the bits of v as `dtype`, which has the same size (ndarray.view)."""

    # --- rounding and float bit games (float32, float64) ----------------------------------
    @abstractmethod
    def floor(self, a):
        """Largest integral value <= a (floats; -0.0, +-inf and nan map to themselves)."""

    @abstractmethod
    def ceil(self, a):
        """Smallest integral value >= a (ceil(-0.5) = -0.0)."""

    @abstractmethod
    def trunc(self, a):
        """a rounded toward zero (trunc(-0.5) = -0.0)."""

    @abstractmethod
    def round_half_even(self, a):
        """Nearest integral value, ties to even (NumPy's rint / round): 2.5 -> 2.0,
        -0.5 -> -0.0."""

    @abstractmethod
    def sqrt(self, a):
        """Correctly rounded IEEE square root; sqrt(-0.0) = -0.0, sqrt(x < 0) = nan."""

    @abstractmethod
    def sign(self, a):
        """NumPy's sign: -1, 0 or 1 in a's dtype; sign(+-0.0) = +0.0, sign(nan) = nan.
        Ints too (sign(MIN) = -1)."""

    @abstractmethod
    def copysign(self, a, b):
        """|a| with the sign bit of b (floats)."""

    @abstractmethod
    def math(self, name: str, *args):
        """A function of the math library (codegen/llvm/mathlib.py) on float32 or float64:
        exp expm1 log log1p tanh sin cos erf pow(x, y) with NumPy's (C99's) special values,
        sigmoid(x) = 1 / (1 + exp(-x)) and softplus(x) = log(1 + exp(x)) accurate over the
        whole range: sigmoid(-800) = 0 (not a denormal lost to 1 + exp(800) overflowing
        early), softplus(-inf) = 0, softplus(inf) = inf, both nan for nan. The NumPy
        oracle computes both in a wider type and rounds once. The LLVM versions are within 4 ulp."""


def common_dtype(op: str, allowed: tuple, names) -> str:
    """The one dtype among `names` (dtype names of a scalar op's operands), which must be
    in `allowed`; both builders check operands with it."""
    dtypes = set(names)
    if len(dtypes) != 1:
        raise DTypeError(f"scalar {op}: operands must have one dtype, got {sorted(dtypes)}; "
                         "the scalar rule must cast first")
    (dtype,) = dtypes
    if dtype not in allowed:
        raise DTypeError(f"scalar {op}: expected one of {', '.join(allowed)}, got {dtype}")
    return dtype


def checked_const(value, dtype: str):
    """`value` as a constant of `dtype` may hold it (an int for the int dtypes), or a
    DTypeError: both builders' `const` start here."""
    if dtype not in DTYPES:
        raise DTypeError(f"scalar const: unknown dtype {dtype!r}")
    if dtype in INT_DTYPES:
        info = np.iinfo(dtype)
        integral = isinstance(value, (int, np.integer)) or float(value).is_integer()
        if not (integral and info.min <= value <= info.max):
            raise DTypeError(f"scalar const: {value!r} is not an integer in {dtype}'s range")
        return int(value)
    return value


def _check(op: str, allowed: tuple, *values) -> str:
    """The common dtype of NumPy `values`, which must be one dtype from `allowed`."""
    return common_dtype(op, allowed, (v.dtype.name for v in values))


def _wider(dtype):
    """The float type the oracle computes a float32/float64 function in: float64 for
    float32, NumPy's long double (80-bit on x86-64) for float64."""
    return np.float64 if dtype == np.float32 else np.longdouble


def _stable_sigmoid(x):
    """1 / (1 + exp(-x)) without overflow, in a wider type, then rounded once:
    e = exp(-|x|) <= 1, then 1 / (1 + e) for x >= 0 and e / (1 + e) below."""
    w = x.astype(_wider(x.dtype))
    e = np.exp(-np.abs(w))
    return np.where(w >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def _softplus(x):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), in a wider type, rounded once."""
    w = x.astype(_wider(x.dtype))
    return np.logaddexp(np.zeros((), w.dtype), w).astype(x.dtype)


def _erf(x):
    """erf through math.erf (float64, correctly rounded to within an ulp), then rounded."""
    flat = np.fromiter((math.erf(v) for v in x.astype(np.float64).ravel()), np.float64, x.size)
    return flat.reshape(x.shape).astype(x.dtype)


_MATH = {
    "exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "tanh": np.tanh,
    "sin": np.sin, "cos": np.cos, "pow": np.power, "erf": _erf, "sigmoid": _stable_sigmoid,
    "softplus": _softplus,
}


class NumpyScalarBuilder(ScalarBuilder):
    """The scalar builder on NumPy arrays: every value is an array of its dtype.

    Warnings NumPy raises for the defined special cases (overflow, division
    by zero, invalid casts) are silenced: the results are the documented ones.
    """

    def dtype_of(self, v) -> str:
        return v.dtype.name

    def const(self, value, dtype: str):
        return np.asarray(checked_const(value, dtype), dtype=dtype)

    def _binary(self, name, ufunc, allowed, a, b):
        _check(name, allowed, a, b)
        with np.errstate(all="ignore"):
            return np.asarray(ufunc(a, b))

    def add(self, a, b):
        return self._binary("add", np.add, NUMERIC, a, b)

    def sub(self, a, b):
        return self._binary("sub", np.subtract, NUMERIC, a, b)

    def mul(self, a, b):
        return self._binary("mul", np.multiply, NUMERIC, a, b)

    def div(self, a, b):
        return self._binary("div", np.true_divide, COMPUTE_FLOATS, a, b)

    def fma(self, a, b, c):
        dtype = _check("fma", NUMERIC, a, b, c)
        with np.errstate(all="ignore"):
            if dtype == "float32":  # the float64 product is exact: one rounding but for ties
                wide = a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)
                return np.asarray(wide.astype(np.float32))
            return np.asarray(a * b + c)

    def neg(self, a):
        _check("neg", NUMERIC, a)
        with np.errstate(all="ignore"):
            return np.asarray(np.negative(a))

    def abs(self, a):
        _check("abs", NUMERIC, a)
        with np.errstate(all="ignore"):
            return np.asarray(np.abs(a))

    def floordiv(self, a, b):
        return self._binary("floordiv", np.floor_divide, NUMERIC, a, b)

    def mod(self, a, b):
        return self._binary("mod", np.remainder, NUMERIC, a, b)

    def maximum(self, a, b):
        return self._binary("maximum", np.maximum, NUMERIC, a, b)

    def minimum(self, a, b):
        return self._binary("minimum", np.minimum, NUMERIC, a, b)

    def select(self, cond, a, b):
        _check("select condition", ("bool",), cond)
        _check("select", DTYPES, a, b)
        return np.asarray(np.where(cond, a, b))

    def compare(self, pred: str, a, b):
        if pred not in PREDICATES:
            raise ValueError(f"scalar compare: predicate {pred!r} is not one of {PREDICATES}")
        _check(f"compare {pred}", NUMERIC + ("bool",), a, b)
        ufunc = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
                 "gt": np.greater, "ge": np.greater_equal}[pred]
        with np.errstate(all="ignore"):
            return np.asarray(ufunc(a, b))

    def logical_and(self, a, b):
        return self._binary("logical_and", np.logical_and, ("bool",), a, b)

    def logical_or(self, a, b):
        return self._binary("logical_or", np.logical_or, ("bool",), a, b)

    def logical_not(self, a):
        _check("logical_not", ("bool",), a)
        return np.asarray(np.logical_not(a))

    def cast(self, v, dtype: str):
        _check("cast", DTYPES, v)
        if dtype not in DTYPES:
            raise DTypeError(f"scalar cast: unknown dtype {dtype!r}")
        with np.errstate(all="ignore"):
            return np.asarray(v.astype(dtype))

    def bitcast(self, v, dtype: str):
        _check("bitcast", DTYPES, v)
        if np.dtype(dtype).itemsize != v.dtype.itemsize:
            raise DTypeError(f"scalar bitcast: {v.dtype.name} and {dtype} differ in size")
        return np.asarray(v).view(dtype)

    def _float_unary(self, name, ufunc, a):
        _check(name, COMPUTE_FLOATS, a)
        with np.errstate(all="ignore"):
            return np.asarray(ufunc(a))

    def floor(self, a):
        return self._float_unary("floor", np.floor, a)

    def ceil(self, a):
        return self._float_unary("ceil", np.ceil, a)

    def trunc(self, a):
        return self._float_unary("trunc", np.trunc, a)

    def round_half_even(self, a):
        return self._float_unary("round_half_even", np.rint, a)

    def sqrt(self, a):
        return self._float_unary("sqrt", np.sqrt, a)

    def sign(self, a):
        _check("sign", NUMERIC, a)
        result = np.sign(a)
        if a.dtype.kind == "f":  # NumPy's sign(-0.0) is +0.0 in its loops: keep it so
            result = np.where(result == 0, np.zeros((), a.dtype), result)
        return np.asarray(result)

    def copysign(self, a, b):
        return self._binary("copysign", np.copysign, COMPUTE_FLOATS, a, b)

    def math(self, name: str, *args):
        if MATH_FUNCTIONS.get(name) != len(args):
            raise ValueError(f"scalar math: unknown function {name!r} with {len(args)} "
                             f"argument(s); known: {MATH_FUNCTIONS}")
        _check(f"math {name}", COMPUTE_FLOATS, *args)
        with np.errstate(all="ignore"):
            return np.asarray(_MATH[name](*args))


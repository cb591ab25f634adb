"""The LLVM implementation of the scalar builder (ir/scalar.py).

Scalar rules (`OpDef.scalar`) call these methods while a kernel's loop body
is being emitted; each call appends LLVM instructions for one element, and
the loop vectorizer turns the loop into SIMD code. Semantics are exactly the
interface's (NumPy's on x86-64); the docstrings there are the contract, the
comments here say how each is reached without undefined behaviour in LLVM
(division by zero, INT_MIN / -1 and out-of-range float->int are poison or
traps in LLVM, so operands are made safe first and the result selected).

Register types: float16 is `half` (a storage dtype: cast, bitcast, select
only), float32 `float`, float64 `double`, ints their width (uint8 `i8`,
treated as unsigned), bool `i1`.
"""
from __future__ import annotations

import llvmlite.ir as ir
import numpy as np

from ...ir.dtypes import DTYPES, INT_DTYPES, DTypeError
from ...ir.scalar import (COMPUTE_FLOATS, MATH_FUNCTIONS, NUMERIC, PREDICATES, ScalarBuilder,
                          checked_const, common_dtype)

_REGISTER = {"float16": ir.HalfType(), "float32": ir.FloatType(), "float64": ir.DoubleType(),
             "int8": ir.IntType(8), "int16": ir.IntType(16), "int32": ir.IntType(32),
             "int64": ir.IntType(64), "uint8": ir.IntType(8), "bool": ir.IntType(1)}
_FLOATS = ("float16", "float32", "float64")
_SIGNED = ("int8", "int16", "int32", "int64")
_BITS = {"float16": 16, "float32": 32, "float64": 64, "int8": 8, "int16": 16, "int32": 32,
         "int64": 64, "uint8": 8, "bool": 8}
_ORDERED = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def register_type(dtype: str) -> ir.Type:
    """The LLVM type a value of `dtype` has while being computed."""
    return _REGISTER[dtype]


class Scalar:
    """One builder value: an LLVM value and its graphk dtype."""

    __slots__ = ("value", "dtype")

    def __init__(self, value: ir.Value, dtype: str):
        self.value = value
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"<Scalar {self.dtype}>"


def _check(op: str, allowed: tuple, *values: Scalar) -> str:
    return common_dtype(op, allowed, (v.dtype for v in values))


class LLVMScalarBuilder(ScalarBuilder):
    """Emits one element's computation into `builder` (an llvmlite IRBuilder)."""

    def __init__(self, builder: ir.IRBuilder, module: ir.Module):
        self.b = builder
        self.module = module

    # --- helpers -----------------------------------------------------------------
    def _intrinsic(self, name: str, dtype: str, *args: ir.Value) -> ir.Value:
        """Call llvm.<name> overloaded on the type of the first argument."""
        ty = _REGISTER[dtype]
        fnty = ir.FunctionType(ty, [ty] * len(args))
        fn = self.module.declare_intrinsic(f"llvm.{name}", [ty], fnty)
        return self.b.call(fn, list(args))

    def _const(self, number, dtype: str) -> ir.Value:
        return self.const(number, dtype).value

    def _int_const(self, number: int, dtype: str) -> ir.Value:
        return ir.Constant(_REGISTER[dtype], number)

    # --- values -----------------------------------------------------------------
    def dtype_of(self, v: Scalar) -> str:
        return v.dtype

    def const(self, value, dtype: str) -> Scalar:
        value = checked_const(value, dtype)
        if dtype in INT_DTYPES:
            return Scalar(ir.Constant(_REGISTER[dtype], value & ((1 << _BITS[dtype]) - 1)),
                          dtype)
        if dtype == "bool":
            return Scalar(ir.Constant(_REGISTER[dtype], int(value != 0)), dtype)
        with np.errstate(all="ignore"):  # overflow to inf is the documented rounding
            rounded = float(np.asarray(value, dtype=dtype))
        return Scalar(ir.Constant(_REGISTER[dtype], rounded), dtype)

    # --- arithmetic -----------------------------------------------------------------
    def _arith(self, name, float_op, int_op, a, b) -> Scalar:
        dtype = _check(name, NUMERIC, a, b)
        op = float_op if dtype in COMPUTE_FLOATS else int_op
        return Scalar(op(a.value, b.value), dtype)

    def add(self, a, b):
        return self._arith("add", self.b.fadd, self.b.add, a, b)

    def sub(self, a, b):
        return self._arith("sub", self.b.fsub, self.b.sub, a, b)

    def mul(self, a, b):
        return self._arith("mul", self.b.fmul, self.b.mul, a, b)

    def div(self, a, b):
        dtype = _check("div", COMPUTE_FLOATS, a, b)
        return Scalar(self.b.fdiv(a.value, b.value), dtype)

    def fma(self, a, b, c):
        dtype = _check("fma", NUMERIC, a, b, c)
        if dtype in COMPUTE_FLOATS:  # fuses where the target has FMA, as the contract allows
            return Scalar(self._intrinsic("fmuladd", dtype, a.value, b.value, c.value), dtype)
        return Scalar(self.b.add(self.b.mul(a.value, b.value), c.value), dtype)

    def neg(self, a):
        dtype = _check("neg", NUMERIC, a)
        if dtype in COMPUTE_FLOATS:
            return Scalar(self.b.fneg(a.value), dtype)
        return Scalar(self.b.sub(self._int_const(0, dtype), a.value), dtype)

    def abs(self, a):
        dtype = _check("abs", NUMERIC, a)
        if dtype in COMPUTE_FLOATS:
            return Scalar(self._intrinsic("fabs", dtype, a.value), dtype)
        if dtype == "uint8":
            return a
        negative = self.b.icmp_signed("<", a.value, self._int_const(0, dtype))
        negated = self.b.sub(self._int_const(0, dtype), a.value)  # wraps: abs(MIN) = MIN
        return Scalar(self.b.select(negative, negated, a.value), dtype)

    # --- floor division and remainder ------------------------------------------------
    def _safe_divisor(self, a, b, dtype):
        """(divisor never 0 nor -1 against MIN, zero-divisor flag, MIN/-1 flag)."""
        zero = self.b.icmp_signed("==", b.value, self._int_const(0, dtype))
        if dtype not in _SIGNED:
            return self.b.select(zero, self._int_const(1, dtype), b.value), zero, None
        minimum = int(np.iinfo(dtype).min)
        overflow = self.b.and_(self.b.icmp_signed("==", a.value, self._int_const(minimum, dtype)),
                               self.b.icmp_signed("==", b.value, self._int_const(-1, dtype)))
        unsafe = self.b.or_(zero, overflow)
        return self.b.select(unsafe, self._int_const(1, dtype), b.value), zero, overflow

    def _int_divmod(self, a, b, dtype):
        """Floor quotient and remainder of ints, NumPy's results for b == 0 and MIN / -1."""
        zero_value = self._int_const(0, dtype)
        divisor, by_zero, overflow = self._safe_divisor(a, b, dtype)
        if dtype not in _SIGNED:
            quotient = self.b.udiv(a.value, divisor)
            remainder = self.b.urem(a.value, divisor)
        else:
            quotient = self.b.sdiv(a.value, divisor)  # truncates toward zero
            remainder = self.b.srem(a.value, divisor)
            # floor: step down when the remainder is nonzero and its sign differs from b's
            differ = self.b.icmp_signed("!=", self.b.icmp_signed("<", remainder, zero_value),
                                        self.b.icmp_signed("<", b.value, zero_value))
            adjust = self.b.and_(self.b.icmp_signed("!=", remainder, zero_value), differ)
            quotient = self.b.select(adjust, self.b.sub(quotient, self._int_const(1, dtype)),
                                     quotient)
            remainder = self.b.select(adjust, self.b.add(remainder, b.value), remainder)
            quotient = self.b.select(overflow, a.value, quotient)  # MIN // -1 = MIN (wraps)
            remainder = self.b.select(overflow, zero_value, remainder)
        return (self.b.select(by_zero, zero_value, quotient),
                self.b.select(by_zero, zero_value, remainder))

    def _float_divmod(self, a, b, dtype):
        """npy_divmod, step by step (see ScalarBuilder.floordiv and .mod)."""
        bb = self.b
        zero = self._const(0.0, dtype)
        fmod = bb.frem(a.value, b.value)  # C fmod: LLVM's frem
        b_zero = bb.fcmp_ordered("==", b.value, zero)
        shifted = bb.fdiv(bb.fsub(a.value, fmod), b.value)
        mod_nonzero = bb.fcmp_unordered("!=", fmod, zero)  # NaN counts as nonzero, as in C
        signs_differ = bb.xor(bb.fcmp_ordered("<", b.value, zero),
                              bb.fcmp_ordered("<", fmod, zero))
        adjust = bb.and_(mod_nonzero, signs_differ)
        mod = bb.select(adjust, bb.fadd(fmod, b.value), fmod)
        mod = bb.select(mod_nonzero, mod, self._intrinsic("copysign", dtype, zero, b.value))
        div = bb.select(adjust, bb.fsub(shifted, self._const(1.0, dtype)), shifted)
        floored = self._intrinsic("floor", dtype, div)
        round_up = bb.fcmp_ordered(">", bb.fsub(div, floored), self._const(0.5, dtype))
        floored = bb.select(round_up, bb.fadd(floored, self._const(1.0, dtype)), floored)
        div_nonzero = bb.fcmp_unordered("!=", div, zero)
        quotient_sign = self._intrinsic("copysign", dtype, zero, bb.fdiv(a.value, b.value))
        quotient = bb.select(div_nonzero, floored, quotient_sign)
        quotient = bb.select(b_zero, bb.fdiv(a.value, b.value), quotient)
        mod = bb.select(b_zero, fmod, mod)
        return quotient, mod

    def floordiv(self, a, b):
        dtype = _check("floordiv", NUMERIC, a, b)
        if dtype in COMPUTE_FLOATS:
            return Scalar(self._float_divmod(a, b, dtype)[0], dtype)
        return Scalar(self._int_divmod(a, b, dtype)[0], dtype)

    def mod(self, a, b):
        dtype = _check("mod", NUMERIC, a, b)
        if dtype in COMPUTE_FLOATS:
            return Scalar(self._float_divmod(a, b, dtype)[1], dtype)
        return Scalar(self._int_divmod(a, b, dtype)[1], dtype)

    # --- maximum and minimum ----------------------------------------------------------
    def _extreme(self, name, pred, a, b):
        dtype = _check(name, NUMERIC, a, b)
        if dtype in COMPUTE_FLOATS:  # a if (a pred b or a is nan) else b
            wins = self.b.or_(self.b.fcmp_ordered(pred, a.value, b.value),
                              self.b.fcmp_unordered("uno", a.value, a.value))
        elif dtype in _SIGNED:
            wins = self.b.icmp_signed(pred, a.value, b.value)
        else:
            wins = self.b.icmp_unsigned(pred, a.value, b.value)
        return Scalar(self.b.select(wins, a.value, b.value), dtype)

    def maximum(self, a, b):
        return self._extreme("maximum", ">", a, b)

    def minimum(self, a, b):
        return self._extreme("minimum", "<", a, b)

    # --- selection and predicates -----------------------------------------------------
    def select(self, cond, a, b):
        _check("select condition", ("bool",), cond)
        dtype = _check("select", DTYPES, a, b)
        return Scalar(self.b.select(cond.value, a.value, b.value), dtype)

    def compare(self, pred: str, a, b):
        if pred not in PREDICATES:
            raise ValueError(f"scalar compare: predicate {pred!r} is not one of {PREDICATES}")
        dtype = _check(f"compare {pred}", NUMERIC + ("bool",), a, b)  # False < True
        op = _ORDERED[pred]
        if dtype in COMPUTE_FLOATS:
            # IEEE: everything with NaN is false but "ne", which is unordered-or-unequal
            compare = self.b.fcmp_unordered if pred == "ne" else self.b.fcmp_ordered
            return Scalar(compare(op, a.value, b.value), "bool")
        compare = self.b.icmp_signed if dtype in _SIGNED else self.b.icmp_unsigned
        return Scalar(compare(op, a.value, b.value), "bool")

    def logical_and(self, a, b):
        _check("logical_and", ("bool",), a, b)
        return Scalar(self.b.and_(a.value, b.value), "bool")

    def logical_or(self, a, b):
        _check("logical_or", ("bool",), a, b)
        return Scalar(self.b.or_(a.value, b.value), "bool")

    def logical_not(self, a):
        _check("logical_not", ("bool",), a)
        return Scalar(self.b.not_(a.value), "bool")

    # --- conversions ------------------------------------------------------------------
    def cast(self, v, dtype: str):
        source = _check("cast", DTYPES, v)
        if dtype not in DTYPES:
            raise DTypeError(f"scalar cast: unknown dtype {dtype!r}")
        if source == dtype:
            return v
        if dtype == "bool":
            return Scalar(self._truth(v), "bool")
        if source in _FLOATS and dtype in _FLOATS:
            grow = _BITS[dtype] > _BITS[source]
            op = self.b.fpext if grow else self.b.fptrunc
            return Scalar(op(v.value, _REGISTER[dtype]), dtype)
        if dtype in _FLOATS:
            return Scalar(self._int_to_float(v, dtype), dtype)
        if source in _FLOATS:
            return Scalar(self._float_to_int(v, dtype), dtype)
        return Scalar(self._int_to_int(v.value, source, dtype), dtype)

    def _truth(self, v: Scalar) -> ir.Value:
        if v.dtype in _FLOATS:  # NaN is true, -0.0 false
            return self.b.fcmp_unordered("!=", v.value, ir.Constant(v.value.type, 0.0))
        return self.b.icmp_unsigned("!=", v.value, ir.Constant(v.value.type, 0))

    def _int_to_int(self, value, source: str, dtype: str) -> ir.Value:
        target = _REGISTER[dtype]
        have, want = value.type.width, target.width
        if have > want:
            return self.b.trunc(value, target)
        if have == want:
            return value
        if source in _SIGNED:
            return self.b.sext(value, target)
        return self.b.zext(value, target)  # uint8 and bool (0 or 1)

    def _int_to_float(self, v: Scalar, dtype: str) -> ir.Value:
        # Through float32 for float16: exact below 2**24, and every int that large is
        # beyond float16's range anyway; it also avoids int64->half runtime library calls.
        via = "float32" if dtype == "float16" else dtype
        convert = self.b.sitofp if v.dtype in _SIGNED else self.b.uitofp
        result = convert(v.value, _REGISTER[via])
        return self.b.fptrunc(result, _REGISTER[dtype]) if via != dtype else result

    def _float_to_int(self, v: Scalar, dtype: str) -> ir.Value:
        """cvtts*2si: truncate, with the "integer indefinite" MIN for NaN and out of range;
        narrow ints go through int32 and wrap."""
        value = v.value
        if v.dtype == "float16":  # exact in float32
            value = self.b.fpext(value, _REGISTER["float32"])
        wide = "int64" if dtype == "int64" else "int32"
        bits = _BITS[wide]
        limit = ir.Constant(value.type, float(2 ** (bits - 1)))
        in_range = self.b.and_(self.b.fcmp_ordered(">=", value, self.b.fneg(limit)),
                               self.b.fcmp_ordered("<", value, limit))  # false for NaN
        safe = self.b.select(in_range, value, ir.Constant(value.type, 0.0))
        converted = self.b.fptosi(safe, _REGISTER[wide])
        indefinite = ir.Constant(_REGISTER[wide], -(2 ** (bits - 1)))
        result = self.b.select(in_range, converted, indefinite)
        return self._int_to_int(result, wide, dtype)

    def bitcast(self, v, dtype: str):
        source = _check("bitcast", DTYPES, v)
        if _BITS[source] != _BITS[dtype] or (source == "bool") != (dtype == "bool"):
            raise DTypeError(f"scalar bitcast: {source} and {dtype} differ in size")
        if _REGISTER[source] == _REGISTER[dtype]:
            return Scalar(v.value, dtype)
        return Scalar(self.b.bitcast(v.value, _REGISTER[dtype]), dtype)

    # --- rounding and float bit games ---------------------------------------------------
    def _float_unary(self, name: str, intrinsic: str, a) -> Scalar:
        dtype = _check(name, COMPUTE_FLOATS, a)
        return Scalar(self._intrinsic(intrinsic, dtype, a.value), dtype)

    def floor(self, a):
        return self._float_unary("floor", "floor", a)

    def ceil(self, a):
        return self._float_unary("ceil", "ceil", a)

    def trunc(self, a):
        return self._float_unary("trunc", "trunc", a)

    def round_half_even(self, a):
        return self._float_unary("round_half_even", "roundeven", a)

    def sqrt(self, a):
        return self._float_unary("sqrt", "sqrt", a)

    def sign(self, a):
        dtype = _check("sign", NUMERIC, a)
        one, zero = self._const(1, dtype), self._const(0, dtype)
        if dtype in COMPUTE_FLOATS:  # nan stays nan, +-0 gives +0
            minus = self._const(-1.0, dtype)
            result = self.b.select(self.b.fcmp_ordered("<", a.value, zero), minus, a.value)
            result = self.b.select(self.b.fcmp_ordered("==", a.value, zero), zero, result)
            return Scalar(self.b.select(self.b.fcmp_ordered(">", a.value, zero), one, result),
                          dtype)
        if dtype not in _SIGNED:
            return Scalar(self.b.select(self.b.icmp_unsigned("!=", a.value, zero), one, zero),
                          dtype)
        minus = self._int_const(-1, dtype)
        result = self.b.select(self.b.icmp_signed("<", a.value, zero), minus, zero)
        return Scalar(self.b.select(self.b.icmp_signed(">", a.value, zero), one, result), dtype)

    def copysign(self, a, b):
        dtype = _check("copysign", COMPUTE_FLOATS, a, b)
        return Scalar(self._intrinsic("copysign", dtype, a.value, b.value), dtype)

    def math(self, name: str, *args):
        if MATH_FUNCTIONS.get(name) != len(args):
            raise ValueError(f"scalar math: unknown function {name!r} with {len(args)} "
                             f"argument(s); known: {MATH_FUNCTIONS}")
        dtype = _check(f"math {name}", COMPUTE_FLOATS, *args)
        from .mathlib import declare_math  # the MATHLIB module; imported when first used

        function = declare_math(self.module, name, dtype)
        return Scalar(self.b.call(function, [a.value for a in args]), dtype)

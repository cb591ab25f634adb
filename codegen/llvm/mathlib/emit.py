"""A small typed emitter for branch-free floating-point code in LLVM IR.

The math library's functions are written against `Emitter`: arithmetic, fused
multiply-add, Horner polynomials, compares and selects, bit-pattern views and the
exact-arithmetic building blocks (two_sum, two_prod, 2^n scaling). It emits only
instructions the loop vectorizer widens: plain float and integer arithmetic, fcmp/icmp,
select, bitcast, and the intrinsics fma, fabs, floor, rint, copysign (and ldexp on
AVX-512 hosts, where it is one vscalef instruction). No libm calls,
no branches, no fast-math flags (the algorithms rely on exact IEEE rounding).
"""
from __future__ import annotations

import dataclasses
import struct

import llvmlite.ir as ir

from .coefficients import COEFFICIENTS


@dataclasses.dataclass(frozen=True)
class Format:
    """The IEEE binary format of one dtype, as the algorithms need it."""
    dtype: str
    bits: int            # storage width (32 or 64)
    mantissa: int        # explicit fraction bits (23 or 52)
    bias: int            # exponent bias (127 or 1023)
    suffix: str          # LLVM intrinsic suffix ("f32", "f64")

    @property
    def precision(self) -> int:
        return self.mantissa + 1


FORMATS = {
    "float32": Format("float32", 32, 23, 127, "f32"),
    "float64": Format("float64", 64, 52, 1023, "f64"),
}


def _has_scalef() -> bool:
    """Whether the host has AVX-512 (vscalefps/pd, which llvm.ldexp lowers to)."""
    from ..target import host_cpu  # the target module is only needed (and loaded) here

    return "+avx512f" in host_cpu()[1].split(",")


class Emitter:
    """Emits scalar code of one float dtype (and its same-width integer type) at the
    builder's insertion point. `other(dtype)` gives an emitter of another dtype on the
    same builder, for algorithms that compute float32 results in float64."""

    def __init__(self, builder: ir.IRBuilder, dtype: str):
        self.b = builder
        self.fmt = FORMATS[dtype]
        self.dtype = dtype
        self.ft = self.float_type(dtype)
        self.it = ir.IntType(self.fmt.bits)

    @staticmethod
    def float_type(dtype: str) -> ir.Type:
        return ir.FloatType() if dtype == "float32" else ir.DoubleType()

    def other(self, dtype: str) -> "Emitter":
        return Emitter(self.b, dtype)

    @property
    def module(self) -> ir.Module:
        return self.b.module

    # -- constants and conversions -------------------------------------------------
    def c(self, value: float) -> ir.Constant:
        return ir.Constant(self.ft, float(value))

    def ci(self, value: int) -> ir.Constant:
        return ir.Constant(self.it, value)

    def bits_of(self, value: float) -> int:
        """The bit pattern of `value` rounded to this dtype, as an unsigned integer."""
        code = "<f" if self.fmt.bits == 32 else "<d"
        return int.from_bytes(struct.pack(code, value), "little")

    def ext_from(self, x: ir.Value) -> ir.Value:
        """x (of a narrower float type) exactly widened to this emitter's type."""
        return self.b.fpext(x, self.ft)

    def trunc_from(self, x: ir.Value) -> ir.Value:
        """x (of a wider float type) rounded to this emitter's type."""
        return self.b.fptrunc(x, self.ft)

    # -- arithmetic ------------------------------------------------------------------
    def add(self, a, b):
        return self.b.fadd(a, b)

    def sub(self, a, b):
        return self.b.fsub(a, b)

    def mul(self, a, b):
        return self.b.fmul(a, b)

    def div(self, a, b):
        return self.b.fdiv(a, b)

    def neg(self, a):
        return self.b.fneg(a)

    def _intrinsic(self, name: str, arity: int) -> ir.Function:
        full = f"llvm.{name}.{self.fmt.suffix}"
        existing = self.module.globals.get(full)
        if existing is not None:
            return existing
        return ir.Function(self.module, ir.FunctionType(self.ft, [self.ft] * arity), full)

    def fma(self, a, b, c):
        """a*b + c with one rounding."""
        return self.b.call(self._intrinsic("fma", 3), [a, b, c])

    def abs(self, a):
        return self.b.call(self._intrinsic("fabs", 1), [a])

    def floor(self, a):
        return self.b.call(self._intrinsic("floor", 1), [a])

    def rint(self, a):
        """Round to nearest, ties to even (the default rounding mode)."""
        return self.b.call(self._intrinsic("rint", 1), [a])

    def copysign(self, magnitude, sign):
        return self.b.call(self._intrinsic("copysign", 2), [magnitude, sign])

    def poly(self, x, coefficients):
        """c0 + c1 x + c2 x^2 + ... by Horner's rule with fma."""
        coefficients = list(coefficients)
        acc = self.c(coefficients[-1])
        for coefficient in reversed(coefficients[:-1]):
            acc = self.fma(acc, x, self.c(coefficient))
        return acc

    def fitted(self, key: str, t, dtype: str | None = None):
        """The fitted polynomial `key` (see fit.py) at t, without its leading power:
        returns sum_i c_i u^(i*step) with u = t - center, so the caller multiplies by
        t^first where it needs to (keeping the leading terms exact)."""
        first, step, center, coefficients, _ = COEFFICIENTS[(key, dtype or self.dtype)]
        u = self.sub(t, self.c(center)) if center else t
        if step == 2:
            u = self.mul(u, u)
        return self.poly(u, coefficients)

    # -- compares and selects --------------------------------------------------------
    def cmp(self, op: str, a, b):
        """Ordered compare (false if either is NaN), except "!=" which is unordered."""
        if op == "!=":
            return self.b.fcmp_unordered("!=", a, b)
        return self.b.fcmp_ordered(op, a, b)

    def isnan(self, a):
        return self.b.fcmp_unordered("uno", a, a)

    def select(self, cond, a, b):
        return self.b.select(cond, a, b)

    def and_(self, a, b):
        return self.b.and_(a, b)

    def or_(self, a, b):
        return self.b.or_(a, b)

    def not_(self, a):
        return self.b.not_(a)

    def clamp(self, x, lo: float, hi: float):
        """x limited to [lo, hi]; NaN stays NaN (the compares are ordered)."""
        x = self.clamp_below(x, lo)
        return self.select(self.cmp(">", x, self.c(hi)), self.c(hi), x)

    def clamp_below(self, x, lo: float):
        """max(x, lo); NaN stays NaN."""
        return self.select(self.cmp("<", x, self.c(lo)), self.c(lo), x)

    # -- bit patterns ----------------------------------------------------------------
    def bits(self, x):
        return self.b.bitcast(x, self.it)

    def from_bits(self, i):
        return self.b.bitcast(i, self.ft)

    @property
    def magic(self) -> float:
        """1.5 * 2^mantissa: adding it to |v| < 2^(mantissa-1) rounds v to an integer
        that then sits in the low bits of the sum's bit pattern."""
        return 1.5 * 2.0 ** self.fmt.mantissa

    def round_to_int(self, x):
        """(rint(x) as a float, rint(x) as an integer) for |x| < 2^(mantissa-1)."""
        shifted = self.add(x, self.c(self.magic))
        as_float = self.sub(shifted, self.c(self.magic))
        as_int = self.b.sub(self.bits(shifted), self.bits(self.c(self.magic)))
        return as_float, as_int

    def round_product_to_int(self, x, scale: float):
        """round_to_int(x * scale) in one instruction less: x * scale + magic rounds once, so n
        is the nearest integer to x * scale itself (ties aside) instead of to its
        rounding; callers reduce by n exactly either way (|x * scale| < 2^(mantissa-1))."""
        shifted = self.fma(x, self.c(scale), self.c(self.magic))
        as_float = self.sub(shifted, self.c(self.magic))
        as_int = self.b.sub(self.bits(shifted), self.bits(self.c(self.magic)))
        return as_float, as_int

    def int_to_float(self, n):
        """A small integer (|n| < 2^(mantissa-1)) converted exactly, by the magic number."""
        return self.sub(self.from_bits(self.b.add(n, self.bits(self.c(self.magic)))),
                        self.c(self.magic))

    def pow2(self, n):
        """2^n for an integer n in the normal exponent range."""
        shifted = self.b.add(n, self.ci(self.fmt.bias))
        return self.from_bits(self.b.shl(shifted, self.ci(self.fmt.mantissa)))

    def ldexp(self, x, n):
        """x * 2^n for |n| up to about twice the exponent range, rounding once: the scale
        is applied in two halves so that each factor is a normal number, and the result
        overflows to inf or underflows gradually through subnormals to 0. With AVX-512
        it is llvm.ldexp, one vscalef (exact scaling, one rounding: the same results in
        2 instructions instead of 8); elsewhere LLVM would make that a libm call."""
        if _has_scalef():
            fn = self.module.declare_intrinsic("llvm.ldexp", [self.ft, self.it],
                                               ir.FunctionType(self.ft, [self.ft, self.it]))
            return self.b.call(fn, [x, n])
        half = self.b.ashr(n, self.ci(1))
        rest = self.b.sub(n, half)
        return self.mul(self.mul(x, self.pow2(half)), self.pow2(rest))

    # -- exact arithmetic ------------------------------------------------------------
    def two_sum(self, a, b):
        """(s, e) with s = fl(a + b) and s + e = a + b exactly (any magnitudes)."""
        s = self.add(a, b)
        bb = self.sub(s, a)
        e = self.add(self.sub(a, self.sub(s, bb)), self.sub(b, bb))
        return s, e

    def fast_two_sum(self, a, b):
        """(s, e) with s + e = a + b exactly, for |a| >= |b| (or a == 0)."""
        s = self.add(a, b)
        return s, self.sub(b, self.sub(s, a))

    def two_prod(self, a, b):
        """(p, e) with p = fl(a * b) and p + e = a * b exactly (fma)."""
        p = self.mul(a, b)
        return p, self.fma(a, b, self.neg(p))

    def dd_mul(self, ah, al, bh, bl):
        """Double-word product (ah + al) * (bh + bl), relative error ~2^-2p."""
        p, e = self.two_prod(ah, bh)
        e = self.fma(ah, bl, self.fma(al, bh, e))
        return self.fast_two_sum(p, e)

    def dd_add(self, ah, al, bh, bl):
        """Double-word sum (accurate double-word addition)."""
        s, e = self.two_sum(ah, bh)
        t, f = self.two_sum(al, bl)
        e = self.add(e, t)
        s, e = self.fast_two_sum(s, e)
        e = self.add(e, f)
        return self.fast_two_sum(s, e)

"""exp, expm1, log and log1p, and the reduction steps pow shares with them.

exp/expm1: x = n ln2 + r, |r| <= ln2/2, by Cody-Waite with ln2 split so that n*ln2_hi
is exact; e^r (or e^r - 1) by a fitted polynomial; 2^n applied by exponent arithmetic
in two halves so overflow gives inf and underflow rounds once through subnormals.
log/log1p: x = 2^k m, m in [sqrt(1/2), sqrt(2)), f = m - 1 exact; log(1+f) = 2 atanh(s)
with s = f/(2+f) (fdlibm's arrangement, which keeps f's leading bits exact); log1p adds
the rounding error of 1 + x (exact, by two_sum) back as c/u.
"""
from __future__ import annotations

from .constants import LN2, split
from .coefficients import COEFFICIENTS
from .emit import Emitter

LOG2E = 1.4426950408889634


def ln2_parts(em: Emitter) -> tuple[float, float]:
    """ln 2 = hi + lo with hi short enough that k*hi is exact for |k| < 2^12."""
    return tuple(split(LN2, 2, em.fmt.precision - 12))


# Clamps keep n within what ldexp can apply; beyond them exp is 0 or inf anyway
# (float32: e^89 > 3.4e38, e^-104 < 2^-150; float64: e^710 > 1.8e308, e^-746 < 2^-1075).
EXP_LIMITS = {"float32": (-104.0, 89.0), "float64": (-746.0, 710.0)}
# expm1 is -1 (rounded) below these, and must keep 2^n - 1 exact above -(precision).
EXPM1_LOW = {"float32": -20.0, "float64": -40.0}


def reduce_ln2(em: Emitter, x):
    """(n as float, n as int, r) with x = n ln2 + r, |r| <= ln2/2 (x already clamped)."""
    hi, lo = ln2_parts(em)
    n_float, n_int = em.round_product_to_int(x, LOG2E)
    r = em.fma(em.neg(n_float), em.c(hi), x)   # exact: n*hi exact, Sterbenz
    r = em.fma(em.neg(n_float), em.c(lo), r)
    return n_float, n_int, r


def exp_of_reduced(em: Emitter, r, key: str = "exp"):
    """e^r for |r| <= ln2/2: 1 + r (1 + r P(r)), P the fitted polynomial `key`."""
    return em.fma(r, em.fma(em.fitted(key, r), r, em.c(1.0)), em.c(1.0))


def exp(em: Emitter, x, key: str = "exp"):
    """e^x; `key` picks the polynomial ("exp_wide": float64 code for float32 results)."""
    lo, hi = EXP_LIMITS[em.dtype]
    return exp_of_clamped(em, em.clamp(x, lo, hi), key)


def exp_of_clamped(em: Emitter, clamped, key: str = "exp"):
    """e^x for x already within EXP_LIMITS (or NaN). A NaN needs no select of its own:
    the clamp's ordered compares keep it, and every step after propagates it."""
    _, n_int, r = reduce_ln2(em, clamped)
    return em.ldexp(exp_of_reduced(em, r, key), n_int)


def exp_of_negated(em: Emitter, a):
    """e^-a for 0 <= a <= -EXP_LIMITS low (or NaN), bit for bit exp(-a) without the
    negation: every step of exp is odd in its argument with symmetric rounding, so it
    runs on a (n' = -n, r' = -r, P's odd coefficients negated, the fnegs fold into fma)."""
    hi, lo = ln2_parts(em)
    n_float, n_int = em.round_product_to_int(a, LOG2E)
    r = em.fma(em.neg(n_float), em.c(hi), a)
    r = em.fma(em.neg(n_float), em.c(lo), r)        # r = -(exp's r)
    first, step, center, coefficients, _ = COEFFICIENTS[("exp", em.dtype)]
    assert (first, step, center) == (2, 1, 0.0), "exp's fit changed its form"
    poly = em.poly(r, [c if i % 2 == 0 else -c for i, c in enumerate(coefficients)])
    p = em.fma(em.neg(r), em.fma(em.neg(poly), r, em.c(1.0)), em.c(1.0))
    return em.ldexp(p, em.b.neg(n_int))


def expm1_of_reduced(em: Emitter, r):
    """e^r - 1 for |r| <= ln2/2, relative accuracy: r + r^2 (1/2 + r P(r)) (the rounding
    of 1/2 + r P, at most 2^-25, weighs r^2 <= 0.121 against |e^r - 1| >= |r|/1.2)."""
    return em.fma(em.mul(r, r), em.fma(em.fitted("expm1", r), r, em.c(0.5)), r)


def expm1_core(em: Emitter, x):
    """e^x - 1 for x already within [EXPM1_LOW, EXP_LIMITS high]; NaN stays NaN.

    2^n (e^r - 1) + (2^n - 1), computed as 2 (h p + (h - 1/2)) with h = 2^(n-1): h stays
    finite up to the overflow threshold, h - 1/2 is exact wherever it matters, the
    doubling is exact (or overflows to inf, as it should), and the two terms never
    cancel badly (for n = -1 the sum is at least 0.29)."""
    n_float, n_int, r = reduce_ln2(em, x)
    p = expm1_of_reduced(em, r)
    half_scale = em.pow2(em.b.sub(n_int, em.ci(1)))
    inner = em.fma(half_scale, p, em.sub(half_scale, em.c(0.5)))
    return em.add(inner, inner)


def expm1(em: Emitter, x):
    lo, hi = EXPM1_LOW[em.dtype], EXP_LIMITS[em.dtype][1]
    result = expm1_core(em, em.clamp(x, lo, hi))
    # expm1(x) rounds to x below 2^-(p+1): keeps -0 and subnormals exact
    tiny = em.cmp("<", em.abs(x), em.c(2.0 ** -(em.fmt.precision + 1)))
    result = em.select(tiny, x, result)
    return em.select(em.isnan(x), x, result)


SQRT_HALF = 0.7071067811865476


def reduce_log(em: Emitter, x):
    """(k as float, f) with x = 2^k (1 + f), 1 + f in [sqrt(1/2), sqrt(2)), f exact,
    for positive finite x including subnormals (scaled up first)."""
    fmt = em.fmt
    boost = 32 if fmt.bits == 32 else 64
    subnormal = em.cmp("<", x, em.c(2.0 ** (1 - fmt.bias)))
    x = em.select(subnormal, em.mul(x, em.c(2.0 ** boost)), x)
    k_adjust = em.b.select(subnormal, em.ci(-boost), em.ci(0))
    one_bits = fmt.bias << fmt.mantissa
    sqrt_half_bits = em.bits_of(SQRT_HALF)
    # shifting the bit pattern by one - sqrt(1/2) makes the exponent field count
    # from sqrt(1/2) instead of 1 (musl's arrangement; stays positive for x <= inf)
    shifted = em.b.add(em.bits(x), em.ci(one_bits - sqrt_half_bits))
    k = em.b.sub(em.b.lshr(shifted, em.ci(fmt.mantissa)), em.ci(fmt.bias))
    k = em.b.add(k, k_adjust)
    mantissa = em.b.and_(shifted, em.ci((1 << fmt.mantissa) - 1))
    m = em.from_bits(em.b.add(mantissa, em.ci(sqrt_half_bits)))
    return em.int_to_float(k), em.sub(m, em.c(1.0))


def log_of_reduced(em: Emitter, k, f, correction=None, key: str = "log"):
    """k ln2 + log(1 + f) + correction, as fdlibm's __ieee754_log sums it."""
    hi, lo = ln2_parts(em)
    s = em.div(f, em.add(em.c(2.0), f))
    z = em.mul(s, s)
    big_r = em.mul(z, em.fitted(key, s))           # 2 atanh(s) = 2s + s R
    hfsq = em.mul(em.c(0.5), em.mul(f, f))
    low = em.mul(k, em.c(lo))
    if correction is not None:
        low = em.add(low, correction)
    inner = em.fma(s, em.add(hfsq, big_r), low)
    return em.fma(k, em.c(hi), em.neg(em.sub(em.sub(hfsq, inner), f)))


def _log_specials(em: Emitter, x, result, domain_edge: float):
    """NumPy's log/log1p at the edges: below the edge NaN, at it -inf, inf at inf."""
    inf = em.c(float("inf"))
    result = em.select(em.cmp("==", x, inf), inf, result)
    result = em.select(em.cmp("==", x, em.c(domain_edge)), em.c(float("-inf")), result)
    result = em.select(em.cmp("<", x, em.c(domain_edge)), em.c(float("nan")), result)
    return em.select(em.isnan(x), x, result)


def log(em: Emitter, x):
    k, f = reduce_log(em, x)
    return _log_specials(em, x, log_of_reduced(em, k, f), 0.0)


def log1p(em: Emitter, x):
    u, c = em.two_sum(em.c(1.0), x)                 # u + c = 1 + x exactly
    k, f = reduce_log(em, u)
    result = log_of_reduced(em, k, f, em.div(c, u))
    tiny = em.cmp("<", em.abs(x), em.c(2.0 ** -(em.fmt.precision + 1)))
    result = em.select(tiny, x, result)             # -0 and subnormals exact
    return _log_specials(em, x, result, -1.0)

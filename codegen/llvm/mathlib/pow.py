"""pow(x, y) = sign * e^(y log|x|), and np.power's IEEE special-case table.

The exponent y log|x| may reach ~745 in magnitude, where an absolute error e in it is a
relative error e in the result: log|x| needs ~64 more bits than the result has.
float32: log and exp run in float64 with polynomials fitted to 2^-37 and 2^-39 (y log|x|
is below 2^8 wherever the result is finite and nonzero), which covers the 24-bit result
with room to spare; the float64 result rounds once to float32.
float64: log|x| as a double-word (hi + lo, ~2^-100 relative): x = 2^k (1 + f),
s = f/(2+f) as a double-word, log(1+f) = 2s + 2s^3/3 + s^5 Q(s^2) with the first two
terms in double-word arithmetic; then t = y log|x| exactly as a double-word product,
and e^t with the low word folded into the reduced argument.
"""
from __future__ import annotations

from fractions import Fraction

from .constants import LN2, split
from .emit import Emitter
from .exp_log import (EXP_LIMITS, LOG2E, exp, exp_of_reduced, ln2_parts, log_of_reduced,
                      reduce_log)


def log_double_word(em: Emitter, x):
    """log(x) = hi + lo for positive finite x (float64), relative error ~2^-100."""
    k, f = reduce_log(em, x)
    d_hi, d_lo = em.fast_two_sum(em.c(2.0), f)
    reciprocal = em.div(em.c(1.0), d_hi)        # one division; s_lo corrects s's error
    s = em.mul(f, reciprocal)
    residual = em.fma(em.neg(s), d_lo, em.fma(em.neg(s), d_hi, f))
    s_lo = em.mul(residual, reciprocal)
    z_hi, z_lo = em.dd_mul(s, s_lo, s, s_lo)
    cube_hi, cube_lo = em.dd_mul(z_hi, z_lo, s, s_lo)
    third_hi, third_lo = split(Fraction(2, 3), 2, 53)
    t_hi, t_lo = em.dd_mul(cube_hi, cube_lo, em.c(third_hi), em.c(third_lo))
    tail = em.mul(em.mul(cube_hi, z_hi), em.fitted("log_tail", s))
    m_hi, m_lo = em.dd_add(em.add(s, s), em.add(s_lo, s_lo), t_hi, t_lo)
    m_hi, m_lo = em.dd_add(m_hi, m_lo, tail, em.c(0.0))
    ln2_hi, ln2_lo = split(LN2, 2, 42)            # k * ln2_hi exact for |k| < 2^11
    return em.dd_add(em.mul(k, em.c(ln2_hi)), em.mul(k, em.c(ln2_lo)), m_hi, m_lo)


def exp_double_word(em: Emitter, t_hi, t_lo):
    """e^(t_hi + t_lo) (float64), overflowing to inf and underflowing to 0."""
    lo_limit, hi_limit = EXP_LIMITS[em.dtype]
    clamped = em.clamp(t_hi, lo_limit, hi_limit)
    t_lo = em.select(em.cmp("==", clamped, t_hi), t_lo, em.c(0.0))
    n_float, n_int = em.round_to_int(em.mul(clamped, em.c(LOG2E)))
    hi, lo = ln2_parts(em)
    r_hi = em.fma(em.neg(n_float), em.c(hi), clamped)     # exact (Sterbenz)
    r_lo = em.fma(em.neg(n_float), em.c(lo), t_lo)
    r, r_error = em.fast_two_sum(r_hi, r_lo)
    p = exp_of_reduced(em, r)
    p = em.fma(p, r_error, p)                             # e^(r + err) = e^r (1 + err)
    return em.ldexp(p, n_int)


def _magnitude(em: Emitter, ax, y):
    """|x|^y for finite positive |x| (other cases are replaced by the table)."""
    if em.dtype == "float32":
        wide = em.other("float64")
        wide_ax, wide_y = wide.ext_from(ax), wide.ext_from(y)
        k, f = reduce_log(wide, wide_ax)
        log_ax = log_of_reduced(wide, k, f, key="log_wide")
        return em.trunc_from(exp(wide, wide.mul(wide_y, log_ax), key="exp_wide"))
    log_hi, log_lo = log_double_word(em, ax)
    t_hi, t_lo = em.two_prod(y, log_hi)
    return exp_double_word(em, t_hi, em.fma(y, log_lo, t_lo))


def pow(em: Emitter, x, y):
    inf, zero, one = em.c(float("inf")), em.c(0.0), em.c(1.0)
    ax, ay = em.abs(x), em.abs(y)
    y_finite = em.cmp("<", ay, inf)
    y_integer = em.and_(y_finite, em.cmp("==", em.floor(y), y))
    half = em.mul(y, em.c(0.5))
    y_odd = em.and_(y_integer, em.cmp("!=", em.floor(half), half))
    x_negative = em.cmp("<", x, zero)
    y_negative = em.cmp("<", y, zero)

    result = _magnitude(em, ax, y)
    result = em.select(em.and_(x_negative, y_odd), em.neg(result), result)
    # negative finite base, finite non-integer exponent: NaN
    result = em.select(em.and_(x_negative, em.and_(y_finite, em.not_(y_integer))),
                       em.c(float("nan")), result)
    # base +-0 or +-inf: 0 or inf, negative only for a negative base and odd y
    zero_base = em.cmp("==", ax, zero)
    edge_base = em.or_(zero_base, em.cmp("==", ax, inf))
    edge = em.select(em.b.xor(zero_base, y_negative), zero, inf)
    edge = em.copysign(edge, em.select(y_odd, x, one))
    result = em.select(edge_base, edge, result)
    # exponent +-inf: 0 or inf by whether |x| < 1 and the sign of y (|x| == 1 below)
    y_infinite = em.cmp("==", ay, inf)
    limit = em.select(em.b.xor(em.cmp("<", ax, one), y_negative), zero, inf)
    result = em.select(y_infinite, limit, result)
    result = em.select(em.or_(em.isnan(x), em.isnan(y)), em.c(float("nan")), result)
    # x^0 = 1 and 1^y = 1 for every y and x, NaN included; (-1)^+-inf = 1
    unit = em.or_(em.cmp("==", y, zero), em.cmp("==", x, one))
    unit = em.or_(unit, em.and_(y_infinite, em.cmp("==", ax, one)))
    return em.select(unit, one, result)

"""tanh, sigmoid and softplus, built on exp, expm1 and log1p.

tanh(x) = sign(x) e/(e + 2) with e = expm1(2|x|): relative accuracy at every |x| (no
cancellation near 0), and |x| is capped at 20 where e/(e+2) already rounds to 1, so
tanh saturates to +-1 exactly. sigmoid(x) = 1/(1 + e^-x) computed as 1/(1+e) for
x >= 0 and e/(1+e) for x < 0 with e = e^-|x|, so it never overflows and keeps its
relative accuracy down to subnormal results. softplus(x) = np.logaddexp(0, x)
= max(x, 0) + log1p(e^-|x|).
"""
from __future__ import annotations

from .emit import Emitter
from .coefficients import COEFFICIENTS
from .exp_log import EXP_LIMITS, LOG2E, exp_of_negated, ln2_parts, log1p

TANH_CAP = 20.0  # tanh(20) = 1 - 8e-18: rounds to 1 in float32 and float64


def tanh(em: Emitter, x):
    magnitude = em.abs(x)
    capped = em.select(em.cmp(">", magnitude, em.c(TANH_CAP)), em.c(TANH_CAP), magnitude)
    half_e = half_expm1_double(em, capped)   # e/2 with e = expm1(2|x|), 0 <= 2|x| <= 40
    # e/(e + 2) = (e/2)/(e/2 + 1): the same rounded operands scaled by 1/2, so the same
    # quotient, without doubling
    return em.copysign(em.div(half_e, em.add(half_e, em.c(1.0))), x)


def half_expm1_double(em: Emitter, y):
    """expm1(2y)/2 for 0 <= y <= TANH_CAP (or NaN), bit for bit exp_log.expm1_core(2y)/2.

    Every step is expm1_core's on 2y scaled by a power of two, which rounds alike: the
    reduction 2y = n ln2 + 2s runs on y with ln2/2 (n from y * 2 log2(e)); with r = 2s,
    expm1(r)/2 = s + s^2 (1 + 4s P(2s)), P's coefficients scaled by 2^(i+2); and
    h p + (h - 1/2) with h = 2^(n-1) is 2h (p/2) + (h - 1/2). So the doubling of y costs
    no instruction."""
    hi, lo = ln2_parts(em)
    n_float, n_int = em.round_product_to_int(y, 2 * LOG2E)
    s = em.fma(em.neg(n_float), em.c(hi / 2), y)    # exact, as in reduce_ln2
    s = em.fma(em.neg(n_float), em.c(lo / 2), s)
    first, step, center, coefficients, _ = COEFFICIENTS[("expm1", em.dtype)]
    assert (first, step, center) == (3, 1, 0.0), "expm1's fit changed its form"
    poly = em.poly(s, [c * 2.0 ** (i + 2) for i, c in enumerate(coefficients)])
    half_p = em.fma(em.mul(s, s), em.fma(poly, s, em.c(1.0)), s)   # expm1(r) / 2
    scale = em.pow2(n_int)
    half_scale = em.pow2(em.b.sub(n_int, em.ci(1)))
    return em.fma(scale, half_p, em.sub(half_scale, em.c(0.5)))


def sigmoid(em: Emitter, x):
    e = exp_of_negated(em, _clamp_magnitude(em, x))   # e^-|x|
    numerator = em.select(em.cmp(">=", x, em.c(0.0)), em.c(1.0), e)
    return em.div(numerator, em.add(em.c(1.0), e))


def softplus(em: Emitter, x):
    positive_part = em.select(em.cmp(">", x, em.c(0.0)), x, em.c(0.0))
    return em.add(positive_part, log1p(em, exp_of_negated(em, _clamp_magnitude(em, x))))


def _clamp_magnitude(em: Emitter, x):
    """|x| limited to where e^-|x| is still above 0 (NaN stays NaN)."""
    limit = -EXP_LIMITS[em.dtype][0]
    magnitude = em.abs(x)
    return em.select(em.cmp(">", magnitude, em.c(limit)), em.c(limit), magnitude)

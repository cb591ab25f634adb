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
from .exp_log import exp, expm1_core, log1p

TANH_CAP = 20.0  # tanh(20) = 1 - 8e-18: rounds to 1 in float32 and float64


def tanh(em: Emitter, x):
    magnitude = em.abs(x)
    capped = em.select(em.cmp(">", magnitude, em.c(TANH_CAP)), em.c(TANH_CAP), magnitude)
    e = expm1_core(em, em.add(capped, capped))   # 0 <= 2|x| <= 40: no clamps needed
    return em.copysign(em.div(e, em.add(e, em.c(2.0))), x)


def sigmoid(em: Emitter, x):
    e = exp(em, em.neg(em.abs(x)))
    numerator = em.select(em.cmp(">=", x, em.c(0.0)), em.c(1.0), e)
    return em.div(numerator, em.add(em.c(1.0), e))


def softplus(em: Emitter, x):
    positive_part = em.select(em.cmp(">", x, em.c(0.0)), x, em.c(0.0))
    return em.add(positive_part, log1p(em, exp(em, em.neg(em.abs(x)))))

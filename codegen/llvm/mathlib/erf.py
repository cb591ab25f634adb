"""erf: an odd polynomial below 1, and 1 - e^(-x^2) g(x) above.

For |x| < 1, erf(x) = x P(x^2). For |x| >= 1, erfc(x) = e^(-x^2) g(x) with g fitted
as a polynomial in x - center over [1, X], X = 4 (float32) or 6 (float64), beyond
which erf rounds to +-1. erf's absolute error there is e^(-x^2) times g's, so g is
fitted with that weight (fit.py); x^2 is kept exact as a double-word product so the
exponential's argument adds no error of its own.
"""
from __future__ import annotations

from .emit import Emitter
from .exp_log import exp

SPLIT = 1.0
ERF_MAX = {"float32": 4.0, "float64": 6.0}


def erf(em: Emitter, x):
    magnitude = em.abs(x)
    small = em.mul(magnitude, em.fitted("erf_small", magnitude))
    limit = ERF_MAX[em.dtype]
    a = em.select(em.cmp(">", magnitude, em.c(limit)), em.c(limit), magnitude)
    square, square_error = em.two_prod(a, a)
    gauss = exp(em, em.neg(square))
    gauss = em.fma(em.neg(gauss), square_error, gauss)   # e^-(s+e) = e^-s (1 - e)
    large = em.fma(em.neg(gauss), em.fitted("erfc_scaled", a), em.c(1.0))
    result = em.select(em.cmp("<", magnitude, em.c(SPLIT)), small, large)
    return em.copysign(result, x)

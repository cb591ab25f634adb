"""Fit the math library's polynomials and write them to coefficients.py.

    .venv/bin/python -m graphk.codegen.llvm.mathlib.fit    # rewrites coefficients.py

Each polynomial approximates a function on the interval its range reduction leaves
(|r| <= ln2/2 for exp, |s| <= 3 - 2*sqrt(2) for log, |r| <= pi/4 for sin/cos, ...).
The fit minimizes the maximum weighted error (relative error of the final function, or
absolute where that is what the caller needs) by Lawson's iteratively reweighted least
squares on a dense Chebyshev grid, solved by Gram-Schmidt QR in np.longdouble (64-bit
mantissa on x86) so the fit itself is well below float64 rounding. Coefficients are then
rounded to the dtype that evaluates them. Functions are evaluated in np.longdouble
(libm's long double routines); erf, which NumPy lacks, by its power series.
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Callable

import numpy as np

L = np.longdouble


def erf_longdouble(x: np.ndarray) -> np.ndarray:
    """erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)): all terms
    positive, so there is no cancellation at any x; accurate to long double rounding."""
    x = np.asarray(x, dtype=L)
    ax = np.abs(x)
    term = ax.copy()
    total = ax.copy()
    x2 = ax * ax
    for n in range(1, 400):
        term = term * (2 * x2) / L(2 * n + 1)
        total = total + term
        if np.all(term <= total * L(1e-22)):
            break
    two_over_sqrt_pi = L(2) / np.sqrt(np.arccos(L(-1)))
    return np.copysign(two_over_sqrt_pi * np.exp(-x2) * total, x)


@dataclasses.dataclass(frozen=True)
class Fit:
    """Approximate target(t) by sum_i c_i * (t - center)^(first + i*step), i < count,
    for t in [lo, hi], minimizing max |weight(t) * error(t)|."""
    key: str
    dtype: str
    target: Callable[[np.ndarray], np.ndarray]
    weight: Callable[[np.ndarray], np.ndarray]
    lo: float
    hi: float
    first: int
    step: int
    count: int
    center: float = 0.0


def _qr_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares min |a c - b| by twice-iterated modified Gram-Schmidt in long double."""
    m, k = a.shape
    q = a.copy()
    r = np.zeros((k, k), dtype=L)
    for j in range(k):
        for _ in range(2):
            for i in range(j):
                proj = np.dot(q[:, i], q[:, j])
                r[i, j] += proj
                q[:, j] -= proj * q[:, i]
        norm = np.sqrt(np.dot(q[:, j], q[:, j]))
        r[j, j] = norm
        q[:, j] /= norm
    rhs = q.T @ b
    c = np.zeros(k, dtype=L)
    for j in range(k - 1, -1, -1):
        c[j] = (rhs[j] - np.dot(r[j, j + 1:], c[j + 1:])) / r[j, j]
    return c


def fit(spec: Fit, points: int = 4000, iterations: int = 60) -> tuple[list[float], float]:
    """The coefficients (rounded to spec.dtype) and their max weighted error."""
    j = np.arange(points, dtype=L)
    pi = np.arccos(L(-1))
    lo, hi = L(spec.lo), L(spec.hi)
    t = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(pi * (j + L(0.5)) / points)
    u_scale = max(abs(lo - L(spec.center)), abs(hi - L(spec.center)))
    u = (t - L(spec.center)) / u_scale
    powers = [spec.first + i * spec.step for i in range(spec.count)]
    basis = np.stack([u ** p for p in powers], axis=1)
    goal = spec.target(t)
    w = spec.weight(t)
    v = np.ones(points, dtype=L) / points
    for _ in range(iterations):
        s = np.sqrt(v) * w
        c = _qr_solve(basis * s[:, None], goal * s)
        err = np.abs(w * (basis @ c - goal))
        v = v * err
        v = v / v.sum()
    dtype = np.dtype(spec.dtype)
    scaled = [c[i] / u_scale ** powers[i] for i in range(spec.count)]
    rounded = [float(dtype.type(value)) for value in scaled]
    v_t = t - L(spec.center)
    approx = sum(L(rounded[i]) * v_t ** powers[i] for i in range(spec.count))
    return rounded, float(np.max(np.abs(w * (approx - goal))))


def _atanh2(s):
    return 2 * np.arctanh(s)


LN2 = float(np.log(L(2)))
PI = float(np.arccos(L(-1)))
S_MAX = 3 - 2 * 2 ** 0.5 + 1e-4          # |s| for m in [sqrt(1/2), sqrt(2)), s=(m-1)/(m+1)
R_EXP = LN2 / 2 * 1.0005                  # |r| after exp's reduction (rint rounding slack)
R_TRIG = PI / 4 * 1.0005
ERF_SPLIT = 1.0
ERF_MAX = {"float32": 4.0, "float64": 6.0}
_one = lambda t: np.ones_like(t)


def specs() -> list[Fit]:
    out = []
    for dt, (n_exp, n_em1, n_log, n_sin, n_cos, n_erf, n_erfc) in {
        "float32": (5, 4, 3, 0, 0, 7, 10),
        "float64": (11, 10, 7, 8, 7, 14, 22),
    }.items():
        out += [
            Fit("exp", dt, lambda r: np.exp(r) - 1 - r, lambda r: 1 / np.exp(r),
                -R_EXP, R_EXP, 2, 1, n_exp),
            Fit("expm1", dt, lambda r: np.expm1(r) - r - r * r / 2,
                lambda r: 1 / np.abs(np.expm1(r)), -R_EXP, R_EXP, 3, 1, n_em1),
            # log1p(f) = 2s + s*R(s^2): fit s*R as odd powers s^3, s^5, ...
            Fit("log", dt, lambda s: _atanh2(s) - 2 * s, lambda s: 1 / _atanh2(s),
                1e-6, S_MAX, 3, 2, n_log),
            Fit("erf_small", dt, erf_longdouble, lambda x: 1 / erf_longdouble(x),
                1e-6, ERF_SPLIT, 1, 2, n_erf),
            # erfc(x) = exp(-x^2) * g(x) for x >= 1; erf's error is exp(-x^2) * g's error
            Fit("erfc_scaled", dt, lambda x: (1 - erf_longdouble(x)) * np.exp(x * x),
                lambda x: np.exp(-x * x), ERF_SPLIT, ERF_MAX[dt], 0, 1, n_erfc,
                center=(ERF_SPLIT + ERF_MAX[dt]) / 2),
        ]
        if dt == "float64":
            out += [
                Fit("sin", dt, lambda r: np.sin(r) - r, lambda r: 1 / np.sin(r),
                    1e-6, R_TRIG, 3, 2, n_sin),
                Fit("cos", dt, lambda r: np.cos(r) - 1 + r * r / 2, lambda r: 1 / np.cos(r),
                    1e-6, R_TRIG, 4, 2, n_cos),
                # pow's double-double log: log(m) = 2s + 2s^3/3 + s^5 * Q(s^2)
                Fit("log_tail", dt, lambda s: _atanh2(s) - 2 * s - 2 * s ** 3 / 3,
                    lambda s: 1 / _atanh2(s), 1e-6, S_MAX, 5, 2, 7),
                # float64 polynomials only as accurate as float32 results need, for the
                # float32 functions computed in float64 (pow: log to 2^-37 because
                # y log|x| reaches 2^7; sin/cos; exp)
                Fit("exp_wide", dt, lambda r: np.exp(r) - 1 - r, lambda r: 1 / np.exp(r),
                    -R_EXP, R_EXP, 2, 1, 7),
                Fit("log_wide", dt, lambda s: _atanh2(s) - 2 * s, lambda s: 1 / _atanh2(s),
                    1e-6, S_MAX, 3, 2, 4),
                Fit("sin_wide", dt, lambda r: np.sin(r) - r, lambda r: 1 / np.sin(r),
                    1e-6, R_TRIG, 3, 2, 4),
                Fit("cos_wide", dt, lambda r: np.cos(r) - 1 + r * r / 2,
                    lambda r: 1 / np.cos(r), 1e-6, R_TRIG, 4, 2, 4),
            ]
    return out


def main() -> None:
    lines = [
        '"""Polynomial coefficients of the math library, written by fit.py (do not edit:',
        'run `python -m graphk.codegen.llvm.mathlib.fit`). Key: (name, dtype) -> (first',
        'power, step, center, coefficients, max weighted error of the fit)."""',
        "",
        "COEFFICIENTS = {",
    ]
    for spec in specs():
        coeffs, err = fit(spec)
        print(f"{spec.key:12s} {spec.dtype}: n={spec.count:2d} err={err:.3e}"
              f" ({np.log2(err):.1f} bits)")
        lines.append(f"    ({spec.key!r}, {spec.dtype!r}): ({spec.first}, {spec.step}, "
                     f"{spec.center!r}, (")
        lines += [f"        {c!r}," for c in coeffs]
        lines.append(f"    ), {err:.3e}),")
    lines.append("}")
    path = pathlib.Path(__file__).with_name("coefficients.py")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

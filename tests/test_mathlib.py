"""Accuracy of graphk's LLVM math library against NumPy, and that it vectorizes.

Each function is compiled into a native loop over an array (mathlib.loops) and compared
with an exact-enough reference: float64 NumPy for float32 functions; np.longdouble
(80-bit on x86) for float64 ones, or NumPy's own float64 result with the bound loosened
by 1 ulp where long double is no wider than double. Samples: log-uniform magnitudes over
the whole range with both signs, dense samples where each function is interesting,
every special value, subnormals, and the boundaries (overflow/underflow thresholds,
multiples of ln2 and pi/2, the algorithms' own split points). Infinite, NaN and zero
results must match exactly (the sign of zero included); finite ones within MAX_ULP.

The exhaustive float32 sweep (all 2^32 inputs, or a stride) is a documented command:

    .venv/bin/python tests/test_mathlib.py [--stride N] [--offset K] [names...]

(--stride 16: 2^28 inputs per function, about 40 s of CPU each; all 2^32: ~11 min each.)
"""
from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from graphk.codegen.llvm.mathlib import MATH_FUNCTIONS
from graphk.codegen.llvm.mathlib.fit import erf_longdouble
from graphk.codegen.llvm.mathlib.loops import compile_loop

try:
    from scipy.special import erf as _scipy_erf
except ImportError:  # the long double series below serves instead
    _scipy_erf = None

MAX_ULP = 4.0
LONG_DOUBLE_IS_WIDER = np.finfo(np.longdouble).nmant > 52
DTYPES = ["float32", "float64"]
UNARY = [name for name, (arity, _) in MATH_FUNCTIONS.items() if arity == 1]


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _erf(x):
    x = np.asarray(x)
    if x.dtype == np.float64 and _scipy_erf is not None:
        return _scipy_erf(x)                  # float64 reference for float32 results
    out = np.sign(x).astype(x.dtype)        # |x| >= 7: +-1 (0 and nan handled below)
    inner = np.abs(x) < 7
    out[inner] = erf_longdouble(x[inner].astype(np.longdouble)).astype(x.dtype)
    out[np.isnan(x)] = np.nan
    return out


REFERENCE = {
    "exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p,
    "tanh": np.tanh, "sigmoid": _sigmoid, "softplus": lambda x: np.logaddexp(0, x),
    "pow": np.power, "sin": np.sin, "cos": np.cos, "erf": _erf,
}


def reference(name: str, dtype: str, *args: np.ndarray) -> tuple[np.ndarray, float]:
    """(reference values in a wider type, the allowed ulp error)."""
    if dtype == "float32":
        wide, bound = np.float64, MAX_ULP
    elif LONG_DOUBLE_IS_WIDER:
        wide, bound = np.longdouble, MAX_ULP
    else:
        wide, bound = np.float64, MAX_ULP + 1
    with np.errstate(all="ignore"):
        return REFERENCE[name](*[a.astype(wide) for a in args]), bound


def ulp_error(got: np.ndarray, ref: np.ndarray, dtype: str) -> np.ndarray:
    """|got - ref| in units of the dtype's ulp at ref (subnormal spacing below the normal
    range; inf, and anything beyond it, counts as 2^(emax+1)), for finite ref.
    float32 errors are measured in float64 (exact enough, and fast for the sweep)."""
    info = np.finfo(dtype)
    p = info.nmant + 1
    wide = np.float64 if dtype == "float32" else np.longdouble
    big = np.ldexp(wide(1), info.maxexp)
    ref = np.clip(ref.astype(wide), -big, big)
    got_w = got.astype(wide)
    got_w = np.where(np.isinf(got_w), np.copysign(big, got_w), got_w)
    _, exponent = np.frexp(ref)
    exponent = np.maximum(exponent - 1, info.minexp)
    return np.abs(got_w - ref) / np.ldexp(wide(1), exponent - (p - 1))


def check(name: str, dtype: str, *args: np.ndarray) -> float:
    """Max ulp error of the compiled function on args; asserts bound and specials."""
    args = [np.asarray(a, dtype=dtype) for a in args]
    got = compile_loop(name, dtype)(*args)
    ref, bound = reference(name, dtype, *args)
    with np.errstate(all="ignore"):
        exact_needed = ~np.isfinite(ref) | (ref == 0)
        expected = ref.astype(dtype)
    same = (np.isnan(got) & np.isnan(expected)) | (
        (got == expected) & (np.signbit(got) == np.signbit(expected)))
    bad = exact_needed & ~same
    if bad.any():
        i = np.flatnonzero(bad)[:5]
        raise AssertionError(f"{name} {dtype}: special values differ at "
                             f"{[tuple(a[j] for a in args) for j in i]}: got {got[i]}, "
                             f"NumPy {expected[i]}")
    finite = ~exact_needed
    if not finite.any():
        return 0.0
    errors = ulp_error(got[finite], ref[finite], dtype)
    worst = int(np.argmax(errors))
    if errors[worst] > bound:
        where = tuple(a[finite][worst] for a in args)
        raise AssertionError(f"{name} {dtype}: {float(errors[worst]):.2f} ulp at {where}: "
                             f"got {got[finite][worst]!r}, reference {ref[finite][worst]!r}")
    return float(errors[worst])


# -- samples ----------------------------------------------------------------------------
def log_uniform(dtype: str, n: int, rng, lo_exp=None, hi_exp=None) -> np.ndarray:
    info = np.finfo(dtype)
    lo = info.minexp - info.nmant if lo_exp is None else lo_exp
    hi = info.maxexp if hi_exp is None else hi_exp
    magnitude = np.exp2(rng.uniform(lo, hi, n).astype(np.longdouble))
    with np.errstate(over="ignore"):
        x = magnitude.astype(dtype)
    x[~np.isfinite(x)] = info.max
    return np.where(rng.random(n) < 0.5, -x, x).astype(dtype)


def subnormals(dtype: str, n: int, rng) -> np.ndarray:
    info = np.finfo(dtype)
    scale = float(info.smallest_normal)
    return (rng.uniform(-1, 1, n) * scale).astype(dtype)


def specials(dtype: str) -> np.ndarray:
    info = np.finfo(dtype)
    values = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0,
              float(info.max), -float(info.max), float(info.smallest_normal),
              float(info.smallest_subnormal), -float(info.smallest_subnormal),
              float(info.eps), 1 - float(info.epsneg), 1 + float(info.eps)]
    return np.array(values, dtype=dtype)


def neighbours(points, dtype: str, steps: int = 3) -> np.ndarray:
    """Each point rounded to dtype and its `steps` neighbours either side."""
    with np.errstate(over="ignore"):   # float64 points beyond float32's range become inf
        x = np.asarray(points, dtype=dtype)
    out = [x]
    up, down = x.copy(), x.copy()
    for _ in range(steps):
        up = np.nextafter(up, np.asarray(np.inf, dtype))
        down = np.nextafter(down, np.asarray(-np.inf, dtype))
        out += [up, down]
    return np.concatenate(out)


def boundaries(name: str, dtype: str) -> np.ndarray:
    info = np.finfo(dtype)
    log_max = float(np.log(np.longdouble(info.max)))
    log_min = float(np.log(np.longdouble(info.smallest_subnormal)))
    log_norm = float(np.log(np.longdouble(info.smallest_normal)))
    ln2_multiples = np.arange(-1100, 1100) * np.log(2.0) / 2
    pts = [log_max, log_min, log_norm, -log_max, -log_min, 0.5, 1.0, 4.0, 6.0, 9.0, 19.0,
           20.0, 2.0 ** -(info.nmant + 2), -(2.0 ** -(info.nmant + 2)),
           2.0 ** -(info.nmant + 1), 0.3465735902799726, -0.3465735902799726]
    pts += list(ln2_multiples[np.abs(ln2_multiples) < 800])
    if name in ("sin", "cos"):
        k = np.concatenate([np.arange(-64, 64), np.round(np.exp2(np.arange(4, 60, 0.7)))])
        pts += list(k * (np.pi / 2)) + list(k * np.pi / 4)
        pts += [6381956970095103 * 2.0 ** 797, 5.319372648326541e+255, 1e22, 1.6e38, 3e38]
    if name in ("log", "log1p"):
        pts += [1.0, -1.0, 0.7071067811865476, 1.4142135623730951, np.sqrt(2) - 1,
                np.sqrt(0.5) - 1, 0.0, 1e-300, 1e300]
    return neighbours(pts, dtype, 4)


def dense(name: str, dtype: str, rng, n: int) -> np.ndarray:
    span = {"exp": (-110, 90) if dtype == "float32" else (-750, 712),
            "expm1": (-45, 90), "tanh": (-22, 22), "sigmoid": (-110, 110),
            "softplus": (-110, 110), "erf": (-7, 7), "sin": (-40, 40), "cos": (-40, 40),
            "log": (0, 4), "log1p": (-1, 4)}[name]
    return rng.uniform(*span, n).astype(dtype)


def unary_samples(name: str, dtype: str, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([log_uniform(dtype, n, rng), dense(name, dtype, rng, n),
                           log_uniform(dtype, n // 4, rng, -30, 8),
                           specials(dtype), subnormals(dtype, 2000, rng),
                           boundaries(name, dtype)])


def pow_samples(dtype: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sp = np.concatenate([specials(dtype),
                         np.array([3, -3, 2.5, -2.5, 0.25, 1e10, -1e10, 9007199254740993.0,
                                   -16777217.0, 16777217.0, 4, -4], dtype=dtype)])
    xs, ys = np.meshgrid(sp, sp)
    x1 = log_uniform(dtype, n, rng)
    y1 = log_uniform(dtype, n, rng, -20, 12)
    # results near the overflow and underflow thresholds and negative bases with integers
    x2 = log_uniform(dtype, n, rng, -10, 10)
    limit = np.log2(float(np.finfo(dtype).max))
    y2 = (rng.uniform(-1.1, 1.1, n) * limit / np.log2(np.abs(x2.astype(np.float64)))).astype(dtype)
    x3 = rng.uniform(-3, 3, n).astype(dtype)
    y3 = rng.integers(-60, 60, n).astype(dtype)
    x4 = neighbours([1.0, -1.0], dtype, 50)
    y4 = np.full_like(x4, 1e6 if dtype == "float32" else 1e15)
    x = np.concatenate([xs.ravel(), x1, x2, x3, x4, -x4])
    y = np.concatenate([ys.ravel(), y1, y2, y3, y4, y4])
    return x, y


MEASURED: dict = {}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UNARY)
def test_unary_accuracy(name, dtype):
    MEASURED[(name, dtype)] = check(name, dtype, unary_samples(name, dtype, 20000))


@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_accuracy(dtype):
    MEASURED[("pow", dtype)] = check("pow", dtype, *pow_samples(dtype, 20000))


def test_exact_special_values():
    """A few answers spelled out, NumPy's conventions."""
    for dtype in DTYPES:
        inf, nan = np.inf, np.nan
        pw = compile_loop("pow", dtype)
        x = np.array([-0.0, -0.0, 0.0, -inf, -inf, -1, -1, 1, nan, -2, -8], dtype)
        y = np.array([-3, 3, -2, -3, 3, inf, -inf, nan, 0, 0.5, 1 / 3], dtype)
        expect = np.array([-inf, -0.0, inf, -0.0, -inf, 1, 1, 1, 1, nan, nan], dtype)
        got = pw(x, y)
        np.testing.assert_array_equal(got, expect)
        assert np.array_equal(np.signbit(got), np.signbit(expect))
        assert compile_loop("tanh", dtype)(np.array([30, -30], dtype)).tolist() == [1, -1]
        assert compile_loop("log", dtype)(np.array([0.0, -0.0], dtype)).tolist() == [-inf] * 2
        assert np.signbit(compile_loop("expm1", dtype)(np.array([-0.0], dtype)))[0]


def test_declare_math_caches_and_rejects():
    import llvmlite.ir as ir

    from graphk.codegen.llvm.mathlib import declare_math

    module = ir.Module("m")
    first = declare_math(module, "exp", "float32")
    assert declare_math(module, "exp", "float32") is first
    assert first.name == "graphk.exp.f32" and "alwaysinline" in first.attributes
    assert len(declare_math(module, "pow", "float64").args) == 2
    with pytest.raises(NotImplementedError, match="no function 'gamma'"):
        declare_math(module, "gamma", "float32")
    with pytest.raises(NotImplementedError, match="float16"):
        declare_math(module, "exp", "float16")


def test_loops_vectorize():
    """Every function's loop is widened to SIMD vectors, with no calls left but LLVM
    intrinsics (no libm)."""
    for dtype, scalar in (("float32", "float"), ("float64", "double")):
        for name in MATH_FUNCTIONS:
            text = compile_loop(name, dtype).optimized_ir()
            widths = {int(w) for w in re.findall(rf"<(\d+) x {scalar}>", text)}
            assert widths and max(widths) >= (8 if dtype == "float32" else 4), (name, dtype)
            calls = [line for line in text.splitlines() if " call " in line]
            assert all("@llvm." in line for line in calls), (name, dtype, calls[:3])
    asm = compile_loop("exp", "float32").assembly()
    assert "%ymm" in asm or "%zmm" in asm


@pytest.mark.parametrize("cpu", ["haswell"])
def test_loops_vectorize_without_avx512(cpu):
    """Compiled for an AVX2-only CPU (whatever this host has), the loops still widen:
    8 float32 lanes, 4 float64 (sin/cos compute in float64: 4 and 2)."""
    import llvmlite.binding as llvm

    from graphk.codegen.llvm import target
    from graphk.codegen.llvm.mathlib.loops import loop_module

    target.initialize()
    machine = llvm.Target.from_triple(llvm.get_process_triple()).create_target_machine(
        cpu=cpu, features="", opt=3, jit=True)
    for dtype, scalar, lanes in (("float32", "float", 8), ("float64", "double", 4)):
        for name in ("exp", "tanh", "pow", "sin"):
            module = llvm.parse_assembly(str(loop_module(name, dtype)))
            options = llvm.create_pipeline_tuning_options(speed_level=3)
            options.loop_vectorization = True
            options.slp_vectorization = True
            passes = llvm.create_pass_builder(machine, options)
            passes.getModulePassManager().run(module, passes)
            widths = [int(w) for w in re.findall(rf"<(\d+) x {scalar}>", str(module))]
            expected = lanes // 2 if name == "sin" else lanes
            assert widths and max(widths) >= expected, (cpu, name, dtype, set(widths))


def sweep(names, stride: int = 1, offset: int = 0, block: int = 1 << 24) -> dict:
    """Max ulp error of each float32 function over the bit patterns offset + k*stride."""
    results = {}
    for name in names:
        loop = compile_loop(name, "float32")
        worst, where = 0.0, None
        for start in range(offset, 1 << 32, block * stride):
            bits = np.arange(start, min(start + block * stride, 1 << 32), stride,
                             dtype=np.uint64).astype(np.uint32)
            x = bits.view(np.float32)
            got = loop(x)
            ref, _ = reference(name, "float32", x)
            with np.errstate(all="ignore"):
                expected = ref.astype(np.float32)
            exact = ~np.isfinite(ref) | (ref == 0)
            same = (np.isnan(got) & np.isnan(expected)) | (
                (got == expected) & (np.signbit(got) == np.signbit(expected)))
            if (exact & ~same).any():
                i = np.flatnonzero(exact & ~same)[0]
                print(f"  {name}: special mismatch at {x[i]!r}: {got[i]!r} vs {expected[i]!r}")
                worst = np.inf
            errors = ulp_error(got[~exact], ref[~exact], "float32")
            if errors.size and errors.max() > worst:
                worst = float(errors.max())
                where = x[~exact][int(np.argmax(errors))]
        results[name] = (worst, where)
        print(f"{name:9s} float32: max {worst:.3f} ulp at {where!r}", flush=True)
    return results


if __name__ == "__main__":
    args = sys.argv[1:]
    options = {"--stride": 1, "--offset": 0}
    for flag in options:
        if flag in args:
            i = args.index(flag)
            options[flag] = int(args[i + 1])
            del args[i:i + 2]
    sweep(args or UNARY, options["--stride"], options["--offset"])

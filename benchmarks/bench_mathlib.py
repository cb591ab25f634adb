"""Throughput of graphk's LLVM math library against NumPy (and SciPy's erf).

    taskset -c 0 .venv/bin/python benchmarks/bench_mathlib.py [--size N] [--rounds R]

Each function runs as one compiled loop over a contiguous array (mathlib.loops), NumPy
as its ufunc (or the eager expression a user would write: sigmoid is 1/(1+exp(-x))),
both writing into preallocated outputs, on 65536 elements by default (in L2: this
measures arithmetic, not memory). Candidates are timed in interleaved rounds in one
process (benchmarks/interleaved.py); the table gives medians over rounds and, in
parentheses, the best round (the figure to trust on a busy machine). Prints a markdown
table of nanoseconds per element and NumPy's time over graphk's.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from interleaved import interleave, median_ratio, medians  # noqa: E402

from graphk.codegen.llvm import target  # noqa: E402
from graphk.codegen.llvm.mathlib import MATH_FUNCTIONS  # noqa: E402
from graphk.codegen.llvm.mathlib.loops import compile_loop  # noqa: E402

try:
    from scipy.special import erf as scipy_erf
except ImportError:
    scipy_erf = None

# inputs a model would meet; pow's second argument is the exponent
INPUTS = {
    "exp": (-10, 10), "expm1": (-2, 2), "log": (0.01, 100), "log1p": (-0.5, 10),
    "tanh": (-5, 5), "sigmoid": (-10, 10), "softplus": (-10, 10), "erf": (-4, 4),
    "sin": (-100, 100), "cos": (-100, 100), "pow": ((0.1, 10), (-5, 5)),
}


def numpy_version(name: str):
    """NumPy's (or SciPy's) way to compute `name` into `out`, or None."""
    if name == "sigmoid":
        def sigmoid(x, out):
            np.negative(x, out=out)
            np.exp(out, out=out)
            out += 1
            np.reciprocal(out, out=out)
        return sigmoid
    if name == "softplus":
        return lambda x, out: np.logaddexp(0, x, out=out)
    if name == "erf":
        return None if scipy_erf is None else (lambda x, out: scipy_erf(x, out=out))
    ufunc = getattr(np, "power" if name == "pow" else name)
    return lambda *args, out: ufunc(*args, out=out)


def arguments(name: str, dtype: str, size: int, rng) -> list[np.ndarray]:
    spans = INPUTS[name] if name == "pow" else (INPUTS[name],)
    return [rng.uniform(lo, hi, size).astype(dtype) for lo, hi in spans]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1 << 16)  # L2-resident: compute, not memory
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    rng = np.random.default_rng(0)
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"host {target.host_cpu()[0]}, vector bits {target.vector_bits()}, "
          f"cpus {affinity}, {options.size} elements, {options.rounds} rounds\n")
    print("ns/elem: median over rounds (best round); ratio: NumPy's time over graphk's, "
          "median of per-round ratios (best over best)\n")
    print("| function | dtype | graphk ns/elem | NumPy ns/elem | NumPy / graphk |")
    print("|---|---|---:|---:|---:|")
    for name in MATH_FUNCTIONS:
        for dtype in ("float32", "float64"):
            args = arguments(name, dtype, options.size, rng)
            loop = compile_loop(name, dtype)
            ours, theirs = np.empty_like(args[0]), np.empty_like(args[0])
            candidates = {"graphk": lambda loop=loop, args=args, out=ours: loop(*args, out=out)}
            reference = numpy_version(name)
            if reference is not None:
                candidates["numpy"] = (lambda f=reference, args=args, out=theirs:
                                       f(*args, out=out))
            times = interleave(candidates, options.rounds, options.repeat)
            scale = 1e6 / options.size
            median = {k: v * scale for k, v in medians(times).items()}
            best = {k: min(v) * scale for k, v in times.items()}
            cells = [f"{median[k]:.2f} ({best[k]:.2f})" for k in ("graphk", "numpy")
                     if k in times]
            if reference is None:
                print(f"| {name} | {dtype} | {cells[0]} | - | - |")
                continue
            ratio = median_ratio(times, "numpy", "graphk")
            print(f"| {name} | {dtype} | {cells[0]} | {cells[1]} | "
                  f"{ratio:.2f}x ({best['numpy'] / best['graphk']:.2f}x) |", flush=True)


if __name__ == "__main__":
    main()

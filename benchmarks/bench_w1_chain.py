"""W1: the elementwise chain y = tanh(0.5 x + 1) * sigmoid(x) + 0.1 exp(-x*x) - 0.3 |x|
on 4M float32, graphk (LLVM and NumPy lowerings) against NumPy eager and a memory floor.

    taskset -c 0 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 GRAPHK_NUM_THREADS=1 \\
        .venv/bin/python benchmarks/bench_w1_chain.py        # one core
    .venv/bin/python benchmarks/bench_w1_chain.py            # default threads

Candidates are timed in interleaved rounds in one process; figures are medians
over rounds (benchmarks/interleaved.py). The floor is np.copyto of the input
into a preallocated output (one read and one write of 16 MB: what any
implementation must at least move). JAX runs in its own venv:
benchmarks/jax_compare.py.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interleaved import interleave, medians  # noqa: E402

from graphk import backend as K  # noqa: E402

N = 4 * 1024 * 1024


def numpy_eager(x):
    return (np.tanh(0.5 * x + 1) * (1 / (1 + np.exp(-x))) + 0.1 * np.exp(-x * x)
            - 0.3 * np.abs(x))


def graphk_function(backend: str):
    x = K.placeholder((None,), dtype="float32")
    y = K.tanh(0.5 * x + 1) * K.sigmoid(x) + 0.1 * K.exp(-x * x) - 0.3 * K.abs(x)
    return K.function([x], [y], backend=backend)


def main(rounds: int = 11, repeat: int = 5) -> dict:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(N).astype(np.float32)
    out = np.empty_like(x)
    llvm, numpy = graphk_function("llvm"), graphk_function("numpy")
    want = numpy_eager(x)
    for fn in (llvm, numpy):
        got = fn([x])[0]
        assert np.allclose(got, want, rtol=1e-5, atol=1e-6), np.abs(got - want).max()
    candidates = {
        "numpy eager": lambda: numpy_eager(x),
        "graphk llvm": lambda: llvm([x]),
        "graphk numpy": lambda: numpy([x]),
        "floor (np.copyto)": lambda: np.copyto(out, x),
    }
    times = interleave(candidates, rounds, repeat)
    result = medians(times)
    eager = result["numpy eager"]
    threads = os.environ.get("GRAPHK_NUM_THREADS", "default")
    print(f"W1 chain, {N} float32, threads={threads}, medians of {rounds} rounds")
    for name, ms in result.items():
        print(f"  {name:20s} {ms:8.3f} ms   {ms / eager:6.3f}x numpy eager   "
              f"{ms / result['floor (np.copyto)']:6.2f}x floor")
    return result


if __name__ == "__main__":
    main()

"""W1: the elementwise chain y = tanh(0.5x + 1) sigmoid(x) + 0.1 exp(-x^2) - 0.3 |x| on 4M float32.

Candidates, interleaved in one process (each figure the median of per-round times):
- numpy eager: the expression written out in NumPy (one full-size temporary per op);
- numpy blocked: the same by hand in cache-sized blocks with out= buffers (the bound
  a blocked NumPy lowering can reach);
- graphk fused: K.function with the default pipeline (one fused node, evaluated by the
  blocked NumPy lowering);
- graphk unfused: K.function(passes="none"), one NumPy call per node;
- graphk llvm: K.function(backend="llvm"), the fused node as one LLVM loop (codegen/llvm);
- floor: np.copyto of x into a preallocated output, the memory traffic any
  implementation needs (read 16 MB, write 16 MB).

Run (pinned, one BLAS thread; and again without taskset for default threads):
    OPENBLAS_NUM_THREADS=1 taskset -c 0 .venv/bin/python benchmarks/bench_w1_chain.py
"""
import numpy as np

from graphk import backend as K
from interleaved import interleave, median_ratio, medians

SIZE = 4 * 1024 * 1024
BLOCK = 8192


def w1(x):
    return K.tanh(0.5 * x + 1) * K.sigmoid(x) + 0.1 * K.exp(-x * x) - 0.3 * K.abs(x)


def numpy_eager(x):
    return np.tanh(0.5 * x + 1) / (1 + np.exp(-x)) + 0.1 * np.exp(-x * x) - 0.3 * np.abs(x)


def numpy_blocked(x, out, t0, t1):
    for s in range(0, len(x), BLOCK):
        b, o = x[s:s + BLOCK], out[s:s + BLOCK]
        a, c = t0[:len(b)], t1[:len(b)]
        np.multiply(b, 0.5, out=a)
        a += 1
        np.tanh(a, out=a)
        np.negative(b, out=c)
        np.exp(c, out=c)
        c += 1
        np.divide(a, c, out=a)
        np.multiply(b, b, out=c)
        np.negative(c, out=c)
        np.exp(c, out=c)
        c *= 0.1
        a += c
        np.abs(b, out=c)
        c *= 0.3
        np.subtract(a, c, out=o)
    return out


def main(rounds: int = 15, repeat: int = 3) -> None:
    x = np.random.default_rng(0).normal(size=SIZE).astype(np.float32)
    placeholder = K.placeholder((None,), name="x")
    fused = K.function([placeholder], [w1(placeholder)], name="w1")
    unfused = K.function([placeholder], [w1(placeholder)], name="w1_unfused", passes="none")
    llvm = K.function([placeholder], [w1(placeholder)], name="w1_llvm", backend="llvm")
    fused_ops = [n.op.name for n in fused.ir.nodes if not n.op.leaf]
    print(f"graphk IR after the pipeline: {fused_ops} "
          f"({len(unfused.ir.nodes)} nodes unfused, {len(fused.ir.nodes)} fused)")
    out, t0, t1 = (np.empty(SIZE, np.float32), np.empty(BLOCK, np.float32),
                   np.empty(BLOCK, np.float32))
    expected = numpy_eager(x)
    floor_out = np.empty_like(x)
    for got in (fused([x])[0], unfused([x])[0], numpy_blocked(x, out, t0, t1), llvm([x])[0]):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    times = interleave({"numpy eager": lambda: numpy_eager(x),
                        "numpy blocked": lambda: numpy_blocked(x, out, t0, t1),
                        "graphk fused": lambda: fused([x]),
                        "graphk unfused": lambda: unfused([x]),
                        "graphk llvm": lambda: llvm([x]),
                        "floor": lambda: np.copyto(floor_out, x)}, rounds, repeat)
    for name, ms in medians(times).items():
        print(f"{name:15s}: {ms:8.3f} ms")
    for name in ("numpy blocked", "graphk fused", "graphk unfused", "graphk llvm", "floor"):
        print(f"{name} / numpy eager: {median_ratio(times, name, 'numpy eager'):.2f}x "
              "(median of rounds)")
    print(f"graphk llvm / floor: {median_ratio(times, 'graphk llvm', 'floor'):.2f}x")


if __name__ == "__main__":
    main()

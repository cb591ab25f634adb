"""Where a fused node should leave NumPy for LLVM: the native call's fixed cost against
the blocked NumPy kernel, by size, for an elementwise chain and a row softmax.

    .venv/bin/python benchmarks/bench_llvm_overhead.py

Prints microseconds of CPU time per call (process time: these calls are single-threaded,
and CPU time is what a busy machine distorts least) of each fused node's two kernels
(codegen/llvm/runtime.py FusedKernel with NumPy disabled, and codegen/fused_numpy.py),
medians of interleaved rounds. The constants of codegen/llvm/cost.py (auto's cost
model) come from such measurements.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interleaved  # noqa: E402
from interleaved import interleave, medians  # noqa: E402

from graphk import backend as K  # noqa: E402
from graphk.codegen.fused_numpy import compile_fused as compile_numpy  # noqa: E402
from graphk.codegen.llvm import compile_fused  # noqa: E402


def fused_node(kind: str):
    x = K.placeholder((None, 16))
    if kind == "chain":
        y = K.tanh(0.5 * x + 1) * K.sigmoid(x) + 0.1 * K.exp(-x * x) - 0.3 * K.abs(x)
    else:
        y = K.softmax(x)
    fn = K.function([x], [y], backend="numpy")
    return next(n for n in fn.ir.nodes if n.op.name == "fused")


def _cpu_ms(fn, repeat: int) -> float:
    start = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - start) / repeat * 1e3


def main(rounds: int = 7) -> None:
    interleaved.timed_ms = _cpu_ms
    rng = np.random.default_rng(0)
    for kind in ("chain", "softmax"):
        node = fused_node(kind)
        ops = sum(1 for n in node.attrs["body"].nodes if n.op.name != "placeholder")
        native, numpy = compile_fused(node, small_on_numpy=False), compile_numpy(node)
        print(f"{kind} ({ops} body ops): microseconds per call")
        for rows in (1, 4, 16, 64, 256, 1024):
            x = rng.standard_normal((rows, 16)).astype(np.float32)
            times = medians(interleave({"llvm": lambda k=native, a=x: k(a),
                                         "numpy": lambda k=numpy, a=x: k(a)},
                                       rounds, repeat=200))
            print(f"  {rows * 16:7d} elements ({rows * 16 * ops:8d} element-ops): "
                  f"llvm {times['llvm'] * 1e3:8.1f}  numpy {times['numpy'] * 1e3:8.1f}")


if __name__ == "__main__":
    main()

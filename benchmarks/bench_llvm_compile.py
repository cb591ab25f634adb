"""Compile time of one LLVM kernel: cold, warm (same process) and from the disk cache
(a second process), and the fixed cost of a native call against NumPy's small-size path.

    .venv/bin/python benchmarks/bench_llvm_compile.py

Wall and CPU (process) time are both printed: on a busy machine wall time overstates.
Each measurement runs in a fresh process with GRAPHK_CACHE_DIR pointing at a new
temporary directory, so "cold" compiles and "second process" finds only the object
code the first one wrote. Times are K.function build + compile of the W1 chain and
of a row softmax (passes, lowering, LLVM), medians of 5 processes each.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from graphk import backend as K
from graphk.codegen.llvm import target
from graphk.codegen.llvm.compiler import STATS
target.initialize(); target.target_machine()
t1 = time.perf_counter()
def build(kind):
    x = K.placeholder((None, 1000))
    if kind == "w1":
        y = K.tanh(0.5 * x + 1) * K.sigmoid(x) + 0.1 * K.exp(-x * x) - 0.3 * K.abs(x)
    else:
        y = K.softmax(x)
    start, cpu = time.perf_counter(), time.process_time()
    K.function([x], [y], backend="llvm")
    return time.perf_counter() - start, time.process_time() - cpu
first = build(sys.argv[1])
second = build(sys.argv[1])
print(json.dumps({"import": t1 - t0, "first": first, "second": second, "stats": STATS}))
"""


def run(kind: str, cache: str) -> dict:
    env = dict(os.environ, GRAPHK_CACHE_DIR=cache)
    out = subprocess.run([sys.executable, "-c", CHILD, kind], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(processes: int = 5) -> None:
    for kind in ("w1", "softmax"):
        cold, warm, disk = [], [], []
        for _ in range(processes):
            with tempfile.TemporaryDirectory() as cache:
                first = run(kind, cache)
                again = run(kind, cache)
            assert first["stats"]["compiled"] == 1 and again["stats"]["compiled"] == 0
            cold.append(first["first"])
            warm.append(first["second"])
            disk.append(again["first"])

        def ms(times, k):
            return statistics.median(t[k] for t in times) * 1e3
        print(f"{kind}: K.function build+compile, median of {processes} processes, "
              f"wall (CPU) ms: cold {ms(cold, 0):.1f} ({ms(cold, 1):.1f}), "
              f"warm (memory cache) {ms(warm, 0):.1f} ({ms(warm, 1):.1f}), "
              f"second process (disk cache) {ms(disk, 0):.1f} ({ms(disk, 1):.1f})")


if __name__ == "__main__":
    main()

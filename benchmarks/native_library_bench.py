"""What bench_llvm_windows.py and bench_llvm_batch_norm.py share: per-call CPU time of a
native kernel against the node's NumPy kernel in interleaved rounds (process CPU time in
microseconds, medians; every round times each candidate once in turn, so machine noise
hits them alike), and a native library's cold compile and disk-cache load, each measured
in a fresh process."""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROUNDS, REPEAT = 15, 200


def placeholder_like(array):
    """An IR placeholder of the array's dtype and shape (to build the node to time)."""
    from graphk.ir.ops.leaf import placeholder
    from graphk.ir.types import TensorType
    return placeholder(TensorType(str(array.dtype), array.shape))


def _cpu_us(fn, args) -> float:
    start = time.process_time()
    for _ in range(REPEAT):
        fn(*args)
    return (time.process_time() - start) / REPEAT * 1e6


def per_call(cases: dict, native_for, check) -> None:
    """cases: name -> (node, input arrays); native_for(node) -> (kernel, reason);
    check(native results, NumPy results) raises when they differ."""
    width = max(len(name) for name in cases) + 2
    print(f"{'op':{width}s} {'numpy us':>9s} {'native us':>10s} {'speedup':>8s}")
    for name, (node, args) in cases.items():
        native, reason = native_for(node)
        assert native is not None, reason
        numpy_kernel = node.op.bound_kernel(node.attrs)
        check(native(*args), numpy_kernel(*args))
        times = {"numpy": [], "native": []}
        for _ in range(ROUNDS):  # each round times both: machine noise hits them alike
            times["numpy"].append(_cpu_us(numpy_kernel, args))
            times["native"].append(_cpu_us(native, args))
        numpy_us, native_us = (statistics.median(times[k]) for k in ("numpy", "native"))
        print(f"{name:{width}s} {numpy_us:9.1f} {native_us:10.1f} {numpy_us / native_us:7.1f}x")


CHILD = r"""
import importlib, json, time
from graphk.codegen.llvm import target
target.initialize(); target.target_machine()
library = importlib.import_module("graphk.codegen.llvm.{module}")._LIBRARY
started = time.process_time()
library.functions()
print(json.dumps({{"source": library.record["source"], "wall": library.record["seconds"],
                  "cpu": time.process_time() - started}}))
"""


def library_times(module: str, label: str, processes: int = 3) -> None:
    """Cold compile (empty cache directory) and disk-cache load of the `_LIBRARY` of
    graphk.codegen.llvm.<module>, each in its own process."""
    results = {"compiled": [], "disk": []}
    for _ in range(processes):
        with tempfile.TemporaryDirectory() as directory:
            env = dict(os.environ, GRAPHK_CACHE_DIR=directory)
            for _ in range(2):  # the first compiles and stores, the second loads
                done = subprocess.run([sys.executable, "-c", CHILD.format(module=module)],
                                      env=env, check=True, capture_output=True, text=True,
                                      cwd=os.getcwd())
                result = json.loads(done.stdout)
                results[result["source"]].append(result)
    for source, runs in results.items():
        wall = statistics.median(r["wall"] for r in runs) * 1e3
        cpu = statistics.median(r["cpu"] for r in runs) * 1e3
        print(f"{label} {source:9s}: {wall:7.1f} ms wall, {cpu:7.1f} ms CPU "
              f"(median of {len(runs)} processes)")

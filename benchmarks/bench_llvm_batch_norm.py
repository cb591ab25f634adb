"""Native batch normalization kernels (codegen/llvm/batch_norm_native.py) against the NumPy
kernels, per call, on the shapes of the Keras digits CNN's training step (batch 32,
Conv2D(32)-BN-MaxPool-Conv2D(64)-BN, channels_last, float32); then the library's cold
compile and its load from the disk cache, each in a fresh process.

    taskset -c 0 env OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_llvm_batch_norm.py

Per-call figures are process CPU time (microseconds), medians over interleaved rounds:
every round times each candidate once in turn, so machine noise hits them alike.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROUNDS, REPEAT = 15, 200


def _cases():
    from graphk.ir.ops.leaf import placeholder
    from graphk.ir.ops.normalization import batch_norm_train, batch_norm_train_grad
    from graphk.ir.types import TensorType

    rng = np.random.default_rng(0)

    def value(array):
        return placeholder(TensorType(str(array.dtype), array.shape))

    cases = {}
    for shape in ((32, 8, 8, 32), (32, 4, 4, 64)):
        axes = (0, 1, 2)
        x = rng.standard_normal(shape).astype(np.float32)
        gamma = rng.uniform(0.5, 2, shape[-1]).astype(np.float32)
        beta = rng.standard_normal(shape[-1]).astype(np.float32)
        forward = batch_norm_train(value(x), value(gamma), value(beta), axes)
        _, mean, var = forward[0].node.op.bound_kernel(forward[0].node.attrs)(x, gamma, beta)
        gy = rng.standard_normal(shape).astype(np.float32)
        backward = batch_norm_train_grad(value(gy), value(x), value(gamma), value(mean),
                                         value(var), axes, 1e-3)
        cases[f"batch_norm_train {shape}"] = (forward[0].node, (x, gamma, beta))
        cases[f"batch_norm_train_grad {shape}"] = (backward[0].node,
                                                   (gy, x, gamma, mean, var))
    return cases


def _cpu_us(fn, args) -> float:
    start = time.process_time()
    for _ in range(REPEAT):
        fn(*args)
    return (time.process_time() - start) / REPEAT * 1e6


def per_call() -> None:
    from graphk.codegen.llvm.batch_norm_native import batch_norm_kernel

    print(f"{'op':40s} {'numpy us':>9s} {'native us':>10s} {'speedup':>8s}")
    for name, (node, args) in _cases().items():
        native, reason = batch_norm_kernel(node)
        assert native is not None, reason
        numpy_kernel = node.op.bound_kernel(node.attrs)
        for got, want in zip(native(*args), numpy_kernel(*args)):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        times = {"numpy": [], "native": []}
        for _ in range(ROUNDS):
            times["numpy"].append(_cpu_us(numpy_kernel, args))
            times["native"].append(_cpu_us(native, args))
        numpy_us, native_us = (statistics.median(times[k]) for k in ("numpy", "native"))
        print(f"{name:40s} {numpy_us:9.1f} {native_us:10.1f} {numpy_us / native_us:7.1f}x")


CHILD = r"""
import json, time
from graphk.codegen.llvm import target
target.initialize(); target.target_machine()
from graphk.codegen.llvm import batch_norm_native
started = time.process_time()
batch_norm_native._LIBRARY.functions()
record = batch_norm_native._LIBRARY.record
print(json.dumps({"source": record["source"], "wall": record["seconds"],
                  "cpu": time.process_time() - started}))
"""


def library_times(processes: int = 3) -> None:
    """Cold compile (empty cache directory) and disk-cache load, each in its own process."""
    results = {"compiled": [], "disk": []}
    for _ in range(processes):
        with tempfile.TemporaryDirectory() as directory:
            env = dict(os.environ, GRAPHK_CACHE_DIR=directory)
            for _ in range(2):  # the first compiles and stores, the second loads
                done = subprocess.run([sys.executable, "-c", CHILD], env=env, check=True,
                                      capture_output=True, text=True, cwd=os.getcwd())
                result = json.loads(done.stdout)
                results[result["source"]].append(result)
    for source, runs in results.items():
        wall = statistics.median(r["wall"] for r in runs) * 1e3
        cpu = statistics.median(r["cpu"] for r in runs) * 1e3
        print(f"batch norm library {source:9s}: {wall:7.1f} ms wall, {cpu:7.1f} ms CPU "
              f"(median of {len(runs)} processes)")


if __name__ == "__main__":
    per_call()
    library_times()

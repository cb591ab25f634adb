"""Native window kernels (codegen/llvm/windows.py) against the NumPy kernels, per call,
on the shapes of the Keras digits CNN's training step (batch 32, Conv2D(32, 3, same) -
MaxPool(2) - Conv2D(64, 3, same), channels_last, float32); then the window library's
cold compile and its load from the disk cache, each in a fresh process.

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_llvm_windows.py

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
    from graphk.ir.ops import conv, pool
    from graphk.ir.ops.leaf import placeholder
    from graphk.ir.types import TensorType

    rng = np.random.default_rng(0)

    def value(array):
        return placeholder(TensorType(str(array.dtype), array.shape))

    def relu(shape):  # activations after a ReLU: about half zeros, so windows tie
        return np.maximum(rng.standard_normal(shape), 0).astype(np.float32)

    window = {"kernel_size": (3, 3), "strides": (1, 1), "dilation": (1, 1), "padding": "same"}
    pooling = {"pool_size": (2, 2), "strides": (2, 2)}
    image, conv1, pooled = relu((32, 8, 8, 1)), relu((32, 8, 8, 32)), None
    pooled = pool._max_pool(conv1, padding="valid", data_format="channels_last", **pooling)
    g = rng.standard_normal(pooled.shape).astype(np.float32)
    patches = rng.standard_normal((32, 4, 4, 3, 3, 32)).astype(np.float32)
    like = ("dim", 0, 1), ("dim", 0, 2)
    return {
        "max_pool_grad (32,8,8,32)": (pool.max_pool_grad(value(g), value(conv1), value(pooled),
                                                         **pooling), (g, conv1, pooled)),
        "scatter_patches ->(32,4,4,32)": (conv.scatter_patches(value(patches), like,
                                                               [value(pooled)], **window),
                                          (patches, pooled)),
        "extract_patches (32,4,4,32)": (conv.extract_patches(value(pooled), **window),
                                        (pooled,)),
        "extract_patches (32,8,8,1)": (conv.extract_patches(value(image), **window), (image,)),
        "max_pool (32,8,8,32)": (pool.max_pool(value(conv1), **pooling), (conv1,)),
    }


def _cpu_us(fn, args) -> float:
    start = time.process_time()
    for _ in range(REPEAT):
        fn(*args)
    return (time.process_time() - start) / REPEAT * 1e6


def per_call() -> None:
    from graphk.codegen.llvm.windows import window_kernel

    print(f"{'op':32s} {'numpy us':>9s} {'native us':>10s} {'speedup':>8s}")
    for name, (out, args) in _cases().items():
        node = out.node
        native, reason = window_kernel(node)
        assert native is not None, reason
        numpy_kernel = node.op.bound_kernel(node.attrs)
        np.testing.assert_array_equal(native(*args), numpy_kernel(*args))
        times = {"numpy": [], "native": []}
        for _ in range(ROUNDS):
            times["numpy"].append(_cpu_us(numpy_kernel, args))
            times["native"].append(_cpu_us(native, args))
        numpy_us, native_us = (statistics.median(times[k]) for k in ("numpy", "native"))
        print(f"{name:32s} {numpy_us:9.1f} {native_us:10.1f} {numpy_us / native_us:7.1f}x")


CHILD = r"""
import json, time
from graphk.codegen.llvm import target
target.initialize(); target.target_machine()
from graphk.codegen.llvm import windows
started = time.process_time()
windows._load_library()
print(json.dumps({"source": windows._library["source"], "wall": windows._library["seconds"],
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
        print(f"window library {source:9s}: {wall:7.1f} ms wall, {cpu:7.1f} ms CPU "
              f"(median of {len(runs)} processes)")


if __name__ == "__main__":
    per_call()
    library_times()

"""Native window kernels (codegen/llvm/windows.py) against the NumPy kernels, per call,
on the shapes of the Keras digits CNN's training step (batch 32, Conv2D(32, 3, same) -
MaxPool(2) - Conv2D(64, 3, same), channels_last, float32); then the window library's
cold compile and its load from the disk cache, each in a fresh process.

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_llvm_windows.py

(timed as benchmarks/native_library_bench.py says)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from native_library_bench import (library_times, per_call,  # noqa: E402
                                   placeholder_like)


def _cases():
    from graphk.ir.ops import conv, pool

    rng = np.random.default_rng(0)
    value = placeholder_like  # an IR placeholder of the array's type

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


def main() -> None:
    from graphk.codegen.llvm.windows import window_kernel

    cases = {name: (out.node, args) for name, (out, args) in _cases().items()}
    per_call(cases, window_kernel, np.testing.assert_array_equal)  # bit for bit
    library_times("windows", "window library")


if __name__ == "__main__":
    main()

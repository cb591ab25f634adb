"""Native batch normalization kernels (codegen/llvm/batch_norm_native.py) against the NumPy
kernels, per call, on the shapes of the Keras digits CNN's training step (batch 32,
Conv2D(32)-BN-MaxPool-Conv2D(64)-BN, channels_last, float32); then the library's cold
compile and its load from the disk cache, each in a fresh process.

    taskset -c 0 env OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_llvm_batch_norm.py

(timed as benchmarks/native_library_bench.py says)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from native_library_bench import (library_times, per_call,  # noqa: E402
                                   placeholder_like)


def _cases():
    from graphk.ir.ops.normalization import batch_norm_train, batch_norm_train_grad

    rng = np.random.default_rng(0)
    value = placeholder_like  # an IR placeholder of the array's type

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


def _close(got, want) -> None:
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


def main() -> None:
    from graphk.codegen.llvm.batch_norm_native import batch_norm_kernel

    per_call(_cases(), batch_norm_kernel, _close)
    library_times("batch_norm_native", "batch norm library")


if __name__ == "__main__":
    main()

"""conv2d forward and backward: graphk (K.gradients + K.function) against NumPy im2col.

Input (32, 28, 28, 1) NHWC, 32 filters of 3x3, 'valid' padding; the loss is
sum(relu(conv2d(x, kernel))) and both gradients (kernel and input) are
computed. The NumPy version is written by hand the usual way: im2col with
sliding_window_view, one matmul forward, matmuls for the two gradients, and
col2im as one strided add per kernel tap. Runs are interleaved in one
process; each figure is the median of per-round times, and the ratio is the
median of per-round ratios (the target is 1.2x or less).

BLAS runs on one thread unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS say
otherwise: these matrices are small, and on a shared machine BLAS threads
waiting for busy cores made both sides vary tenfold between runs.

Run: python benchmarks/bench_conv2d.py
"""
import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before NumPy loads BLAS


import numpy as np  # noqa: E402

from graphk import backend as K  # noqa: E402
from graphk.bench.training import conv_forward_backward_numpy  # noqa: E402
from interleaved import interleave, median_ratio, medians  # noqa: E402

INPUT, FILTERS, WINDOW = (32, 28, 28, 1), 32, (3, 3)


def graphk_step(kernel_value):
    x = K.placeholder((None,) + INPUT[1:], name="x")
    kernel = K.variable(kernel_value, name="kernel")
    loss = K.sum(K.relu(K.conv2d(x, kernel, padding="valid", data_format="channels_last")))
    d_kernel, d_x = K.gradients(loss, [kernel, x])
    return K.function([x], [loss, d_kernel, d_x], name="conv2d_step")


def main(rounds: int = 31, repeat: int = 10) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=INPUT).astype(np.float32)
    kernel = rng.normal(0, 0.3, WINDOW + (INPUT[-1], FILTERS)).astype(np.float32)
    step = graphk_step(kernel)
    # The two must agree before anything is timed.
    for got, want in zip(step([x]), conv_forward_backward_numpy(x, kernel)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
    times = interleave({"numpy": lambda: conv_forward_backward_numpy(x, kernel),
                        "graphk": lambda: step([x])},
                       rounds, repeat)
    for name, ms in medians(times).items():
        print(f"{name:7s} forward+backward: {ms:.3f} ms")
    print(f"graphk / numpy: {median_ratio(times, 'graphk', 'numpy'):.2f}x "
          "(median of rounds; target <= 1.2x)")


if __name__ == "__main__":
    main()

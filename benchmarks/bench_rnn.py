"""SimpleRNN forward and backward through time: graphk (K.rnn + K.gradients) against NumPy.

T=50 steps, batch 32, 32 input features, 64 tanh units, float32. The loss is
sum(outputs * target); the gradients are with respect to the kernel, the
recurrent kernel and the bias. graphk runs one scan node forward and one
reverse scan for the gradient; the NumPy version is a hand-written forward
loop and hand-derived BPTT. Runs are interleaved in one process; each figure
is the median of per-round times.

Run: python benchmarks/bench_rnn.py
"""

import numpy as np

from graphk import backend as K
from graphk.bench.training import rnn_forward_backward_numpy
from interleaved import interleave, median_ratio, medians

STEPS, BATCH, FEATURES, UNITS = 50, 32, 32, 64


def graphk_function(w, u, b):
    x = K.placeholder((None, None, FEATURES), name="x")
    h0 = K.placeholder((None, UNITS), name="h0")
    target = K.placeholder((None, None, UNITS), name="target")
    weights = [K.variable(w, name="W"), K.variable(u, name="U"), K.variable(b, name="b")]

    def step(x_t, states):
        h = K.tanh(K.dot(x_t, weights[0]) + K.dot(states[0], weights[1]) + weights[2])
        return h, [h]

    _, outputs, _ = K.rnn(step, x, [h0])
    loss = K.sum(outputs * target)
    return K.function([x, h0, target], [loss] + K.gradients(loss, weights), name="rnn_grad")


def main(rounds: int = 21, repeat: int = 10) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, STEPS, FEATURES)).astype(np.float32)
    h0 = np.zeros((BATCH, UNITS), np.float32)
    target = rng.normal(size=(BATCH, STEPS, UNITS)).astype(np.float32)
    w = rng.normal(0, 1 / np.sqrt(FEATURES), (FEATURES, UNITS)).astype(np.float32)
    u = rng.normal(0, 1 / np.sqrt(UNITS), (UNITS, UNITS)).astype(np.float32)
    b = np.zeros(UNITS, np.float32)
    fn = graphk_function(w, u, b)
    feeds = [x, h0, target]
    # Same data, same weights: loss and gradients must agree before we time anything.
    for got, want in zip(fn(feeds), rnn_forward_backward_numpy(x, h0, target, w, u, b)):
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)
    times = interleave({"numpy": lambda: rnn_forward_backward_numpy(x, h0, target, w, u, b),
                        "graphk": lambda: fn(feeds)}, rounds, repeat)
    for name, ms in medians(times).items():
        print(f"{name:7s} forward + backward: {ms:.3f} ms")
    print(f"graphk / numpy: {median_ratio(times, 'graphk', 'numpy'):.2f}x (median of rounds)")


if __name__ == "__main__":
    main()

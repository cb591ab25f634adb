"""The nn macro ops decomposed and fused (default pipeline) against their hand-written kernels
(passes="-decompose,-fusion"), on the NumPy lowering, interleaved in one process.

Each case compiles the op (and its gradient where training uses one) both ways and prints
the median over rounds of fused time / hand-kernel time (below 1 means the fused region
is faster).

Run (pinned, one BLAS thread):
    OPENBLAS_NUM_THREADS=1 taskset -c 0 .venv/bin/python benchmarks/bench_nn_decompositions.py
"""
import numpy as np

from graphk import backend as K
from interleaved import interleave, median_ratio

SHAPES = ((128, 10), (4096, 1000))


def cases():
    """name -> build(logits, target) returning the outputs to compute."""
    def with_grad(loss):
        def build(x, t):
            value = K.mean(loss(x, t))
            return [value, K.gradients(value, [x])[0]]
        return build

    return {
        "softmax": lambda x, t: [K.softmax(x)],
        "softmax + grad": with_grad(lambda x, t: K.softmax(x) * t),
        "log_softmax (logsumexp)": lambda x, t: [x - K.logsumexp(x, axis=-1, keepdims=True)],
        "crossentropy from logits + grad": with_grad(
            lambda x, t: K.categorical_crossentropy(t, x, from_logits=True)),
        "l2_normalize + grad": with_grad(lambda x, t: K.l2_normalize(x, axis=-1) * t),
        "var + std": lambda x, t: [K.var(x, axis=-1), K.std(x, axis=0)],
    }


def main(rounds: int = 11, repeat: int = 5) -> None:
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        x = rng.normal(size=shape).astype(np.float32)
        t = np.eye(shape[1], dtype=np.float32)[rng.integers(0, shape[1], shape[0])]
        for name, build in cases().items():
            xp = K.placeholder((None, shape[1]))
            tp = K.placeholder((None, shape[1]))
            outputs = build(xp, tp)
            fused = K.function([xp, tp], outputs)
            hand = K.function([xp, tp], outputs, passes="-decompose,-fusion")
            for a, b in zip(fused([x, t]), hand([x, t])):
                np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6)
            feeds = [x, t]
            times = interleave({"fused": lambda f=fused, d=feeds: f(d),
                                "hand": lambda f=hand, d=feeds: f(d)}, rounds, repeat)
            print(f"{str(shape):12s} {name:34s} fused / hand kernel: "
                  f"{median_ratio(times, 'fused', 'hand'):.2f}x")


if __name__ == "__main__":
    main()

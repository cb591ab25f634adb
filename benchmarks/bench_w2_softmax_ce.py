"""W2: row softmax crossentropy on 4096x1000 float32 logits, two formulations,
graphk (LLVM and NumPy lowerings) against NumPy eager.

    sparse:    K.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    logsumexp: K.logsumexp(logits, axis=-1) - K.sum(K.one_hot(labels, 1000) * logits, -1)

    taskset -c 0 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 GRAPHK_NUM_THREADS=1 \\
        .venv/bin/python benchmarks/bench_w2_softmax_ce.py   # one core
    .venv/bin/python benchmarks/bench_w2_softmax_ce.py       # default threads

Medians of interleaved rounds in one process (benchmarks/interleaved.py).
NumPy eager is the stable textbook form: max, exp(x - max), sum, log, pick.
JAX runs in its own venv: benchmarks/jax_compare.py.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interleaved import interleave, medians  # noqa: E402

from graphk import backend as K  # noqa: E402

ROWS, CLASSES = 4096, 1000


def numpy_eager(logits, labels):
    peak = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - peak).sum(axis=1)) + peak[:, 0]
    return lse - logits[np.arange(len(labels)), labels]


def graphk_functions(backend: str) -> dict:
    logits = K.placeholder((None, CLASSES), dtype="float32")
    labels = K.placeholder((None,), dtype="int32")
    sparse = K.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    lse = (K.logsumexp(logits, axis=-1)
           - K.sum(K.one_hot(labels, CLASSES) * logits, axis=-1))
    return {"sparse": K.function([logits, labels], [sparse], backend=backend),
            "logsumexp": K.function([logits, labels], [lse], backend=backend)}


def main(rounds: int = 11, repeat: int = 3) -> dict:
    rng = np.random.default_rng(0)
    logits = (3 * rng.standard_normal((ROWS, CLASSES))).astype(np.float32)
    labels = rng.integers(0, CLASSES, ROWS).astype(np.int32)
    want = numpy_eager(logits, labels)
    candidates = {"numpy eager": lambda: numpy_eager(logits, labels)}
    for backend in ("llvm", "numpy"):
        for form, fn in graphk_functions(backend).items():
            got = fn([logits, labels])[0]
            assert np.allclose(got, want, rtol=1e-4, atol=1e-4), np.abs(got - want).max()
            candidates[f"graphk {backend} {form}"] = (
                lambda fn=fn: fn([logits, labels]))
    times = interleave(candidates, rounds, repeat)
    result = medians(times)
    eager = result["numpy eager"]
    threads = os.environ.get("GRAPHK_NUM_THREADS", "default")
    print(f"W2 softmax crossentropy, {ROWS}x{CLASSES} float32, threads={threads}, "
          f"medians of {rounds} rounds")
    for name, ms in result.items():
        print(f"  {name:28s} {ms:8.3f} ms   {ms / eager:6.3f}x numpy eager")
    return result


if __name__ == "__main__":
    main()

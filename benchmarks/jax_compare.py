"""W1 and W2 under JAX's jit, against NumPy eager in the same interleaved rounds.

JAX is not a graphk dependency; run this from a separate venv that has it:

    python3 -m venv /work/jaxvenv && /work/jaxvenv/bin/pip install jax
    taskset -c 0 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        /work/jaxvenv/bin/python benchmarks/jax_compare.py

Compare its "x numpy eager" column with bench_w1_chain.py's and bench_w2_softmax_ce.py's
(each script measures NumPy eager in its own rounds, so ratios compare across venvs).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interleaved import interleave, medians  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

N = 4 * 1024 * 1024
ROWS, CLASSES = 4096, 1000


def w1_numpy(x):
    return (np.tanh(0.5 * x + 1) * (1 / (1 + np.exp(-x))) + 0.1 * np.exp(-x * x)
            - 0.3 * np.abs(x))


@jax.jit
def w1_jax(x):
    return (jnp.tanh(0.5 * x + 1) * jax.nn.sigmoid(x) + 0.1 * jnp.exp(-x * x)
            - 0.3 * jnp.abs(x))


def w2_numpy(logits, labels):
    peak = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - peak).sum(axis=1)) + peak[:, 0]
    return lse - logits[np.arange(len(labels)), labels]


@jax.jit
def w2_jax(logits, labels):
    lse = jax.nn.logsumexp(logits, axis=-1)
    return lse - jnp.take_along_axis(logits, labels[:, None], axis=1)[:, 0]


def report(title: str, times: dict) -> None:
    result = medians(times)
    eager = result["numpy eager"]
    print(title)
    for name, ms in result.items():
        print(f"  {name:14s} {ms:8.3f} ms   {ms / eager:6.3f}x numpy eager")


def main(rounds: int = 11) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(N).astype(np.float32)
    xj = jnp.asarray(x)
    w1_jax(xj).block_until_ready()
    report(f"W1 chain, {N} float32 (jax {jax.__version__})",
           interleave({"numpy eager": lambda: w1_numpy(x),
                       "jax jit": lambda: w1_jax(xj).block_until_ready()}, rounds, 5))
    logits = (3 * rng.standard_normal((ROWS, CLASSES))).astype(np.float32)
    labels = rng.integers(0, CLASSES, ROWS).astype(np.int32)
    lj, yj = jnp.asarray(logits), jnp.asarray(labels)
    assert np.allclose(np.asarray(w2_jax(lj, yj)), w2_numpy(logits, labels), atol=1e-4)
    report(f"W2 softmax crossentropy, {ROWS}x{CLASSES} float32",
           interleave({"numpy eager": lambda: w2_numpy(logits, labels),
                       "jax jit": lambda: w2_jax(lj, yj).block_until_ready()}, rounds, 3))


if __name__ == "__main__":
    main()

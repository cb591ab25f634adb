"""One SGD training step of an MLP: graphk (K.gradients + K.function updates) against NumPy.

Batch 128, 784-256-256-10, relu, softmax cross-entropy from logits, plain SGD.
The NumPy step is written by hand: forward, hand-derived backward, in-place
updates. Runs are interleaved in one process; each figure is the median of
per-round times. Also reports graphk's step time over its forward-only time
(the cheap-gradient principle says about 3 or less).

Also times the step compiled with passes="none" (the graph as written, one NumPy call per
node) and prints the node counts before and after the pipeline.

Run (pinned, one BLAS thread; and again without taskset for default threads):
    OPENBLAS_NUM_THREADS=1 taskset -c 0 .venv/bin/python benchmarks/bench_mlp_step.py
"""

import numpy as np

from graphk import backend as K
from graphk.bench.training import mlp_sgd_step_numpy
from interleaved import interleave, median_ratio, medians

BATCH, SIZES, LR = 128, (784, 256, 256, 10), 0.01


def initial_params(rng):
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        params.append(rng.normal(0, np.sqrt(2 / fan_in), (fan_in, fan_out)).astype(np.float32))
        params.append(np.zeros(fan_out, np.float32))
    return params


def graphk_functions(values, passes=None):
    x = K.placeholder((None, SIZES[0]), name="x")
    y = K.placeholder((None, SIZES[-1]), name="y")
    params = [K.variable(v) for v in values]
    h = x
    for i in range(0, len(params), 2):
        h = K.dot(h, params[i]) + params[i + 1]
        if i + 2 < len(params):
            h = K.relu(h)
    loss = K.mean(K.categorical_crossentropy(y, h, from_logits=True))
    grads = K.gradients(loss, params)
    step = K.function([x, y], [loss], updates=[K.update_sub(p, LR * g)
                                              for p, g in zip(params, grads)], name="sgd_step",
                      passes=passes)
    forward = K.function([x, y], [loss], name="forward", passes=passes)
    return step, forward


def main(rounds: int = 21, repeat: int = 10) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, SIZES[0])).astype(np.float32)
    y = np.eye(SIZES[-1], dtype=np.float32)[rng.integers(0, SIZES[-1], BATCH)]
    values = initial_params(rng)
    step, forward = graphk_functions([v.copy() for v in values])
    unfused, _ = graphk_functions([v.copy() for v in values], passes="none")
    print(f"SGD step IR: {len(unfused.ir.nodes)} nodes as written, {len(step.ir.nodes)} after "
          f"the pipeline ({sum(n.op.name == 'fused' for n in step.ir.nodes)} fused)")
    numpy_params = [v.copy() for v in values]
    # Same start, same data: the losses must agree before we time anything.
    first = mlp_sgd_step_numpy(x, y, numpy_params, LR)
    assert np.isclose(float(step([x, y])[0]), first, rtol=1e-4)
    assert np.isclose(float(unfused([x, y])[0]), first, rtol=1e-4)
    times = interleave({"numpy step": lambda: mlp_sgd_step_numpy(x, y, numpy_params, LR),
                        "graphk step": lambda: step([x, y]),
                        "graphk unfused": lambda: unfused([x, y]),
                        "graphk forward": lambda: forward([x, y])}, rounds, repeat)
    for name, ms in medians(times).items():
        print(f"{name:15s}: {ms:.3f} ms")
    print(f"graphk step / numpy step  : {median_ratio(times, 'graphk step', 'numpy step'):.2f}x "
          "(median of rounds)")
    print(f"unfused step / numpy step : "
          f"{median_ratio(times, 'graphk unfused', 'numpy step'):.2f}x (passes=\"none\")")
    print(f"graphk step / its forward : {median_ratio(times, 'graphk step', 'graphk forward'):.2f}x"
          " (median of rounds)")


if __name__ == "__main__":
    main()

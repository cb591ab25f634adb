"""W5: compile time of 100 layers h = tanh(h @ W_i + b_i), width 64, with d loss / d W_i.

Every timed compile runs in a fresh process (`python -m graphk.bench.compile_time`),
so no in-memory cache of an earlier round helps it. The process imports its
library first, then times building the graph, compiling it and its first call
on the (8, 64) batch (graphk: the K.* calls, K.gradients, K.function and the
call, where a lowering that compiles lazily does its work; JAX: tracing,
lowering and XLA compilation of jit(value_and_grad), then the call until its
results are ready; PyTensor: graph, grad, pytensor.function and the call), and
prints {"seconds": ..., "cpu_seconds": ..., "error": ...}: wall time, CPU time of
all the process's threads, and the results' worst error over tolerance against a
hand-written NumPy forward and backward. The call itself takes well under a
millisecond once compiled.

  cold       a fresh, empty cache directory each round (GRAPHK_CACHE_DIR, JAX's
             persistent compilation cache, PyTensor's compiledir)
  from disk  one directory filled once by a cold compile, then a fresh process
             per round reading it
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from .cases import Case, Unavailable, check, register

TOLERANCE = (2e-3, 1e-5)


def _data(layers: int, width: int) -> dict:
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=(8, width)).astype(np.float32),
            "weights": [rng.normal(0, 1 / np.sqrt(width), (width, width)).astype(np.float32)
                        for _ in range(layers)],
            "biases": [np.full(width, 0.01, np.float32) for _ in range(layers)]}


def numpy_reference(data: dict) -> list:
    """loss = mean(h_L ** 2) and d loss / d W_i, forward and backward by hand (float64)."""
    hs = [data["x"].astype(np.float64)]
    for w, b in zip(data["weights"], data["biases"]):
        hs.append(np.tanh(hs[-1] @ w + b))
    loss = np.mean(hs[-1] ** 2)
    dh = 2 * hs[-1] / hs[-1].size
    grads = []
    for i in range(len(data["weights"]) - 1, -1, -1):
        dpre = dh * (1 - hs[i + 1] ** 2)
        grads.append(hs[i].T @ dpre)
        dh = dpre @ data["weights"][i].T
    return [loss] + grads[::-1]


def _graphk(data, lowering):
    from graphk import backend as K

    start = time.perf_counter()
    x = K.placeholder((None, data["x"].shape[1]), name="x")
    weights = [K.variable(w) for w in data["weights"]]
    h = x
    for w, b in zip(weights, data["biases"]):
        h = K.tanh(K.dot(h, w) + K.variable(b))
    loss = K.mean(K.square(h))
    options = {} if lowering is None else {"backend": lowering}
    fn = K.function([x], [loss] + K.gradients(loss, weights), **options)
    results = fn([data["x"]])
    return time.perf_counter() - start, results


def _jax(data, lowering):
    import jax

    jnp = jax.numpy
    start = time.perf_counter()

    def loss_of(weights, x):
        h = x
        for w, b in zip(weights, data["biases"]):
            h = jnp.tanh(h @ w + b)
        return jnp.mean(h * h)
    compiled = jax.jit(jax.value_and_grad(loss_of)).lower(data["weights"], data["x"]).compile()
    loss, grads = jax.block_until_ready(compiled(data["weights"], data["x"]))
    seconds = time.perf_counter() - start
    return seconds, [np.asarray(loss)] + [np.asarray(g) for g in grads]


def _pytensor(data, lowering):
    import pytensor
    import pytensor.tensor as pt

    start = time.perf_counter()
    x = pt.matrix("x", dtype="float32")
    weights = [pytensor.shared(w) for w in data["weights"]]
    h = x
    for w, b in zip(weights, data["biases"]):
        h = pt.tanh(pt.dot(h, w) + b)
    loss = pt.mean(h * h)
    fn = pytensor.function([x], [loss] + pytensor.grad(loss, weights))
    results = fn(data["x"])
    return time.perf_counter() - start, results


_COMPILERS = {"graphk": _graphk, "jax": _jax, "pytensor": _pytensor}


def _cache_environment(library: str, directory: str) -> dict:
    environment = dict(os.environ)
    if library == "graphk":
        environment["GRAPHK_CACHE_DIR"] = directory
    elif library == "jax":
        environment["JAX_COMPILATION_CACHE_DIR"] = directory
        environment["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
        environment["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    elif library == "pytensor":
        environment["PYTENSOR_FLAGS"] = f"compiledir={directory}"
    return environment


TIME_LIMIT = 150  # seconds of one compile process; PyTensor's cold compile can take longer
_ROOT: list = []  # this worker's directory of cache directories, removed by cleanup()


def cache_directory() -> str:
    if not _ROOT:
        _ROOT.append(tempfile.mkdtemp(prefix="graphk-bench-caches-"))
    return tempfile.mkdtemp(dir=_ROOT[0])


def cleanup() -> None:
    """Remove every cache directory this process made (the worker calls it on quit)."""
    while _ROOT:
        shutil.rmtree(_ROOT.pop(), ignore_errors=True)


def compile_in_fresh_process(library: str, lowering, sizes, directory: str) -> dict:
    """{"seconds", "error"} of one compile in a new process with `directory` as its cache."""
    command = [sys.executable, "-m", "graphk.bench.compile_time", library, lowering or "",
               str(sizes[0]), str(sizes[1])]
    try:
        done = subprocess.run(command, capture_output=True, text=True,
                              env=_cache_environment(library, directory), timeout=TIME_LIMIT)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"one compile took over {TIME_LIMIT} s (stopped)") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"compile process failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def _builder(library: str, from_disk: bool):
    def build(data, lowering):
        if library == "jax":
            from .cases import jax_module
            jax_module()
        elif library == "pytensor":
            from .cases import pytensor_module
            pytensor_module()
        sizes = data["sizes"]
        warm = cache_directory() if from_disk else None
        if warm is not None:  # the directory a cold compile fills, read by every round
            compile_in_fresh_process(library, lowering, sizes, warm)

        def run():
            directory = warm or cache_directory()
            result = compile_in_fresh_process(library, lowering, sizes, directory)
            if warm is None:
                shutil.rmtree(directory, ignore_errors=True)
            run.errors.append(result["error"])
            run.seconds = result["seconds"]  # the worker reports this, not the spawn's time
            return [np.float64(result["seconds"])]
        run.errors = []
        run.state = lambda: [np.float64(max(run.errors))]  # checked: errors within tolerance
        return run
    return build


def _register(variant: str, from_disk: bool) -> None:
    register(Case(f"W5-{variant}", "W5", f"compile time, 100 tanh layers + gradients, {variant}",
                  make=lambda sizes: {"sizes": sizes["W5"]},
                  reference=lambda data: [np.float64(0.0)],
                  builders={name: _builder(name, from_disk) for name in _COMPILERS},
                  tolerance=(0.0, 1.0), long=True,
                  notes={"first_is_sample": True,
                         "quick_skip": {"pytensor": "a cold PyTensor compile of this graph "
                                                    "takes minutes"}}))


_register("cold", False)
_register("disk", True)


def main(argv) -> int:
    library, lowering, layers, width = argv[0], argv[1] or None, int(argv[2]), int(argv[3])
    if library == "graphk":
        import graphk.backend  # noqa: F401  (imports are not compile time)
        if lowering in (None, "llvm", "auto"):  # None: the default lowering, maybe auto
            import graphk.codegen.llvm  # noqa: F401
            import graphk.codegen.llvm.mathlib  # noqa: F401  (else imported by the first emit)
    elif library == "jax":
        import jax
        jax.config.update("jax_enable_x64", False)
    elif library == "pytensor":
        import pytensor.tensor  # noqa: F401
    if library not in _COMPILERS:
        raise Unavailable(library)
    data = _data(layers, width)
    cpu_started = time.process_time()  # every thread's CPU time (XLA compiles on several)
    seconds, results = _COMPILERS[library](data, lowering)
    cpu_seconds = time.process_time() - cpu_started
    error = check(results, numpy_reference(data), TOLERANCE)
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "error": error}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

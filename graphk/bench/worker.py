"""One implementation in its own process: `python -m graphk.bench.worker IMPLEMENTATION`.

IMPLEMENTATION is "graphk", "graphk:numpy", "graphk:llvm", "graphk:auto",
"numpy", "jax" or "pytensor". Each library's thread pools live in a process
of their own, so they never stall another library's threads. The parent
sends one JSON request per line on standard input and reads one JSON reply
per line from the worker's original standard output (library chatter is
sent to standard error):

    {"cmd": "setup", "case": "W1-large", "scale": "full", "round_seconds": 0.02}
        -> {"ok": true, "first": s, "calls": n, "error": e}    # e: worst error / tolerance
        -> {"ok": false, "skip": "why"} or {"ok": false, "failed": "traceback"}
    {"cmd": "round"}  -> {"seconds": per-call seconds of one round of `calls` calls}
    {"cmd": "quit"}

With GRAPHK_BENCH_PINNED=1 (what `--threads 1` sets, with OMP/OPENBLAS/MKL/
GRAPHK_NUM_THREADS=1 and XLA's single-thread flags in the environment before
any import) the worker pins itself to one core and limits BLAS to one thread.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback


def pin_to_one_core() -> int:
    """Run on the first core we may use, BLAS and OpenMP pools at one thread."""
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:  # the environment variables already asked for one thread
        pass
    return core


def versions() -> dict:
    """Installed versions of the libraries a worker may run (metadata only, no imports)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("graphk", "numpy", "llvmlite", "jax", "jaxlib", "pytensor", "numba", "keras"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


class Worker:
    def __init__(self, implementation: str):
        self.library, _, lowering = implementation.partition(":")
        self.lowering = lowering or None
        self.run = None
        self.calls = 1

    def setup(self, request: dict) -> dict:
        from . import suite
        from .cases import Unavailable, check

        case = suite.case(request["case"])
        self.run = None
        builder = case.builders.get(self.library)
        if builder is None:
            return {"ok": False, "skip": f"no {self.library} implementation of {case.key}"}
        try:
            data = case.make(suite.sizes(request["scale"]))
            reference = case.reference(data)
            run = builder(data, self.lowering)
            start = time.perf_counter()
            results = run()
            first = getattr(run, "seconds", time.perf_counter() - start)
            state = getattr(run, "state", None)
            error = check(state() if state else results, reference, case.tolerance)
        except Unavailable as reason:
            return {"ok": False, "skip": str(reason)}
        except Exception:  # noqa: BLE001 (reported in the table, the suite goes on)
            return {"ok": False, "failed": traceback.format_exc(limit=6)}
        self.run = run
        self.calls = 1 if case.long else self._calibrate(request["round_seconds"])
        return {"ok": True, "first": first, "calls": self.calls, "error": error}

    def _calibrate(self, round_seconds: float) -> int:
        calls = 1
        while True:
            start = time.perf_counter()
            for _ in range(calls):
                self.run()
            if time.perf_counter() - start >= round_seconds or calls >= 1 << 20:
                return calls
            calls *= 2

    def round(self) -> dict:
        run, calls = self.run, self.calls
        start = time.perf_counter()
        for _ in range(calls):
            run()
        if hasattr(run, "seconds"):  # timed inside a fresh process (W5's compiles)
            return {"seconds": run.seconds}
        return {"seconds": (time.perf_counter() - start) / calls}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # prints of libraries go to standard error, not into the protocol
    sys.stdout = sys.stderr
    worker = Worker(argv[0])
    core = pin_to_one_core() if os.environ.get("GRAPHK_BENCH_PINNED") == "1" else None
    replies.write(json.dumps({"ready": True, "pid": os.getpid(), "core": core,
                              "python": sys.executable, "versions": versions()}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "quit":
            break
        try:
            reply = worker.setup(request) if request["cmd"] == "setup" else worker.round()
        except Exception:  # noqa: BLE001 (a round that fails ends this implementation's case)
            reply = {"failed": traceback.format_exc(limit=6)}
        replies.write(json.dumps(reply) + "\n")
    replies.flush()
    if "graphk.bench.compile_time" in sys.modules:
        sys.modules["graphk.bench.compile_time"].cleanup()
    sys.stderr.flush()
    os._exit(0)  # skip libraries' exit handlers (PyTensor's took tens of seconds here)


if __name__ == "__main__":
    sys.exit(main())

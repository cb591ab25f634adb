"""The parent of `graphk bench`: one worker process per implementation, rounds interleaved.

For each case every worker is set up (built, checked against the NumPy
reference, calibrated so a round lasts about `round_seconds`), then the
parent asks worker A for one timed round, then B, then C, ... and repeats,
rotating the order each time, so slow drifts of a noisy machine hit every
implementation alike. Ratios are medians of per-round ratios.

With `threads="1"` every worker gets single-threaded libraries through its
environment (set before it imports anything) and pins itself to one core;
with "default" the libraries choose. Peer libraries (JAX, PyTensor) may run
under another interpreter (`peer_python`), e.g. a venv holding them.
"""
from __future__ import annotations

import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .cases import PEERS

SINGLE_THREAD_ENVIRONMENT = {
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "GRAPHK_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "GRAPHK_BENCH_PINNED": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


@dataclass
class Settings:
    quick: bool = False
    threads: str = "default"     # "1" or "default"
    scale: str = "full"          # "tiny": the test-only size override
    peer_python: str | None = None
    round_seconds: float = 0.05  # one round's length for short cases
    min_rounds: int = 11
    min_seconds: float = 2.0     # per case, all workers together
    long_rounds: int = 3         # rounds of one-call cases (compiles, epochs)
    max_seconds: float = 60.0    # per case: past it, 3 rounds are enough

    @classmethod
    def for_run(cls, quick: bool, threads: str, scale: str, peer_python=None) -> Settings:
        if quick and scale == "full":
            scale = "quick"  # W5 and W8 smaller (cases.py)
        if quick:
            return cls(quick, threads, scale, peer_python, round_seconds=0.01, min_rounds=5,
                       min_seconds=0.3, long_rounds=1, max_seconds=5.0)
        return cls(quick, threads, scale, peer_python)


def graphk_lowerings() -> tuple:
    """(lowerings K.function offers here, its default): llvm only when llvmlite loads."""
    import importlib

    function_module = importlib.import_module("graphk.backend.function")  # the module

    default = inspect.signature(function_module.Function.__init__).parameters["backend"].default
    lowerings = [b for b in getattr(function_module, "BACKENDS", ("numpy",))]
    if any(b != "numpy" for b in lowerings):
        try:
            import graphk.codegen.llvm  # noqa: F401
        except ImportError:
            lowerings = ["numpy"]
    return lowerings, default


def implementations(settings: Settings) -> list:
    """(name shown, worker argument, interpreter) of every implementation to run."""
    lowerings, default = graphk_lowerings()
    chosen = []
    for lowering in sorted(lowerings, key=lambda b: (b != "numpy", b)):
        label = f"graphk {lowering}" + (" (default)" if lowering == default else "")
        chosen.append((label, f"graphk:{lowering}", sys.executable))
    chosen.append(("numpy", "numpy", sys.executable))
    for peer in PEERS[1:]:
        chosen.append((peer, peer, settings.peer_python or sys.executable))
    return chosen


class WorkerProcess:
    """A worker subprocess and its JSON-lines channel."""

    def __init__(self, label: str, argument: str, python: str, settings: Settings):
        self.label = label
        environment = dict(os.environ)
        if settings.threads == "1":
            environment.update(SINGLE_THREAD_ENVIRONMENT)
        if python != sys.executable:  # graphk.bench importable from the other interpreter
            root = str(Path(__file__).resolve().parents[2])
            environment["PYTHONPATH"] = os.pathsep.join(
                filter(None, [root, environment.get("PYTHONPATH")]))
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"graphk-bench-{argument}-",
                                               suffix=".log", delete=False)
        self.process = subprocess.Popen([python, "-m", "graphk.bench.worker", argument],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, env=environment, text=True)
        self.hello = None

    def ready(self) -> dict:
        if self.hello is None:
            self.hello = self._read()
        return self.hello

    def request(self, message: dict) -> dict:
        self.ready()
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.log.seek(0)
            raise RuntimeError(f"worker {self.label} exited ({self.process.wait()}):\n"
                               f"{self.log.read()[-3000:]}")
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
        self.log.close()
        os.unlink(self.log.name)


def interleave(workers: list, rounds: int, min_seconds: float,
               max_seconds: float = float("inf"), failed: dict | None = None) -> dict:
    """label -> per-call seconds of each round; round r asks the workers in rotated order.

    At least `rounds` rounds and `min_seconds`; past `max_seconds` (a very slow
    implementation) it stops once 3 rounds are in. A worker whose round fails
    leaves the case, its traceback in `failed`."""
    times = {w.label: [] for w in workers}
    workers = list(workers)
    started, r = time.perf_counter(), 0
    while workers and (r < rounds or time.perf_counter() - started < min_seconds):
        order = workers[r % len(workers):] + workers[:r % len(workers)]
        for worker in order:
            reply = worker.request({"cmd": "round"})
            if "failed" in reply:
                workers.remove(worker)
                if failed is not None:
                    failed[worker.label] = reply["failed"]
                continue
            times[worker.label].append(reply["seconds"])
        r += 1
        elapsed = time.perf_counter() - started
        if r >= 50 * max(rounds, 1) or (r >= min(rounds, 3) and elapsed > max_seconds):
            break
    return times


def run_case(key: str, workers: list, settings: Settings) -> dict:
    """Set every worker up for case `key`, time interleaved rounds, return the record."""
    from .suite import case

    long = case(key).long
    record = {"case": key, "rows": [], "skipped": {}, "failed": {}}
    ready = []
    for worker in workers:
        skip = case(key).notes.get("quick_skip", {}).get(worker.label)
        if settings.quick and skip:
            record["skipped"][worker.label] = f"not in --quick: {skip}"
            continue
        reply = worker.request({"cmd": "setup", "case": key, "scale": settings.scale,
                                "round_seconds": settings.round_seconds})
        if reply.get("ok"):
            ready.append((worker, reply))
        elif "skip" in reply:
            record["skipped"][worker.label] = reply["skip"]
        else:
            record["failed"][worker.label] = reply["failed"]
    rounds = settings.long_rounds if long else settings.min_rounds
    first_is_sample = case(key).notes.get("first_is_sample", False)
    if first_is_sample:  # the setup call was a full sample (a compile in a fresh process)
        rounds = 0 if settings.quick else rounds - 1
    times = interleave([w for w, _ in ready], rounds, 0.0 if long else settings.min_seconds,
                       settings.max_seconds, record["failed"])
    ready = [(w, reply) for w, reply in ready if w.label not in record["failed"]]
    if first_is_sample:
        for worker, reply in ready:
            times[worker.label].insert(0, reply["first"])
    for worker, reply in ready:
        per_round = times[worker.label]
        record["rows"].append({"implementation": worker.label, "median": statistics.median(
            per_round), "min": min(per_round), "rounds": per_round, "first": reply["first"],
            "calls_per_round": reply["calls"], "check": reply["error"]})
    add_ratios(record["rows"])
    return record


def _paired_ratio(mine: list, theirs: list) -> float:
    """Median over rounds of my time over theirs in the same round."""
    return statistics.median(a / b for a, b in zip(mine, theirs))


def add_ratios(rows: list) -> None:
    by_name = {row["implementation"]: row for row in rows}
    numpy_row = by_name.get("numpy")
    peers = [row for row in rows if row["implementation"] in PEERS]
    best = min(peers, key=lambda row: row["median"]) if peers else None
    for row in rows:
        row["vs_numpy"] = (_paired_ratio(row["rounds"], numpy_row["rounds"])
                           if numpy_row else None)
        row["best_peer"] = best["implementation"] if best else None
        row["vs_best_peer"] = _paired_ratio(row["rounds"], best["rounds"]) if best else None


def run_suite(keys: list, settings: Settings, progress=print) -> dict:
    """Every case in `keys` with every implementation; the JSON record (without machine)."""
    workers = [WorkerProcess(label, argument, python, settings)
               for label, argument, python in implementations(settings)]
    try:
        hellos = {w.label: w.ready() for w in workers}
        records = []
        for key in keys:
            started = time.perf_counter()
            records.append(run_case(key, workers, settings))
            progress(f"# {key}: {time.perf_counter() - started:.1f} s")
    finally:
        for worker in workers:
            worker.close()
    return {"threads": settings.threads, "quick": settings.quick, "scale": settings.scale,
            "workers": hellos, "cases": records}

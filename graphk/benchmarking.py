"""Timing compiled functions honestly: `graphk.benchmark(fn, feeds)` and `fn.benchmark(feeds)`.

The first call is timed on its own (it pays for lazy work: kernel caches,
allocator warm-up); then the number of calls per round is doubled until a
round lasts `round_seconds`, so timer resolution and loop overhead vanish;
then rounds repeat until `min_seconds` have passed and at least `rounds` were
taken. The result keeps every round's per-call time, so the median, the
minimum and the spread come from the same data. A noisy machine shows up as
spread, not as a silently wrong median.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class BenchmarkResult:
    """Per-call seconds of each timed round, and the first call's time."""

    name: str
    first_call: float
    calls_per_round: int
    per_call: tuple = field(repr=False)  # one entry per round
    compile_seconds: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.per_call)

    @property
    def min(self) -> float:
        return min(self.per_call)

    @property
    def spread(self) -> float:
        """Interquartile range over the median (0.05 means rounds agree within about 5%)."""
        if len(self.per_call) < 4:
            return (max(self.per_call) - min(self.per_call)) / self.median
        q1, _, q3 = statistics.quantiles(self.per_call, n=4)
        return (q3 - q1) / self.median

    @property
    def rounds(self) -> int:
        return len(self.per_call)

    def __str__(self) -> str:
        compile_part = (f", compile {_format(self.compile_seconds)}"
                        if self.compile_seconds is not None else "")
        return (f"{self.name}: median {_format(self.median)}, min {_format(self.min)}, "
                f"spread {self.spread:.1%} ({self.rounds} rounds of {self.calls_per_round} "
                f"calls); first call {_format(self.first_call)}{compile_part}")


def _format(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def calibrate(call: Callable[[], object], round_seconds: float,
              clock: Callable[[], float] = time.perf_counter) -> int:
    """Calls per round: doubled from 1 until one round takes at least `round_seconds`."""
    calls = 1
    while True:
        start = clock()
        for _ in range(calls):
            call()
        if clock() - start >= round_seconds or calls >= 1 << 24:
            return calls
        calls *= 2


def time_rounds(call: Callable[[], object], calls: int, rounds: int, min_seconds: float,
                clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Per-call seconds of at least `rounds` rounds lasting `min_seconds` in all."""
    per_call, began = [], clock()
    while len(per_call) < rounds or clock() - began < min_seconds:
        start = clock()
        for _ in range(calls):
            call()
        per_call.append((clock() - start) / calls)
    return per_call


def benchmark(fn, feeds, name: str | None = None, rounds: int = 7, min_seconds: float = 0.5,
              round_seconds: float = 0.02,
              clock: Callable[[], float] = time.perf_counter) -> BenchmarkResult:
    """Time `fn(feeds)` (a compiled K.function or any callable of one argument)."""
    if rounds < 1:
        raise ValueError(f"benchmark: rounds must be at least 1, got {rounds}")
    start = clock()
    fn(feeds)
    first = clock() - start

    def call():
        return fn(feeds)

    calls = calibrate(call, round_seconds, clock)
    per_call = time_rounds(call, calls, rounds, min_seconds, clock)
    return BenchmarkResult(name or getattr(fn, "name", type(fn).__name__), first, calls,
                           tuple(per_call), getattr(fn, "compile_seconds", None))


__all__ = ["BenchmarkResult", "benchmark", "calibrate", "time_rounds"]

"""Timing shared by the benchmarks: candidates timed in interleaved rounds in one process,
so machine noise hits all of them alike; figures are medians over rounds."""
import statistics
import time
from typing import Callable


def timed_ms(fn: Callable[[], object], repeat: int) -> float:
    """Mean milliseconds per call of `fn` over `repeat` calls."""
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e3


def interleave(candidates: dict, rounds: int, repeat: int) -> dict:
    """name -> per-round times (ms), each round timing every candidate once in turn."""
    times = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            times[name].append(timed_ms(fn, repeat))
    return times


def median_ratio(times: dict, numerator: str, denominator: str) -> float:
    """The median over rounds of numerator's time over denominator's in the same round."""
    return statistics.median(a / b for a, b in zip(times[numerator], times[denominator]))


def medians(times: dict) -> dict:
    return {name: statistics.median(values) for name, values in times.items()}

"""Per-call overhead of a compiled tiny function against NumPy itself.

f(x) = x + 1 on a float32 array of shape (4,), with feed checks on, against
NumPy's own `x + 1` on the same array. Both are timed interleaved in one
process (best of several repeats each round, median over rounds), so machine
noise hits both alike.

Run: python benchmarks/bench_call_overhead.py
"""
import statistics
import timeit

import numpy as np

from graphk import backend as K


def main(rounds: int = 15, number: int = 20000) -> None:
    x = K.placeholder(shape=(4,), name="x")
    f = K.function([x], [x + 1])
    a = np.ones(4, dtype=np.float32)
    feeds = [a]
    numpy_us, graphk_us = [], []
    for _ in range(rounds):
        numpy_us.append(min(timeit.repeat(lambda: a + 1, number=number, repeat=3)) / number * 1e6)
        graphk_us.append(min(timeit.repeat(lambda: f(feeds), number=number, repeat=3))
                         / number * 1e6)
    ratios = [g / n for g, n in zip(graphk_us, numpy_us)]
    print(f"numpy  x + 1     : {statistics.median(numpy_us):.3f} us/call")
    print(f"graphk f([x])    : {statistics.median(graphk_us):.3f} us/call")
    print(f"ratio graphk/numpy (median of {rounds} interleaved rounds): "
          f"{statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()

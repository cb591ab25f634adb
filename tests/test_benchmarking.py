"""The benchmark API's statistics, on a fake clock (so the tests are exact and instant)."""
import numpy as np
import pytest

from graphk import backend as K
from graphk.benchmarking import BenchmarkResult, benchmark, calibrate, time_rounds


class FakeClock:
    """A clock that each call of the timed function advances by a scripted cost."""

    def __init__(self, costs):
        self.now, self.costs = 0.0, iter(costs)

    def __call__(self):
        return self.now

    def work(self, *_):
        self.now += next(self.costs)


def test_calibrate_doubles_until_a_round_is_long_enough():
    clock = FakeClock([0.001] * 1000)
    assert calibrate(clock.work, round_seconds=0.010, clock=clock) == 16  # 1+2+4+8 too short


def test_time_rounds_takes_at_least_the_rounds_and_the_time():
    clock = FakeClock([0.5] * 100)
    per_call = time_rounds(clock.work, calls=2, rounds=3, min_seconds=4.0, clock=clock)
    assert per_call == [0.5] * 4  # 3 rounds last 3 s < 4 s, so a fourth round runs


def test_statistics_median_min_and_spread():
    result = BenchmarkResult("f", first_call=1.0, calls_per_round=1,
                             per_call=(1.0, 2.0, 3.0, 4.0, 100.0))
    assert result.median == 3.0 and result.min == 1.0
    q1, q3 = np.percentile([1, 2, 3, 4, 100], [25, 75], method="weibull")
    assert result.spread == pytest.approx((q3 - q1) / 3.0)
    assert "median 3 s" in str(result) and "first call 1 s" in str(result)


def test_benchmark_times_the_first_call_apart():
    costs = [5.0] + [0.25] * 1000  # the first call is slow (it compiles), the rest are not
    clock = FakeClock(costs)
    result = benchmark(clock.work, None, name="slow start", rounds=5, min_seconds=0.0,
                       round_seconds=1.0, clock=clock)
    assert result.first_call == 5.0
    assert result.calls_per_round == 4 and result.rounds == 5
    assert result.median == result.min == 0.25


def test_benchmark_a_compiled_function():
    x = K.placeholder((None, 8))
    f = K.function([x], [K.tanh(x) + 1.0])
    result = benchmark(f, [np.ones((4, 8), dtype="float32")], rounds=3, min_seconds=0.0,
                       round_seconds=0.001)
    assert result.rounds >= 3 and result.median > 0 and result.name == f.name


def test_rounds_must_be_positive():
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        benchmark(lambda feeds: None, None, rounds=0)

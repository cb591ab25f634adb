"""K.function(..., profile=True): per-kernel times, the fn.profile() table; fn.benchmark."""
import numpy as np
import pytest

from graphk import backend as K


def _functions(**options):
    x = K.placeholder((None, 8), name="x")
    y = K.sum(K.tanh(x * 2 + 1) * K.exp(x), axis=1)  # the line the table names
    return K.function([x], [y, K.dot(x, K.variable(np.ones((8, 3))))], **options)


def test_profile_table_counts_kernel_calls_with_source_lines():
    fn = _functions(profile=True)
    feed = np.ones((4, 8), np.float32)
    for _ in range(3):
        fn([feed])
    assert all(r.calls == 3 for r in fn._profiler.records)
    text = fn.profile(show=False)
    lines = text.splitlines()
    assert lines[1].split()[:7] == ["kernel", "ops", "shapes", "calls", "total", "share",
                                    "source"]
    assert "test_profiler.py:" in text and "tanh" in text and "(4,3)" in text
    shares = [float(line.split("%")[0].split()[-1]) for line in lines[2:]
              if "%" in line]
    assert abs(sum(shares) - 100) < 1 and shares == sorted(shares, reverse=True)
    assert "compile time:" in text and "code generation" in text and "in all" in text


def test_unprofiled_functions_call_kernels_directly():
    fn = _functions()
    assert fn._profiler is None and fn.compile_seconds > 0
    with pytest.raises(ValueError, match="profile=True"):
        fn.profile()
    profiled = _functions(profile=True)
    np.testing.assert_allclose(profiled([np.ones((2, 8))])[0], fn([np.ones((2, 8))])[0])


def test_fn_benchmark_delegates_to_graphk_benchmark():
    fn = _functions()
    result = fn.benchmark([np.ones((4, 8), np.float32)], rounds=2, min_seconds=0,
                          round_seconds=0.001)
    assert result.rounds >= 2 and result.min <= result.median
    assert result.compile_seconds == fn.compile_seconds

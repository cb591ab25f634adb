"""The native random_binomial (codegen/llvm/random_native.py, random_emit.py): the same
masks as the NumPy lowering from the same seeds, call after call, and the generator left
in the same state; odd sizes and every chain's tail; p at 0, 1 and in between."""
from __future__ import annotations

import numpy as np
import pytest

from graphk import backend as K
from graphk.codegen.llvm import random_native
from graphk.codegen.llvm.random_native import random_kernel
from graphk.ir.ops.random import _binomial, random_binomial


def _pair(count: int, p: float, dtype: str, seed: int = 11):
    """(native kernel, twin generator the NumPy kernel would draw from)."""
    kernel, reason = random_kernel(random_binomial((count,), p=p, dtype=dtype, seed=seed).node)
    assert kernel is not None, reason
    return kernel, np.random.default_rng(seed)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("count", [0, 1, 2, 7, 8, 9, 15, 16, 17, 1001])
def test_native_draws_equal_numpys_and_leave_the_same_state(dtype, count):
    for p in (0.0, 1e-9, 0.3, 0.5, 0.999, 1.0):
        kernel, twin = _pair(count, p, dtype)
        for _ in range(3):  # consecutive calls continue the same stream
            got = kernel()
            want = _binomial(twin, (count,), np.dtype(dtype), p)
            np.testing.assert_array_equal(got, want)
            assert got.dtype == np.dtype(dtype)
        assert kernel.rng.bit_generator.state == twin.bit_generator.state


def test_dropout_masks_are_the_same_on_every_lowering():
    x = K.placeholder((None, 37))
    outputs = [K.dropout(x, 0.4, seed=5), K.dropout(x, 0.4)]  # a seed, and np.random's
    feed = [np.ones((9, 37), np.float32)]
    results = {}
    for backend in ("llvm", "numpy"):
        np.random.seed(1)  # the unseeded dropout takes its seed from NumPy's global RNG
        fn = K.function([x], outputs, backend=backend)
        results[backend] = [fn(feed) for _ in range(3)]
    for native, numpy in zip(results["llvm"], results["numpy"]):
        for a, b in zip(native, numpy):
            np.testing.assert_array_equal(a, b)
    native = K.function([x], outputs[:1], backend="llvm")
    native(feed)
    report = native.report(show=False)
    assert "graphk_pcg64_bernoulli_float32" in report and "LLVM random kernels" in report


def test_other_dtypes_keep_the_numpy_kernel_and_say_so():
    x = K.placeholder((4,))
    mask = random_binomial((4,), p=0.5, dtype="int32", seed=1)
    fn = K.function([x], [x + K.cast(mask, "float32")], backend="llvm")
    fn([np.zeros(4, np.float32)])
    assert "writes float32/float64" in fn.report(show=False)


def test_a_stream_check_failure_falls_back_to_numpys_draws(monkeypatch):
    monkeypatch.setitem(random_native._checked, "failure", "a test says so")
    kernel, twin = _pair(33, 0.5, "float32")
    np.testing.assert_array_equal(kernel(), _binomial(twin, (33,), np.dtype("float32"), 0.5))
    assert "not used: a test says so" in random_native.library_state()

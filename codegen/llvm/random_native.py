"""Native `random_binomial` for K.function's "llvm" and "auto" lowerings: Keras' Dropout.

The NumPy kernel (ir/ops/random.py `_binomial`) compares the generator's raw
32-bit draws with a threshold and casts; random_emit.py's kernel makes the same
draws from the same generator state, four PCG64 chains side by side, and
writes the 0/1 values straight into the output: the same numbers, and the
generator left in the same state, so a function gives the same masks on either
lowering and the rest of its random stream is unchanged.

Each compiled function's node gets its own generator, seeded as the NumPy
lowering seeds it (`seed_for_compile`: the given seed, or one drawn from NumPy's
global RNG when the function is built). Before native code first touches a
generator, the kernel's stream is checked once per process against NumPy's on
a generator of its own (state layout, constants, halves' order); if it differs,
every call draws with the NumPy code instead, from the same generator, and
fn.report() says why. float32 and float64 on little-endian hosts; other dtypes
keep the NumPy kernel.
"""
from __future__ import annotations

import ctypes
import math
import sys
import threading

import numpy as np

from ...ir.ops.random import _binomial, runtime_shape, seed_for_compile
from .library import NativeLibrary, NativeOpKernel
from .pointers import data_address
from .random_emit import FLOAT_TYPES, library_text, symbol

__all__ = ["random_kernel", "library_state"]

_SIGNATURE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                              ctypes.c_void_p)
_LIBRARY = NativeLibrary("random kernels", library_text,
                         [symbol(dtype) for dtype in FLOAT_TYPES], _SIGNATURE)
_check_lock = threading.Lock()
_checked: dict = {}  # "failure": None when the stream matched NumPy's, else why not


def library_state() -> str:
    state = _LIBRARY.state()
    failure = _checked.get("failure")
    return state if failure is None else f"{state}; not used: {failure}"


def _stream_failure() -> str | None:
    """Why the native stream cannot stand in for NumPy's (None when it matches), checked
    once per process on generators of its own: outputs and the state after them."""
    if "failure" in _checked:  # every call asks: no lock once the answer is known
        return _checked["failure"]
    with _check_lock:
        if "failure" not in _checked:
            _checked["failure"] = _compare_streams()
        return _checked["failure"]


def _compare_streams() -> str | None:
    native = _LIBRARY.functions()[symbol("float64")]
    for count, p in ((1, 0.5), (9, 0.3), (64, 0.5), (1001, 0.9)):
        ours, theirs = np.random.default_rng(count), np.random.default_rng(count)
        threshold = math.ceil(p * 2 ** 24) << 8
        got = np.empty(count)
        native(ours.bit_generator.ctypes.state, count, threshold, data_address(got))
        want = _binomial(theirs, (count,), np.dtype(np.float64), p)
        if not np.array_equal(got, want) or \
                ours.bit_generator.state != theirs.bit_generator.state:
            return f"its PCG64 stream differs from NumPy {np.__version__}'s ({count} draws)"
    return None


class BernoulliKernel(NativeOpKernel):
    """One random_binomial node's kernel (its generator, its threshold)."""

    library = _LIBRARY

    def __init__(self, node, dtype: str):
        super().__init__(node, dtype, symbol(dtype))
        attrs = node.attrs
        self.shape, self.p = attrs["shape"], attrs["p"]
        self.fixed = all(isinstance(item, int) for item in self.shape)
        self.rng = np.random.default_rng(seed_for_compile(attrs["seed"]))
        self.generator = self.rng.bit_generator
        self.state = self.generator.ctypes.state
        self.threshold = math.ceil(self.p * 2 ** 24) << 8  # as _binomial compares

    def __call__(self, *inputs):
        shape = self.shape if self.fixed else runtime_shape(self.shape, inputs)
        if not 0 < self.threshold < 2 ** 32 or _stream_failure() is not None:
            return _binomial(self.rng, shape, self.dtype, self.p)  # constant, or no native
        out = np.empty(shape, self.dtype)
        with self.generator.lock:  # as NumPy's own samplers hold it
            self.native()(self.state, out.size, self.threshold, data_address(out))
        return out


def random_kernel(node) -> tuple:
    """(kernel, reason) for a random_binomial node; kernel None when NumPy runs it."""
    dtype = node.outputs[0].type.dtype
    if dtype not in FLOAT_TYPES:
        return None, f"random_binomial of {dtype}: the native sampler writes float32/float64"
    if sys.byteorder != "little":
        return None, "random_binomial: the native sampler assumes a little-endian host"
    return BernoulliKernel(node, dtype), f"{symbol(dtype)} (NumPy's PCG64 stream, 4 chains)"

"""Small helpers the NumPy kernels of several op families share."""
from __future__ import annotations

import functools

import numpy as np


def as_array(result) -> np.ndarray:
    """NumPy gives 0-d results as scalars; kernels hand on arrays."""
    return result if isinstance(result, np.ndarray) else np.asarray(result)


def ignoring_underflow(kernel):
    """Run `kernel` with exp underflowing to 0 allowed, even under np.seterr(under='raise'):
    in softmaxes and log-space sums that 0 is the right answer."""
    @functools.wraps(kernel)
    def run(*arrays, **attrs):
        with np.errstate(under="ignore"):
            return kernel(*arrays, **attrs)
    return run


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """x - logsumexp(x, axis), without overflow."""
    with np.errstate(under="ignore"):
        shifted = x - np.max(x, axis=axis, keepdims=True)
        shifted -= np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return shifted


def in_float32(a: np.ndarray) -> np.ndarray:
    """float16 input computed in float32 (sums need the precision, as TensorFlow does)."""
    return a.astype(np.float32) if a.dtype == np.float16 else a

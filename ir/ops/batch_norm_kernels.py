"""NumPy kernels of batch normalization in training (the ops are in normalization.py).

When the reduced axes lead (the channels-last layout), per-channel sums are
BLAS gemv calls (ones @ rows, 8x faster than np.sum over the rows) and the
elementwise passes run on a wide view of x with per-channel vectors tiled
along it; other layouts use einsum. float16 computes in float32.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ...threads import matmul as blas_matmul  # a gemv: BLAS on one thread
from .kernels import in_float32

# --- per-channel sums ----------------------------------------------------------------------


@lru_cache(maxsize=256)
def _plan(ndim: int, axes: tuple):
    """(reduced axes lead?, einsum spec for a sum, einsum spec for a sum of products)."""
    letters = "abcdefghijklmnopqrstuvwxyz"[:ndim]
    kept = "".join(letters[i] for i in range(ndim) if i not in axes)
    return axes == tuple(range(len(axes))), f"{letters}->{kept}", f"{letters},{letters}->{kept}"


@lru_cache(maxsize=16)
def _ones(count: int, dtype: np.dtype) -> np.ndarray:
    ones = np.ones(count, dtype=dtype)
    ones.setflags(write=False)
    return ones


def _layout(x: np.ndarray, axes: tuple):
    """(number of reduced elements, kept shape, kept shape with ones at the reduced axes)."""
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    kept = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    broadcast = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return count, kept, broadcast


def _results(dtype, *arrays) -> tuple:
    return tuple(np.asarray(a).astype(dtype, copy=False) for a in arrays)


# --- reduced axes leading (channels last): (rows, channels) matrices ------------------------

@lru_cache(maxsize=256)
def _rows_side_by_side(rows: int, channels: int) -> int:
    """How many rows to lay side by side so a per-channel vector spans ~2048 elements.

    NumPy runs one inner loop per row when a (channels,) vector broadcasts
    against (rows, channels): with 32 channels, 2048 loops of 32 elements.
    In long rows the batch norm kernels below run 1.2-1.3x faster on
    (32, 8, 8, 32) inputs (measured; per-channel sums as BLAS gemv are 8x
    faster than np.sum over the rows).
    """
    for k in range(min(max(1, 2048 // max(channels, 1)), rows), 0, -1):
        if rows % k == 0:
            return k
    return 1


class _Channels:
    """x's reduced axes as the rows of a (rows, channels) matrix, also viewed `wide`:
    (rows / k, k * channels), where per-channel vectors are tiled k times."""

    def __init__(self, shape: tuple, axes: tuple, dtype):
        self.count = int(np.prod(shape[:len(axes)], dtype=np.int64))
        self.kept = tuple(shape[len(axes):])
        self.channels = int(np.prod(self.kept, dtype=np.int64))
        self.k = _rows_side_by_side(self.count, self.channels)
        self.wide_shape = (self.count // self.k, self.k * self.channels)
        self.ones = _ones(self.count, dtype)

    def wide(self, a: np.ndarray) -> np.ndarray:
        return a.reshape(self.wide_shape)

    def tile(self, vector: np.ndarray) -> np.ndarray:
        tiled = np.empty((self.k, self.channels), vector.dtype)  # np.tile costs ~10x more
        tiled[...] = vector.reshape(-1)
        return tiled.reshape(-1)

    def sum(self, wide: np.ndarray) -> np.ndarray:
        """Per-channel sums: one BLAS gemv (on one thread: a vector product)."""
        return blas_matmul(self.ones, wide.reshape(self.count, self.channels)).reshape(self.kept)


@lru_cache(maxsize=256)
def _channels(shape: tuple, axes: tuple, dtype) -> _Channels:
    """One _Channels per layout: building one costs ~25 us of Python (np.prod, the ones
    vector), as much as a pass over a Keras-sized activation."""
    return _Channels(shape, axes, dtype)


def _train_leading(x, gamma, beta, epsilon, axes):
    """batch_norm_train's kernel when the reduced axes lead: 2 gemv + 4 passes over x."""
    channels = _channels(x.shape, axes, x.dtype)
    mean = channels.sum(x) / channels.count
    centered = np.subtract(channels.wide(x), channels.tile(mean))
    square = np.multiply(centered, centered)
    var = channels.sum(square) / channels.count
    factor = 1.0 / np.sqrt(var + epsilon)
    if gamma is not None:
        factor = factor * gamma
    out = np.multiply(centered, channels.tile(factor), out=square)
    if beta is not None:
        out += channels.tile(beta)
    return out.reshape(x.shape), mean, var


def _train_grad_leading(gy, x, gamma, mean, var, epsilon, axes):
    """batch_norm_train_grad's kernel when the reduced axes lead: 2 gemv + 6 passes."""
    channels = _channels(x.shape, axes, x.dtype)
    n = channels.count
    inv = 1.0 / np.sqrt(var + epsilon)
    gain = inv * gamma if gamma is not None else inv
    wide_gy = channels.wide(gy)
    dbeta = channels.sum(wide_gy)
    centered = np.subtract(channels.wide(x), channels.tile(mean))
    product = np.multiply(wide_gy, centered)
    dgamma = channels.sum(product) * inv
    dx = np.multiply(wide_gy, channels.tile(gain), out=product)
    centered *= channels.tile(gain * inv * dgamma / n)  # xhat * gain * dgamma / n
    dx -= centered
    dx -= channels.tile(gain * dbeta / n)
    return dx.reshape(x.shape), dgamma, dbeta


# --- any reduced axes: einsum --------------------------------------------------------------


def _channel_sum(a: np.ndarray, axes: tuple) -> np.ndarray:
    return np.asarray(np.einsum(_plan(a.ndim, axes)[1], a))


def _channel_dot(a: np.ndarray, b: np.ndarray, axes: tuple) -> np.ndarray:
    """sum of a * b over axes, in the kept shape, without materializing a * b."""
    return np.asarray(np.einsum(_plan(a.ndim, axes)[2], a, b))


def _train_any(x, gamma, beta, epsilon, axes):
    count, kept, broadcast = _layout(x, axes)
    mean = _channel_sum(x, axes) / count
    centered = x - mean.reshape(broadcast)
    var = _channel_dot(centered, centered, axes) / count
    factor = 1.0 / np.sqrt(var + epsilon)
    if gamma is not None:
        factor = factor * gamma
    centered *= factor.reshape(broadcast)  # centered is our own buffer: it becomes the output
    if beta is not None:
        centered += beta.reshape(broadcast)
    return centered, mean, var


def _train_grad_any(gy, x, gamma, mean, var, epsilon, axes):
    count, kept, broadcast = _layout(x, axes)
    inv = 1.0 / np.sqrt(var + epsilon)
    centered = x - mean.reshape(broadcast)
    dbeta = _channel_sum(gy, axes)
    dgamma = _channel_dot(gy, centered, axes) * inv
    gain = inv * gamma if gamma is not None else inv
    dx = gy * gain.reshape(broadcast)
    centered *= (gain * inv * dgamma / count).reshape(broadcast)  # xhat * gain * dgamma / n
    dx -= centered
    dx -= (gain * dbeta / count).reshape(broadcast)
    return dx, dgamma, dbeta


# --- kernels ---------------------------------------------------------------------------------


def _batch_norm_train(x, *params, axes, epsilon, scale, center):
    """(x - mean) / sqrt(var + epsilon) * gamma + beta, with the batch's mean and variance."""
    gamma = params[0] if scale else None
    beta = params[-1] if center else None
    leading = _plan(x.ndim, axes)[0] and x.size > 0
    train = _train_leading if leading else _train_any
    return _results(x.dtype, *train(in_float32(x), gamma, beta, epsilon, axes))


def _batch_norm_train_grad(gy, x, *params, axes, epsilon, scale):
    """d(x, gamma, beta) of sum(gy * normalized), the batch moments being functions of x:

    dbeta = sum(gy), dgamma = sum(gy * xhat),
    dx = gamma * inv * (gy - dbeta / n - xhat * dgamma / n), inv = 1 / sqrt(var + eps).
    """
    gamma = params[0] if scale else None
    mean, var = params[-2:]
    leading = _plan(x.ndim, axes)[0] and x.size > 0
    grad = _train_grad_leading if leading else _train_grad_any
    return _results(x.dtype, *grad(in_float32(gy), in_float32(x), gamma, mean, var, epsilon,
                                   axes))

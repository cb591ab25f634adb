"""Native batch normalization kernels (training) for K.function's "llvm" and "auto"
lowerings.

batch_norm_train and batch_norm_train_grad run every training step of a Keras
model with BatchNormalization; their NumPy kernels (ir/ops/batch_norm_kernels.py)
make four to six passes over x plus BLAS sums, with NumPy's per-call costs on
arrays that are small. The native kernels (batch_norm_emit.py) make three passes
forward and two backward, with the per-channel math inside. They form one fixed
library, compiled (or loaded from the disk cache) at the first call of either
op in the process, never at import or when a function is built.

    kernel, reason = batch_norm_kernel(node)   # a kernel, or None and why NumPy runs
    kernel(*input_arrays) -> tuple             # the NumPy kernel's signature

Native when the reduced axes lead (channels last: x is a (rows, channels)
matrix, channels the product of the kept axes) and the dtype is float32 or
float64; otherwise the NumPy kernel runs and the reason is recorded for
fn.report(). Calls on empty arrays, or on arrays that are not plain ndarrays of
the node's dtype, run the NumPy kernel too. Results match the NumPy kernel's
up to the rounding of the per-channel sums (accumulated in double here, in the
data's dtype by BLAS there); every call on the same inputs gives the same bits.

Native code never reads or writes outside its buffers: every size passed is
derived from x's shape; the per-channel inputs must have the kept shape, and the
cotangent x's shape, else a ValueError names the op and both shapes; inputs are
made C-contiguous and outputs are allocated here.
"""
from __future__ import annotations

import ctypes
import math
from functools import lru_cache

import numpy as np

from .batch_norm_emit import OPS, library_text, symbol
from .library import NativeLibrary, NativeOpKernel
from .pointers import data_address

__all__ = ["OPS", "batch_norm_kernel", "library_state"]

FLOAT_DTYPES = ("float32", "float64")
_SIGNATURE = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64, ctypes.c_double,
                              *[ctypes.c_void_p] * 8)
_LIBRARY = NativeLibrary("batch norm kernels", library_text,
                         [symbol(op, dtype) for op in OPS for dtype in FLOAT_DTYPES], _SIGNATURE)


def library_state() -> str:
    """How this process got the batch normalization kernels' code, for fn.report()."""
    return _LIBRARY.state()


@lru_cache(maxsize=512)
def _checked_layout(op: str, names: tuple, shapes: tuple, ndim: int, axes: tuple) -> tuple:
    """(rows, channels, kept shape) of x viewed as a (rows, channels) matrix, the inputs
    named `names` having `shapes`: a ValueError unless x has rank `ndim`, the cotangent x's
    shape and the per-channel inputs the kept shape. Cached: checked once per pattern."""
    x = shapes[names.index("x")]
    if len(x) != ndim:
        raise ValueError(f"{op}: x should have rank {ndim} (reduced axes {axes}), given "
                         f"shape {x}")
    kept = x[len(axes):]
    for name, shape in zip(names, shapes):
        expected = x if name in ("x", "gy") else kept
        if shape != expected:
            raise ValueError(f"{op}: {name} should have shape {expected} (x has shape {x}, "
                             f"reduced over axes {axes}), given {shape}")
    return math.prod(x[:len(axes)]), math.prod(kept), kept


@lru_cache(maxsize=64)
def _neutral_row(channels: int, dtype: str, value: float) -> np.ndarray:
    """A read-only row standing in for an absent gamma (ones) or beta (-0.0): x * 1 and
    x + -0.0 are x bit for bit, so the kernels need no case for either."""
    row = np.full(channels, value, dtype)
    row.setflags(write=False)
    return row


class BatchNormKernel(NativeOpKernel):
    """One node's native kernel: `kernel(*input_arrays) -> (three arrays)`."""

    library = _LIBRARY

    def __init__(self, node, dtype: str):
        super().__init__(node, dtype, symbol(node.op.name, dtype))
        attrs = node.attrs
        self.axes = tuple(attrs["axes"])  # leading: 0 .. len(axes) - 1 (batch_norm_kernel)
        self.ndim = node.inputs[0].type.ndim
        self.epsilon = float(attrs["epsilon"])
        self.scale = attrs["scale"]

    def ready_all(self, arrays: tuple):
        """Every input ready (see `ready`), or None when one is not an ndarray of the
        kernel's dtype or x is empty: the NumPy kernel runs then."""
        ready = [self.ready(array) for array in arrays]
        for array in ready:
            if array is None:
                return None
        if len(arrays) != self.arity:
            raise ValueError(f"{self.op}: expected {self.arity} inputs "
                             f"({', '.join(self.names)}), given {len(arrays)}")
        return ready if ready[self.names.index("x")].size else None

    def layout(self, ready: list) -> tuple:
        """(rows, channels, kept shape) of x; raises ValueError unless every other input
        has x's shape (the cotangent) or the kept shape (the per-channel ones)."""
        return _checked_layout(self.op, self.names, tuple(a.shape for a in ready), self.ndim,
                               self.axes)

    def outputs(self, shape: tuple, kept: tuple) -> tuple:
        dtype = self.dtype
        return np.empty(shape, dtype), np.empty(kept, dtype), np.empty(kept, dtype)


class TrainKernel(BatchNormKernel):
    """batch_norm_train: (x, [gamma], [beta]) -> (y, mean, var)."""

    def __init__(self, node, dtype: str):
        super().__init__(node, dtype)
        self.center = node.attrs["center"]
        self.names = ("x",) + (("gamma",) if self.scale else ()) + (("beta",) if self.center
                                                                    else ())
        self.arity = len(self.names)

    def __call__(self, *arrays):
        ready = self.ready_all(arrays)
        if ready is None:
            return self.numpy_kernel(*arrays)  # NumPy's mean of no rows (NaN) included
        rows, channels, kept = self.layout(ready)
        x = ready[0]
        gamma = ready[1] if self.scale else _neutral_row(channels, self.dtype_name, 1.0)
        beta = ready[-1] if self.center else _neutral_row(channels, self.dtype_name, -0.0)
        y, mean, var = outputs = self.outputs(x.shape, kept)
        self.native()(rows, channels, self.epsilon, data_address(x), data_address(gamma),
                      data_address(beta), 0, 0, data_address(y), data_address(mean),
                      data_address(var))
        return outputs


class TrainGradKernel(BatchNormKernel):
    """batch_norm_train_grad: (gy, x, [gamma], mean, var) -> (dx, dgamma, dbeta)."""

    def __init__(self, node, dtype: str):
        super().__init__(node, dtype)
        self.names = ("gy", "x") + (("gamma",) if self.scale else ()) + ("mean", "var")
        self.arity = len(self.names)

    def __call__(self, *arrays):
        ready = self.ready_all(arrays)
        if ready is None:
            return self.numpy_kernel(*arrays)
        rows, channels, kept = self.layout(ready)
        gy, x, mean, var = ready[0], ready[1], ready[-2], ready[-1]
        gamma = ready[2] if self.scale else _neutral_row(channels, self.dtype_name, 1.0)
        dx, dgamma, dbeta = outputs = self.outputs(x.shape, kept)
        self.native()(rows, channels, self.epsilon, data_address(gy), data_address(x),
                      data_address(gamma), data_address(mean), data_address(var),
                      data_address(dx), data_address(dgamma), data_address(dbeta))
        return outputs


_KERNELS = {"batch_norm_train": TrainKernel, "batch_norm_train_grad": TrainGradKernel}


def batch_norm_kernel(node) -> tuple:
    """(native kernel, why) for a batch normalization node, or (None, why NumPy runs)."""
    op = node.op.name
    if op not in _KERNELS:
        return None, "not a batch normalization op"
    axes = tuple(node.attrs["axes"])
    if axes != tuple(range(len(axes))):
        return None, (f"reduced axes {axes} do not lead: native batch normalization reads x "
                      "as (rows, channels), channels last")
    dtypes = sorted({str(value.type.dtype) for value in (*node.inputs, node.outputs[0])})
    if len(dtypes) != 1 or dtypes[0] not in FLOAT_DTYPES:
        return None, (f"dtype {'/'.join(dtypes)}: native batch normalization kernels are "
                      "float32 and float64 only")
    kernel = _KERNELS[op](node, dtypes[0])
    return kernel, f"native batch normalization kernel {kernel.symbol}"

"""Native window kernels for K.function's "llvm" and "auto" lowerings.

Four ops a Keras CNN's training step spends much of its NumPy time in run
native code instead: extract_patches (im2col), scatter_patches (col2im),
max_pool and max_pool_grad. Their kernels (window_emit.py) form one fixed
library module, not graph-specific: it is compiled (or loaded from the disk
cache) at the first call of any of them in the process, never at import or
when a function is built, and kept loaded.

    kernel, reason = window_kernel(node)   # the hook's answer: a kernel, or None
    kernel(*input_arrays) -> array         # the NumPy kernel's signature

Each native result equals the op's NumPy kernel bit for bit (window_emit.py
says how, per op). Only float32 and float64, channels_last, and for
max_pool_grad windows that do not overlap are native; anything else keeps the
NumPy kernel, and the reason is recorded for fn.report().

Native code never reads or writes outside its buffers: the wrapper derives
every size it passes from the arrays' shapes and the node's attributes (the
geometry of ir/ops/windows.py and pool.py, never recomputed here), makes
inputs C-contiguous, allocates outputs and scratch itself, and raises a
ValueError naming the op when the shapes given disagree.
"""
from __future__ import annotations

import ctypes
import math
from functools import lru_cache

import numpy as np

from ...ir.ops.conv import resolve_spatial
from ...ir.ops.pool import _windows
from ...ir.ops.windows import window_layout
from .library import NativeLibrary, NativeOpKernel
from .pointers import data_address
from .window_emit import OPS, PARAMS, library_text, symbol

__all__ = ["OPS", "window_kernel", "library_state", "tap_table"]

FLOAT_DTYPES = ("float32", "float64")
_SIGNATURE = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 9)
_PLANS = 512  # shape patterns remembered per op (each holds its tap table)

# --- the library: one module, compiled or loaded at its first use (library.py) ------------

_LIBRARY = NativeLibrary("window kernels", library_text,
                         [symbol(op, dtype) for op in OPS for dtype in FLOAT_DTYPES], _SIGNATURE)
_library = _LIBRARY.record  # "functions", "owner", "source", "seconds" once loaded


def library_state() -> str:
    """How this process got the window kernels' code, for fn.report()."""
    return _LIBRARY.state()


# --- geometry: the tap table the kernels read -------------------------------------------------

@lru_cache(maxsize=256)
def tap_table(spatial: tuple, window: tuple, strides: tuple, dilation: tuple, before: tuple,
              positions: tuple) -> np.ndarray:
    """For window position o and tap t (both row-major over the spatial axes): the flat
    spatial index of the input element tap t of window o reads, or -1 in the padding, at
    [o * taps + t]. Read-only; every entry is below prod(spatial)."""
    rank = len(spatial)
    flat = np.zeros((1,) * (2 * rank), np.int64)
    inside = np.ones((1,) * (2 * rank), bool)
    for axis, (size, k, s, d, b, out) in enumerate(zip(spatial, window, strides, dilation,
                                                         before, positions)):
        shape = [1] * (2 * rank)
        shape[axis], shape[rank + axis] = out, k  # positions axes first, then taps axes
        source = (np.arange(out)[:, None] * s + np.arange(k)[None, :] * d - b).reshape(shape)
        flat = flat * size + source
        inside = inside & (source >= 0) & (source < size)
    table = np.where(inside, flat, -1).reshape(-1).astype(np.int64)
    if table.size != math.prod(positions) * math.prod(window) or (
            table.size and table.max() >= math.prod(spatial)):
        raise AssertionError(f"tap table for {spatial} reads outside the input")
    table.setflags(write=False)
    return table


class _Plan:
    """What one op needs per call for one shape pattern: parameters, table, rows to read in
    the padding, the output's shape, the scratch it needs (elements of the dtype) and its
    flags (bytes)."""

    __slots__ = ("params", "table", "padding", "out_shape", "scratch", "flags", "addresses")

    def __init__(self, sizes: dict, table, padding, out_shape, scratch: int, flags: int = 0):
        self.params = np.array([sizes.get(name, 0) for name in PARAMS], np.int64)
        self.table, self.padding = table, padding
        self.out_shape, self.scratch, self.flags = out_shape, scratch, flags
        # kept alive by this plan: their addresses never change
        self.addresses = (data_address(self.params), data_address(table),
                          data_address(padding))


def _padding_row(channels: int, dtype: str, value: float) -> np.ndarray:
    row = np.full(max(channels, 1), value, dtype)
    row.setflags(write=False)
    return row


def _mismatch(op: str, what: str, expected, given) -> ValueError:
    return ValueError(f"{op}: {what} should have shape {tuple(expected)}, given "
                      f"{tuple(given)}")


def _check_rank(op: str, shape: tuple, rank: int) -> None:
    if len(shape) != rank + 2:
        raise ValueError(f"{op}: a {rank}-d window needs an input of rank {rank + 2} "
                         f"(batch, *spatial, channels), given shape {tuple(shape)}")


@lru_cache(maxsize=_PLANS)
def _extract_plan(shape, dtype, kernel_size, strides, dilation, padding) -> _Plan:
    _check_rank("extract_patches", shape, len(kernel_size))
    spatial, channels = shape[1:-1], shape[-1]
    layout = window_layout(spatial, kernel_size, strides, dilation, padding)
    before = tuple(b for b, _ in layout.pads)
    table = tap_table(spatial, kernel_size, strides, dilation, before, layout.positions)
    sizes = {"batch": shape[0], "rows": math.prod(spatial), "channels": channels,
             "positions": math.prod(layout.positions), "window": math.prod(kernel_size)}
    out_shape = (shape[0],) + layout.positions + tuple(kernel_size) + (channels,)
    return _Plan(sizes, table, _padding_row(channels, dtype, 0.0), out_shape, 0)


@lru_cache(maxsize=_PLANS)
def _scatter_plan(shape, dtype, spatial, kernel_size, strides, dilation, padding) -> _Plan:
    batch, channels = shape[0], shape[-1]
    layout = window_layout(spatial, kernel_size, strides, dilation, padding)
    expected = (batch,) + layout.positions + tuple(kernel_size) + (channels,)
    if tuple(shape) != expected:
        raise _mismatch("scatter_patches", f"patches for spatial size {spatial}", expected,
                        shape)
    before = tuple(b for b, _ in layout.pads)
    table = tap_table(spatial, kernel_size, strides, dilation, before, layout.positions)
    sizes = {"batch": batch, "rows": math.prod(spatial), "channels": channels,
             "positions": math.prod(layout.positions), "window": math.prod(kernel_size)}
    return _Plan(sizes, table, _padding_row(channels, dtype, 0.0),
                 (batch,) + tuple(spatial) + (channels,), channels)


def _pool_sizes(shape, windows) -> tuple[dict, np.ndarray]:
    spatial = shape[1:-1]
    ones = (1,) * len(spatial)
    table = tap_table(spatial, windows.pool_size, windows.strides, ones, windows.before,
                      windows.outputs)
    sizes = {"batch": shape[0], "rows": math.prod(spatial), "channels": shape[-1],
             "positions": math.prod(windows.outputs), "window": math.prod(windows.pool_size)}
    return sizes, table


@lru_cache(maxsize=_PLANS)
def _max_pool_plan(shape, dtype, pool_size, strides, padding) -> _Plan:
    _check_rank("max_pool", shape, len(pool_size))
    windows = _windows(shape, pool_size, strides, padding, "channels_last")
    sizes, table = _pool_sizes(shape, windows)
    return _Plan(sizes, table, _padding_row(shape[-1], dtype, -np.inf), windows.out_shape, 0)


@lru_cache(maxsize=_PLANS)
def _max_pool_grad_plan(shapes, dtype, pool_size, strides, padding) -> _Plan:
    g_shape, x_shape, y_shape = shapes
    _check_rank("max_pool_grad", x_shape, len(pool_size))
    windows = _windows(x_shape, pool_size, strides, padding, "channels_last")
    for what, shape in (("the cotangent", g_shape), ("the pooled output", y_shape)):
        if shape != windows.out_shape:
            raise _mismatch("max_pool_grad", f"{what} (x has shape {x_shape})",
                            windows.out_shape, shape)
    sizes, table = _pool_sizes(x_shape, windows)
    # NumPy's tiled kernel (pool.py) runs where the windows tile x; window_emit.py
    # reproduces its zeros' signs
    sizes["mode"] = int(tuple(pool_size) == tuple(strides) and not windows.is_padded)
    # scratch: a row for gradients lost in the padding; flags: a byte per channel
    return _Plan(sizes, table, _padding_row(x_shape[-1], dtype, -np.inf), x_shape,
                 x_shape[-1], x_shape[-1])


# --- the kernels: the NumPy kernel's signature, native code inside --------------------------

class WindowKernel(NativeOpKernel):
    """One node's native window kernel: `kernel(*input_arrays) -> array`.

    Inputs that are not plain ndarrays of the node's dtype (a subclass, another byte
    order) run the node's NumPy kernel instead; that never happens for arrays the
    compiled program makes, which are of the declared dtypes."""

    library = _LIBRARY

    def __init__(self, node, dtype: str):
        super().__init__(node, dtype, symbol(node.op.name, dtype))

    def run(self, plan: _Plan, first, second=None, third=None):
        """Call the kernel on ready inputs; returns the output it allocated."""
        out = np.empty(plan.out_shape, self.dtype)
        # per call, so that threads running one function never share them
        scratch = np.empty(plan.scratch, self.dtype) if plan.scratch else None
        flags = np.empty(plan.flags, np.uint8) if plan.flags else None
        params, table, padding = plan.addresses
        self.native()(params, table, data_address(first),
                      0 if second is None else data_address(second),
                      0 if third is None else data_address(third), padding,
                      data_address(out), 0 if scratch is None else data_address(scratch),
                      0 if flags is None else data_address(flags))
        return out


class ExtractPatchesKernel(WindowKernel):
    def __call__(self, x):
        ready = self.ready(x)
        if ready is None:
            return self.numpy_kernel(x)
        a = self.attrs
        plan = _extract_plan(ready.shape, self.dtype_name, a["kernel_size"], a["strides"],
                             a["dilation"], a["padding"])
        return self.run(plan, ready)


class ScatterPatchesKernel(WindowKernel):
    def __call__(self, patches, *extras):
        ready = self.ready(patches)
        if ready is None:
            return self.numpy_kernel(patches, *extras)
        a = self.attrs
        spatial = resolve_spatial(a["output_spatial"], extras)
        plan = _scatter_plan(ready.shape, self.dtype_name, spatial, a["kernel_size"],
                             a["strides"], a["dilation"], a["padding"])
        return self.run(plan, ready)


class MaxPoolKernel(WindowKernel):
    def __call__(self, x):
        ready = self.ready(x)
        if ready is None:
            return self.numpy_kernel(x)
        a = self.attrs
        plan = _max_pool_plan(ready.shape, self.dtype_name, a["pool_size"], a["strides"],
                              a["padding"])
        return self.run(plan, ready)


class MaxPoolGradKernel(WindowKernel):
    def __call__(self, g, x, y):
        ready = [self.ready(g), self.ready(x), self.ready(y)]
        if any(array is None for array in ready):
            return self.numpy_kernel(g, x, y)
        a = self.attrs
        plan = _max_pool_grad_plan((ready[0].shape, ready[1].shape, ready[2].shape),
                                   self.dtype_name, a["pool_size"], a["strides"],
                                   a["padding"])
        return self.run(plan, *ready)


_KERNELS = {"extract_patches": ExtractPatchesKernel, "scatter_patches": ScatterPatchesKernel,
            "max_pool": MaxPoolKernel, "max_pool_grad": MaxPoolGradKernel}
_FLOAT_INPUTS = {"extract_patches": 1, "scatter_patches": 1, "max_pool": 1,
                 "max_pool_grad": 3}  # leading inputs holding the op's data (not sizes)


def window_kernel(node) -> tuple:
    """(native kernel, why) for a window op's node, or (None, why its NumPy kernel runs)."""
    op = node.op.name
    if op not in _KERNELS:
        return None, "not a window op"
    if node.attrs["data_format"] != "channels_last":
        return None, ("native window kernels read channels_last only; "
                      f"{node.attrs['data_format']} runs NumPy's kernel")
    values = list(node.inputs[:_FLOAT_INPUTS[op]]) + [node.outputs[0]]
    dtypes = sorted({str(value.type.dtype) for value in values})
    if len(dtypes) != 1 or dtypes[0] not in FLOAT_DTYPES:
        return None, (f"dtype {'/'.join(dtypes)}: native window kernels are float32 and "
                      "float64 only")
    if op == "max_pool_grad" and any(s < k for s, k in zip(node.attrs["strides"],
                                                           node.attrs["pool_size"])):
        return None, ("overlapping windows (a stride below the pool size): the native "
                      "gradient needs each element in one window at most")
    kernel = _KERNELS[op](node, dtypes[0])
    return kernel, f"native window kernel {kernel.symbol}"

"""Pooling: the max or the mean over sliding windows of the spatial axes, as TensorFlow does it.

Every pooling op takes the same attributes: `pool_size` and `strides` (one
int per spatial axis; 2 for images, 3 for volumes), `padding` ('valid' or
'same') and `data_format` ('channels_last': (batch, *spatial, channels), or
'channels_first': (batch, channels, *spatial)). 'same' padding is
TensorFlow's: the output has ceil(size / stride) positions and the padding
needed for that is split with the smaller half before. Padded positions never
win a max, and a mean divides by the number of real (unpadded) elements in
its window. The window geometry is the convolutions' (ir/ops/windows.py): a
pool is a window with dilation 1.

Kernels loop over the few window *taps* (offsets inside the window, 4 for a
2x2 pool), never over pixels: tap (i, j) is the strided view
`x[i::s, j::s]` of all windows at once, and each step is one vectorized
NumPy call over the whole tensor. That is several times faster than
reducing a `sliding_window_view` over its window axes (whose inner loops run
over the tiny window), and up to 30x faster for channels_first layouts.

Gradients are ops too: `max_pool_grad` sends each output's cotangent to the
first maximum of its window (first in row-major window order, the element
TensorFlow's CPU kernel picks on ties); `avg_pool_grad` spreads g / count
over the window. Each is linear in its cotangent, and its transpose is
another op here, so second derivatives work: `max_pool_select` (read a
tensor at each window's first maximum) and `avg_pool` itself.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..dtypes import require_float, require_numeric
from ..shapes import ShapeError, SymDim, format_shape, merge_dim, merge_shapes
from ..types import TensorType
from .registry import REQUIRED, OpDef, Sample, apply, register
from .windows import (POOL_PADDINGS, check_window_attrs, check_window_input, spatial_axes,
                      window_layout, window_positions)

# --- geometry: windows.py's, with dilation 1 --------------------------------------------------


def _ones(pool_size) -> tuple:
    return (1,) * len(pool_size)


def pooled_shape(x: TensorType, pool_size, strides, padding, data_format) -> tuple:
    check_window_attrs(pool_size, strides, None, padding, data_format, window_name="pool_size",
                       paddings=POOL_PADDINGS)
    check_window_input(x.shape, len(pool_size), data_format)
    positions = window_positions(x.shape, data_format, pool_size, strides, _ones(pool_size),
                                 padding)
    return _replaced(x.shape, spatial_axes(x.ndim, data_format), positions)


def _replaced(items: tuple, positions, values) -> tuple:
    items = list(items)
    for position, value in zip(positions, values):
        items[position] = value
    return tuple(items)


class _Windows:
    """The windows of one pooling over an array's runtime shape: padding and tap indices."""

    def __init__(self, shape: tuple, pool_size, strides, padding, data_format):
        self.shape = shape
        self.axes = spatial_axes(len(shape), data_format)
        self.pool_size, self.strides = pool_size, strides
        sizes = tuple(shape[a] for a in self.axes)
        layout = window_layout(sizes, pool_size, strides, _ones(pool_size), padding,
                               allow_empty=True)
        self.outputs = layout.positions
        self.before = tuple(before for before, _ in layout.pads)
        self.is_padded = layout.padded
        self.out_shape = _replaced(shape, self.axes, layout.positions)
        self.padded_shape = _replaced(shape, self.axes, layout.padded_spatial)
        self.center = _replaced((slice(None),) * len(shape), self.axes, layout.crop)
        # For each offset inside the window, the index of that element of every window.
        self.taps = tuple(_replaced((slice(None),) * len(shape), self.axes, sources)
                          for _, sources in layout.taps)

    def pad(self, x: np.ndarray, fill) -> np.ndarray:
        """x inside a border of `fill` (x itself when no padding is needed)."""
        if not self.is_padded:
            return x
        padded = np.full(self.padded_shape, fill, dtype=x.dtype)
        padded[self.center] = x
        return padded

    def crop(self, padded: np.ndarray) -> np.ndarray:
        return padded[self.center] if self.is_padded else padded

    def counts(self, dtype) -> np.ndarray | float:
        """How many real (unpadded) elements each window holds, broadcastable to the output."""
        if not self.is_padded:
            return float(np.prod(self.pool_size))
        total = np.ones((1,) * len(self.shape), dtype=dtype)
        for axis, size, stride, out, before in zip(self.axes, self.pool_size, self.strides,
                                                   self.outputs, self.before):
            starts = np.arange(out) * stride - before
            count = np.minimum(starts + size, self.shape[axis]) - np.maximum(starts, 0)
            shape = [1] * len(self.shape)
            shape[axis] = out
            total = total * count.reshape(shape).astype(dtype)
        return total


@lru_cache(maxsize=1024)
def _windows(shape: tuple, pool_size, strides, padding, data_format) -> _Windows:
    return _Windows(shape, pool_size, strides, padding, data_format)


def _lowest(dtype: np.dtype):
    """The padding value a max never picks: -inf, or the smallest integer."""
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _first_max_hits(windows: _Windows, xp: np.ndarray, y: np.ndarray):
    """For each tap, (its index, where it holds its window's first maximum)."""
    free = np.ones(y.shape, dtype=bool)  # windows whose maximum no earlier tap held
    for key in windows.taps:
        hit = np.equal(xp[key], y)
        np.logical_and(hit, free, out=hit)
        np.logical_xor(free, hit, out=free)  # hit is within free: this clears the hits
        yield key, hit


# --- kernels -------------------------------------------------------------------------------


def _max_pool(x, pool_size, strides, padding, data_format):
    windows = _windows(x.shape, pool_size, strides, padding, data_format)
    xp = windows.pad(x, _lowest(x.dtype))
    result = None
    for key in windows.taps:
        if result is None:
            result = xp[key].copy()
        else:
            np.maximum(result, xp[key], out=result)
    return result


def _avg_pool(x, pool_size, strides, padding, data_format):
    windows = _windows(x.shape, pool_size, strides, padding, data_format)
    xp = windows.pad(x, 0)
    total = np.zeros(windows.out_shape, dtype=x.dtype)
    for key in windows.taps:
        total += xp[key]
    total /= windows.counts(x.dtype)
    return total


def _max_pool_grad(g, x, y, pool_size, strides, padding, data_format):
    windows = _windows(x.shape, pool_size, strides, padding, data_format)
    if tuple(pool_size) == tuple(strides) and not windows.is_padded:
        tiled = _tiled_max_pool_grad(g, x, y, windows)
        if tiled is not None:
            return tiled
    xp = windows.pad(x, _lowest(x.dtype))
    result = np.zeros(windows.padded_shape, dtype=g.dtype)
    # g * hit is twice as fast as np.where(hit, g, 0), but would turn an infinite
    # cotangent into NaNs (inf * 0) at the window's other elements.
    finite = bool(np.isfinite(g).all())
    zero = np.zeros((), dtype=g.dtype)
    for key, hit in _first_max_hits(windows, xp, y):
        result[key] += g * hit if finite else np.where(hit, g, zero)
    return windows.crop(result)


def _tiled_max_pool_grad(g, x, y, windows: _Windows):
    """max_pool_grad when the windows tile x (stride = pool size, no padding), or None.

    Each axis splits into (window, tap): one comparison and one product over the
    whole tensor replace most of the NumPy calls per tap, about 1.6x faster for
    Keras' 2x2 pools (measured). Ties (all-zero windows after a ReLU are common)
    keep only their first maximum in row-major window order, as the general
    kernel does; a NaN maximum equals nothing, so its window gets nothing, also
    as there. None (the general kernel) when g is not finite.
    """
    if not np.isfinite(g).all():
        return None  # g * mask would turn inf * 0 into NaNs on the other taps
    split, tiled = list(x.shape[:windows.axes[0]]), [slice(None)] * windows.axes[0]
    for axis in windows.axes:
        out, size = windows.outputs[axis - windows.axes[0]], windows.pool_size[
            axis - windows.axes[0]]
        split += [out, size]
        tiled += [slice(0, out * size)]
    split += list(x.shape[windows.axes[-1] + 1:])
    tiled += [slice(None)] * (x.ndim - windows.axes[-1] - 1)
    # One copy with the tap axes first makes every tap's slice (and every op below)
    # contiguous; y and g, shaped like one tap's slice, broadcast over the taps.
    taps = tuple(axis + 1 + i for i, axis in enumerate(windows.axes))
    x_tiles = x[tuple(tiled)].reshape(split)
    tap_major = np.ascontiguousarray(np.moveaxis(x_tiles, taps, range(len(taps))))
    hit = np.equal(tap_major, y)
    if np.count_nonzero(hit) != y.size or (y.dtype.kind == "f" and np.isnan(y).any()):
        _keep_first_hits(hit.reshape((-1,) + y.shape))  # several maxima (or none) somewhere
    # g times a float mask: NumPy's float * bool loop casts element by element, ~1.7x slower
    product = hit.astype(g.dtype)
    np.multiply(g, product, out=product)
    product = np.moveaxis(product, range(len(taps)), taps)
    if x_tiles.size == x.size:
        return product.reshape(x.shape)
    result = np.zeros(x.shape, g.dtype)  # a 'valid' pool leaves a remainder without windows
    result[tuple(tiled)] = product.reshape(result[tuple(tiled)].shape)
    return result


def _keep_first_hits(hit: np.ndarray) -> None:
    """Clear, in place, every hit after the first along axis 0 (the taps, row-major)."""
    views = list(hit)
    seen = views[0].copy()
    for later in views[1:]:
        np.greater(later, seen, out=later)  # bools: later and not seen
        if later is not views[-1]:
            np.logical_or(seen, later, out=seen)


def _max_pool_select(h, x, y, pool_size, strides, padding, data_format):
    windows = _windows(x.shape, pool_size, strides, padding, data_format)
    xp, hp = windows.pad(x, _lowest(x.dtype)), windows.pad(h, 0)
    result = np.zeros(y.shape, dtype=h.dtype)
    for key, hit in _first_max_hits(windows, xp, y):
        np.copyto(result, hp[key], where=hit)
    return result


def _avg_pool_grad(g, x, pool_size, strides, padding, data_format):
    windows = _windows(x.shape, pool_size, strides, padding, data_format)
    share = g / windows.counts(g.dtype)
    result = np.zeros(windows.padded_shape, dtype=g.dtype)
    for key in windows.taps:
        result[key] += share
    return windows.crop(result)


# --- type rules -------------------------------------------------------------------------------


def _max_pool_infer(x, **attrs):
    require_numeric(x.dtype, "max pooling's input")
    return TensorType(x.dtype, pooled_shape(x, **attrs))


def _avg_pool_infer(x, **attrs):
    require_float(x.dtype, "average pooling's input")
    return TensorType(x.dtype, pooled_shape(x, **attrs))


def _check_pooled(value: TensorType, x: TensorType, what: str, attrs) -> None:
    """`value` has the shape pooling x gives (symbols unified under x's names)."""
    expected = pooled_shape(x, **attrs)
    if value.ndim != len(expected):
        raise ShapeError(f"{what} {format_shape(value.shape)} is not the pooled shape "
                         f"{format_shape(expected)}")
    for have, want in zip(value.shape, expected):
        if isinstance(want, SymDim) and want not in x.shape:
            continue  # a size only the runtime knows: nothing to check or unify
        try:
            merge_dim(want, have)
        except ShapeError:
            raise ShapeError(f"{what} {format_shape(value.shape)} is not the pooled shape "
                             f"{format_shape(expected)}") from None


def _max_pool_grad_infer(g, x, y, **attrs):
    _max_pool_infer(x, **attrs)
    _check_pooled(y, x, "the pooled output", attrs)
    _check_pooled(g, x, "the cotangent", attrs)
    return TensorType(g.dtype, x.shape)


def _max_pool_select_infer(h, x, y, **attrs):
    _max_pool_infer(x, **attrs)
    _check_pooled(y, x, "the pooled output", attrs)
    merge_shapes(x.shape, h.shape, "the input and the selected tensor")
    return TensorType(h.dtype, y.shape)


def _avg_pool_grad_infer(g, x, **attrs):
    _avg_pool_infer(x, **attrs)
    _check_pooled(g, x, "the cotangent", attrs)
    return TensorType(g.dtype, x.shape)


# --- samples: distinct values, so every window has one maximum --------------------------------

_ATTRS = {"pool_size": REQUIRED, "strides": REQUIRED, "padding": "valid",
          "data_format": "channels_last"}
_SAMPLE_ATTRS = (
    ((2, 5, 6, 3), {"pool_size": (2, 2), "strides": (2, 2)}),
    ((2, 3, 5, 6), {"pool_size": (3, 2), "strides": (2, 1), "padding": "same",
                    "data_format": "channels_first"}),
    ((2, 4, 3, 5, 2), {"pool_size": (2, 2, 3), "strides": (1, 2, 2), "padding": "same"}),
)


def _distinct(rng, shape):
    """Values at least 0.1 apart, so finite differences never swap a window's maximum."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0


def _pooled_sample_shape(shape, attrs):
    full = dict(_ATTRS, padding="valid", data_format="channels_last")
    full.update(attrs)
    return pooled_shape(TensorType("float64", shape), **full)


def _forward_samples():
    return tuple(Sample((shape,), attrs, make=lambda rng, s=shape: [_distinct(rng, s)])
                 for shape, attrs in _SAMPLE_ATTRS)


def _with_max(first_shape, shape, attrs):
    """make(rng) for (g or h, x, max_pool(x)) with ties-free x."""
    full = dict({"padding": "valid", "data_format": "channels_last"}, **attrs)

    def make(rng):
        x = _distinct(rng, shape)
        return [rng.uniform(-1, 1, first_shape(shape, attrs)), x, _max_pool(x, **full)]
    return make


def _grad_samples(first_shape, differentiable=(0,)):
    return tuple(Sample((first_shape(shape, attrs), shape, _pooled_sample_shape(shape, attrs)),
                        attrs, make=_with_max(first_shape, shape, attrs),
                        differentiable_inputs=differentiable)
                 for shape, attrs in _SAMPLE_ATTRS)


# --- registration ----------------------------------------------------------------------------


def _max_pool_rule(node, g):
    x, y = node.inputs[0], node.outputs[0]
    return (max_pool_grad(g, x, y, **node.attrs),)


register(OpDef(
    "max_pool", "pool", infer=_max_pool_infer, kernel=_max_pool, attrs=_ATTRS,
    grad=_max_pool_rule, samples=_forward_samples(),
    doc="The max of each window over the spatial axes; padding never wins."))

register(OpDef(
    "max_pool_grad", "pool", infer=_max_pool_grad_infer, kernel=_max_pool_grad, attrs=_ATTRS,
    grad=lambda n, h: (max_pool_select(h, n.inputs[1], n.inputs[2], **n.attrs), None, None),
    samples=_grad_samples(lambda shape, attrs: _pooled_sample_shape(shape, attrs)),
    doc="g (pooled shape) sent to the first maximum of each window of x; y = max_pool(x)."))

register(OpDef(
    "max_pool_select", "pool", infer=_max_pool_select_infer, kernel=_max_pool_select,
    attrs=_ATTRS,
    grad=lambda n, g: (max_pool_grad(g, n.inputs[1], n.inputs[2], **n.attrs), None, None),
    samples=_grad_samples(lambda shape, attrs: shape),
    doc="h (x's shape) read at the first maximum of each window of x: max_pool_grad's "
        "transpose."))

register(OpDef(
    "avg_pool", "pool", infer=_avg_pool_infer, kernel=_avg_pool, attrs=_ATTRS,
    grad=lambda n, g: (avg_pool_grad(g, n.inputs[0], **n.attrs),),
    samples=_forward_samples(),
    doc="The mean of each window's real elements over the spatial axes."))

register(OpDef(
    "avg_pool_grad", "pool", infer=_avg_pool_grad_infer, kernel=_avg_pool_grad, attrs=_ATTRS,
    grad=lambda n, h: (avg_pool(h, **n.attrs), None),
    samples=tuple(Sample((_pooled_sample_shape(shape, attrs), shape), attrs,
                         differentiable_inputs=(0,)) for shape, attrs in _SAMPLE_ATTRS),
    doc="g / count spread over each window, in x's shape: avg_pool's transpose."))


def _pool_attrs(pool_size, strides, padding, data_format) -> dict:
    return {"pool_size": tuple(int(k) for k in pool_size),
            "strides": tuple(int(s) for s in strides),
            "padding": padding, "data_format": data_format}


def max_pool(x, pool_size, strides, padding: str = "valid",
             data_format: str = "channels_last"):
    return apply("max_pool", [x], **_pool_attrs(pool_size, strides, padding, data_format))


def avg_pool(x, pool_size, strides, padding: str = "valid",
             data_format: str = "channels_last"):
    return apply("avg_pool", [x], **_pool_attrs(pool_size, strides, padding, data_format))


def max_pool_grad(g, x, y, pool_size, strides, padding: str = "valid",
                  data_format: str = "channels_last"):
    return apply("max_pool_grad", [g, x, y],
                 **_pool_attrs(pool_size, strides, padding, data_format))


def max_pool_select(h, x, y, pool_size, strides, padding: str = "valid",
                    data_format: str = "channels_last"):
    return apply("max_pool_select", [h, x, y],
                 **_pool_attrs(pool_size, strides, padding, data_format))


def avg_pool_grad(g, x, pool_size, strides, padding: str = "valid",
                  data_format: str = "channels_last"):
    return apply("avg_pool_grad", [g, x], **_pool_attrs(pool_size, strides, padding, data_format))

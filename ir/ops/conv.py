"""Convolutions as patches and contractions: one N-dimensional core.

Every convolution here is two steps. `extract_patches` (im2col) copies each
window of the (padded) input into a patches tensor laid out
`(batch, *positions, *window, channels)`; a `contract` (see linalg.py) then
multiplies the patches with the kernel in one BLAS call. The layout makes
`positions` the matrix rows and `window + channels` the inner dimension, so
both the forward product and the kernel gradient (patches^T @ g) read the
patches without another copy.

The second op, `scatter_patches` (col2im), adds patch-shaped values back
onto the input grid. It is the exact transpose of `extract_patches`, so each
is the other's gradient, and with `contract`'s own gradients the whole
family differentiates itself:

    conv            = contract(extract_patches(x), kernel)
    d conv / d x    = scatter_patches(contract(g, kernel))    (a transposed conv)
    d conv / d k    = contract(patches, g)                    (patches^T @ g)
    conv_transpose  = scatter_patches(contract(y, kernel))    (its gradients follow)

Depthwise, separable and unshared-weight (local) convolutions are the same
patches with other contractions. Both ops read channels-last or
channels-first input (`data_format`); patches are always channels-last.
Spatial sizes may be unknown (SymDim); window sizes are attributes. The
window geometry (positions, padding, tap slices) is in windows.py, shared
with pooling.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..dtypes import is_integer
from ..shapes import ShapeError, SymDim, format_shape, merge_dim
from ..types import TensorType
from .registry import REQUIRED, OpDef, Sample, apply, register
from .windows import (channel_axis, check_window_attrs, check_window_input, output_dim,
                      spatial_axes, window_layout, window_positions)
from .windows import geometry  # noqa: F401  (graphk/backend/conv.py reads conv_ops.geometry)

# --- NumPy kernels ------------------------------------------------------------------

def _channels_last(x: np.ndarray, data_format: str) -> np.ndarray:
    return np.moveaxis(x, 1, -1) if data_format == "channels_first" else x


def _extract_patches_kernel(x, kernel_size, strides, dilation, padding, data_format):
    x = _channels_last(x, data_format)
    layout = window_layout(x.shape[1:-1], kernel_size, strides, dilation, padding)
    if layout.padded:
        x = _padded(x, layout)
    shape = (x.shape[0],) + layout.positions + tuple(kernel_size) + (x.shape[-1],)
    if x.shape[-1] == 1:
        # One channel: the strided copy below would move 1-element runs; copying one
        # whole shifted slice per window tap is about 2.5x faster (measured).
        patches = np.empty(shape, x.dtype)
        lead = (slice(None),) * (1 + len(kernel_size))  # batch and positions
        for tap, source in layout.taps:
            patches[lead + tap] = x[(slice(None),) + source]
        return patches
    step = x.strides[1:-1]
    view = as_strided(x, shape, (x.strides[0],)
                      + tuple(b * s for b, s in zip(step, strides))
                      + tuple(b * d for b, d in zip(step, dilation)) + (x.strides[-1],),
                      writeable=False)
    return np.ascontiguousarray(view)


def _padded(x: np.ndarray, layout) -> np.ndarray:
    """x (channels-last) inside a zero border; np.pad costs ~50 us of Python per call,
    more than the whole copy for the small images Keras models train on."""
    result = np.zeros((x.shape[0],) + layout.padded_spatial + (x.shape[-1],), x.dtype)
    result[(slice(None),) + layout.crop] = x
    return result


def resolve_spatial(output_spatial, extras) -> tuple[int, ...]:
    """Output sizes from their stored form: ints, ("dim", k, axis) or ("input", k)."""
    sizes = []
    for item in output_spatial:
        if isinstance(item, int):
            sizes.append(item)
        elif item[0] == "dim":
            sizes.append(np.shape(extras[item[1]])[item[2]])
        else:
            sizes.append(int(extras[item[1]]))
    return tuple(sizes)


def _scatter_patches_kernel(patches, *extras, output_spatial, kernel_size, strides, dilation,
                            padding, data_format):
    spatial = resolve_spatial(output_spatial, extras)
    taps = _inside_taps(spatial, kernel_size, strides, dilation, padding)
    # Only what lands inside the input is added (each tap's positions clipped to it):
    # no padded buffer to fill, add into and crop, and the result is contiguous.
    # Every element still sums its taps in window order, so results are unchanged.
    result = np.zeros((patches.shape[0],) + spatial + (patches.shape[-1],), patches.dtype)
    # One strided add per window tap: taps overlap in the input, so a single
    # vectorized scatter would need np.add.at, which is far slower.
    channels, rank = patches.shape[-1], len(kernel_size)
    if 1 < channels < 16:
        # Few channels make each add crawl through short runs; one copy into
        # (*window, batch, *positions, channels) order makes every tap's block
        # contiguous, about 2x faster overall for 2 to 8 channels (measured).
        by_tap = np.ascontiguousarray(np.moveaxis(patches, range(1 + rank, 1 + 2 * rank),
                                                  range(rank)))
        for tap, target, source in taps:
            result[(slice(None),) + target] += by_tap[tap + (slice(None),) + source]
    else:
        for tap, target, source in taps:
            result[(slice(None),) + target] += patches[(slice(None),) + source + tap]
    return np.moveaxis(result, -1, 1) if data_format == "channels_first" else result


@lru_cache(maxsize=1024)
def _inside_taps(spatial, kernel_size, strides, dilation, padding) -> tuple:
    """For each window tap: (tap, target slices in the unpadded input, the positions whose
    tap lands there); taps that land only in the padding are left out."""
    layout = window_layout(spatial, kernel_size, strides, dilation, padding)
    taps = []
    for tap, _ in layout.taps:
        target, source = [], []
        for t, size, out, s, d, (before, _) in zip(tap, spatial, layout.positions, strides,
                                                   dilation, layout.pads):
            start = t * d - before  # where position 0's tap lands in the input
            first = max(0, -(start // s) if start < 0 else 0)  # ceil(-start / s) when < 0
            end = min(out, -(-(size - start) // s))  # positions landing below `size`
            target.append(slice(start + first * s, start + (end - 1) * s + 1, s))
            source.append(slice(first, end))
        if all(piece.stop > piece.start for piece in source):
            taps.append((tap, tuple(target), tuple(source)))
    return tuple(taps)


# --- type rules -----------------------------------------------------------------------

def _patches_shape(x: TensorType, kernel_size, strides, dilation, padding, data_format):
    check_window_input(x.shape, len(kernel_size), data_format)
    positions = window_positions(x.shape, data_format, kernel_size, strides, dilation, padding)
    channels = x.shape[channel_axis(x.ndim, data_format)]
    return (x.shape[0],) + positions + tuple(kernel_size) + (channels,)


def _extract_patches_infer(x, kernel_size, strides, dilation, padding, data_format):
    check_window_attrs(kernel_size, strides, dilation, padding, data_format)
    return TensorType(x.dtype, _patches_shape(x, kernel_size, strides, dilation, padding,
                                              data_format))


def _spatial_types(output_spatial, extras) -> tuple:
    dims = []
    for item in output_spatial:
        if isinstance(item, int):
            dims.append(item)
        elif isinstance(item, tuple) and item[0] == "dim" and len(item) == 3:
            dims.append(extras[item[1]].shape[item[2]])
        elif isinstance(item, tuple) and item[0] == "input" and len(item) == 2:
            size = extras[item[1]]
            if size.ndim != 0 or not is_integer(size.dtype):
                raise ShapeError(f"an output size must be an int scalar, got {size}")
            dims.append(SymDim())
        else:
            raise ShapeError(f"output_spatial item {item!r} is not an int, ('dim', input, axis) "
                             "or ('input', k)")
    return tuple(dims)


def _scatter_patches_infer(patches, *extras, output_spatial, kernel_size, strides, dilation,
                           padding, data_format):
    check_window_attrs(kernel_size, strides, dilation, padding, data_format)
    rank = len(kernel_size)
    if patches.ndim != 2 * rank + 2 or len(output_spatial) != rank:
        raise ShapeError(f"patches of a {rank}-d window have rank {2 * rank + 2} and "
                         f"{rank} output sizes, got shape {format_shape(patches.shape)} and "
                         f"sizes {output_spatial}")
    spatial = _spatial_types(output_spatial, extras)
    expected = tuple(output_dim(size, k, s, d, padding) for size, k, s, d in zip(
        spatial, kernel_size, strides, dilation)) + tuple(kernel_size)
    for axis, (want, got) in enumerate(zip(expected, patches.shape[1:-1]), start=1):
        try:
            merge_dim(want, got)
        except ShapeError:
            raise ShapeError(f"patches of shape {format_shape(patches.shape)} do not come from "
                             f"an input of spatial shape {format_shape(spatial)} with "
                             f"kernel_size {kernel_size}, strides {strides}, dilation "
                             f"{dilation} and {padding!r} padding (axis {axis} should be "
                             f"{want})") from None
    batch, channels = patches.shape[0], patches.shape[-1]
    if data_format == "channels_first":
        return TensorType(patches.dtype, (batch, channels) + spatial)
    return TensorType(patches.dtype, (batch,) + spatial + (channels,))


# --- registration -------------------------------------------------------------------

_WINDOW_ATTRS = {"kernel_size": REQUIRED, "strides": REQUIRED, "dilation": REQUIRED,
                 "padding": "valid", "data_format": "channels_last"}


def _window(kernel_size, strides=None, dilation=None, padding="valid",
            data_format="channels_last") -> dict:
    ones = (1,) * len(kernel_size)
    return {"kernel_size": kernel_size, "strides": strides or ones, "dilation": dilation or ones,
            "padding": padding, "data_format": data_format}


_PATCH_SAMPLES = (
    Sample(((2, 5, 6, 3),), _window((2, 3), strides=(2, 1))),
    Sample(((2, 3, 5, 4),), _window((3, 2), dilation=(1, 2), padding="same",
                                    data_format="channels_first")),
    Sample(((2, 7, 1),), _window((3,), strides=(2,), padding="causal")),
    Sample(((1, 4, 3, 4, 2),), _window((2, 2, 3), strides=(2, 1, 1), padding="same")),
)


def _extract_patches_grad(node, g):
    x = node.inputs[0]
    axes = spatial_axes(x.type.ndim, node.attrs["data_format"])
    return (scatter_patches(g, tuple(("dim", 0, axis) for axis in axes), [x], **node.attrs),)


register(OpDef(
    "extract_patches", "conv", view=True,  # a 1x1 window's patches are a view of x
    infer=_extract_patches_infer,
    kernel=_extract_patches_kernel,
    attrs=dict(_WINDOW_ATTRS),
    grad=_extract_patches_grad,
    samples=_PATCH_SAMPLES,
    doc="im2col: every (strided, dilated, padded) window of x, as "
        "(batch, *positions, *window, channels)."))


def _scatter_patches_grad(node, g):
    attrs = {k: v for k, v in node.attrs.items() if k != "output_spatial"}
    return (extract_patches(g, **attrs),) + (None,) * (len(node.inputs) - 1)


def _scatter_sample(x_shape, window):
    """patches and a `like` tensor for an input of x_shape (channels-last)."""
    patches = TensorType("float64", x_shape)
    shape = tuple(d for d in _patches_shape(patches, **window))
    axes = spatial_axes(len(x_shape), window["data_format"])
    attrs = dict(window, output_spatial=tuple(("dim", 0, axis) for axis in axes))
    return Sample((shape, x_shape), attrs, differentiable_inputs=(0,))


def _scatter_sized_sample(rng):
    return [rng.uniform(-2, 2, (2, 3, 2, 4)), np.asarray(8, np.int64)]


register(OpDef(
    "scatter_patches", "conv",
    infer=_scatter_patches_infer,
    kernel=_scatter_patches_kernel,
    attrs=dict(_WINDOW_ATTRS, output_spatial=REQUIRED),
    grad=_scatter_patches_grad,
    samples=tuple(_scatter_sample(s.shapes[0], s.attrs) for s in _PATCH_SAMPLES) + (
        Sample(((2, 3, 2, 4), ()), dict(_window((2,), strides=(3,)),
                                        output_spatial=(("input", 0),)),
               make=_scatter_sized_sample, differentiable_inputs=(0,)),),
    doc="col2im, the transpose of extract_patches: patch values summed back onto a grid of "
        "spatial size output_spatial (ints, ('dim', k, axis) of extra input k, or "
        "('input', k), extra input k's value)."))


def extract_patches(x, kernel_size, strides, dilation, padding="valid",
                    data_format="channels_last"):
    """Every window of x as (batch, *positions, *window, channels); see the module docstring."""
    return apply("extract_patches", [x], kernel_size=tuple(kernel_size), strides=tuple(strides),
                 dilation=tuple(dilation), padding=padding, data_format=data_format)


def scatter_patches(patches, output_spatial, extras=(), *, kernel_size, strides, dilation,
                    padding="valid", data_format="channels_last"):
    """Sum patches back onto a grid; `output_spatial` may refer to `extras` (see the op doc)."""
    return apply("scatter_patches", [patches, *extras], output_spatial=tuple(output_spatial),
                 kernel_size=tuple(kernel_size), strides=tuple(strides),
                 dilation=tuple(dilation), padding=padding, data_format=data_format)

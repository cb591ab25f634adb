"""Window geometry: where a window sliding over the spatial axes reads, for conv and pooling.

A window op (a convolution's `extract_patches` / `scatter_patches`, every
pooling op) slides a window of `window` taps, `dilation` apart, over the
spatial axes in steps of `strides`. 'valid' keeps every window inside the
input; 'same' pads as TensorFlow does (the odd element after), giving
ceil(size / stride) positions; 'causal' (convolutions only) pads only
before, by the window span less one, giving as many. Pooling is a window
with dilation 1.

Type rules use `check_window_attrs`, `check_window_input` and
`window_positions` (sizes may be symbols); kernels use `window_layout`, the
runtime geometry for one input size, computed once and cached.
"""
from __future__ import annotations

import itertools
from functools import lru_cache

from ..shapes import ShapeError, SymDim, format_shape

PADDINGS = ("valid", "same", "causal")
POOL_PADDINGS = ("valid", "same")
DATA_FORMATS = ("channels_last", "channels_first")


def window_span(window: int, dilation: int) -> int:
    """How many input positions a dilated window covers."""
    return dilation * (window - 1) + 1


@lru_cache(maxsize=4096)
def geometry(size: int, window: int, stride: int, dilation: int, padding: str):
    """(output positions, padding before, padding after) along one spatial axis."""
    span = window_span(window, dilation)
    if padding == "valid":
        if size < span:
            raise ShapeError(f"a 'valid' window spanning {span} does not fit in size {size}")
        return (size - span) // stride + 1, 0, 0
    out = -(-size // stride)
    if padding == "causal":
        return out, span - 1, 0
    total = max((out - 1) * stride + span - size, 0)
    return out, total // 2, total - total // 2


def output_dim(size, window: int, stride: int, dilation: int, padding: str):
    """The number of window positions along an axis of (possibly symbolic) `size`."""
    if isinstance(size, int):
        return geometry(size, window, stride, dilation, padding)[0]
    keeps_size = stride == 1 and (padding != "valid" or window_span(window, dilation) == 1)
    return size if keeps_size else SymDim()


def spatial_axes(ndim: int, data_format: str) -> tuple[int, ...]:
    """Axes of the spatial dims of a rank-`ndim` tensor in `data_format`."""
    return tuple(range(2, ndim)) if data_format == "channels_first" else tuple(range(1, ndim - 1))


def channel_axis(ndim: int, data_format: str) -> int:
    return 1 if data_format == "channels_first" else ndim - 1


# --- type rules ---------------------------------------------------------------------------

def check_window_attrs(window, strides, dilation, padding: str, data_format: str, *,
                       window_name: str = "kernel_size", paddings=PADDINGS) -> None:
    """Window attributes as IR text may give them; `dilation` None for pooling (no such attr)."""
    named = {window_name: window, "strides": strides}
    if dilation is not None:
        named["dilation"] = dilation
    if len({len(values) for values in named.values()}) > 1:
        raise ShapeError(" and ".join(f"{name} {values}" for name, values in named.items())
                         + " must have one entry per spatial axis each")
    for name, values in named.items():
        if any(not isinstance(v, int) or v < 1 for v in values):
            raise ShapeError(f"{name} {values} must hold ints >= 1")
    if padding not in paddings:
        raise ShapeError(f"padding must be one of {paddings}, got {padding!r}")
    if data_format not in DATA_FORMATS:
        raise ShapeError(f"data_format must be one of {DATA_FORMATS}, got {data_format!r}")


def check_window_input(shape, rank: int, data_format: str) -> None:
    """A `rank`-d window slides over a tensor of rank + 2 (batch and channels)."""
    if len(shape) != rank + 2:
        layout = ("(batch, channels, *spatial)" if data_format == "channels_first"
                  else "(batch, *spatial, channels)")
        raise ShapeError(f"a {rank}-d window needs an input of rank {rank + 2} {layout}, "
                         f"got shape {format_shape(shape)}")


def window_positions(shape, data_format: str, window, strides, dilation, padding: str) -> tuple:
    """The number of window positions along each spatial axis of an input of `shape`."""
    positions = []
    for axis, k, s, d in zip(spatial_axes(len(shape), data_format), window, strides, dilation):
        try:
            positions.append(output_dim(shape[axis], k, s, d, padding))
        except ShapeError as error:
            raise ShapeError(f"the window is larger than spatial axis {axis} of input shape "
                             f"{format_shape(shape)}: {error}") from None
    return tuple(positions)


# --- kernels --------------------------------------------------------------------------------

class WindowLayout:
    """Where each window tap reads, for one input's spatial sizes.

    `taps` pairs each tap (its offsets inside the window) with the slices, one
    per spatial axis, that pick that tap of every window from the padded input.
    With `allow_empty`, an input smaller than a 'valid' window has no windows
    (pooling's kernels give an empty result there; convolutions raise).
    """

    def __init__(self, spatial, window, strides, dilation, padding, allow_empty=False):
        plan = [(0, 0, 0) if allow_empty and padding == "valid" and size < window_span(k, d)
                else geometry(size, k, s, d, padding)
                for size, k, s, d in zip(spatial, window, strides, dilation)]
        self.positions = tuple(out for out, _, _ in plan)
        self.pads = tuple((before, after) for _, before, after in plan)
        self.padded = any(before or after for before, after in self.pads)
        self.padded_spatial = tuple(size + before + after
                                    for size, (before, after) in zip(spatial, self.pads))
        self.crop = tuple(slice(before, before + size)
                          for size, (before, _) in zip(spatial, self.pads))
        self.taps = [(tap, tuple(slice(t * d, t * d + out * s, s)
                                 for t, out, s, d in zip(tap, self.positions, strides, dilation)))
                     for tap in itertools.product(*map(range, window))]


@lru_cache(maxsize=1024)
def window_layout(spatial, window, strides, dilation, padding,
                  allow_empty: bool = False) -> WindowLayout:
    return WindowLayout(spatial, window, strides, dilation, padding, allow_empty)

"""Convolutions with Keras 2.3.1 semantics, built from patches and contractions.

Each function reads Keras' arguments (int or tuple strides, `data_format=None`
meaning the configured format, the kernel layouts below), checks shapes so
errors name the Keras function and both shapes, and builds the graph from
`extract_patches` / `scatter_patches` (ir/ops/conv.py) and `contract`:

    conv            kernel (*window, in_channels, filters)
    transposed conv kernel (*window, out_channels, in_channels)
    depthwise       kernel (*window, in_channels, multiplier); output channel c*M + m
    separable       depthwise, then pointwise kernel (1, ..., 1, in*M, filters)
    local (unshared) kernel (positions, prod(window) * in_channels, filters), features
                    ordered (*window, channels), or (channels, *window) for channels_first
"""
from __future__ import annotations

import numbers

from ..ir.graph import Value
from ..ir.ops import conv as conv_ops
from ..ir.ops import indexing
from ..ir.ops import shape as shape_ops
from ..ir.ops.leaf import constant_value
from ..ir.ops.linalg import contract
from ..ir.shapes import ShapeError, format_shape, merge_dim
from . import arguments
from .arguments import argument_error, int_tuple
from .tensors import _as_tensor

# Contraction indices: n batch, c input channels, f filters, m depth multiplier,
# positions and window taps one letter per spatial axis.
_POSITIONS, _WINDOW = "pqr", "ijk"


class _Conv:
    """One call's checked arguments, and the subscripts its contractions need."""

    def __init__(self, name: str, x, kernel, rank: int, strides, padding, data_format,
                 dilation, causal_ok: bool = False, kernel_size=None):
        self.name, self.rank = name, rank
        self.x, self.kernel = _as_tensor(x), _as_tensor(kernel)
        self.data_format = arguments.data_format(name, data_format)
        self.strides = int_tuple(strides, rank, "strides", name)
        self.dilation = int_tuple(dilation, rank, "dilation_rate", name)
        self.padding = arguments.padding(padding, name, causal_ok)
        if self.padding == "causal" and self.data_format != "channels_last":
            raise argument_error(name, 'When using causal padding, `data_format` must be '
                                       '"channels_last" (temporal data).', ValueError)
        self.positions, self.window = _POSITIONS[:rank], _WINDOW[:rank]
        self.check_rank(self.x, "input")
        if kernel_size is not None:  # unshared weights: the window is not the kernel's shape
            self.kernel_size = int_tuple(kernel_size, rank, "kernel_size", name)
            return
        self.check_rank(self.kernel, "kernel")
        self.kernel_size = tuple(self.kernel.type.shape[:rank])
        if not all(isinstance(k, int) for k in self.kernel_size):
            raise argument_error(name, f"the kernel's spatial dims must be known, kernel shape is "
                                       f"{format_shape(self.kernel.type.shape)}")

    def check_rank(self, value: Value, what: str) -> None:
        if value.type.ndim != self.rank + 2:
            raise argument_error(self.name, f"expected a {what} of rank {self.rank + 2}, got shape "
                                            f"{format_shape(value.type.shape)}")

    @property
    def channels(self):
        return self.x.type.shape[1 if self.data_format == "channels_first" else -1]

    def check_channels(self, kernel: Value, kernel_axis: int, what: str, expected=None,
                       source: str = "the input has") -> None:
        """The kernel's input-channel axis must match the input's channels."""
        expected = self.channels if expected is None else expected
        try:
            merge_dim(expected, kernel.type.shape[kernel_axis])
        except ShapeError:
            raise argument_error(self.name, f"{source} {expected} channels but the {what} expects "
                                            f"{kernel.type.shape[kernel_axis]} (input shape "
                                            f"{format_shape(self.x.type.shape)}, {what} shape "
                                            f"{format_shape(kernel.type.shape)}, data_format "
                                            f"{self.data_format!r})") from None

    def terms(self, channel: str) -> str:
        """Subscripts of a (batch, spatial..., channel) tensor in this data_format."""
        if self.data_format == "channels_first":
            return "n" + channel + self.positions
        return "n" + self.positions + channel

    def patches(self) -> Value:
        """The input's windows, (n, *positions, *window, c)."""
        return conv_ops.extract_patches(self.x, self.kernel_size, self.strides, self.dilation,
                                        self.padding, self.data_format)

    @property
    def patch_terms(self) -> str:
        return "n" + self.positions + self.window + "c"


def _convolve(call: _Conv) -> Value:
    """Dense convolution: patches (n,pos,win,c) . kernel (win,c,f)."""
    call.check_channels(call.kernel, -2, "kernel")
    w = call.window
    return contract(call.patches(), call.kernel,
                    f"{call.patch_terms},{w}cf->{call.terms('f')}")


def _depthwise(call: _Conv, kernel: Value, out_terms: str) -> Value:
    """Depthwise convolution, each channel c with its own M filters, as out_terms of n,pos,c,m."""
    call.check_channels(kernel, -2, "depthwise kernel")
    return contract(call.patches(), kernel, f"{call.patch_terms},{call.window}cm->{out_terms}")


def _known_or_unknown(*dims) -> int:
    """The product of dims as a reshape size: an int if all are known, else -1."""
    total = 1
    for d in dims:
        if not isinstance(d, int):
            return -1
        total *= d
    return total


# --- the Keras functions ---------------------------------------------------------------

def conv1d(x, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1) -> Value:
    """1D convolution; kernel (width, in_channels, filters); padding may be 'causal'."""
    return _convolve(_Conv("conv1d", x, kernel, 1, strides, padding, data_format,
                           dilation_rate, causal_ok=True))


def conv2d(x, kernel, strides=(1, 1), padding="valid", data_format=None,
           dilation_rate=(1, 1)) -> Value:
    """2D convolution; kernel (rows, cols, in_channels, filters)."""
    return _convolve(_Conv("conv2d", x, kernel, 2, strides, padding, data_format, dilation_rate))


def conv3d(x, kernel, strides=(1, 1, 1), padding="valid", data_format=None,
           dilation_rate=(1, 1, 1)) -> Value:
    """3D convolution; kernel (depth, rows, cols, in_channels, filters)."""
    return _convolve(_Conv("conv3d", x, kernel, 3, strides, padding, data_format, dilation_rate))


def depthwise_conv2d(x, depthwise_kernel, strides=(1, 1), padding="valid", data_format=None,
                     dilation_rate=(1, 1)) -> Value:
    """Depthwise 2D convolution; kernel (rows, cols, in_channels, multiplier).

    Output channel c * multiplier + m is input channel c under filter m (TensorFlow's order).
    """
    call = _Conv("depthwise_conv2d", x, depthwise_kernel, 2, strides, padding, data_format,
                 dilation_rate)
    out_terms = call.terms("cm")  # c and m adjacent, so one reshape merges them
    per_channel = _depthwise(call, call.kernel, out_terms)
    sizes = dict(zip(out_terms, per_channel.type.shape))
    merged = _known_or_unknown(sizes["c"], sizes["m"])
    target = tuple(merged if t == "c" else ("dim", i) for i, t in enumerate(out_terms) if t != "m")
    return shape_ops.reshape(per_channel, target)


def _separable(call: _Conv, pointwise_kernel) -> Value:
    """Depthwise, then a 1x1 convolution: (n,pos,c,m) . pointwise (c, m, f)."""
    pointwise = _as_tensor(pointwise_kernel)
    call.check_rank(pointwise, "pointwise kernel")
    c, m = call.kernel.type.shape[-2:]
    window = pointwise.type.shape[:call.rank]
    if any(isinstance(d, int) and d != 1 for d in window):
        raise argument_error(call.name, f"the pointwise kernel must be 1x1, got shape "
                                        f"{format_shape(pointwise.type.shape)}")
    if isinstance(c, int) and isinstance(m, int):
        call.check_channels(pointwise, -2, "pointwise kernel", expected=c * m,
                            source="the depthwise step makes")
    if not isinstance(c, int) and not isinstance(m, int):
        raise argument_error(call.name, "the depthwise kernel's channels or multiplier must be "
                                        "known, its shape is "
                                        f"{format_shape(call.kernel.type.shape)}")
    target = (c if isinstance(c, int) else -1, m if isinstance(m, int) else -1,
              ("dim", call.rank + 1))
    pointwise = shape_ops.reshape(pointwise, target)
    per_channel = _depthwise(call, call.kernel, f"n{call.positions}cm")
    return contract(per_channel, pointwise, f"n{call.positions}cm,cmf->{call.terms('f')}")


def separable_conv1d(x, depthwise_kernel, pointwise_kernel, strides=1, padding="valid",
                     data_format=None, dilation_rate=1) -> Value:
    """Depthwise (width, in, M) then pointwise (1, in * M, filters) 1D convolution."""
    return _separable(_Conv("separable_conv1d", x, depthwise_kernel, 1, strides, padding,
                            data_format, dilation_rate, causal_ok=True), pointwise_kernel)


def separable_conv2d(x, depthwise_kernel, pointwise_kernel, strides=(1, 1), padding="valid",
                     data_format=None, dilation_rate=(1, 1)) -> Value:
    """Depthwise (rows, cols, in, M) then pointwise (1, 1, in * M, filters) 2D convolution."""
    return _separable(_Conv("separable_conv2d", x, depthwise_kernel, 2, strides, padding,
                            data_format, dilation_rate), pointwise_kernel)


# --- transposed convolutions --------------------------------------------------------------

def _size_entry(call: _Conv, entry, axis: int, extras: list):
    """One spatial entry of output_shape in scatter_patches' stored form."""
    if isinstance(entry, Value):
        fixed = constant_value(entry)
        if fixed is None:
            if entry.type.ndim != 0:
                raise argument_error(call.name, f"output_shape entry {axis} must be a scalar, got "
                                                f"{entry.type}")
            extras.append(entry)
            return ("input", len(extras) - 1)
        entry = fixed
    if entry is None:
        raise argument_error(call.name, f"output_shape must give the spatial sizes; axis {axis} "
                                        "is None")
    return int(entry)


def _output_entries(call: _Conv, output_shape) -> list:
    if isinstance(output_shape, Value):
        fixed = constant_value(output_shape)
        if fixed is not None:
            output_shape = fixed.tolist()
        elif output_shape.type.ndim == 1 and isinstance(output_shape.type.shape[0], int):
            output_shape = [indexing.getitem(output_shape, i)
                            for i in range(output_shape.type.shape[0])]
        else:
            raise argument_error(call.name, f"output_shape must be a tuple or an int vector of "
                                            f"known length, got {output_shape.type}")
    entries = [int(e) if isinstance(e, numbers.Integral) else e for e in output_shape]
    if len(entries) != call.rank + 2:
        raise argument_error(call.name, f"output_shape {tuple(output_shape)} must have "
                                        f"{call.rank + 2} entries (batch, spatial..., channels in "
                                        "data_format order)")
    return entries


def _output_spatial(call: _Conv, output_shape) -> tuple[tuple, list]:
    """output_shape's spatial sizes (ints or references to scalar inputs), checked."""
    entries = _output_entries(call, output_shape)
    channels_first = call.data_format == "channels_first"
    channel_entry = entries[1 if channels_first else -1]
    batch_entry, batch = entries[0], call.x.type.shape[0]
    if isinstance(batch_entry, int) and isinstance(batch, int) and batch_entry != batch:
        raise argument_error(call.name, f"output_shape {tuple(entries)} has batch size "
                                        f"{batch_entry} but the input "
                                        f"{format_shape(call.x.type.shape)} has {batch}")
    if isinstance(channel_entry, int):
        try:
            merge_dim(channel_entry, call.kernel.type.shape[-2])
        except ShapeError:
            raise argument_error(call.name, f"output_shape {tuple(entries)} has {channel_entry} "
                                            "channels but the kernel "
                                            f"{format_shape(call.kernel.type.shape)} makes "
                                            f"{call.kernel.type.shape[-2]}") from None
    extras: list = []
    spatial_entries = entries[2:] if channels_first else entries[1:-1]
    sizes = tuple(_size_entry(call, e, i, extras) for i, e in enumerate(spatial_entries))
    _check_transpose_fits(call, sizes, entries)
    return sizes, extras


def _check_transpose_fits(call: _Conv, sizes, entries) -> None:
    """A convolution over the output must give back the input's spatial size (as TF checks)."""
    x_shape = call.x.type.shape
    axes = conv_ops.spatial_axes(len(x_shape), call.data_format)
    for size, axis, k, s, d in zip(sizes, axes, call.kernel_size, call.strides, call.dilation):
        if not isinstance(size, int):
            continue
        try:
            positions = conv_ops.geometry(size, k, s, d, call.padding)[0]
            merge_dim(positions, x_shape[axis])
        except ShapeError:
            raise argument_error(call.name, f"output_shape {tuple(entries)} does not fit the "
                                            f"input shape {format_shape(x_shape)}: a "
                                            f"{call.padding!r} convolution with kernel_size "
                                            f"{call.kernel_size}, strides {call.strides} and "
                                            f"dilation {call.dilation} over spatial size {size} "
                                            f"does not give {x_shape[axis]}") from None


def _conv_transpose(call: _Conv, output_shape) -> Value:
    """The transpose (input gradient) of a convolution: scatter_patches(x . kernel^T)."""
    call.check_channels(call.kernel, -1, "kernel")
    sizes, extras = _output_spatial(call, output_shape)
    columns = contract(call.x, call.kernel,
                       f"{call.terms('f')},{call.window}cf->{call.patch_terms}")
    return conv_ops.scatter_patches(columns, sizes, extras, kernel_size=call.kernel_size,
                                    strides=call.strides, dilation=call.dilation,
                                    padding=call.padding, data_format=call.data_format)


def conv2d_transpose(x, kernel, output_shape, strides=(1, 1), padding="valid",
                     data_format=None, dilation_rate=(1, 1)) -> Value:
    """2D transposed convolution; kernel (rows, cols, out_channels, in_channels).

    output_shape is the full output shape in data_format order; its batch entry is
    ignored (taken from x) and its entries may be ints or int scalar tensors.
    """
    call = _Conv("conv2d_transpose", x, kernel, 2, strides, padding, data_format, dilation_rate)
    return _conv_transpose(call, output_shape)


def conv3d_transpose(x, kernel, output_shape, strides=(1, 1, 1), padding="valid",
                     data_format=None) -> Value:
    """3D transposed convolution; kernel (depth, rows, cols, out_channels, in_channels)."""
    call = _Conv("conv3d_transpose", x, kernel, 3, strides, padding, data_format, (1, 1, 1))
    return _conv_transpose(call, output_shape)


# --- unshared weights -------------------------------------------------------------------

def _local(name: str, inputs, kernel, kernel_size, strides, output_positions: tuple | None,
           data_format: str) -> Value:
    """Each output position with its own weights: patches (n,pos,win,c) . kernel (pos,win,c,f).

    `output_positions` are ints, or None in 1D for the kernel's (maybe unknown) first dim.
    """
    rank = 1 if output_positions is None else len(output_positions)
    call = _Conv(name, inputs, kernel, rank, strides, "valid", data_format, 1,
                 kernel_size=kernel_size)
    if call.kernel.type.ndim != 3:
        raise argument_error(name, "the kernel must have shape (output positions, features, "
                                   f"filters), got {format_shape(call.kernel.type.shape)}")
    if output_positions is None:
        output_positions = call.kernel.type.shape[:1]
    patches = call.patches()
    _check_local_shapes(call, patches, output_positions)
    c = call.channels
    channel = (c if isinstance(c, int) else -1,)
    window = call.kernel_size
    features = channel + window if data_format == "channels_first" else window + channel
    positions = tuple(p if isinstance(p, int) else ("dim", 0) for p in output_positions)
    weights = shape_ops.reshape(call.kernel, positions + features + (("dim", 2),))
    kernel_terms = call.positions + ("c" + call.window if data_format == "channels_first"
                                     else call.window + "c") + "f"
    return contract(patches, weights, f"{call.patch_terms},{kernel_terms}->{call.terms('f')}")


def _check_local_shapes(call: _Conv, patches: Value, output_positions) -> None:
    kernel_shape = call.kernel.type.shape
    given = patches.type.shape[1:1 + call.rank]
    features = _known_or_unknown(*call.kernel_size, call.channels)
    count = _known_or_unknown(*output_positions)
    checks = [(want, got, f"output positions {format_shape(given)} (from the input shape "
                          f"{format_shape(call.x.type.shape)}, kernel_size {call.kernel_size} "
                          f"and strides {call.strides})")
              for want, got in zip(output_positions, given)]
    if count != -1:
        checks.append((count, kernel_shape[0], f"kernel rows {kernel_shape[0]} (one per output "
                                               "position)"))
    if features != -1:
        checks.append((features, kernel_shape[1], f"kernel features {kernel_shape[1]} "
                                                  "(prod(kernel_size) * input channels)"))
    for want, got, what in checks:
        try:
            merge_dim(want, got)
        except ShapeError:
            raise argument_error(call.name, f"expected {want} for the {what}, got {got} (kernel "
                                            f"shape {format_shape(kernel_shape)})") from None


def local_conv1d(inputs, kernel, kernel_size, strides, data_format=None) -> Value:
    """1D convolution with unshared weights; kernel (output_length, width * input_dim, filters).

    inputs are (batch, steps, input_dim). `data_format` is checked but, as in
    every Keras 2.3.1 backend, does not change that layout (LocallyConnected1D
    never passes it, so the configured image format must not apply).
    """
    arguments.data_format("local_conv1d", data_format)
    return _local("local_conv1d", inputs, kernel, kernel_size, strides, None, "channels_last")


def local_conv2d(inputs, kernel, kernel_size, strides, output_shape, data_format=None) -> Value:
    """2D convolution with unshared weights; kernel (rows * cols, features, filters).

    output_shape is (output_rows, output_cols); features are ordered
    (kernel rows, kernel cols, channels), or (channels, rows, cols) for channels_first.
    """
    name = "local_conv2d"
    positions = int_tuple(output_shape, 2, "output_shape", name)
    return _local(name, inputs, kernel, kernel_size, strides, positions,
                  arguments.data_format(name, data_format))


__all__ = ["conv1d", "conv2d", "conv3d", "conv2d_transpose", "conv3d_transpose",
           "depthwise_conv2d", "separable_conv1d", "separable_conv2d", "local_conv1d",
           "local_conv2d"]

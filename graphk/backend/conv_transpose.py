"""Transposed convolutions with Keras 2.3.1 semantics: K.conv2d_transpose, K.conv3d_transpose.

A transposed convolution is the gradient of a convolution with respect to its
input: patches of the output are scattered back (`scatter_patches`,
ir/ops/conv.py). Keras gives the full output shape, whose spatial sizes may be
ints or int scalar tensors; they are checked against what the strides and
padding allow. Kernel layout (*window, out_channels, in_channels); see conv.py.
"""
from __future__ import annotations

import numbers

from ..ir.graph import Value
from ..ir.ops import conv as conv_ops
from ..ir.ops import indexing
from ..ir.ops.leaf import constant_value
from ..ir.ops.linalg import contract
from ..ir.shapes import ShapeError, format_shape, merge_dim
from .arguments import argument_error
from .conv import _Conv


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
    """2D transposed convolution (the gradient of conv2d with respect to its input).

    Arguments:
        x: the input, (batch, rows, cols, channels) or channels first per data_format.
        kernel: (rows, cols, out_channels, in_channels).
        output_shape: the full output shape in data_format order; its batch entry
            is ignored (taken from x) and its entries may be ints or int scalar
            tensors.
        strides: an int or a tuple of 2 ints.
        padding: 'valid' or 'same' ('same' pads as TensorFlow does).
        data_format: 'channels_last' or 'channels_first'; None means
            K.image_data_format().
        dilation_rate: an int or a tuple of 2 ints.

    Returns:
        The output tensor, in data_format's layout.
    """
    call = _Conv("conv2d_transpose", x, kernel, 2, strides, padding, data_format, dilation_rate)
    return _conv_transpose(call, output_shape)


def conv3d_transpose(x, kernel, output_shape, strides=(1, 1, 1), padding="valid",
                     data_format=None) -> Value:
    """3D transposed convolution (the gradient of conv3d with respect to its input).

    Arguments:
        x: the input, (batch, depth, rows, cols, channels) or channels first per data_format.
        kernel: (depth, rows, cols, out_channels, in_channels).
        output_shape: the full output shape in data_format order (batch entry
            ignored).
        strides: an int or a tuple of 3 ints.
        padding: 'valid' or 'same' ('same' pads as TensorFlow does).
        data_format: 'channels_last' or 'channels_first'; None means
            K.image_data_format().

    Returns:
        The output tensor, in data_format's layout.
    """
    call = _Conv("conv3d_transpose", x, kernel, 3, strides, padding, data_format, (1, 1, 1))
    return _conv_transpose(call, output_shape)


__all__ = ["conv2d_transpose", "conv3d_transpose"]

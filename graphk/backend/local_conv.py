"""Convolutions with unshared weights (LocallyConnected1D/2D): K.local_conv1d, K.local_conv2d.

Each output position has its own kernel: patches of the input are contracted
position by position. Kernel layout (positions, prod(window) * in_channels,
filters), features ordered (*window, channels), or (channels, *window) for
channels_first.
"""
from __future__ import annotations


from ..ir.graph import Value
from ..ir.ops import shape as shape_ops
from ..ir.ops.linalg import contract
from ..ir.shapes import ShapeError, format_shape, merge_dim
from . import arguments
from .arguments import argument_error, int_tuple
from .conv import _Conv, _known_or_unknown


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
    """1D convolution with unshared weights (LocallyConnected1D).

    Arguments:
        inputs: (batch, steps, input_dim).
        kernel: (output_length, width * input_dim, filters).
        kernel_size: a tuple of 1 int, the window width.
        strides: a tuple of 1 int.
        data_format: checked but, as in every Keras 2.3.1 backend, it does not
            change the layout (LocallyConnected1D never passes it, so the
            configured image format must not apply).

    Returns:
        A (batch, output_length, filters) tensor.
    """
    arguments.data_format("local_conv1d", data_format)
    return _local("local_conv1d", inputs, kernel, kernel_size, strides, None, "channels_last")


def local_conv2d(inputs, kernel, kernel_size, strides, output_shape, data_format=None) -> Value:
    """2D convolution with unshared weights (LocallyConnected2D).

    Arguments:
        inputs: a 4D tensor in data_format's layout.
        kernel: (output_rows * output_cols, features, filters), features ordered
            (kernel rows, kernel cols, channels), or (channels, rows, cols) for
            channels_first.
        kernel_size: a tuple of 2 ints.
        strides: a tuple of 2 ints.
        output_shape: (output_rows, output_cols).
        data_format: 'channels_last' or 'channels_first'; None means
            K.image_data_format().

    Returns:
        The output tensor, in data_format's layout.
    """
    name = "local_conv2d"
    positions = int_tuple(output_shape, 2, "output_shape", name)
    return _local(name, inputs, kernel, kernel_size, strides, positions,
                  arguments.data_format(name, data_format))


__all__ = ["local_conv1d", "local_conv2d"]

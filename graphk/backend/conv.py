"""Convolutions with Keras 2.3.1 semantics, built from patches and contractions.

Each function reads Keras' arguments (int or tuple strides, `data_format=None`
meaning the configured format, the kernel layouts below), checks shapes so
errors name the Keras function and both shapes, and builds the graph from
`extract_patches` / `scatter_patches` (ir/ops/conv.py) and `contract`.
Transposed convolutions are in conv_transpose.py and unshared-weight ones in
local_conv.py; they share `_Conv` (one call's checked arguments). Layouts:

    conv            kernel (*window, in_channels, filters)
    transposed conv kernel (*window, out_channels, in_channels)
    depthwise       kernel (*window, in_channels, multiplier); output channel c*M + m
    separable       depthwise, then pointwise kernel (1, ..., 1, in*M, filters)
    local (unshared) kernel (positions, prod(window) * in_channels, filters), features
                    ordered (*window, channels), or (channels, *window) for channels_first
"""
from __future__ import annotations


from ..ir.graph import Value
from ..ir.ops import conv as conv_ops
from ..ir.ops import shape as shape_ops
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
    """1D convolution (a cross-correlation, as in TensorFlow).

    Arguments:
        x: the input, (batch, steps, channels) or channels first per data_format.
        kernel: (width, in_channels, filters).
        strides: an int or a tuple of 1 ints.
        padding: 'valid' or 'same' (padded as TensorFlow pads), or 'causal' (left
            padding only).
        data_format: 'channels_last' or 'channels_first'; None means
            K.image_data_format().
        dilation_rate: an int or a tuple of 1 ints.

    Returns:
        The output tensor, in data_format's layout.
    """
    return _convolve(_Conv("conv1d", x, kernel, 1, strides, padding, data_format,
                           dilation_rate, causal_ok=True))


def conv2d(x, kernel, strides=(1, 1), padding="valid", data_format=None,
           dilation_rate=(1, 1)) -> Value:
    """2D convolution (a cross-correlation, as in TensorFlow).

    Arguments:
        x: the input, (batch, rows, cols, channels) or channels first per data_format.
        kernel: (rows, cols, in_channels, filters).
        strides: an int or a tuple of 2 ints.
        padding: 'valid' or 'same' ('same' pads as TensorFlow does).
        data_format: 'channels_last' or 'channels_first'; None means
            K.image_data_format().
        dilation_rate: an int or a tuple of 2 ints.

    Returns:
        The output tensor, in data_format's layout.

    Example:
        >>> x = K.placeholder((None, 28, 28, 1))
        >>> K.int_shape(K.conv2d(x, K.variable(np.zeros((3, 3, 1, 8)))))
        (None, 26, 26, 8)
    """
    return _convolve(_Conv("conv2d", x, kernel, 2, strides, padding, data_format, dilation_rate))


def conv3d(x, kernel, strides=(1, 1, 1), padding="valid", data_format=None,
           dilation_rate=(1, 1, 1)) -> Value:
    """3D convolution (a cross-correlation, as in TensorFlow).

    Arguments:
        x: the input, (batch, depth, rows, cols, channels) or channels first per data_format.
        kernel: (depth, rows, cols, in_channels, filters).
        strides: an int or a tuple of 3 ints.
        padding: 'valid' or 'same' ('same' pads as TensorFlow does).
        data_format: 'channels_last' or 'channels_first'; None means
            K.image_data_format().
        dilation_rate: an int or a tuple of 3 ints.

    Returns:
        The output tensor, in data_format's layout.
    """
    return _convolve(_Conv("conv3d", x, kernel, 3, strides, padding, data_format, dilation_rate))


def depthwise_conv2d(x, depthwise_kernel, strides=(1, 1), padding="valid", data_format=None,
                     dilation_rate=(1, 1)) -> Value:
    """Depthwise 2D convolution: each input channel convolved with its own filters.

    Output channel c * multiplier + m is input channel c under filter m (TensorFlow's order).

    Arguments:
        x: the input, (batch, rows, cols, channels) or channels first per data_format.
        depthwise_kernel: (rows, cols, in_channels, multiplier).
        strides: an int or a tuple of 2 ints.
        padding: 'valid' or 'same' ('same' pads as TensorFlow does).
        data_format: 'channels_last' or 'channels_first'; None means
            K.image_data_format().
        dilation_rate: an int or a tuple of 2 ints.

    Returns:
        The output tensor, in data_format's layout.
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
    """Depthwise then pointwise 1D convolution.

    Arguments:
        x: the input, (batch, steps, channels) or channels first per data_format.
        depthwise_kernel: (width, in_channels, multiplier).
        pointwise_kernel: (1, in_channels * multiplier, filters).
        strides: an int or a tuple of 1 ints.
        padding: 'valid' or 'same' ('same' pads as TensorFlow does).
        data_format: 'channels_last' or 'channels_first'; None means
            K.image_data_format().
        dilation_rate: an int or a tuple of 1 ints.

    Returns:
        The output tensor, in data_format's layout.
    """
    return _separable(_Conv("separable_conv1d", x, depthwise_kernel, 1, strides, padding,
                            data_format, dilation_rate, causal_ok=True), pointwise_kernel)


def separable_conv2d(x, depthwise_kernel, pointwise_kernel, strides=(1, 1), padding="valid",
                     data_format=None, dilation_rate=(1, 1)) -> Value:
    """Depthwise then pointwise 2D convolution.

    Arguments:
        x: the input, (batch, rows, cols, channels) or channels first per data_format.
        depthwise_kernel: (rows, cols, in_channels, multiplier).
        pointwise_kernel: (1, 1, in_channels * multiplier, filters).
        strides: an int or a tuple of 2 ints.
        padding: 'valid' or 'same' ('same' pads as TensorFlow does).
        data_format: 'channels_last' or 'channels_first'; None means
            K.image_data_format().
        dilation_rate: an int or a tuple of 2 ints.

    Returns:
        The output tensor, in data_format's layout.
    """
    return _separable(_Conv("separable_conv2d", x, depthwise_kernel, 2, strides, padding,
                            data_format, dilation_rate), pointwise_kernel)


# --- transposed convolutions --------------------------------------------------------------

# --- unshared weights -------------------------------------------------------------------

__all__ = ["conv1d", "conv2d", "conv3d", "depthwise_conv2d", "separable_conv1d",
           "separable_conv2d"]

"""Pooling, bias_add, zero padding and resizing with Keras 2.3.1's TensorFlow-backend semantics.

`data_format` None means `K.image_data_format()`. Keras' layouts are
(batch, *spatial, channels) for 'channels_last' and (batch, channels,
*spatial) for 'channels_first'; the ops in ir/ops/pool.py and
ir/ops/image.py take the layout (or the axes it implies) as attributes, so
no transposes are built.

Two TensorFlow-backend details are kept on purpose:
- `bias_add` with 'channels_first' and a bias of rank ndim(x) - 1 (given in
  channels_last order, e.g. (rows, cols, channels)) *reshapes* that bias to
  (channels, rows, cols), as Keras' TensorFlow backend does; it does not
  transpose it.
- bilinear `resize_images` gives float32 for integer inputs (TensorFlow's
  resize_bilinear always does); float inputs keep their dtype here, where
  TensorFlow would give float32 for float64 too.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Value
from ..ir.ops import image as image_ops
from ..ir.ops import pool as pool_ops
from ..ir.ops import shape as shape_ops
from ..ir.ops.leaf import constant
from . import arguments
from .arguments import argument_error, int_tuple
from .shaping import copied_dim
from .tensors import _as_tensor


# --- pooling -------------------------------------------------------------------------------


def _pool(op_name: str, rank: int, x, pool_size, strides, padding, data_format, pool_mode):
    x = _as_tensor(x)
    data_format = arguments.data_format(op_name, data_format)
    padding = arguments.padding(padding, op_name)
    if pool_mode not in ("max", "avg"):
        raise argument_error(op_name, f"Invalid pool_mode: {pool_mode}", ValueError)
    pool_size = int_tuple(pool_size, rank, "pool_size", op_name)
    strides = int_tuple(strides, rank, "strides", op_name)
    pool = pool_ops.max_pool if pool_mode == "max" else pool_ops.avg_pool
    return pool(x, pool_size, strides, padding, data_format)


def pool2d(x, pool_size, strides=(1, 1), padding="valid", data_format=None,
           pool_mode="max") -> Value:
    """2D max or average pooling of a 4D tensor.

    Arguments:
        x: a 4D tensor in data_format's layout.
        pool_size: a tuple of 2 ints.
        strides: a tuple of 2 ints.
        padding: 'valid' or 'same' (pads as TensorFlow does; an average ignores
            the padding).
        data_format: 'channels_last' or 'channels_first'; None means
            K.image_data_format().
        pool_mode: 'max' or 'avg'.

    Returns:
        The pooled tensor.

    Example:
        >>> K.int_shape(K.pool2d(K.placeholder((None, 8, 8, 3)), (2, 2), strides=(2, 2)))
        (None, 4, 4, 3)
    """
    return _pool("pool2d", 2, x, pool_size, strides, padding, data_format, pool_mode)


def pool3d(x, pool_size, strides=(1, 1, 1), padding="valid", data_format=None,
           pool_mode="max") -> Value:
    """3D max or average pooling of a 5D tensor.

    Arguments:
        x: a 5D tensor in data_format's layout.
        pool_size: a tuple of 3 ints.
        strides: a tuple of 3 ints.
        padding: 'valid' or 'same' (pads as TensorFlow does).
        data_format: 'channels_last' or 'channels_first'; None means
            K.image_data_format().
        pool_mode: 'max' or 'avg'.

    Returns:
        The pooled tensor.
    """
    return _pool("pool3d", 3, x, pool_size, strides, padding, data_format, pool_mode)


# --- bias_add --------------------------------------------------------------------------------


def _channel_axis(ndim: int, data_format: str) -> int:
    """Axis 1 for channels_first tensors of rank 3 to 5 (Keras' cases); else the last axis."""
    return 1 if data_format == "channels_first" and 3 <= ndim <= 5 else ndim - 1


def bias_add(x, bias, data_format=None) -> Value:
    """x plus a bias: a vector along the channel axis, or a bias of rank ndim(x) - 1.

    A full-rank bias is given in channels_last order; with 'channels_first'
    (and x of rank 3 to 5) it is reshaped, not transposed, to channels first,
    as Keras' TensorFlow backend does.

    Arguments:
        x: a tensor.
        bias: a vector of x's channel count, or a tensor of rank ndim(x) - 1.
        data_format: 'channels_last' or 'channels_first'; None means
            K.image_data_format().

    Returns:
        A tensor of x's shape.
    """
    x = _as_tensor(x)
    if not isinstance(bias, Value):  # an array takes x's dtype, as tf.nn.bias_add converts it
        bias = constant(np.asarray(bias, dtype=x.type.dtype))
    data_format = arguments.data_format("bias_add", data_format)
    ndim, bias_ndim = x.type.ndim, bias.type.ndim
    if bias_ndim not in (1, ndim - 1):
        raise argument_error("bias_add", f"Unexpected bias dimensions {bias_ndim}, expect to be 1 "
                                         f"or {ndim - 1} dimensions (x has shape "
                                         f"{x.type.int_shape})", ValueError)
    if bias_ndim == 1:
        return image_ops.bias_add(x, bias, _channel_axis(ndim, data_format))
    if ndim > 5:
        raise argument_error("bias_add", f"a bias of rank {bias_ndim} needs x of rank 3 to 5, got "
                                         f"rank {ndim}; tf.nn.bias_add takes only a vector bias "
                                         "there", ValueError)
    if data_format == "channels_first":
        last = bias_ndim - 1
        bias = shape_ops.reshape(bias, [copied_dim(bias, last)] +
                                 [copied_dim(bias, axis) for axis in range(last)])
    return image_ops.bias_add(x, bias)


# --- zero padding ------------------------------------------------------------------------------


def _pairs(op_name: str, padding, count: int) -> list[tuple[int, int]]:
    """`count` (before, after) pairs of ints, or a ValueError naming the given padding."""
    try:
        pairs = [tuple(int(w) for w in pair) for pair in padding]
    except TypeError:
        pairs = []
    if len(pairs) != count or any(len(p) != 2 for p in pairs):
        raise argument_error(op_name, f"padding must be {count} (before, after) pairs of ints, "
                                      f"got {padding!r}", ValueError)
    return pairs


def _spatial_padding(op_name: str, x, pairs, data_format) -> Value:
    x = _as_tensor(x)
    data_format = arguments.data_format(op_name, data_format)
    if x.type.ndim != len(pairs) + 2:
        raise argument_error(op_name, f"needs a tensor of rank {len(pairs) + 2}, got shape "
                                      f"{x.type.int_shape}", ValueError)
    if data_format == "channels_first":
        paddings = [(0, 0), (0, 0)] + pairs
    else:
        paddings = [(0, 0)] + pairs + [(0, 0)]
    return image_ops.pad(x, paddings)


def temporal_padding(x, padding=(1, 1)) -> Value:
    """Zeros added before and after axis 1 of a 3D tensor.

    Arguments:
        x: a (batch, steps, features) tensor.
        padding: a pair of ints: zeros before and after.

    Returns:
        A (batch, steps + padding[0] + padding[1], features) tensor.
    """
    return _spatial_padding("temporal_padding", x, _pairs("temporal_padding", [padding], 1),
                            "channels_last")


def spatial_2d_padding(x, padding=((1, 1), (1, 1)), data_format=None) -> Value:
    """Zeros around the rows and columns of a 4D tensor.

    Arguments:
        x: a 4D tensor in data_format's layout.
        padding: ((top, bottom), (left, right)).
        data_format: 'channels_last' or 'channels_first'; None means
            K.image_data_format().

    Returns:
        The padded tensor.
    """
    pairs = _pairs("spatial_2d_padding", padding, 2)
    return _spatial_padding("spatial_2d_padding", x, pairs, data_format)


def spatial_3d_padding(x, padding=((1, 1), (1, 1), (1, 1)), data_format=None) -> Value:
    """Zeros around the depth, rows and columns of a 5D tensor.

    Arguments:
        x: a 5D tensor in data_format's layout.
        padding: three (before, after) pairs, for depth, rows and columns.
        data_format: 'channels_last' or 'channels_first'; None means
            K.image_data_format().

    Returns:
        The padded tensor.
    """
    pairs = _pairs("spatial_3d_padding", padding, 3)
    return _spatial_padding("spatial_3d_padding", x, pairs, data_format)


# --- resizing ----------------------------------------------------------------------------------


def _spatial_axes(op_name: str, x: Value, rank: int, data_format) -> tuple[int, ...]:
    data_format = arguments.data_format(op_name, data_format)
    if x.type.ndim != rank + 2:
        raise argument_error(op_name, f"needs a tensor of rank {rank + 2}, got shape "
                                      f"{x.type.int_shape}", ValueError)
    return pool_ops.spatial_axes(rank + 2, data_format)


def _factors(op_name: str, *factors) -> list[int]:
    result = []
    for factor in factors:
        if isinstance(factor, bool) or int(factor) != factor or factor < 1:
            raise argument_error(op_name, f"resize factors must be positive integers, got "
                                          f"{factor!r}", ValueError)
        result.append(int(factor))
    return result


def _repeat(x: Value, axes, factors) -> Value:
    """Nearest-neighbour upsampling by integer factors: each element repeated along each axis."""
    for axis, factor in zip(axes, factors):
        if factor != 1:
            x = shape_ops.repeat_elements(x, factor, axis)
    return x


def resize_images(x, height_factor, width_factor, data_format=None,
                  interpolation="nearest") -> Value:
    """Rows and columns of a 4D tensor upsampled by integer factors.

    Arguments:
        x: a 4D tensor in data_format's layout.
        height_factor: a positive int.
        width_factor: a positive int.
        data_format: 'channels_last' or 'channels_first'; None means
            K.image_data_format().
        interpolation: 'nearest' repeats each pixel; 'bilinear' interpolates as
            TensorFlow 1.x's resize_bilinear with align_corners=False (Keras
            2.3.1's call).

    Returns:
        The resized tensor.
    """
    x = _as_tensor(x)
    axes = _spatial_axes("resize_images", x, 2, data_format)
    factors = _factors("resize_images", height_factor, width_factor)
    if interpolation == "nearest":
        return _repeat(x, axes, factors)
    if interpolation == "bilinear":
        return image_ops.resize_bilinear(x, axes, factors)
    raise argument_error("resize_images", 'interpolation should be one of "nearest" or '
                                          '"bilinear".', ValueError)


def resize_volumes(x, depth_factor, height_factor, width_factor, data_format=None) -> Value:
    """Depth, rows and columns of a 5D tensor upsampled by repeating (nearest neighbour).

    Arguments:
        x: a 5D tensor in data_format's layout.
        depth_factor: a positive int.
        height_factor: a positive int.
        width_factor: a positive int.
        data_format: 'channels_last' or 'channels_first'; None means
            K.image_data_format().

    Returns:
        The resized tensor.
    """
    x = _as_tensor(x)
    axes = _spatial_axes("resize_volumes", x, 3, data_format)
    return _repeat(x, axes, _factors("resize_volumes", depth_factor, height_factor,
                                     width_factor))


__all__ = ["bias_add", "pool2d", "pool3d", "resize_images", "resize_volumes", "spatial_2d_padding",
           "spatial_3d_padding", "temporal_padding"]

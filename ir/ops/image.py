"""Image ops: zero padding, bias_add and bilinear resizing, each with its gradient.

- `pad(x, paddings)` surrounds x with zeros, `paddings` holding a static
  (before, after) pair per axis; its gradient `unpad(g, x, paddings)` slices
  the border off again (taking x as a "like" input, so the result keeps x's
  symbolic dims).
- `bias_add(x, bias, axis)` adds a vector along the channel axis `axis`, or
  a bias shaped like one example (x's shape without the batch axis). Its
  gradient sums g over the other axes, with `reduce_sum`.
- `resize_bilinear(x, axes, factors)` upsamples by integer factors with
  TensorFlow 1.x's `resize_bilinear(align_corners=False,
  half_pixel_centers=False)`, which Keras 2.3.1 calls: output position o
  along an axis reads input position o / factor, interpolating between
  floor(o / factor) and the next element (clamped at the edge). With an
  integer factor, output o = i * factor + r reads x[i] and x[i + 1] with
  weight r / factor, so the kernel is whole-array arithmetic on an
  (n, factor) view of each axis, one axis after the other; its transpose
  `resize_bilinear_grad` folds g back the same way.

Nearest-neighbour resizing with an integer factor is `repeat_elements` on
each axis (ir/ops/shape.py), so it needs no op here.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import DTypeError, is_floating, require_numeric
from ..shapes import ShapeError, format_shape, merge_dim, merge_shapes, scaled_dim
from ..types import TensorType
from .reduce import reduce_sum
from .registry import REQUIRED, OpDef, Sample, apply, register

# --- pad and unpad ----------------------------------------------------------------------------


def _check_paddings(paddings, ndim: int) -> None:
    if len(paddings) != ndim or any(
            not isinstance(p, tuple) or len(p) != 2
            or any(not isinstance(w, int) or w < 0 for w in p) for p in paddings):
        raise ShapeError(f"paddings {paddings} must be one (before, after) pair of ints >= 0 "
                         f"per axis of a tensor of rank {ndim}")


def _padded_shape(shape: tuple, paddings) -> tuple:
    return tuple(scaled_dim(d, 1, before + after) for d, (before, after) in zip(shape, paddings))


def _pad_infer(x, paddings):
    _check_paddings(paddings, x.ndim)
    return TensorType(x.dtype, _padded_shape(x.shape, paddings))


def _unpad_infer(g, like, paddings):
    _check_paddings(paddings, like.ndim)
    merge_shapes(_padded_shape(like.shape, paddings), g.shape,
                 "the padded shape and the cotangent")
    return TensorType(g.dtype, like.shape)


def _interior(shape: tuple, paddings) -> tuple:
    """The index of the unpadded part of an array of the padded `shape`."""
    return tuple(slice(before, n - after) for n, (before, after) in zip(shape, paddings))


def _pad(x, paddings):
    shape = tuple(n + before + after for n, (before, after) in zip(x.shape, paddings))
    result = np.zeros(shape, dtype=x.dtype)
    result[_interior(shape, paddings)] = x
    return result


def _unpad(g, like, paddings):
    return g[_interior(g.shape, paddings)]


register(OpDef(
    "pad", "image", infer=_pad_infer, kernel=_pad, attrs={"paddings": REQUIRED},
    grad=lambda n, g: (unpad(g, n.inputs[0], n.attrs["paddings"]),),
    samples=(Sample(((2, 3, 4),), {"paddings": ((0, 0), (1, 2), (0, 0))}),
             Sample(((2, 3, 4, 2),), {"paddings": ((0, 0), (0, 0), (2, 0), (1, 1))})),
    doc="x surrounded by zeros: paddings[i] = (before, after) on axis i."))

register(OpDef(
    "unpad", "image", infer=_unpad_infer, kernel=_unpad, attrs={"paddings": REQUIRED}, view=True,
    grad=lambda n, h: (pad(h, n.attrs["paddings"]), None),
    samples=(Sample(((2, 6, 4), (2, 3, 4)), {"paddings": ((0, 0), (1, 2), (0, 0))},
                    differentiable_inputs=(0,)),),
    doc="g with the border `paddings` sliced off, in like's shape: pad's transpose."))


def pad(x, paddings):
    """x padded with zeros; `paddings` holds a (before, after) pair per axis."""
    return apply("pad", [x], paddings=tuple((int(b), int(a)) for b, a in paddings))


def unpad(g, like, paddings):
    return apply("unpad", [g, like], paddings=tuple((int(b), int(a)) for b, a in paddings))


# --- bias_add -----------------------------------------------------------------------------------


def _bias_add_infer(x, bias, axis):
    if x.ndim < 2:
        raise ShapeError(f"bias_add needs a tensor of rank 2 or more, got {format_shape(x.shape)}")
    if x.dtype != bias.dtype:
        raise DTypeError(f"the bias ({bias.dtype}) must have x's dtype ({x.dtype})")
    if bias.ndim == 1:
        if not isinstance(axis, int) or not 0 < axis < x.ndim:
            raise ShapeError(f"the channel axis {axis!r} of a vector bias must be an int in "
                             f"[1, {x.ndim})")
        pairs, what = [(axis, bias.shape[0])], f"axis {axis} of x {format_shape(x.shape)}"
    elif bias.ndim == x.ndim - 1:
        pairs = list(zip(range(1, x.ndim), bias.shape))
        what = f"x.shape[1:] = {format_shape(x.shape[1:])}"
    else:
        raise ShapeError(f"a bias must be a vector or have rank {x.ndim - 1} "
                         f"(x's rank less the batch axis), got rank {bias.ndim}")
    shape = list(x.shape)
    try:
        for position, dim in pairs:
            shape[position] = merge_dim(shape[position], dim)
    except ShapeError:
        raise ShapeError(f"bias {format_shape(bias.shape)} does not fit {what}") from None
    return TensorType(x.dtype, tuple(shape))


def _bias_add(x, bias, axis):
    if bias.ndim == 1:
        shape = [1] * x.ndim
        shape[axis] = bias.shape[0]
        bias = bias.reshape(shape)
    return x + bias


def _bias_add_grad(node, g):
    x, bias = node.inputs
    if bias.type.ndim == 1:
        others = [a for a in range(x.type.ndim) if a != node.attrs["axis"]]
        return g, reduce_sum(g, others)
    return g, reduce_sum(g, 0)


register(OpDef(
    "bias_add", "image", infer=_bias_add_infer, kernel=_bias_add, attrs={"axis": None},
    grad=_bias_add_grad,
    samples=(Sample(((2, 3, 4), (4,)), {"axis": 2}),
             Sample(((2, 3, 4, 5), (3,)), {"axis": 1}),
             Sample(((2, 3, 4), (3, 4)))),
    doc="x + bias: a vector along channel axis `axis`, or one example's shape (x.shape[1:]; "
        "axis is None then)."))


def bias_add(x, bias, axis: int | None = None):
    """x + bias; a vector bias needs its channel axis, a bias of x.shape[1:] takes None."""
    return apply("bias_add", [x, bias], axis=None if axis is None else int(axis))


# --- bilinear resizing -------------------------------------------------------------------------


def _check_resize(x: TensorType, axes, factors) -> None:
    if len(axes) != len(factors) or len(set(axes)) != len(axes):
        raise ShapeError(f"axes {axes} and factors {factors} must pair distinct axes with "
                         "factors")
    if any(not isinstance(a, int) or not 0 <= a < x.ndim for a in axes):
        raise ShapeError(f"axes {axes} must be ints in [0, {x.ndim})")
    if any(not isinstance(f, int) or f < 1 for f in factors):
        raise ShapeError(f"factors {factors} must be ints >= 1")


def _resized_shape(shape: tuple, axes, factors) -> tuple:
    shape = list(shape)
    for axis, factor in zip(axes, factors):
        shape[axis] = scaled_dim(shape[axis], factor)
    return tuple(shape)


def _resized_dtype(dtype: str) -> str:
    """Floats keep their dtype; other inputs give float32, as TensorFlow's op always does."""
    require_numeric(dtype, "bilinear resizing's input")
    return dtype if is_floating(dtype) else "float32"


def _resize_bilinear_infer(x, axes, factors):
    _check_resize(x, axes, factors)
    return TensorType(_resized_dtype(x.dtype), _resized_shape(x.shape, axes, factors))


def _resize_bilinear_grad_infer(g, like, axes, factors):
    _check_resize(like, axes, factors)
    merge_shapes(_resized_shape(like.shape, axes, factors), g.shape,
                 "the resized shape and the cotangent")
    return TensorType(g.dtype, like.shape)


def _weights(factor: int, axis: int, ndim: int, dtype) -> np.ndarray:
    """r / factor for r in range(factor), on the new axis after `axis` of an (n, factor) view."""
    shape = [1] * (ndim + 1)
    shape[axis + 1] = factor
    return (np.arange(factor, dtype=np.float64) / factor).astype(dtype).reshape(shape)


def _along(axis: int, index) -> tuple:
    return (slice(None),) * axis + (index,)


def _interpolate(x: np.ndarray, axis: int, factor: int) -> np.ndarray:
    """One axis upsampled: out[i * factor + r] = x[i] + (x[i + 1] - x[i]) * r / factor."""
    following = np.concatenate([x[_along(axis, slice(1, None))], x[_along(axis, slice(-1, None))]],
                               axis=axis)
    low, high = np.expand_dims(x, axis + 1), np.expand_dims(following, axis + 1)
    result = low + (high - low) * _weights(factor, axis, x.ndim, x.dtype)
    return result.reshape(x.shape[:axis] + (x.shape[axis] * factor,) + x.shape[axis + 1:])


def _fold(g: np.ndarray, axis: int, factor: int) -> np.ndarray:
    """The transpose of `_interpolate` along one axis: g summed back onto the input."""
    n = g.shape[axis] // factor
    runs = g.reshape(g.shape[:axis] + (n, factor) + g.shape[axis + 1:])
    to_next = np.sum(runs * _weights(factor, axis, g.ndim, g.dtype), axis=axis + 1)
    result = np.sum(runs, axis=axis + 1) - to_next  # the (1 - r / factor) shares stay at i
    if n:
        result[_along(axis, slice(1, None))] += to_next[_along(axis, slice(None, -1))]
        result[_along(axis, -1)] += to_next[_along(axis, -1)]  # the clamped edge
    return result


def _resize_bilinear(x, axes, factors):
    result = x if is_floating(x.dtype.name) else x.astype(np.float32)
    for axis, factor in zip(axes, factors):
        if factor != 1:
            result = _interpolate(result, axis, factor)
    return result


def _resize_bilinear_grad(g, like, axes, factors):
    result = g
    for axis, factor in reversed(list(zip(axes, factors))):
        if factor != 1:
            result = _fold(result, axis, factor)
    return result


register(OpDef(
    "resize_bilinear", "image", infer=_resize_bilinear_infer, kernel=_resize_bilinear, view=True,
    attrs={"axes": REQUIRED, "factors": REQUIRED},
    grad=lambda n, g: (resize_bilinear_grad(g, n.inputs[0], **n.attrs),),
    samples=(Sample(((2, 3, 4, 2),), {"axes": (1, 2), "factors": (2, 3)}),
             Sample(((2, 2, 3, 1),), {"axes": (2, 3), "factors": (3, 1)})),
    doc="x upsampled by integer factors along axes, as TF 1.x resize_bilinear "
        "(align_corners=False)."))

register(OpDef(
    "resize_bilinear_grad", "image", infer=_resize_bilinear_grad_infer,
    kernel=_resize_bilinear_grad, attrs={"axes": REQUIRED, "factors": REQUIRED}, view=True,
    grad=lambda n, h: (resize_bilinear(h, **n.attrs), None),
    samples=(Sample(((2, 6, 12, 2), (2, 3, 4, 2)), {"axes": (1, 2), "factors": (2, 3)},
                    differentiable_inputs=(0,)),),
    doc="g folded back onto like's shape: resize_bilinear's transpose."))


def resize_bilinear(x, axes, factors):
    return apply("resize_bilinear", [x], axes=tuple(int(a) for a in axes),
                 factors=tuple(int(f) for f in factors))


def resize_bilinear_grad(g, like, axes, factors):
    return apply("resize_bilinear_grad", [g, like], axes=tuple(int(a) for a in axes),
                 factors=tuple(int(f) for f in factors))

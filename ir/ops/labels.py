"""class_indices: integer class labels checked and placed for a fused crossentropy.

    %i = class_indices(%labels) {classes=1000, axis=1, shape=none} : int32[?0,1]

The sparse crossentropy's kernel range-checks its labels before it picks a
logit. When passes/decompose.py rewrites the loss as elementwise ops and row
reductions (so it fuses with the max / exp / sum of the row), the check stays
a node of its own, outside the fused region: this one. It reads only the
labels (never the logits, which would tie the label check to whatever region
computes them), so the region can still fuse with the logits' producer.

Its result is the labels as int32 (classes fit: the check proves 0 <= label <
classes), float labels truncated toward zero as the sparse kernel's
`astype(int64)` does, with a size-1 class axis inserted at `axis` (axis=None:
the labels already have it), so `equal(arange(classes), indices)` broadcasts
to the logits' shape inside the region.

Labels whose type does not line up with the logits (Keras feeds a (None,
None) target, its dims unrelated to the logits' rows) take the second form:

    %i = class_indices(%labels, %x) {classes=10, axis=1, shape=(("dim", 0), 1)}
         : int32[?0,1]

`shape` is the result's shape, 1 at `axis`: ints, or ("dim", k), the size of
axis k of the second input (a graph input the logits' rows come from, read
only for its shape, so no region is tied to it). The labels, any layout with
one class per position as the sparse kernel accepts, are reshaped to it; their
count is checked when the function runs (a ValueError naming both shapes).

    %p = reduce_pick(%v, %k) {axes=(1,), keepdims=true} : float32[?0,1]

reduce_pick is the picked logit inside the region: +0 + v[k] along the axis
(+0 where k is outside [0, n), every term of that sum being a zero), what
sum(where(equal(arange(n), k), v, 0)) gives, read as one element a position
(np.take_along_axis on NumPy, one load a row in the LLVM kernel). A fused body
may hold it like a reduction (ir/ops/fused.py). Its gradient is pick_grad: g
put at k into zeros shaped like v.
"""
from __future__ import annotations

import math

import numpy as np

from ..dtypes import DTypeError, is_integer
from ..shapes import ShapeError, format_shape, same_dim
from ..types import TensorType
from .axes import check_canonical_axis
from .registry import NOT_DIFFERENTIABLE, REQUIRED, OpDef, Sample, apply, register

_INT32_MAX = 2**31 - 1


def _infer(labels: TensorType, *like: TensorType, classes: int, axis, shape) -> TensorType:
    if labels.dtype == "bool":
        raise DTypeError("labels must be ints (or floats holding ints), got bool")
    if not isinstance(classes, int) or not 0 <= classes <= _INT32_MAX:
        raise ShapeError(f"classes must be an int in [0, 2^31), got {classes!r}")
    if shape is not None:
        return TensorType("int32", _placed(labels, like, axis, shape))
    if like:
        raise ShapeError("a second input (the shape source) is read only with shape=")
    if axis is None:
        return TensorType("int32", labels.shape)
    if not isinstance(axis, int) or not 0 <= axis <= labels.ndim:
        raise ShapeError(f"axis {axis!r} must be an int in [0, {labels.ndim}] (where the class "
                         f"axis goes in the result of rank {labels.ndim + 1})")
    return TensorType("int32", labels.shape[:axis] + (1,) + labels.shape[axis:])


def _placed(labels: TensorType, like: tuple, axis, shape: tuple) -> tuple:
    """The result shape of the second form: `shape` with ("dim", k) read from like's type."""
    if len(like) != 1:
        raise ShapeError(f"shape= needs exactly one shape source input, got {len(like)}")
    source = like[0]
    if not isinstance(shape, tuple) or not isinstance(axis, int) or not (
            0 <= axis < len(shape) and shape[axis] == 1):
        raise ShapeError(f"shape {shape!r} must be a tuple with 1 at axis {axis!r}")
    dims = []
    for item in shape:
        if isinstance(item, int) and item >= 0:
            dims.append(item)
        elif (isinstance(item, tuple) and len(item) == 2 and item[0] == "dim"
              and isinstance(item[1], int) and 0 <= item[1] < source.ndim):
            dims.append(source.shape[item[1]])
        else:
            raise ShapeError(f"shape entries are ints or (\"dim\", k) with k an axis of the "
                             f"source of rank {source.ndim}, got {item!r}")
    dims = tuple(dims)
    symbolic = [d for d in labels.shape + dims if not isinstance(d, int)]
    if not symbolic and int(np.prod(labels.shape)) != int(np.prod(dims)):
        raise ShapeError(f"labels of shape {format_shape(labels.shape)} do not hold one class "
                         f"per position of the loss, shape {format_shape(_loss(dims, axis))}")
    return dims


def _loss(dims, axis: int) -> tuple:
    return tuple(dims[:axis]) + tuple(dims[axis + 1:])


def out_of_range_error(bad, classes: int) -> ValueError:
    """The sparse crossentropy's message for a label outside [0, classes) (one wording for
    the op's kernel and this check)."""
    return ValueError(f"received a label value of {bad} which is outside the valid range of "
                      f"[0, {classes})")


def _kernel(labels, *like, classes: int, axis, shape):
    indices = np.asarray(labels)
    if shape is not None:
        target = _run_shape(indices, like[0], axis, shape)
    if indices.dtype.kind == "f":
        indices = indices.astype(np.int64)  # truncated, as the sparse kernel's astype
    if indices.size and (indices.min() < 0 or indices.max() >= classes):
        raise out_of_range_error(indices[(indices < 0) | (indices >= classes)].flat[0], classes)
    indices = indices.astype(np.int32)  # in range: exact (and a copy: never the caller's)
    if shape is not None:
        return indices.reshape(target)
    if axis is None:
        return indices
    return indices.reshape(indices.shape[:axis] + (1,) + indices.shape[axis:])


def _run_shape(labels, source, axis: int, shape: tuple) -> tuple:
    """The second form's result shape for this call, the labels' count checked against it
    (the type rule could not: the labels' dims are not the logits')."""
    dims = tuple(item if isinstance(item, int) else source.shape[item[1]] for item in shape)
    if labels.size != math.prod(dims):  # math.prod: np.prod of a tuple costs ~3 us a call
        raise ValueError(f"labels of shape {labels.shape} do not hold one class per position "
                         f"of the loss, shape {_loss(dims, axis)} (the logits' shape without "
                         f"the class axis {axis})")
    return dims


def _sample(shape, axis, dtype="int32"):
    def make(rng):
        return [rng.integers(0, 5, shape).astype(dtype)]
    return Sample((shape,), {"classes": 5, "axis": axis}, dtypes=(dtype,), make=make)


def _reshaped_sample(labels_shape, source_shape):
    def make(rng):
        return [rng.integers(0, 5, labels_shape).astype(np.float32),
                rng.standard_normal(source_shape)]
    attrs = {"classes": 5, "axis": 1, "shape": (("dim", 0), 1)}
    return Sample((labels_shape, source_shape), attrs, dtypes=("float32", "float64"),
                  make=make, symbolic=False)


register(OpDef(
    "class_indices", "nn", infer=_infer, kernel=_kernel,
    attrs={"classes": REQUIRED, "axis": REQUIRED, "shape": None}, grad=NOT_DIFFERENTIABLE,
    samples=(_sample((3,), 1), _sample((2, 3), 1, "float32"), _sample((3, 1), None, "int64"),
             _reshaped_sample((3, 1), (3, 2))),
    doc="Labels as int32 class indices, range-checked against [0, classes) (ValueError "
        "otherwise), with a size-1 class axis inserted at `axis` (None: already there); "
        "with `shape` (ints or (\"dim\", k) of a second input), reshaped to it, their count "
        "checked when the function runs."))


def class_indices(labels, classes: int, axis, shape=None, like=None):
    """Labels as int32 class indices (see the module docstring); `like`, the shape source
    that `shape`'s ("dim", k) entries read, only with `shape`."""
    inputs = [labels] if like is None else [labels, like]
    return apply("class_indices", inputs, classes=int(classes), axis=axis, shape=shape)


# --- reduce_pick and its gradient ----------------------------------------------------------------

def _pick_infer(v: TensorType, k: TensorType, axes, keepdims) -> TensorType:
    if v.dtype == "bool" or not is_integer(k.dtype):
        raise DTypeError(f"reduce_pick takes numbers and integer indices, got {v.dtype} and "
                         f"{k.dtype}")
    if not isinstance(axes, tuple) or len(axes) != 1:
        raise ShapeError(f"reduce_pick picks along one axis, got axes={axes!r}")
    axis = axes[0]
    check_canonical_axis(axis, v.ndim, "reduce_pick")
    # a symbolic dim against another is checked when the function runs (both lowerings)
    if k.ndim != v.ndim or k.shape[axis] != 1 or not all(
            a == 1 or same_dim(a, b) or not (isinstance(a, int) and isinstance(b, int))
            for j, (a, b) in enumerate(zip(k.shape, v.shape)) if j != axis):
        raise ShapeError(f"indices of shape {format_shape(k.shape)} must have the shape "
                         f"{format_shape(v.shape)} with 1 on axis {axis}")
    kept = v.shape[:axis] + ((1,) if keepdims else ()) + v.shape[axis + 1:]
    return TensorType(v.dtype, kept)


def _inside(v, k, axis):
    """(indices clamped into range, where they were inside [0, n)), k broadcast."""
    k = np.broadcast_to(k, v.shape[:axis] + (1,) + v.shape[axis + 1:])
    inside = (k >= 0) & (k < v.shape[axis])
    return np.where(inside, k, 0).astype(np.intp), inside


def _pick_kernel(v, k, axes, keepdims):
    axis = axes[0]
    n = v.shape[axis]
    if k.size and n and k.shape == v.shape[:axis] + (1,) + v.shape[axis + 1:] \
            and k.min() >= 0 and k.max() < n:
        # Every index inside (class_indices checked them): no mask to broadcast and apply,
        # about half the kernel's time for a Keras batch (32 rows of 10 classes).
        picked = np.take_along_axis(v, k.astype(np.intp, copy=False), axis) + v.dtype.type(0)
        return picked if keepdims else np.squeeze(picked, axis)
    index, inside = _inside(v, k, axis)
    if n:
        picked = np.take_along_axis(v, index, axis) + v.dtype.type(0)  # -0 picks give +0
    else:
        picked = np.zeros(index.shape, v.dtype)
    result = np.where(inside, picked, v.dtype.type(0)).astype(v.dtype, copy=False)
    return result if keepdims else np.squeeze(result, axis)


def _pick_grad_infer(g: TensorType, k: TensorType, like: TensorType, axes, keepdims):
    picked = _pick_infer(like, k, axes, keepdims)
    if g.dtype != like.dtype or g.ndim != picked.ndim:
        raise ShapeError(f"pick_grad: the cotangent {g} does not match the pick's {picked}")
    return like


def _pick_grad_kernel(g, k, like, axes, keepdims):
    axis = axes[0]
    index, inside = _inside(like, k, axis)
    result = np.zeros(like.shape, like.dtype)
    if like.shape[axis]:
        values = np.where(inside, g if keepdims else np.expand_dims(g, axis), 0)
        np.put_along_axis(result, index, values.astype(like.dtype, copy=False), axis)
    return result


def _pick_sample(v_shape, k_shape, axis, keepdims, g=False):
    def make(rng):
        v = rng.uniform(-2, 2, v_shape)
        k = rng.integers(-1, v_shape[axis] + 1, k_shape).astype(np.int32)  # some outside
        if not g:
            return [v, k]
        kept = v_shape[:axis] + ((1,) if keepdims else ()) + v_shape[axis + 1:]
        return [rng.uniform(-1, 1, kept), k, v]
    shapes = ((v_shape, k_shape) if not g else
              (v_shape[:axis] + ((1,) if keepdims else ()) + v_shape[axis + 1:], k_shape,
               v_shape))
    dtypes = ("float64", "int32") if not g else ("float64", "int32", "float64")
    return Sample(shapes, {"axes": (axis,), "keepdims": keepdims}, dtypes=dtypes, make=make,
                  differentiable_inputs=(0,))


register(OpDef(
    "reduce_pick", "nn", infer=_pick_infer, kernel=_pick_kernel,
    attrs={"axes": REQUIRED, "keepdims": False},
    grad=lambda n, g: (pick_grad(g, n.inputs[1], n.inputs[0], n.attrs["axes"],
                                 n.attrs["keepdims"]), None),
    samples=(_pick_sample((3, 4), (3, 1), 1, True), _pick_sample((2, 3, 4), (2, 1, 4), 1, False)),
    doc="+0 + v[k] along the one axis of `axes` (+0 where k is outside [0, n)): the sum of "
        "where(equal(arange(n), k), v, 0), read as one element."))

register(OpDef(
    "pick_grad", "nn", infer=_pick_grad_infer, kernel=_pick_grad_kernel,
    attrs={"axes": REQUIRED, "keepdims": False},
    grad=lambda n, h: (reduce_pick(h, n.inputs[1], n.attrs["axes"], n.attrs["keepdims"]),
                       None, None),
    samples=(_pick_sample((3, 4), (3, 1), 1, True, g=True),
             _pick_sample((2, 3, 4), (2, 1, 4), 1, False, g=True)),
    doc="d reduce_pick / d v for cotangent g: g at k (where inside [0, n)), zeros elsewhere, "
        "in like's shape."))


def reduce_pick(v, k, axes, keepdims: bool = False):
    return apply("reduce_pick", [v, k], axes=tuple(axes), keepdims=keepdims)


def pick_grad(g, k, like, axes, keepdims: bool = False):
    return apply("pick_grad", [g, k, like], axes=tuple(axes), keepdims=keepdims)

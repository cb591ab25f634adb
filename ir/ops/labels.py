"""class_indices: integer class labels checked and placed for a fused crossentropy.

    %i = class_indices(%labels) {classes=1000, axis=1} : int32[?0,1]

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
"""
from __future__ import annotations

import numpy as np

from ..dtypes import DTypeError
from ..shapes import ShapeError
from ..types import TensorType
from .registry import NOT_DIFFERENTIABLE, REQUIRED, OpDef, Sample, apply, register

_INT32_MAX = 2**31 - 1


def _infer(labels: TensorType, classes: int, axis) -> TensorType:
    if labels.dtype == "bool":
        raise DTypeError("labels must be ints (or floats holding ints), got bool")
    if not isinstance(classes, int) or not 0 <= classes <= _INT32_MAX:
        raise ShapeError(f"classes must be an int in [0, 2^31), got {classes!r}")
    if axis is None:
        return TensorType("int32", labels.shape)
    if not isinstance(axis, int) or not 0 <= axis <= labels.ndim:
        raise ShapeError(f"axis {axis!r} must be an int in [0, {labels.ndim}] (where the class "
                         f"axis goes in the result of rank {labels.ndim + 1})")
    return TensorType("int32", labels.shape[:axis] + (1,) + labels.shape[axis:])


def out_of_range_error(bad, classes: int) -> ValueError:
    """The sparse crossentropy's message for a label outside [0, classes) (one wording for
    the op's kernel and this check)."""
    return ValueError(f"received a label value of {bad} which is outside the valid range of "
                      f"[0, {classes})")


def _kernel(labels, classes: int, axis):
    indices = np.asarray(labels)
    if indices.dtype.kind == "f":
        indices = indices.astype(np.int64)  # truncated, as the sparse kernel's astype
    if indices.size and (indices.min() < 0 or indices.max() >= classes):
        raise out_of_range_error(indices[(indices < 0) | (indices >= classes)].flat[0], classes)
    indices = indices.astype(np.int32)  # in range: exact (and a copy: never the caller's)
    if axis is None:
        return indices
    return indices.reshape(indices.shape[:axis] + (1,) + indices.shape[axis:])


def _sample(shape, axis, dtype="int32"):
    def make(rng):
        return [rng.integers(0, 5, shape).astype(dtype)]
    return Sample((shape,), {"classes": 5, "axis": axis}, dtypes=(dtype,), make=make)


register(OpDef(
    "class_indices", "nn", infer=_infer, kernel=_kernel,
    attrs={"classes": REQUIRED, "axis": REQUIRED}, grad=NOT_DIFFERENTIABLE,
    samples=(_sample((3,), 1), _sample((2, 3), 1, "float32"), _sample((3, 1), None, "int64")),
    doc="Labels as int32 class indices, range-checked against [0, classes) (ValueError "
        "otherwise), with a size-1 class axis inserted at `axis` (None: already there)."))


def class_indices(labels, classes: int, axis):
    return apply("class_indices", [labels], classes=int(classes), axis=axis)

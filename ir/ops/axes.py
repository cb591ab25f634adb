"""The user's axis arguments, checked where they are given.

Op constructors normalize axes before building a node (negative axes become
non-negative, so equal ops compare equal), and report an out-of-range axis
as the type rule would: naming the op, the axis, the tensor and the user's line.
"""
from __future__ import annotations

from ..errors import located
from ..graph import Value
from ..shapes import ShapeError, format_shape, normalize_axis
from ..source import user_location


def user_axis(op_name: str, x: Value, axis, ndim: int | None = None) -> int:
    """One axis (an int, or a list holding one int) among `ndim` (default: x's rank)."""
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            raise TypeError(f"{op_name}: axis must be a single int, got {axis!r}")
        axis = axis[0]
    ndim = x.type.ndim if ndim is None else ndim
    if ndim == 0:
        return 0  # the op's type rule reports a scalar where it needs a tensor
    try:
        return normalize_axis(int(axis), ndim)
    except ShapeError:
        error = ShapeError(f"axis {axis} is out of range: {op_name} takes axes "
                           f"{-ndim}..{ndim - 1} on a tensor of shape {format_shape(x.type.shape)}")
        raise located(error, op_name, user_location(), f" (given {x.type})") from None


def check_canonical_axes(axes, ndim: int) -> None:
    """Axes attributes as constructors write them: distinct sorted ints in [0, ndim).

    Type rules call this because IR text need not come from a constructor.
    """
    if not isinstance(axes, tuple) or tuple(sorted(set(axes))) != axes \
            or any(not isinstance(a, int) or not 0 <= a < ndim for a in axes):
        raise ShapeError(f"axes {axes!r} must be distinct sorted ints in [0, {ndim}) "
                         f"for a tensor of rank {ndim}")


def check_canonical_axis(axis, ndim: int, op_name: str = "this op") -> None:
    """A single canonical axis on a tensor of rank >= 1."""
    if ndim == 0:
        raise ShapeError(f"{op_name} needs a tensor of rank 1 or more, got a scalar")
    if not isinstance(axis, int) or not 0 <= axis < ndim:
        raise ShapeError(f"axis {axis!r} must be an int in [0, {ndim}) for a tensor of rank {ndim}")

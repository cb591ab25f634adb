"""Run-time shapes and strides of a fused region's values, as a native call needs them.

`value_shapes` gives every body value's shape from the input arrays by
NumPy's broadcasting rules (a dim neither 1 nor the other size is a
ShapeError naming the op and its line); `access_strides` gives the strides in
elements one loop nest uses for one buffer (0 where broadcast). The runtime
(runtime.py) prepares both once per input pattern; native code only ever
indexes within these extents.
"""
from __future__ import annotations

import numpy as np

from ...ir.errors import located
from ...ir.ops.fused import BODY_REDUCTIONS
from ...ir.shapes import ShapeError, format_shape


def value_shapes(body, arrays) -> dict:
    """Run-time shape of every body value, by NumPy's rules (errors name the op)."""
    shapes = {v: a.shape for v, a in zip(body.inputs, arrays)}
    for node in body.nodes:
        name = node.op.name
        if name == "placeholder":
            continue
        if name == "constant":
            shapes[node.outputs[0]] = np.shape(node.attrs["value"])
        elif name in BODY_REDUCTIONS:
            shape, axes = shapes[node.inputs[0]], node.attrs["axes"]
            if node.attrs["keepdims"]:
                shapes[node.outputs[0]] = tuple(1 if a in axes else d
                                                for a, d in enumerate(shape))
            else:
                shapes[node.outputs[0]] = tuple(d for a, d in enumerate(shape)
                                                if a not in axes)
        else:
            operands = [shapes[v] for v in node.inputs]
            try:
                shapes[node.outputs[0]] = np.broadcast_shapes(*operands)
            except ValueError:
                error = ShapeError("shapes " + " and ".join(map(format_shape, operands))
                                   + " do not broadcast (each dim must be equal or 1)")
                raise located(error, name, node.location,
                              " (while running the function)") from None
    return shapes


def access_strides(stage, slot: int, plan, extents, array, shape, location) -> list:
    """Strides in elements along the stage's axes for one access (0 where broadcast).

    `array` is the buffer when it exists before the call (an input or constant),
    else None: outputs and scratch are C-contiguous in `shape`."""
    rank = stage.rank
    if array is not None:
        shape, strides = array.shape, [s // array.itemsize for s in array.strides]
    else:
        strides = contiguous_strides(shape)
    for node in stage.nodes:
        if slot == plan.slot_of[node.outputs[0]]:
            return reduction_write_strides(node, strides, rank)
    result = [0] * rank
    offset = rank - len(shape)
    for j, (dim, stride) in enumerate(zip(shape, strides)):
        extent = extents[offset + j]
        if dim == extent and dim != 1:
            result[offset + j] = stride
        elif dim != 1:  # never reached when value_shapes agreed; guards the native code
            raise ShapeError(f"fused node at {location}: an operand of shape "
                             f"{format_shape(shape)} does not fit the loop over "
                             f"{format_shape(tuple(extents))}")
    return result


def contiguous_strides(shape) -> list:
    strides, step = [], 1
    for dim in reversed(shape):
        strides.append(step)
        step *= max(dim, 1)
    return strides[::-1]


def reduction_write_strides(node, slot_strides: list, rank: int) -> list:
    """A reduction writes its slot at the loop's kept axes; reduced axes stay put (0)."""
    axes = node.attrs["axes"]
    if node.attrs["keepdims"]:
        return [0 if a in axes else slot_strides[a] for a in range(rank)]
    kept = iter(slot_strides)
    return [0 if a in axes else next(kept) for a in range(rank)]


def coalesce(extents, strides, first: int, static, reduced) -> None:
    """Merge runs of a loop nest's adjacent axes that every access walks as one, in place,
    as NumPy's nditer does: a (1024, 10) update becomes one loop of 10,240 elements the
    vectorizer fills with whole vectors, not 1,024 loops of 10 (scalar, shorter than one
    vector).

    `extents` (one per axis) and `strides` (one list per access, in elements) are
    the stage's run-time arrays; axes before `first` are shared with other stages
    and stay. Axis d merges into the run beginning at the next inner axis j when
    stride[d] == stride[j] * extent[j] for every access (the run then steps
    through d's elements too): extent[j] takes the product, extent[d] becomes 1
    (its loop runs once, at index 0), so the addresses visited, and their order,
    are the same. An axis of static size 1 (compiled as no loop) never takes an
    extent, and a reduced axis merges only with reduced ones (`reduced`), so a
    reduction still sums over the same elements into the same place."""
    j = None
    for d in range(len(extents) - 1, first - 1, -1):
        if static[d] == 1 or extents[d] == 1:
            continue  # no loop (index 0 only): leaves the run as it is
        if j is not None and (d in reduced) == (j in reduced) and all(
                s[d] == s[j] * extents[j] for s in strides):
            extents[j] *= extents[d]
            extents[d] = 1
            for s in strides:
                s[d] = 0
        else:
            j = d


__all__ = ["value_shapes", "access_strides", "contiguous_strides", "coalesce"]

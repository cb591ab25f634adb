"""Ops that move a tensor between a shape and the shape it broadcasts to.

`sum_to(g, like)` is the one unbroadcast helper autodiff uses: it sums `g`
over the axes that broadcasting expanded to reach `like`'s runtime shape,
so it is right for symbolic dims too (a `?0` that turns out to be 1).
`broadcast_like(x, like)` is its transpose.
"""
from __future__ import annotations

import numpy as np

from ..shapes import broadcast_shapes
from ..types import TensorType
from .contraction import sum_leading_axes
from .registry import OpDef, Sample, apply, register


def _sum_to_kernel(g, like):
    shape = np.shape(like)
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    if lead > 0 and g.shape[lead:] == shape:  # the common case: a bias's gradient
        return sum_leading_axes(g, lead)
    if lead < 0:  # a gradient smaller than `like` (a rule returned it unbroadcast): spread it
        return np.broadcast_to(g, shape).copy()
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1)
    summed = np.sum(g, axis=axes, keepdims=True, dtype=g.dtype)[(0,) * lead]
    return summed if summed.shape == shape else np.broadcast_to(summed, shape).copy()


def _broadcast_like_kernel(x, like):
    return np.broadcast_to(x, np.broadcast_shapes(np.shape(x), np.shape(like)))  # a view


register(OpDef(
    "sum_to", "broadcast", view=True,
    infer=lambda g, like: TensorType(g.dtype, like.shape),
    kernel=_sum_to_kernel,
    grad=lambda n, g: (broadcast_like(g, n.inputs[0]), None),
    samples=(Sample(((3, 4), (4,)), differentiable_inputs=(0,)),
             Sample(((2, 3, 4), (3, 1)), differentiable_inputs=(0,))),
    doc="Sum g over the axes broadcasting expanded from like's shape."))

register(OpDef(
    "broadcast_like", "broadcast", view=True,
    infer=lambda x, like: TensorType(x.dtype, broadcast_shapes(x.shape, like.shape)),
    kernel=_broadcast_like_kernel,
    grad=lambda n, g: (sum_to(g, n.inputs[0]), None),
    samples=(Sample(((4,), (3, 4)), differentiable_inputs=(0,)),
             Sample(((3, 1), (2, 3, 4)), differentiable_inputs=(0,))),
    doc="x broadcast to the shape of like (which x must broadcast to)."))


def sum_to(g, like):
    return apply("sum_to", [g, like])


def broadcast_like(x, like):
    return apply("broadcast_like", [x, like])

"""Ops that steer evaluation or differentiation rather than compute: stop_gradient."""
from __future__ import annotations

from .registry import OpDef, Sample, apply, register


def _identity(x):
    return x


register(OpDef(
    "stop_gradient", "control",
    infer=lambda x: x, kernel=_identity,
    grad=lambda n, g: (None,),
    samples=(Sample(((3, 4),), differentiable_inputs=()),),
    doc="The identity, through which no gradient flows."))


def stop_gradient(x):
    return apply("stop_gradient", [x])

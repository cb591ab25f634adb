"""Ops that steer evaluation or differentiation rather than compute: stop_gradient."""
from __future__ import annotations

from .registry import OpDef, Sample, apply, register


def _identity(x):
    return x


register(OpDef(
    "stop_gradient", "control", view=True,
    infer=lambda x: x, kernel=_identity,
    grad=lambda n, g: (None,),
    samples=(Sample(((3, 4),), differentiable_inputs=()),),
    doc="The identity, through which no gradient flows."))


def _print_kernel(x, message=""):
    print(f"{message}{x}", flush=True)
    return x


register(OpDef(
    "print_tensor", "control", view=True,
    infer=lambda x, message="": x, kernel=_print_kernel,
    attrs={"message": ""},
    grad=lambda n, g: (g,),
    pure=False,  # printing is the point: never folded away or merged
    samples=(Sample(((2, 2),), {"message": "x = "}),),
    doc="Prints message and the value when the function runs; returns the value."))


def print_tensor(x, message: str = ""):
    return apply("print_tensor", [x], message=message)


def stop_gradient(x):
    return apply("stop_gradient", [x])

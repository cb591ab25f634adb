"""Symbolic loops: the `scan` op, one node whose body is a subgraph run once per step.

    %ys, %final, %saved = scan(%xs, %h0, %W) {body=graph @body(%x, %h, %W) {...}, ...}

The body is a closed Graph (it reads nothing but its inputs) taking, per
step, one slice of each sequence (axis 0 is time), the current carries and
the captured values (weights a step function closes over, made explicit so
that their gradient can be accumulated), and returning the per-step
outputs, then the new carries. With `reverse` the steps visit positions
T-1 .. 0; a per-step output is stored at the position that produced it.

The node's outputs are: each per-step output stacked over time, (T, ...);
the final carries; and each carry at the T+1 step boundaries, (T+1, ...)
(boundary 0 holds the initial carry going forward, boundary T in reverse).
The last group is what backpropagation through time reads. The gradient of
a scan is a scan in the other direction whose body is the forward body's
gradient, built by the autodiff pass (the op is `grad_uses_autodiff`), with
the captured values' cotangents accumulated as extra carries. Codegen
computes only the outputs a graph uses, so a forward-only function never
stores the boundaries.

This module holds the op record (type rule, kernels, samples) and the
tracing; ir/ops/loop_runtime.py runs the loop, ir/ops/loop_grad.py builds
the gradient scan, and passes/scan_*.py move work out of loops.

`scan(step, sequences, initial_carries)` traces a Python step function into
a body: it calls it on fresh placeholders and turns whatever the step read
from outside (variables, outer tensors; constants stay inside) into
captured inputs.
"""
from __future__ import annotations

from typing import Callable

from ..dtypes import DTypeError
from ..graph import Graph, Value, topological_order
from ..rewrite import close_subgraph
from ..shapes import ShapeError, SymDim, format_shape, merge_dim, merge_shapes
from ..source import location_override
from ..types import TensorType
from . import elementwise as ew
from .leaf import placeholder
from .linalg import dot
from .loop_grad import scan_grad
from .loop_runtime import Loop, LoopError, counts, interpreter, split_groups
from .registry import REQUIRED, VARIADIC, OpDef, Sample, apply, register


# --- the type rule ---------------------------------------------------------------------------

def _merged_type(want: TensorType, have: TensorType, what: str) -> TensorType:
    """The type two descriptions of one value agree on (known sizes win), or raise."""
    if want.dtype != have.dtype:
        raise DTypeError(f"{what}: expected dtype {want.dtype}, the body has {have.dtype}")
    shape = merge_shapes(want.shape, have.shape, f"{what}, expected and in the body")
    return TensorType(want.dtype, shape)


def _sequence_length(sequence_types) -> object:
    length = None
    for i, t in enumerate(sequence_types):
        if t.ndim == 0:
            raise ShapeError(f"sequence {i} is a scalar; a scan steps over axis 0 of each "
                             "sequence")
        if length is None:
            length = t.shape[0]
            continue
        try:
            length = merge_dim(length, t.shape[0])
        except ShapeError:
            shapes = ", ".join(format_shape(s.shape) for s in sequence_types)
            raise ShapeError(f"sequences of different lengths {shapes} (axis 0 is time)") from None
    return length


def _scan_infer(*types, body, num_sequences, num_carries, reverse):
    if not isinstance(body, Graph):
        raise TypeError(f"attribute body must be a Graph, got {type(body).__name__}")
    if num_sequences < 1:
        raise ShapeError("a scan needs at least one sequence (its length is the step count)")
    ns, nc, nk, ny = counts(len(types), body, num_sequences, num_carries)
    if nk < 0 or ny < 0:
        raise TypeError(f"{len(types)} inputs and {len(body.outputs)} body outputs cannot hold "
                        f"{num_sequences} sequences and {num_carries} carries")
    if len(body.inputs) != len(types):
        raise TypeError(f"the body takes {len(body.inputs)} inputs; the scan gives it "
                        f"{ns} sequence slices, {nc} carries and {nk} captured values")
    sequences, carries, captured = split_groups(types, ns, nc)
    length = _sequence_length(sequences)
    expected = ([TensorType(t.dtype, t.shape[1:]) for t in sequences] + carries + captured)
    roles = ([f"slice of sequence {i}" for i in range(ns)] + [f"carry {j}" for j in range(nc)]
             + [f"captured value {k}" for k in range(nk)])
    for want, value, role in zip(expected, body.inputs, roles):
        _merged_type(want, value.type, f"{role} (body input)")
    finals = []
    for j, (carry, new) in enumerate(zip(carries, body.outputs[ny:])):
        try:
            finals.append(_merged_type(carry, new.type, f"carry {j}"))
        except (ShapeError, DTypeError):
            raise ShapeError(f"carry {j} is {carry} but the body returns {new.type} for it; "
                             "a carry must keep its dtype and shape from step to step") from None
    boundaries = length + 1 if isinstance(length, int) else SymDim()
    return (tuple(TensorType(v.type.dtype, (length,) + v.type.shape) for v in body.outputs[:ny])
            + tuple(finals)
            + tuple(TensorType(t.dtype, (boundaries,) + t.shape) for t in finals))


def _scan_kernel(*arrays, body, num_sequences, num_carries, reverse):
    loop = Loop(body, len(arrays), num_sequences, num_carries, reverse, interpreter(body),
                 (True,) * (len(body.outputs) + num_carries))
    return loop(*arrays)


def _lower_scan(node, compile_subgraph, needed) -> Callable:
    """The codegen kernel: the loop driver around the body compiled once to straight-line code."""
    attrs = node.attrs
    body = compile_subgraph(attrs["body"])
    loop = Loop(attrs["body"], len(node.inputs), attrs["num_sequences"], attrs["num_carries"],
                 attrs["reverse"], body.run, needed)

    def kernel(*arrays):
        try:
            return loop(*arrays)
        except LoopError:
            raise
        except Exception as error:  # name the body op and step-function line that failed
            explained = body.explain(error)
            if explained is error:
                raise
            raise explained from error
    return kernel


# --- the op ------------------------------------------------------------------------------------

def _sample_body(reverse: bool) -> Graph:
    """h' = tanh(x + h W), y = h' * x: a small RNN body for the registry-wide tests."""
    with location_override("sample.py:1"):
        x = placeholder(TensorType("float64", (3, 4)), name="x")
        h = placeholder(TensorType("float64", (3, 4)), name="h")
        w = placeholder(TensorType("float64", (4, 4)), name="W")
        new = ew.tanh(ew.add(x, dot(h, w)))
        return Graph([x, h, w], [ew.mul(new, x), new], name="body")


_SAMPLE_SHAPES = ((5, 3, 4), (3, 4), (4, 4))
_SAMPLE_DTYPES = ("float64",) * 3

register(OpDef(
    "scan", "loop",
    infer=_scan_infer, kernel=_scan_kernel, lower=_lower_scan,
    attrs={"body": REQUIRED, "num_sequences": REQUIRED, "num_carries": REQUIRED,
           "reverse": False},
    num_outputs=VARIADIC,
    grad=scan_grad, grad_uses_autodiff=True,
    samples=tuple(Sample(_SAMPLE_SHAPES, {"body": _sample_body(reverse), "num_sequences": 1,
                                          "num_carries": 1, "reverse": reverse},
                         dtypes=_SAMPLE_DTYPES, low=-1.0, high=1.0)
                  for reverse in (False, True)),
    doc="Run a body graph over axis 0 of the sequences, threading carries; outputs stacked "
        "per-step outputs, final carries and the carries at every step boundary."))


# --- tracing a step function -------------------------------------------------------------------

def scan(step: Callable, sequences, initial_carries, reverse: bool = False) -> tuple:
    """Trace `step(slices, carries) -> (outputs, new_carries)` into one scan node.

    `sequences` are time-major (axis 0 is time); each step gets one slice of
    each. Returns (stacked outputs, final carries, carries at the T+1 step
    boundaries), three lists.
    """
    sequences, initial_carries = list(sequences), list(initial_carries)
    slices = [placeholder(TensorType(s.type.dtype, s.type.shape[1:]), name=f"slice{i}")
              for i, s in enumerate(sequences)]
    carries = [placeholder(c.type, name=f"carry{j}") for j, c in enumerate(initial_carries)]
    outputs, new_carries = step(slices, carries)
    outputs, new_carries = list(outputs), list(new_carries)
    if len(new_carries) != len(carries):
        raise ValueError(f"scan: the step function returned {len(new_carries)} new carries "
                         f"for {len(carries)} carries")
    for value in outputs + new_carries:
        if not isinstance(value, Value):
            raise TypeError(f"scan: the step function must return graph tensors, got {value!r}")
    inputs = slices + carries
    captured_inner, captured, body_outputs = close_subgraph(inputs, outputs + new_carries)
    body_outputs, new_carries = body_outputs[:len(outputs)], body_outputs[len(outputs):]
    draws = _draws(body_outputs + new_carries)
    body = Graph(inputs + captured_inner, body_outputs + draws + new_carries, name="body")
    results = apply("scan", sequences + initial_carries + captured, body=body,
                    num_sequences=len(sequences), num_carries=len(carries), reverse=reverse)
    stacked, finals, boundaries = split_groups(results, len(body_outputs) + len(draws),
                                               len(carries))
    return [stacked[:len(outputs)], finals, boundaries]


def _draws(outputs: list) -> list:
    """Values of impure ops (random draws) in a body, which become hidden per-step outputs.

    The reverse loop then reads the draws the forward loop made (as it reads
    every body output) instead of drawing again; a forward-only function
    does not store them.
    """
    return [v for node in topological_order(outputs) if not node.op.pure and not node.op.leaf
            for v in node.outputs if v not in outputs]

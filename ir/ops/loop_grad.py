"""The gradient of a scan: backpropagation through time, as a scan in the other direction.

Per reverse step the forward body's VJP (built by the autodiff pass, the
op being `grad_uses_autodiff`) turns the output cotangent at t and the
carry cotangent into the cotangents of the slice at t (stacked), of the
carry entering t (the next carry) and of the captured values (summed in
accumulator carries, which passes/scan_accumulate.py later turns into one
product after the loop). Every forward body value the loop stored is read,
not recomputed (ir/ops/loop.py describes the scan's layout).
"""
from __future__ import annotations

from ..dtypes import is_floating
from ..graph import Graph, Value, topological_order
from ..rewrite import rewire
from ..types import TensorType
from . import elementwise as ew
from .indexing import getitem, take_slice
from .leaf import placeholder
from .loop_runtime import node_counts, split_groups
from .registry import apply
from .shape import full_like


def boundary_slices(stacked: Value, reverse: bool) -> tuple[Value, Value]:
    """(carry entering, carry leaving) each position, as views of the T+1 boundaries."""
    first, rest = take_slice(stacked, 0, None, -1), take_slice(stacked, 0, 1, None)
    return (rest, first) if reverse else (first, rest)


class _BackwardBody:
    """The inputs of the reverse scan's body, each with the outer value that feeds it."""

    def __init__(self):
        self.sequences: list[tuple[Value, Value]] = []  # (body placeholder, outer sequence)
        self.carries: list[tuple[Value, Value]] = []  # (body placeholder, outer initial value)
        self.captured: list[tuple[Value, Value]] = []
        self.saved: dict = {}  # forward body value -> placeholder fed what the loop stored

    def sequence(self, like: Value, outer: Value, name: str) -> Value:
        inner = placeholder(TensorType(like.type.dtype, like.type.shape), name=name)
        self.sequences.append((inner, outer))
        return inner

    def carry(self, like: Value, initial: Value, name: str) -> Value:
        inner = placeholder(like.type, name=name)
        self.carries.append((inner, initial))
        return inner

    def build(self, outputs: list, new_carries: list, reverse: bool) -> tuple:
        """Apply the scan, feeding only the sequences and captured values the body reads.

        Every read of a forward value the loop stored becomes a read of the
        stored copy, so it is not recomputed (and a random draw is not redrawn).
        """
        rewired = rewire(outputs + new_carries, self.saved)
        outputs, new_carries = rewired[:len(outputs)], rewired[len(outputs):]
        reached = {v for node in topological_order(rewired) for v in node.outputs}
        sequences = [pair for pair in self.sequences if pair[0] in reached] or self.sequences[:1]
        captured = [pair for pair in self.captured if pair[0] in reached]
        groups = (sequences, self.carries, captured)
        body = Graph([inner for group in groups for inner, _ in group], outputs + new_carries,
                     name="grad_body")
        results = apply("scan", [outer for group in groups for _, outer in group], body=body,
                        num_sequences=len(sequences), num_carries=len(self.carries),
                        reverse=reverse)
        return split_groups(results, len(outputs), len(new_carries))[:2]


def _saved_values(node, plan: _BackwardBody, reverse: bool, boundaries) -> dict:
    """Body outputs the forward loop stored, to be fed to the reverse body instead of
    recomputed: the tanh in h' = tanh(x W + h U) is read, not recomputed."""
    body = node.attrs["body"]
    ny = node_counts(node)[3]
    saved: dict = {}
    for k, value in enumerate(body.outputs):
        if value.node.op.leaf or value in saved:
            continue
        outer = node.outputs[k] if k < ny else boundaries[k - ny][1]
        saved[value] = plan.sequence(value, outer, f"saved{len(saved)}")
    return saved


def scan_grad(node, cotangents, vjp, wanted) -> tuple:
    """Cotangents of a scan's inputs: a scan in the other direction over the body's gradient.

    Per reverse step the body's VJP turns the output cotangent at t and the
    carry cotangent into the cotangents of the slice at t (stacked), of the
    carry entering t (the next carry) and of the captured values (summed in
    accumulator carries).
    """
    body, reverse = node.attrs["body"], node.attrs["reverse"]
    ns, nc, nk, ny = node_counts(node)
    sequences, _, captured = split_groups(node.inputs, ns, nc)
    finals, stacked_carries = split_groups(node.outputs, ny, nc)[1:]
    d_outputs, d_finals, d_stacked = split_groups(cotangents, ny, nc)
    slices, carries, captured_inner = split_groups(body.inputs, ns, nc)
    floats = [is_floating(c.type.dtype) for c in carries]
    boundaries = [boundary_slices(s, reverse) for s in stacked_carries]

    plan = _BackwardBody()
    for inner, outer in zip(slices, sequences):
        plan.sequences.append((inner, outer))
    for j, inner in enumerate(carries):
        plan.sequences.append((inner, boundaries[j][0]))
    plan.saved = _saved_values(node, plan, reverse, boundaries)
    plan.captured = list(zip(captured_inner, captured))

    values, seeds = [], []
    for k, g in enumerate(d_outputs):
        if g is not None:
            values.append(body.outputs[k])
            seeds.append(plan.sequence(body.outputs[k], g, f"d_output{k}"))
    carry_cotangents = []
    for j, new in enumerate(body.outputs[ny:]):
        if not floats[j]:
            continue
        initial = d_finals[j] if d_finals[j] is not None else full_like(finals[j], 0)
        carry_cotangents.append(plan.carry(new, initial, f"d_carry{j}"))
        values.append(new)
        seeds.append(carry_cotangents[-1])
        if d_stacked[j] is not None:  # a cotangent of the carry after each step
            values.append(new)
            seeds.append(plan.sequence(new, boundary_slices(d_stacked[j], reverse)[1],
                                       f"d_boundary{j}"))
    wrt_sequences = [i for i in range(ns) if wanted[i] and is_floating(slices[i].type.dtype)]
    wrt_captured = [k for k in range(nk) if wanted[ns + nc + k]]
    wrt = ([slices[i] for i in wrt_sequences] + [carries[j] for j in range(nc) if floats[j]]
           + [captured_inner[k] for k in wrt_captured])
    if not values or not wrt:
        return (None,) * len(node.inputs)
    grads = vjp(values, seeds, wrt)
    d_slices, d_carries, d_captured = split_groups(grads, len(wrt_sequences), len(carry_cotangents))

    new_carries = [g if g is not None else full_like(c, 0)
                   for g, c in zip(d_carries, carry_cotangents)]
    accumulated = []
    for k, g in zip(wrt_captured, d_captured):
        if g is not None:
            total = plan.carry(captured_inner[k], full_like(captured[k], 0), f"d_captured{k}")
            new_carries.append(ew.add(total, g))
            accumulated.append(k)
    stepped = [(i, g) for i, g in zip(wrt_sequences, d_slices) if g is not None]
    outputs, results = plan.build([g for _, g in stepped], new_carries, not reverse)

    input_grads: list = [None] * len(node.inputs)
    for (i, _), stack in zip(stepped, outputs):
        input_grads[i] = stack
    float_carries = [j for j in range(nc) if floats[j]]
    for j, result in zip(float_carries, results):
        if d_stacked[j] is not None:  # the initial carry's own boundary
            result = ew.add(result, getitem(d_stacked[j], -1 if reverse else 0))
        input_grads[ns + j] = result
    for k, result in zip(accumulated, results[len(float_carries):]):
        input_grads[ns + nc + k] = result
    return tuple(input_grads)


__all__ = ["scan_grad", "boundary_slices"]

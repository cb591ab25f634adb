"""Scan accumulators: a carry that only sums per-step terms becomes one product after the loop.

Theano's PushOutDot1. Backpropagation through time accumulates each
captured weight's cotangent in a carry: `dW' = dW + x_t^T @ dpre_t`. The
sum over steps of per-step matrix products is a single contraction over
time and batch together, sum_t x_t^T @ dpre_t = contract("tbi,tbj->ij",
xs, dpres): one (F, T*B) @ (T*B, U) GEMM after the loop instead of T small
ones inside it (and T additions). The loop stacks the per-step factors it
computes (dpre_t); a factor that is a sequence slice or a carry is read
from the sequence or the carry's step boundaries, which the loop keeps anyway.

A carry qualifies when its new value is `add(carry, g)` (either order),
nothing else in the body reads the carry or that sum, g has the carry's
dtype and shape, and the graph does not read the carry's step boundaries.
g may be:

    matmul(a, b) / dot(a, b), a and b matrices -> contract over time and k
    sum_to(x, like), like invariant              -> sum_to(xs, like)
    reduce_sum(x, axes) without keepdims         -> reduce_sum(xs, (0,) + axes+1)

The final value is `initial + total` (just `total` when the initial value
is a zero fill). Float sums are reassociated (as any BLAS is free to).
"""
from __future__ import annotations

from typing import Callable

from ..ir.graph import Graph, Value
from ..ir.rewrite import build
from ..ir.shapes import same_shape
from .scan_parts import CarrySlot, ScanParts, rewrite_scans

Thunk = Callable[[], Value]  # computes an outer value once the new scan node exists


def push_out_accumulators(graph: Graph) -> Graph:
    """`graph` with every scan's accumulating carries summed after the loop."""
    return rewrite_scans(graph, _accumulate)


def _accumulate(parts: ScanParts, used: set) -> bool:
    changed = False
    for slot in list(parts.carries):
        term = _accumulated_term(parts, slot, used)
        if term is None:
            continue
        total = _total(parts, term)
        if total is None:
            continue
        parts.carries.remove(slot)
        slot.final_after_build = _final(slot, total)
        changed = True
    return changed


def _readers(parts: ScanParts) -> dict:
    """Body value -> how many times body nodes and body outputs read it."""
    count: dict = {}
    for node in parts.body_nodes():
        for value in node.inputs:
            count[value] = count.get(value, 0) + 1
    for value in parts.body_roots():
        count[value] = count.get(value, 0) + 1
    return count


def _accumulated_term(parts: ScanParts, slot: CarrySlot, used: set) -> Value | None:
    """g when the carry's new value is carry + g and nothing else sees the running sum."""
    new, inner = slot.value, slot.inner
    if slot in parts.boundaries_read or new.node.op.name != "add" or inner not in new.node.inputs:
        return None
    a, b = new.node.inputs
    term = b if a is inner else a
    if term is inner:
        return None
    readers = _readers(parts)
    if readers.get(inner, 0) != 1 or readers.get(new, 0) != 1:
        return None
    if term.type.dtype != inner.type.dtype or not same_shape(term.type.shape,
                                                              inner.type.shape):
        return None  # the add would broadcast or promote
    index = parts.original_carries.index(slot)
    old = parts.node.outputs
    boundaries = old[len(parts.original_outputs) + len(parts.original_carries) + index]
    return None if boundaries in used else term


def _total(parts: ScanParts, term: Value) -> Thunk | None:
    """How to compute sum over steps of `term` outside the loop, or None."""
    node = term.node
    name, inputs = node.op.name, node.inputs
    if name in ("matmul", "dot") and all(v.type.ndim == 2 for v in inputs):
        flags = (node.attrs.get("transpose_a", False), node.attrs.get("transpose_b", False))
        a_terms = "tki" if flags[0] else "tik"
        b_terms = "tjk" if flags[1] else "tkj"
        if not all(_stackable(parts, v) for v in inputs):
            return None
        stacks = [_stacked(parts, v) for v in inputs]
        subscripts = f"{a_terms},{b_terms}->ij"
        return lambda: build("contract", [s() for s in stacks], {"subscripts": subscripts},
                             node.location)
    if name == "sum_to":
        x, like = inputs
        like_outer = _invariant(parts, like)
        if like_outer is None or not _stackable(parts, x) or x.type.ndim < like.type.ndim:
            return None
        stack = _stacked(parts, x)
        return lambda: build("sum_to", [stack(), like_outer], {}, node.location)
    if name == "reduce_sum" and not node.attrs["keepdims"] and _stackable(parts, inputs[0]):
        stack = _stacked(parts, inputs[0])
        attrs = {"axes": (0,) + tuple(a + 1 for a in node.attrs["axes"]), "keepdims": False}
        return lambda: build("reduce_sum", [stack()], attrs, node.location)
    return None


def _invariant(parts: ScanParts, value: Value) -> Value | None:
    """The outer value of a body value that is the same at every step (else None)."""
    if value.node.op.name == "constant":
        return value
    return dict(parts.captured).get(value)


def _stackable(parts: ScanParts, value: Value) -> bool:
    """Whether `value` varies by step (an invariant's sum is no product over time)."""
    return not value.node.op.leaf or value in dict(parts.sequences) or any(
        slot.inner is value for slot in parts.carries)


def _stacked(parts: ScanParts, value: Value) -> Thunk:
    """How to get `value` at every step as one (T, ...) outer value (it is _stackable).

    A sequence slice is the sequence; a carry is its boundaries entering each
    position; any other body value becomes a per-step output of the loop.
    """
    sequence = dict(parts.sequences).get(value)
    if sequence is not None:
        return lambda: sequence
    for slot in parts.carries:
        if slot.inner is value:
            parts.boundaries_read.add(slot)  # the carry must stay in the loop
            return lambda: _entering(slot.boundaries, parts.reverse, value.location)
    output = parts.add_output(value)
    return lambda: output.result


def _entering(boundaries: Value, reverse: bool, location) -> Value:
    """The carry entering each position, from the T+1 boundaries (see ir/ops/loop.py)."""
    key = (("slice", 1, None, None),) if reverse else (("slice", None, -1, None),)
    return build("getitem", [boundaries], {"key": key}, location)


def _final(slot: CarrySlot, total: Thunk) -> Thunk:
    def final() -> Value:
        summed = total()
        initial = slot.initial
        if _is_zero_fill(initial):
            return summed
        return build("add", [initial, summed], {}, slot.value.location)
    return final


def _is_zero_fill(value: Value) -> bool:
    node = value.node
    if node.op.name == "full_like":
        return node.attrs.get("value") == 0 and node.attrs.get("dtype") in (None,
                                                                            value.type.dtype)
    return False


__all__ = ["push_out_accumulators"]

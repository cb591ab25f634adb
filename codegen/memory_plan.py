"""The NumPy lowering's memory plan: which dead intermediates a fused kernel may write into,
and how many bytes of intermediates a call holds at its peak.

Buffer reuse follows liveness: an intermediate dies at its last use (the
generated program deletes it there). When it dies at a fused node, that
node may write one of its outputs into it instead of allocating (a fused
kernel decides per plan whether its body allows it: same shape and dtype,
nothing reading the input after the output is written). Never donated: a
feed, a variable's value or a constant (leaves), a value the caller gets
back or an update stores, a view (its memory belongs to another value), a
view's base (a view of it may still be read), a loop's result, and a value
passed twice to the same node.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

from ..ir.graph import Graph


def donations(graph: Graph, frees: dict) -> dict:
    """fused node -> {output index: input index} it may write into, from `frees`
    (node position -> values whose last use is that node, as codegen computes it)."""
    view_bases = {n.inputs[0] for n in graph.nodes if n.op.view and n.inputs}
    plan = {}
    for position, node in enumerate(graph.nodes):
        if node.op.name != "fused":
            continue
        dying = set(frees.get(position, ()))
        counts = Counter(node.inputs)
        chosen: dict = {}
        for k, out in enumerate(node.outputs):
            for i, value in enumerate(node.inputs):
                if i in chosen.values() or not _donatable(value, dying, view_bases, counts):
                    continue
                if value.type.dtype == out.type.dtype and value.type.ndim == out.type.ndim:
                    chosen[k] = i
                    break
        if chosen:
            plan[node] = chosen
    return plan


def _donatable(value, dying: set, view_bases: set, counts: Counter) -> bool:
    op = value.node.op
    return (value in dying and value not in view_bases and counts[value] == 1
            and not op.leaf and not op.view and op.lower is None)


def peak_intermediate_bytes(graph: Graph, sizes: dict | None = None) -> tuple[int, list]:
    """(peak bytes, symbols taken as 1) of intermediates alive at once during one call.

    Intermediates are non-leaf values; each is alive from its node to its last use
    (returned and stored values to the end). Views hold no memory of their own, and
    an output written into a donated input takes no new memory. Symbolic dims take
    their size from `sizes` (id of the symbol's root -> int), else 1 (listed).
    """
    sizes = sizes or {}
    unknown: dict = {}
    last, end = _last_uses(graph)
    plan = donations(graph, _frees(graph, last, end))
    alive, peak, dying_at = 0, 0, {}
    for position, node in enumerate(graph.nodes):
        if node.op.leaf:
            continue
        donated = set(plan.get(node, {}))
        for k, value in enumerate(node.outputs):
            if node.op.view or k in donated or value not in last:
                continue
            size = _bytes(value, sizes, unknown)
            alive += size
            dying_at.setdefault(last[value], []).append(size)
        peak = max(peak, alive)
        alive -= sum(dying_at.pop(position, ()))
    return peak, sorted(unknown)


def _frees(graph: Graph, last: dict, end: int) -> dict:
    frees: dict = {}
    for value, position in last.items():
        if position < end and not value.node.op.leaf:
            frees.setdefault(position, []).append(value)
    return frees


def _bytes(value, sizes: dict, unknown: dict) -> int:
    count = 1
    for dim in value.type.shape:
        if isinstance(dim, int):
            count *= dim
        else:
            size = sizes.get(id(dim.root()))
            if size is None:
                unknown[str(dim)] = None
                size = 1
            count *= size
    return math.prod((count, np.dtype(value.type.dtype).itemsize))


def memory_section(fn) -> str | None:
    """fn.report()'s memory lines: peak intermediate bytes of one call of the compiled IR."""
    graph = getattr(fn, "ir", None)
    if graph is None:
        return None
    peak, unknown = peak_intermediate_bytes(graph)
    where = f" (taking {', '.join(unknown)} as 1)" if unknown else ""
    donated = sum(len(d) for d in donations(graph, _frees_of(graph)).values())
    return (f"memory: peak intermediate bytes {peak:,}{where}; "
            f"{donated} dead input(s) reused by fused kernels")


def _last_uses(graph: Graph) -> tuple[dict, int]:
    """(value -> position of its last reader, end): returned and stored values live to end."""
    last: dict = {}
    for position, node in enumerate(graph.nodes):
        for value in node.inputs:
            last[value] = position
    end = len(graph.nodes)
    for value in list(graph.outputs) + [v for pair in graph.updates for v in pair]:
        last[value] = end
    return last, end


def _frees_of(graph: Graph) -> dict:
    return _frees(graph, *_last_uses(graph))

"""Which nodes may write their result into their first input's buffer: a variable's value
that the result replaces and nothing reads afterwards.

An SGD step `W <- matmul_update(W, x, d, -lr)` (passes/matmul_update.py)
can accumulate the gradient product into W's own array with one GEMM, as
hand-written NumPy's `W -= lr * (x.T @ d)` does, instead of a fresh matrix
and a pass over both. The NumPy lowering (shared by the LLVM lowerings for
such nodes) lets the node's kernel do so (`kernel.in_place = True`) only when

- the first input is a variable's value and the node's result is exactly
  that variable's update (stored once, not returned, not another update);
- no node later in the program reads the variable or a view of it, none of
  them is returned or stored, and the other inputs are not views of it;
- the node stands in the program's trailing block: every node after it is a
  leaf or another such update. All other work of the call has then run, so
  a call that fails in any other kernel has written nothing in place (a
  failed call loses no state). Inside the block a kernel checks its operands
  before writing and writes nothing when they do not fit; since the graph's
  shapes were checked when it was built and the feeds when the call began,
  operands that do not fit would take a broken invariant, not a bad feed.

Functions compiled with a kernel wrapper (nan_guard, profile) never write in
place: a guarded call that fails must leave every variable unchanged. Calls
of one function from several threads see the weights change in place
mid-step, as any lock-free update does (TensorFlow's default).
"""
from __future__ import annotations

from collections import Counter

from ..ir.graph import Graph, Value

IN_PLACE_OPS = frozenset({"matmul_update"})


def in_place_nodes(graph: Graph) -> set:
    """Nodes (of IN_PLACE_OPS) whose kernel may overwrite their first input."""
    candidates = _trailing_updates(graph)
    if not candidates:
        return set()
    position = {node: i for i, node in enumerate(graph.nodes)}
    last_read: dict = {}
    for i, node in enumerate(graph.nodes):
        for value in node.inputs:
            last_read[value] = i
    targets = Counter(variable for variable, _ in graph.updates)
    stored = Counter(new for _, new in graph.updates)
    returned = set(graph.outputs)
    chosen = set()
    for node in candidates:
        first, result = node.inputs[0], node.outputs[0]
        if (first.node.op.name != "variable" or targets[first] != 1 or stored[result] != 1
                or (first, result) not in graph.updates or result in returned):
            continue
        aliases = _views_of(graph, first)
        here = position[node]
        if any(v in returned or stored[v] or last_read.get(v, -1) > here for v in aliases):
            continue
        if any(v in aliases for v in node.inputs[1:]):
            continue
        chosen.add(node)
    return chosen


def _trailing_updates(graph: Graph) -> list:
    """The IN_PLACE_OPS nodes after which the program runs only leaves and nodes like them."""
    trailing = []
    for node in reversed(graph.nodes):
        if node.op.name in IN_PLACE_OPS:
            trailing.append(node)
        elif not node.op.leaf:
            break
    return trailing


def _views_of(graph: Graph, value: Value) -> set:
    """`value` and every value that may share its memory (view ops over it, transitively)."""
    aliases = {value}
    for node in graph.nodes:
        if node.op.view and node.inputs and node.inputs[0] in aliases:
            aliases.update(node.outputs)
    return aliases


__all__ = ["in_place_nodes", "IN_PLACE_OPS"]

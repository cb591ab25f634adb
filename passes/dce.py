"""Dead code elimination.

A Graph is a view of the nodes its outputs and updates reach (ir/graph.py),
so a node no root reads is gone as soon as a pass rebuilds the graph: no
pass has to delete anything. What stays for this pass is the dead *state*
work: an update that assigns a variable its own current value (`v <- v`,
left behind when simplification reduces `v - 0.0 * g` to `v`, say) does
nothing, and dropping it also drops every node only it read.

Graph inputs are kept even when unused: they are the function's feeds.
Impure nodes (print_tensor, random draws) nothing reads are already
unreachable when the graph is built, exactly as in TensorFlow's graph mode.
"""
from __future__ import annotations

from ..ir.graph import Graph


def eliminate_dead_code(graph: Graph) -> Graph:
    updates = [(target, value) for target, value in graph.updates if value is not target]
    return Graph(graph.inputs, graph.outputs, updates, graph.name)


__all__ = ["eliminate_dead_code"]

"""A scan node taken apart for rewriting, and put back together.

The scan passes (scan_hoist.py, scan_accumulate.py) do not edit a scan's
input and output lists by position: they take the node apart into
`ScanParts` (each body input paired with the outer value that feeds it,
each per-step output and carry as a slot), move work between the body and
the outer graph, and `build` makes the new scan node. Each slot then knows
the outer value that replaces the old node's output: the new node's output,
or an outer value a pass computed instead (work moved out of the loop).

Layout of a scan (ir/ops/loop.py): inputs are sequences, carries, captured
values; outputs are the stacked per-step outputs, the final carries and
the carries at the T+1 step boundaries.
"""
from __future__ import annotations

from typing import Callable

from ..ir.graph import Graph, Value, topological_order
from ..ir.ops.registry import make_node
from ..ir.rewrite import build, rebuild, rewire


class OutputSlot:
    """One per-step output: the body value, then the outer (T, ...) value it becomes."""

    def __init__(self, value: Value):
        self.value = value
        self.result: Value | None = None  # set by a pass (moved out) or by build
        # a pass that reads the stack from the new node's other outputs: () -> outer value
        self.result_after_build: Callable[[], Value] | None = None


class CarrySlot:
    """One carry: its body placeholder, outer initial value and new value per step."""

    def __init__(self, inner: Value, initial: Value, value: Value):
        self.inner, self.initial, self.value = inner, initial, value
        self.final: Value | None = None
        self.boundaries: Value | None = None
        # a pass that removes the carry computes its final value from the new node's
        # outputs: final_after_build() -> outer value
        self.final_after_build: Callable[[], Value] | None = None


class ScanParts:
    """A scan's body and operands as editable lists (see the module docstring)."""

    def __init__(self, node, inputs, body: Graph | None = None):
        attrs = node.attrs
        body = attrs["body"] if body is None else body
        ns, nc = attrs["num_sequences"], attrs["num_carries"]
        ny = len(body.outputs) - nc
        self.node = node
        self.body_name = body.name
        self.reverse = attrs["reverse"]
        self.sequences = list(zip(body.inputs[:ns], inputs[:ns]))  # (placeholder, outer)
        self.captured = list(zip(body.inputs[ns + nc:], inputs[ns + nc:]))
        self.original_outputs = [OutputSlot(v) for v in body.outputs[:ny]]
        self.original_carries = [CarrySlot(inner, initial, new) for inner, initial, new in
                                 zip(body.inputs[ns:ns + nc], inputs[ns:ns + nc],
                                     body.outputs[ny:])]
        self.outputs = list(self.original_outputs)  # slots still computed by the loop
        self.carries = list(self.original_carries)
        self.boundaries_read: set = set()  # carry slots whose boundaries a pass reads

    # --- reading the body -------------------------------------------------------------

    def body_roots(self) -> list[Value]:
        return [s.value for s in self.outputs] + [c.value for c in self.carries]

    def body_nodes(self) -> list:
        return topological_order(self.body_roots())

    def outer_of(self) -> dict:
        """Body placeholder -> the outer value that feeds it (sequences: the whole sequence)."""
        return dict(self.sequences + self.captured)

    # --- editing --------------------------------------------------------------------

    def replace_in_body(self, mapping: dict) -> None:
        """Every body value in `mapping` read as its mapped value (readers rebuilt)."""
        if not mapping:
            return
        slots = self.outputs + self.carries
        for slot, value in zip(slots, rewire([s.value for s in slots], mapping)):
            slot.value = value

    def add_output(self, value: Value) -> OutputSlot:
        """The slot of per-step output `value`, added unless the loop already stacks it."""
        for slot in self.outputs:
            if slot.value is value:
                return slot
        slot = OutputSlot(value)
        self.outputs.append(slot)
        return slot

    # --- putting it back together ---------------------------------------------------

    def build(self) -> tuple:
        """The new scan node; returns the replacements of the old node's outputs."""
        results: tuple = ()
        if self.outputs or self.carries:  # else every output was moved out of the loop
            results = self._keep_types(self._new_node())
        ny, nc = len(self.outputs), len(self.carries)
        for slot, value in zip(self.outputs, results[:ny]):
            slot.result = value
        for slot, final, stack in zip(self.carries, results[ny:ny + nc], results[ny + nc:]):
            slot.final, slot.boundaries = final, stack
        for slot in self.original_carries:
            if slot.final_after_build is not None:
                slot.final = slot.final_after_build()
        for slot in self.original_outputs:
            if slot.result_after_build is not None:
                slot.result = slot.result_after_build()
        old = self.node.outputs
        ny0, nc0 = len(self.original_outputs), len(self.original_carries)
        boundaries = [c.boundaries if c.boundaries is not None else old[ny0 + nc0 + j]
                      for j, c in enumerate(self.original_carries)]  # a removed carry's are unused
        return (tuple(s.result for s in self.original_outputs)
                + tuple(c.final for c in self.original_carries) + tuple(boundaries))

    def _new_node(self):
        """The scan over the body as edited, fed only the sequences and captured values it
        reads (at least one sequence: the step count comes from it)."""
        reached = {n.outputs[0] for n in self.body_nodes() if n.op.name == "placeholder"}
        sequences = [pair for pair in self.sequences if pair[0] in reached] or self.sequences[:1]
        captured = [pair for pair in self.captured if pair[0] in reached]
        inner = ([p for p, _ in sequences] + [c.inner for c in self.carries]
                 + [p for p, _ in captured])
        outer = ([o for _, o in sequences] + [c.initial for c in self.carries]
                 + [o for _, o in captured])
        body = Graph(inner, self.body_roots(), name=self.body_name)
        attrs = {"body": body, "num_sequences": len(sequences),
                 "num_carries": len(self.carries), "reverse": self.reverse}
        return build("scan", outer, attrs, self.node.location)

    def _keep_types(self, results) -> tuple:
        """The new node's outputs with the old node's recorded types where they stand for
        the same values: the step-boundary count T+1 is a fresh symbol each time the type
        rule runs, and the values downstream (views of the boundaries) were typed with the
        old one. Verified like any recorded type (ir/verify.py, `types_agree`)."""
        results = results if isinstance(results, tuple) else (results,)
        old = self.node.outputs
        ny0, nc0 = len(self.original_outputs), len(self.original_carries)
        ny, nc = len(self.outputs), len(self.carries)
        types = [v.type for v in results]
        for k, slot in enumerate(self.outputs):
            if slot in self.original_outputs:
                types[k] = old[self.original_outputs.index(slot)].type
        for j, slot in enumerate(self.carries):
            original = self.original_carries.index(slot)
            types[ny + j], types[ny + nc + j] = old[ny0 + original].type, \
                old[ny0 + nc0 + original].type
        if all(a is b.type for a, b in zip(types, results)):
            return results
        node = results[0].node
        return make_node(node.op, node.inputs, node.attrs, types, node.location)


def used_values(graph: Graph) -> set:
    """Values some node of `graph` reads, or the graph returns or stores."""
    used = {v for node in graph.nodes for v in node.inputs}
    used.update(graph.outputs)
    used.update(v for pair in graph.updates for v in pair)
    return used


def rewrite_scans(graph: Graph, rewrite: Callable | None = None,
                  body_pass: Callable[[Graph], Graph] | None = None) -> Graph:
    """`graph` with each scan (nested bodies first) rewritten by `rewrite(parts, used)`.

    `rewrite` edits the ScanParts and returns whether it changed anything;
    `used` holds the values of the enclosing graph something reads.
    `body_pass(body) -> body` (same inputs and outputs) transforms each body first.
    """
    if not any(node.op.name == "scan" for node in graph.nodes):
        return graph  # most graphs: one look at each node
    used = used_values(graph)
    rewrite = rewrite or (lambda parts, used: False)

    def rewrite_node(node, inputs):
        if node.op.name != "scan":
            return None
        body = node.attrs["body"]
        inner = rewrite_scans(body, rewrite, body_pass)
        if body_pass is not None:
            inner = body_pass(inner)
        parts = ScanParts(node, inputs, inner)
        if not rewrite(parts, used) and inner is body:
            return None
        return parts.build()
    result = rebuild(graph, rewrite_node)
    same = zip(result.outputs + [v for pair in result.updates for v in pair],
               graph.outputs + [v for pair in graph.updates for v in pair])
    if all(a is b for a, b in same):
        return graph  # nothing changed: keep the very same graph (callers test identity)
    return result


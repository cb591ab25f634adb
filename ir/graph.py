"""The IR's core objects: Value, Node and Graph.

Nodes are immutable once built: a pass that rewrites a graph builds new
nodes where something changed and shares the rest, so the tensors a user
holds are never changed under them. A Graph is a view of the nodes that its
outputs and updates reach; its topological order is computed iteratively,
so a chain of 100,000 nodes needs no deep recursion.
"""
from __future__ import annotations

from .types import TensorType, Typed


class Value(Typed):
    """One tensor: the `index`-th output of `node`.

    Front ends may set their own attributes on values (Keras sets
    `_keras_shape`, `_keras_history`, ...); hashing and `==` are by identity,
    as Keras expects of tensors kept in lists and dicts.
    """

    def __init__(self, type: TensorType, node: Node | None = None, index: int = 0,
                 name: str | None = None):
        self.type = type
        self.node = node
        self.index = index
        self.name = name

    @property
    def location(self) -> str | None:
        return self.node.location if self.node is not None else None

    @property
    def op_name(self) -> str | None:
        return self.node.op.name if self.node is not None else None

    __hash__ = object.__hash__
    # `np.ones(3) + x` must reach Value.__radd__, not become an object array of tensors.
    __array_ufunc__ = None

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        op = self.op_name or "?"
        return f"<graphk tensor{label} {op} {self.type}>"

    def __bool__(self):
        raise TypeError("a symbolic graphk tensor has no truth value; "
                        "use K.switch or compare the evaluated result")

    def __iter__(self):
        raise TypeError("a symbolic graphk tensor is not iterable; index it instead")


class Node:
    """One op application: `op(inputs, attrs) -> outputs`."""

    __slots__ = ("op", "inputs", "attrs", "outputs", "location")

    def __init__(self, op, inputs, attrs: dict, location: str | None = None):
        self.op = op
        self.inputs = tuple(inputs)
        self.attrs = attrs
        self.outputs: tuple[Value, ...] = ()
        self.location = location

    def __repr__(self) -> str:
        return f"<Node {self.op.name} at {self.location}>"


class Graph:
    """What a compiled function computes: outputs and variable updates from inputs.

    `inputs` are placeholder values in feed order; `updates` pairs each
    variable value with the value it takes after a call. Variables and
    constants are the leaves the outputs reach.
    """

    def __init__(self, inputs=(), outputs=(), updates=(), name: str = "main"):
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.updates = [tuple(pair) for pair in updates]
        self.name = name
        self._nodes: list[Node] | None = None

    @property
    def roots(self) -> list[Value]:
        """Every value the graph must compute: outputs, then update targets and values."""
        return (list(self.inputs) + self.outputs
                + [v for pair in self.updates for v in pair])

    @property
    def nodes(self) -> list[Node]:
        if self._nodes is None:
            self._nodes = topological_order(self.roots)
        return self._nodes

    @property
    def variables(self) -> list[Value]:
        return [n.outputs[0] for n in self.nodes if n.op.name == "variable"]

    @property
    def placeholders(self) -> list[Value]:
        return [n.outputs[0] for n in self.nodes if n.op.name == "placeholder"]

    def users(self) -> dict[Value, list[Node]]:
        """Map from each value to the nodes that consume it."""
        result: dict[Value, list[Node]] = {}
        for node in self.nodes:
            for value in node.inputs:
                result.setdefault(value, []).append(node)
        return result

    def to_networkx(self):
        """A networkx MultiDiGraph: one vertex per node, an edge per input use."""
        import networkx as nx

        g = nx.MultiDiGraph(name=self.name)
        ids = {node: i for i, node in enumerate(self.nodes)}
        for node, i in ids.items():
            g.add_node(i, op=node.op.name, attrs=dict(node.attrs), location=node.location,
                       types=[str(v.type) for v in node.outputs])
        for node, i in ids.items():
            for position, value in enumerate(node.inputs):
                g.add_edge(ids[value.node], i, index=value.index, position=position)
        return g

    def to_dot(self) -> str:
        """Graphviz DOT text of the graph."""
        ids = {node: i for i, node in enumerate(self.nodes)}
        lines = [f'digraph "{self.name}" {{', "  node [shape=box, fontname=monospace];"]
        for node, i in ids.items():
            types = ", ".join(str(v.type) for v in node.outputs)
            label = f"{node.op.name}\\n{types}".replace('"', "'")
            lines.append(f'  n{i} [label="{label}"];')
        for node, i in ids.items():
            for value in node.inputs:
                lines.append(f"  n{ids[value.node]} -> n{i};")
        for k, value in enumerate(self.outputs):
            lines.append(f'  out{k} [shape=oval, label="output {k}"];')
            lines.append(f"  n{ids[value.node]} -> out{k};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_text(self, locations: bool = True, full_constants: bool = False) -> str:
        from .printer import print_graph

        return print_graph(self, locations=locations, full_constants=full_constants)

    def __str__(self) -> str:
        return self.to_text()

    def __eq__(self, other) -> bool:
        """Structural equality: the same text up to value numbering."""
        if not isinstance(other, Graph):
            return NotImplemented
        return self.to_text(full_constants=True) == other.to_text(full_constants=True)

    __hash__ = object.__hash__
    # `np.ones(3) + x` must reach Value.__radd__, not become an object array of tensors.
    __array_ufunc__ = None


def topological_order(roots) -> list[Node]:
    """Nodes reachable from `roots`, each after its inputs' producers (no recursion)."""
    order: list[Node] = []
    state: dict[Node, bool] = {}  # False: on the stack, True: done
    for root in roots:
        start = root.node
        if start is None or start in state:
            continue
        stack = [(start, iter(start.inputs))]
        state[start] = False
        while stack:
            node, pending = stack[-1]
            for value in pending:
                child = value.node
                if child is not None and child not in state:
                    state[child] = False
                    stack.append((child, iter(child.inputs)))
                    break
            else:
                stack.pop()
                state[node] = True
                order.append(node)
    return order

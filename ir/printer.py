"""The IR's text form: print a Graph as stable, readable, MLIR-like text.

    graph @main(%x) {
      %x = placeholder {name="x", default=none} : float32[?0,3] loc("model.py:8")
      %0 = constant {value=dense<float32[]>1.0} : float32[]
      %1 = add(%x, %0) : float32[?0,3] loc("model.py:9")
      return %1
    }

The text is what pass tests and bug reports are written in, so it must not
depend on anything outside the graph: values are named by their own names or
numbered in node order, and symbolic dims are renumbered ?0, ?1, ... per
printed graph in order of first appearance. `ir.parser.parse` reads it back.

Attribute values print through `format_attr`, a `functools.singledispatch`
function: a new kind of attribute value (a nested loop-body Graph printing as
`graph @body(...) {...}`, say) is one more registered function, with the
parser's matching entry in `ir.parser`.
"""
from __future__ import annotations

import hashlib
import json
import re
from functools import singledispatch

import numpy as np

from .graph import Graph, Node, Value
from .ops.registry import REQUIRED
from .shapes import SymDim
from .types import TensorType

ELIDE_ABOVE = 16  # constants with more elements print as a digest unless full_constants
_NOT_ID_CHAR = re.compile(r"[^A-Za-z0-9_.]")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.]+\Z")


class DimNamer:
    """Gives each symbolic dim a text name, by union-find root, in order of first use.

    Unified symbols share a root and so a name; numbering per printed graph
    (not the process-wide SymDim counter) keeps the text stable across runs.
    """

    def __init__(self):
        self._names: dict[int, tuple[SymDim, str]] = {}  # id(root) -> (root kept alive, name)
        self._used: set[str] = set()
        self._counter = 0

    def bind(self, dim: SymDim, name: str) -> None:
        """Name `dim` as given (the parser names symbols as the text did)."""
        root = dim.root()
        self._names[id(root)] = (root, name)
        self._used.add(name)

    def name(self, dim: SymDim) -> str:
        root = dim.root()
        entry = self._names.get(id(root))
        if entry is None:
            name = self._fresh()
            entry = self._names[id(root)] = (root, name)
            self._used.add(name)
        return entry[1]

    def _fresh(self) -> str:
        while f"?{self._counter}" in self._used:
            self._counter += 1
        return f"?{self._counter}"

    def dim_text(self, dim) -> str:
        return self.name(dim) if isinstance(dim, SymDim) else str(int(dim))

    def type_text(self, type: TensorType) -> str:
        return f"{type.dtype}[{','.join(self.dim_text(d) for d in type.shape)}]"


class GraphPrinter:
    """Prints one graph; holds the value ids and dim names it chose.

    `verify` reuses a printer to quote a node's line and types in the same
    names the printed graph uses.
    """

    def __init__(self, graph: Graph, locations: bool = True, full_constants: bool = False,
                 dims: DimNamer | None = None):
        self.graph = graph
        self.locations = locations
        self.full_constants = full_constants
        # A nested graph (a loop body) shares its parent's dim names: its symbols are the same.
        self.dims = dims if dims is not None else DimNamer()
        self.ids = _value_ids(graph.nodes)

    def text(self) -> str:
        graph = self.graph
        inputs = ", ".join(self.ref(v, "graph input") for v in graph.inputs)
        lines = [f"graph @{_graph_name(graph.name)}({inputs}) {{"]
        lines.extend("  " + self.node_line(node) for node in graph.nodes)
        outputs = ", ".join(self.ref(v, "graph output") for v in graph.outputs)
        lines.append(f"  return {outputs}" if outputs else "  return")
        for target, value in graph.updates:
            lines.append(f"  update {self.ref(target, 'update target')} = "
                         f"{self.ref(value, 'update value')}")
        lines.append("}")
        return "\n".join(lines)

    def node_line(self, node: Node) -> str:
        """`%a, %b = op(%x, %y) {attrs} : types loc("file:line")`, without indentation."""
        op = node.op
        parts = [", ".join("%" + self.ids[v] for v in node.outputs), " = ", op.name]
        if node.inputs or not op.leaf:
            parts.append("(" + ", ".join(self.ref(v, "input") for v in node.inputs) + ")")
        attrs = _ordered_attrs(node)
        if attrs:
            parts.append(" {" + ", ".join(f"{name}={format_attr(value, self)}"
                                          for name, value in attrs) + "}")
        parts.append(" : " + ", ".join(self.dims.type_text(v.type) for v in node.outputs))
        if self.locations and node.location:
            parts.append(f" loc({json.dumps(node.location)})")
        return "".join(parts)

    def type_text(self, type: TensorType) -> str:
        return self.dims.type_text(type)

    def ref(self, value: Value, role: str) -> str:
        try:
            return "%" + self.ids[value]
        except KeyError:
            raise ValueError(f"{role} {value!r} is not computed by any node of graph "
                             f"@{self.graph.name}") from None


def print_graph(graph: Graph, locations: bool = True, full_constants: bool = False) -> str:
    """The graph as text; constants over 16 elements are elided unless `full_constants`."""
    return GraphPrinter(graph, locations, full_constants).text()


def _graph_name(name: str) -> str:
    return name if _PLAIN_NAME.match(name) else json.dumps(name)


def _value_ids(nodes) -> dict[Value, str]:
    """Sanitized names where values have them (deduplicated), numbers 0, 1, ... otherwise.

    A name that is all digits gets a leading `_`, so names never collide with
    numbers and the parser can tell a name (kept on the Value) from a number.
    """
    ids: dict[Value, str] = {}
    used: set[str] = set()
    number = 0
    for node in nodes:
        for value in node.outputs:
            if value.name:
                base = _NOT_ID_CHAR.sub("_", str(value.name))
                if base.isdigit():
                    base = "_" + base
                candidate, suffix = base, 0
                while candidate in used:
                    suffix += 1
                    candidate = f"{base}.{suffix}"
                used.add(candidate)
                ids[value] = candidate
            else:
                ids[value] = str(number)
                number += 1
    return ids


def _ordered_attrs(node: Node) -> list[tuple[str, object]]:
    """All of the op's attributes in declaration order, defaults filled in; strays last."""
    declared = node.op.attrs
    result = []
    for name, default in declared.items():
        if name in node.attrs:
            result.append((name, node.attrs[name]))
        elif default is not REQUIRED:
            result.append((name, default))
    result.extend((name, node.attrs[name]) for name in sorted(node.attrs) if name not in declared)
    return result


# --- attribute values ---------------------------------------------------------------

@singledispatch
def format_attr(value, printer: GraphPrinter) -> str:
    """The text of one attribute value; register a function to print a new kind."""
    raise TypeError(f"cannot print attribute value {value!r} of type {type(value).__name__}")


@format_attr.register(type(None))
def _format_none(value, printer: GraphPrinter) -> str:
    return "none"


@format_attr.register(bool)
def _format_bool(value, printer: GraphPrinter) -> str:
    return "true" if value else "false"


@format_attr.register(int)
def _format_int(value, printer: GraphPrinter) -> str:
    return str(int(value))


@format_attr.register(float)
def _format_float(value, printer: GraphPrinter) -> str:
    return repr(float(value))  # shortest text that reads back exactly; inf, -inf, nan


@format_attr.register(str)
def _format_str(value, printer: GraphPrinter) -> str:
    return json.dumps(value)


@format_attr.register(tuple)
@format_attr.register(list)
def _format_tuple(value, printer: GraphPrinter) -> str:
    items = [format_attr(v, printer) for v in value]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


@format_attr.register(slice)
def _format_slice(value, printer: GraphPrinter) -> str:
    parts = (format_attr(v, printer) for v in (value.start, value.stop, value.step))
    return f"slice({', '.join(parts)})"


@format_attr.register(type(Ellipsis))
def _format_ellipsis(value, printer: GraphPrinter) -> str:
    return "..."


@format_attr.register(SymDim)
def _format_symbol(value, printer: GraphPrinter) -> str:
    return printer.dims.name(value)


@format_attr.register(np.generic)
def _format_numpy_scalar(value, printer: GraphPrinter) -> str:
    return format_attr(value.item(), printer)


@format_attr.register(np.dtype)
def _format_dtype(value, printer: GraphPrinter) -> str:
    return json.dumps(value.name)


@format_attr.register(np.ndarray)
def _format_array(value, printer: GraphPrinter) -> str:
    return format_array(value, printer.full_constants)


@format_attr.register(Graph)
def _format_graph(value, printer: GraphPrinter) -> str:
    """A nested graph (a loop body), indented one level deeper than the node that holds it.

    Its values are numbered on their own (a body is closed: it refers to
    nothing outside itself), its symbolic dims are named as the outer graph's.
    """
    nested = GraphPrinter(value, printer.locations, printer.full_constants, printer.dims)
    return nested.text().replace("\n", "\n  ")


def format_array(array: np.ndarray, full: bool = False) -> str:
    """`dense<float32[2]>[1.0, 2.0]`, or a digest when large and not `full`.

    Elements print as their own dtype does (float32 0.1 is `0.1`, not the
    float64 expansion), which is the shortest text that reads back exactly.
    """
    head = f"dense<{array.dtype.name}[{','.join(str(d) for d in array.shape)}]>"
    if array.size > ELIDE_ABOVE and not full:
        digest = hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()[:8]
        return f'{head}elided(sha1="{digest}")'
    texts = [_element_text(v) for v in array.ravel()]
    return head + _nest(texts, array.shape)


def _element_text(value) -> str:
    if isinstance(value, np.bool_):
        return "true" if value else "false"
    return str(value)


def _nest(texts: list[str], shape: tuple) -> str:
    """Row-major element texts grouped into nested brackets, innermost axis first."""
    if not shape:
        return texts[0]
    rows = texts
    for axis in range(len(shape) - 1, -1, -1):
        size, groups = shape[axis], int(np.prod(shape[:axis], dtype=np.int64))
        rows = ["[" + ", ".join(rows[g * size:(g + 1) * size]) + "]" for g in range(groups)]
    return rows[0]

"""Common subexpression elimination by hash-consing.

Each node gets a key: its op, its (already deduplicated) inputs and its
attributes. The first node with a key is kept; a later one with the same key
is replaced by the first one's outputs. Constants are keyed by dtype, shape
and bytes, so the six copies of `0.01` an optimizer writes become one.

- Commutative ops key their inputs as a set (`a + b` is `b + a`), in a
  fixed order, without reordering the node itself.
- Attributes are compared by value: floats by their exact text (so 0.0 and
  -0.0 differ and NaN equals NaN), arrays by dtype, shape and bytes, nested
  body graphs (scan, fused) by their canonical text (no locations, no names).
- Impure ops (random draws, print_tensor) are never merged, nor is a node
  whose nested body holds one; variables and placeholders are never merged.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from ..ir.rewrite import attrs_key, clone, rebuild

COMMUTATIVE = frozenset({"add", "mul", "maximum", "minimum", "equal", "not_equal",
                         "logical_and", "logical_or"})


def eliminate_common_subexpressions(graph: Graph) -> Graph:
    table: dict = {}
    body_keys: dict = {}  # id(Graph) -> (graph kept alive, its key)

    def rewrite(node: Node, inputs: tuple):
        key = _node_key(node, inputs, body_keys)
        if key is None:
            return None
        kept = table.get(key)
        if kept is not None and _same_types(kept, node):
            return kept
        changed = inputs != node.inputs  # values compare by identity
        outputs = clone(node, inputs) if changed else node.outputs
        table.setdefault(key, outputs)
        return outputs if changed else None

    return rebuild(graph, rewrite)


def _same_types(kept: tuple, node: Node) -> bool:
    """Equal keys give equal types except for symbols a shape rule made up; dtype and rank
    must agree so a replacement never changes what users see."""
    return all(a.type.dtype == b.type.dtype and a.type.ndim == b.type.ndim
               for a, b in zip(kept, node.outputs))


def _node_key(node: Node, inputs: tuple, body_keys: dict):
    op = node.op
    if op.name == "constant":
        array = node.attrs["value"]
        return ("constant", array.dtype.str, array.shape, np.ascontiguousarray(array).tobytes())
    if op.leaf or not op.pure:
        return None
    ids = tuple([id(v) for v in inputs])
    if op.name in COMMUTATIVE:
        ids = tuple(sorted(ids))
    attrs = attrs_key(node.attrs)  # plain values (most nodes), else bodies and the rest:
    if attrs is None:
        attrs = []
        for name in sorted(node.attrs):
            value = _attr_key(node.attrs[name], body_keys)
            if value is None:
                return None
            attrs.append((name, value))
        attrs = ("nested", tuple(attrs))
    return (op.name, ids, attrs)


def _attr_key(value, body_keys: dict):
    """A hashable stand-in for an attribute value; None when the node must not be merged."""
    if isinstance(value, Graph):
        entry = body_keys.get(id(value))
        if entry is None:
            key = None if _holds_impure(value) else ("graph", value.to_text(
                locations=False, full_constants=True))
            entry = body_keys[id(value)] = (value, key)
        return entry[1]
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, np.ascontiguousarray(value).tobytes())
    if isinstance(value, (tuple, list)):
        items = tuple(_attr_key(v, body_keys) for v in value)
        return None if any(v is None for v in items) else ("tuple", items)
    if value is None:
        return ("none",)
    try:
        hash(value)
    except TypeError:
        return None
    return (type(value).__name__, value)


def _holds_impure(body: Graph) -> bool:
    """A body with an impure node anywhere inside (nested bodies included)."""
    pending = [body]
    while pending:
        graph = pending.pop()
        for node in graph.nodes:
            if not node.op.pure:
                return True
            pending.extend(v for v in node.attrs.values() if isinstance(v, Graph))
    return False


__all__ = ["eliminate_common_subexpressions", "COMMUTATIVE"]

"""Graph rewriting: the one bottom-up rebuild every pass is written with.

Nodes are immutable (see ir/graph.py), so a pass never edits a graph: it
walks the nodes in topological order, decides per node whether to keep it or
replace its outputs, and gets back a new Graph that shares every node nothing
changed under. `rebuild` is that walk, iterative and memoized, so a chain of
100,000 nodes costs one loop and no recursion.

Replacement nodes are built with `build`, never with `registry.apply`:
`apply` walks stack frames for the user's line (a rewrite passes the matched
node's location instead) and applies the front end's control-dependency
substitutions, which a pass must not see.

Symbolic-dim unification is process-wide and cannot be undone
(ir/shapes.py): `build` runs the op's type rule, which may unify dims, so a
rule decides from the input types first and builds only what it keeps.

`close_subgraph` and `rewire` outline a subgraph into a closed body graph
(the scan op's step function, fusion's regions).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .dtypes import DTypeError
from .errors import located
from .graph import Graph, Node, Value, topological_order
from .ops.leaf import placeholder
from .ops.registry import REGISTRY, make_node
from .shapes import ShapeError

# rewrite_node(node, new_inputs) -> None (keep) or one replacement Value per node output
RewriteRule = Callable[[Node, tuple], "Sequence[Value] | None"]


def rebuild(graph: Graph, rewrite_node: RewriteRule, name: str | None = None) -> Graph:
    """A new graph in which `rewrite_node` chose, bottom-up, a replacement for each node.

    For each node of `graph.nodes` (inputs before users) the node's inputs are
    mapped through the replacements made so far, then `rewrite_node(node,
    new_inputs)` returns None to keep the node (it is cloned onto the new
    inputs if one changed, shared otherwise) or a tuple of replacement values,
    one per output. The result has the same inputs, the mapped outputs and
    updates, and `name` (default: the graph's); `graph` itself when nothing
    changed. Nested body graphs held in attributes (scan, fused) are left as
    they are.
    """
    mapping: dict[Value, Value] = {}
    mapped = mapping.get
    for node in graph.nodes:
        inputs = node.inputs
        if mapping:
            inputs = tuple([mapped(v, v) for v in inputs])
        replacement = rewrite_node(node, inputs)
        if replacement is None:
            if inputs == node.inputs:  # values compare by identity: nothing changed under it
                continue
            replacement = clone(node, inputs)
        _record(mapping, node, tuple(replacement))
    if not mapping and (name is None or name == graph.name):
        return graph  # nothing changed: the same graph, its node order already known
    return Graph(graph.inputs, [mapping.get(v, v) for v in graph.outputs],
                 [(target, mapping.get(value, value)) for target, value in graph.updates],
                 name if name is not None else graph.name)


def _record(mapping: dict, node: Node, replacement: tuple) -> None:
    """Map each output to its replacement; a rule that changes a dtype or rank is a bug."""
    if len(replacement) != len(node.outputs):
        raise ValueError(f"rewrite of {node.op.name} at {node.location}: {len(replacement)} "
                         f"replacement value(s) for {len(node.outputs)} output(s)")
    for old, new in zip(node.outputs, replacement):
        if new is old:
            continue
        if new.type is not old.type and (new.type.dtype != old.type.dtype
                                         or new.type.ndim != old.type.ndim):
            raise ValueError(f"rewrite of {node.op.name} at {node.location}: replacement "
                             f"{new.type} for output of type {old.type}")
        mapping[old] = new


def build(op_name: str, inputs, attrs: dict | None = None, location: str | None = None):
    """A new node of `op_name` on `inputs` with its types inferred; its value(s) as `apply`.

    Unlike `apply`, the location is given (a rewrite passes the matched
    node's) and no control-dependency substitution applies.
    """
    op = REGISTRY[op_name]
    inputs = tuple(inputs)
    try:
        attrs = op.complete_attrs(attrs or {})
        out_types = op.infer(*[v.type for v in inputs], **attrs)
    except (ShapeError, DTypeError, TypeError, ValueError) as error:
        given = ", ".join(str(v.type) for v in inputs)
        raise located(error, op_name, location, f" (given {given})" if inputs else "") from None
    out_types = out_types if isinstance(out_types, tuple) else (out_types,)
    return make_node(op, inputs, attrs, out_types, location)


def clone(node: Node, inputs) -> tuple:
    """`node` applied to new `inputs`, same attributes and location; its output values.

    When every new input has the old input's type, the recorded output types
    are kept (no type rule runs, so no dim is unified and no fresh symbol is
    made); otherwise the types are inferred again.
    """
    inputs = tuple(inputs)
    if _same_types(inputs, node.inputs):
        result = make_node(node.op, inputs, node.attrs, [v.type for v in node.outputs],
                           node.location)
    else:
        result = build(node.op.name, inputs, node.attrs, node.location)
    return result if isinstance(result, tuple) else (result,)


def _same_types(inputs: tuple, old: tuple) -> bool:
    for a, b in zip(inputs, old):
        if a.type is not b.type and a.type != b.type:
            return False
    return True


# --- keys for attribute values ----------------------------------------------------------------

def attrs_key(attrs: dict):
    """A hashable key equal for equal attribute dicts (None when a value has no key): what
    passes and code generators use to recognize nodes that compute the same thing."""
    items = []
    for name in sorted(attrs):
        key = _attr_key(attrs[name])
        if key is None:
            return None
        items.append((name, key))
    return tuple(items)


_PLAIN = frozenset({bool, int, str, type(None)})  # keyed by (type, value): True is not 1


def _attr_key(value):
    """A hashable, type-tagged stand-in for an attribute value (None: none exists)."""
    kind = value.__class__
    if kind in _PLAIN:
        return (kind, value)
    if kind is float:
        return (float, repr(value))  # 0.0 and -0.0 differ, NaN equals NaN
    if kind is tuple:
        items = []
        for item in value:
            key = _attr_key(item)
            if key is None:
                return None
            items.append(key)
        return (tuple, tuple(items))
    if kind is np.ndarray:
        return (kind, value.dtype.str, value.shape, np.ascontiguousarray(value).tobytes())
    if kind is dict:
        key = attrs_key(value)
        return None if key is None else (dict, key)
    return None  # a nested graph or anything else: no key


# --- outlining a subgraph into a closed body ---------------------------------------------------

def free_values(inputs: list, outputs: list) -> tuple[set, list]:
    """Nodes that depend on the body inputs, and the outside values they read (in order).

    An outside value is one computed without the body inputs: a variable, an
    outer placeholder or tensor, or a loop-invariant expression built in the
    step function (computed once, outside the loop). Constants stay inside.
    """
    starts = {v.node for v in inputs}
    nodes = topological_order(outputs)
    inside: set = set()
    for node in nodes:
        if node in starts or any(v.node in inside for v in node.inputs):
            inside.add(node)
    free: dict = {}
    reads = [v for node in nodes if node in inside and node not in starts
             for v in node.inputs] + list(outputs)
    for value in reads:
        if value.node not in inside and value.node.op.name != "constant":
            free.setdefault(value, None)
    return inside, list(free)


def close_subgraph(inputs: list, outputs: list) -> tuple[list, list, list]:
    """(captured placeholders, outside values they stand for, outputs rebuilt on them).

    The body made of `inputs + captured placeholders -> rebuilt outputs`
    reads nothing but its own inputs (and constants).
    """
    inside, free = free_values(inputs, outputs)
    mapping = {value: placeholder(value.type, name=value.name or f"captured{k}",
                                  location=value.location)
               for k, value in enumerate(free)}
    return [mapping[v] for v in free], free, rewire(outputs, mapping, among=inside)


def rewire(outputs: list, mapping: dict, among: set | None = None) -> list:
    """`outputs` computed with each value in `mapping` replaced by its mapped value.

    Nodes that read a replaced value (directly or through others) are
    rebuilt, with their recorded types and locations; the rest are shared.
    Only nodes in `among` (all, if None) are rebuilt.
    """
    mapping = dict(mapping)
    for node in topological_order(outputs):
        if node.op.leaf or (among is not None and node not in among):
            continue
        if all(v in mapping for v in node.outputs):
            continue  # a replaced value itself: what computed it no longer matters
        new_inputs = [mapping.get(v, v) for v in node.inputs]
        if all(a is b for a, b in zip(new_inputs, node.inputs)):
            continue
        rebuilt = make_node(node.op, new_inputs, node.attrs, [v.type for v in node.outputs],
                            node.location)
        for old, new in zip(node.outputs, rebuilt if isinstance(rebuilt, tuple) else (rebuilt,)):
            mapping.setdefault(old, new)  # an output replaced itself stays replaced
    return [mapping.get(v, v) for v in outputs]


__all__ = ["rebuild", "build", "clone", "attrs_key", "free_values", "close_subgraph", "rewire"]

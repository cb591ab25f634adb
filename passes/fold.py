"""Constant folding: nodes whose result is known when the function is compiled.

A pure node whose inputs are all constants is evaluated once, by its own
NumPy kernel, and becomes a constant carrying the node's location. Ops that
read only their input's *shape* (`shape_of`, `size_of`, `reduced_size`) fold
when that shape is static. Ops that take a run-time value where a static
attribute would do (`tile_dynamic`, `reshape_dynamic`) become their static
form when that value is a constant, so the result's shape is known (as
TensorFlow's shape inference reads constant values).

Never folded: leaves (a variable is state, `K.set_value` between calls must
be seen; a placeholder is fed), impure ops (random draws, `print_tensor`),
loops (`scan`), and results much larger than their inputs (a scalar
broadcast to a big shape stays a broadcast: folding it would only trade a
cheap kernel for a big constant held by the function).

`static_value(value)` gives the front end the same evaluation at build time.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node, Value, topological_order
from ..ir.ops.leaf import constant, constant_value
from ..ir.rewrite import build, rebuild

# A folded result may hold at most this many elements beyond its inputs' total.
SMALL_RESULT = 64
SHAPE_ONLY = frozenset({"shape_of", "size_of", "reduced_size"})


def fold_constants(graph: Graph) -> Graph:
    """The graph with every foldable node replaced by a constant (see the module doc)."""
    return rebuild(graph, _fold_node)


_STATIC_FORMS = frozenset({"tile_dynamic", "reshape_dynamic"})


def _fold_node(node: Node, inputs: tuple):
    op = node.op
    if op.leaf:
        return None
    if op.name not in SHAPE_ONLY and op.name not in _STATIC_FORMS:
        for value in inputs:  # most nodes: an input is not a constant, nothing to fold
            if value.node.op.name != "constant":
                return None
    if not _foldable_op(node):
        return None
    static = _static_form(node, inputs)
    if static is not None:
        return (static,)
    arrays = _input_arrays(node, inputs)
    if arrays is None:
        return None
    results = _evaluate(node, arrays)
    if results is None:
        return None
    return tuple(constant(array, location=node.location) for array in results)


def _foldable_op(node: Node) -> bool:
    op = node.op
    return (op.pure and op.make_kernel is None and op.lower is None and op.kernel is not None
            and not any(isinstance(v, Graph) for v in node.attrs.values()))


def _input_arrays(node: Node, inputs: tuple) -> list | None:
    """The inputs' values, if known now: constants, or shapes for the shape-only ops."""
    if node.op.name in SHAPE_ONLY:
        value = inputs[0]
        if not value.type.is_static:
            return None
        return [np.broadcast_to(np.zeros((), value.type.dtype), value.type.shape)]
    arrays = [constant_value(v) for v in inputs]
    if any(a is None for a in arrays):
        return None
    return arrays


def _evaluate(node: Node, arrays: list) -> tuple | None:
    """The node's results on `arrays`, or None when folding would not be faithful or small."""
    try:
        with np.errstate(all="ignore"):
            result = node.op.bound_kernel(node.attrs)(*arrays)
    except Exception:  # noqa: BLE001 (the call raises it again at run time, at the user's line)
        return None
    results = result if isinstance(result, tuple) else (result,)
    if len(results) != len(node.outputs):
        return None
    limit = SMALL_RESULT + (0 if node.op.name in SHAPE_ONLY else sum(a.size for a in arrays))
    checked = []
    for array, value in zip(results, node.outputs):
        array = np.asarray(array)
        if array.dtype.name != value.type.dtype or array.ndim != value.type.ndim:
            return None  # a kernel that disagrees with its type rule: leave it to run time
        if any(isinstance(d, int) and d != s for d, s in zip(value.type.shape, array.shape)):
            return None
        if array.size > limit:
            return None
        checked.append(np.array(array, copy=True))
    return tuple(checked)


def _static_form(node: Node, inputs: tuple) -> Value | None:
    """tile_dynamic / reshape_dynamic with a constant operand as static tile / reshape."""
    name = node.op.name
    if name not in _STATIC_FORMS or len(inputs) != 2:
        return None
    operand = constant_value(inputs[1])
    if operand is None or operand.ndim != 1 or operand.dtype.kind not in "iu":
        return None
    sizes = tuple(int(v) for v in operand)
    if name == "tile_dynamic":
        if len(sizes) != inputs[0].type.ndim or min(sizes, default=0) < 0:
            return None
        return build("tile", [inputs[0]], {"reps": sizes}, node.location)
    if sizes.count(-1) > 1 or any(s < -1 for s in sizes):
        return None
    try:
        return build("reshape", [inputs[0]], {"shape": sizes}, node.location)
    except ValueError:  # sizes that do not fit: the run-time reshape reports it
        return None


# --- build-time evaluation for the front end --------------------------------------------------

def static_value(value: Value, max_nodes: int = 32) -> np.ndarray | None:
    """The value of `value` if it is computed from constants alone by a few pure nodes.

    `K.tile(x, K.cast(K.constant([2, 1]), "int32"))` then has a static shape,
    as in TensorFlow. None when any leaf is not a constant or the subgraph is
    bigger than `max_nodes`.
    """
    known = constant_value(value)
    if known is not None:
        return known
    nodes = _small_subgraph(value, max_nodes)
    if nodes is None:
        return None
    env: dict = {}
    for node in nodes:
        if node.op.leaf:
            env[node.outputs[0]] = node.attrs["value"]
            continue
        if not _foldable_op(node):
            return None
        arrays = [np.broadcast_to(np.zeros((), v.type.dtype), v.type.shape)
                  if node.op.name in SHAPE_ONLY and v.type.is_static else env.get(v)
                  for v in node.inputs]
        if any(a is None for a in arrays):
            return None
        results = _evaluate(node, arrays)
        if results is None:
            return None
        env.update(zip(node.outputs, results))
    return env.get(value)


def _small_subgraph(value: Value, max_nodes: int) -> list | None:
    """The nodes `value` depends on, if there are few and every leaf is a constant."""
    seen, stack = {value.node}, [value.node]
    while stack:
        node = stack.pop()
        if node.op.leaf and node.op.name != "constant":
            return None
        if node.op.name in SHAPE_ONLY and node.inputs[0].type.is_static:
            continue  # only the input's static shape is read, not its value
        for v in node.inputs:
            if v.node not in seen:
                if len(seen) >= max_nodes:
                    return None
                seen.add(v.node)
                stack.append(v.node)
    return [n for n in topological_order([value]) if n in seen]


__all__ = ["fold_constants", "static_value"]

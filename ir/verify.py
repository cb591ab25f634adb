"""Check a graph's internal consistency: the invariant every pass must keep.

Tests run `verify` after each pass, so a rewrite that records a wrong type,
drops an output or updates a non-variable is caught at the pass that did
it, not three passes later as a wrong number. The checks walk the nodes in
a loop (no recursion), so graphs of any depth verify.
"""
from __future__ import annotations

from .errors import VerifyError
from .graph import Graph, Node, Value
from .ops.registry import VARIADIC, infer_types
from .shapes import SymDim, same_dim, same_shape
from .types import TensorType


def verify(graph: Graph) -> None:
    """Raise VerifyError at the first inconsistency; return None if there is none.

    Checked: each graph input is a placeholder; each node has its op's
    number of outputs, pointing back at it; each non-leaf node's recorded
    types are what its type rule gives; a constant's array fits its type;
    each update assigns a variable a value of the variable's dtype and shape.
    Nested graphs (loop bodies held in attributes) are checked the same way
    from a worklist, and must be closed: they read only their own inputs.
    """
    pending = [(graph, None)]
    while pending:
        current, holder = pending.pop()
        _verify_one(current)
        if holder is not None:
            _check_closed(current, holder)
        for node in current.nodes:
            pending.extend((value, node) for value in node.attrs.values()
                           if isinstance(value, Graph))


def _verify_one(graph: Graph) -> None:
    for position, value in enumerate(graph.inputs):
        _check_input(graph, position, value)
    for position, value in enumerate(graph.outputs):
        if not isinstance(value, Value) or value.node is None:
            raise VerifyError(f"graph output {position} ({value!r}) is not computed by a node")
    for node in graph.nodes:
        _check_node(graph, node)
    for target, value in graph.updates:
        _check_update(graph, target, value)


def _check_closed(body: Graph, holder: Node) -> None:
    """A nested body reads no variable and no placeholder other than its inputs, updates none."""
    where = f"{holder.op.name}" + (f" at {holder.location}" if holder.location else "")
    if body.updates:
        raise VerifyError(f"{where}: its body @{body.name} has updates; a body cannot update")
    inputs = set(body.inputs)
    for node in body.nodes:
        value = node.outputs[0] if node.outputs else None
        if node.op.name == "variable" or (node.op.name == "placeholder" and value not in inputs):
            label = f" {value.name!r}" if value.name else ""
            raise VerifyError(f"{where}: its body @{body.name} reads {node.op.name}{label} "
                              f"{value.type}, which is not one of the body's inputs (a body "
                              "must be closed)")


def types_agree(recorded, inferred, input_types) -> bool:
    """Whether recorded output types are the ones a type rule gave.

    A symbol the rule made up (one no input type holds, e.g. the size of a
    reshape's `-1` over an unknown dim) is new on every call, so it matches
    any recorded symbol, as long as it matches the same one everywhere.
    """
    if len(recorded) != len(inferred):
        return False
    known = {id(d.root()) for t in input_types for d in t.shape if isinstance(d, SymDim)}
    fresh: dict[int, SymDim] = {}
    for have, want in zip(recorded, inferred):
        if have.dtype != want.dtype or len(have.shape) != len(want.shape):
            return False
        for a, b in zip(have.shape, want.shape):
            if isinstance(a, SymDim) and isinstance(b, SymDim) and id(b.root()) not in known:
                if fresh.setdefault(id(b.root()), a.root()) is not a.root():
                    return False
            elif not same_dim(a, b):
                return False
    return True


def _check_input(graph: Graph, position: int, value) -> None:
    node = getattr(value, "node", None)
    if node is None or node.op.name != "placeholder":
        what = f"a {node.op.name} value" if node is not None else "not computed by any node"
        raise VerifyError(f"graph @{graph.name} input {position} ({value!r}) must be a "
                          f"placeholder; it is {what}")


def _check_node(graph: Graph, node: Node) -> None:
    op = node.op
    if op.num_outputs != VARIADIC and len(node.outputs) != op.num_outputs:
        raise _node_error(graph, node, f"has {len(node.outputs)} output(s); "
                                       f"op {op.name} has {op.num_outputs}")
    for index, value in enumerate(node.outputs):
        if value.node is not node or value.index != index:
            raise _node_error(graph, node, f"output {index} does not point back at its node "
                                           f"(node {value.node!r}, index {value.index})")
    if op.name == "constant":
        _check_constant(graph, node)
    if op.leaf:
        return
    recorded = tuple(v.type for v in node.outputs)
    try:
        expected = infer_types(node)
    except Exception as error:  # any failing rule means the recorded types are unjustified
        raise _node_error(graph, node, f"its type rule fails on its inputs: "
                                       f"{type(error).__name__}: {error}") from error
    if not types_agree(recorded, expected, [v.type for v in node.inputs]):
        raise _type_error(graph, node, recorded, expected)


def _check_constant(graph: Graph, node: Node) -> None:
    array = node.attrs.get("value")
    type = node.outputs[0].type
    if (getattr(array, "shape", None) != type.shape
            or getattr(getattr(array, "dtype", None), "name", None) != type.dtype):
        raise _node_error(graph, node, f"records type {type} but holds "
                                       f"{type_of_array(array)}")


def _check_update(graph: Graph, target, value) -> None:
    target_node = getattr(target, "node", None)
    if target_node is None or target_node.op.name != "variable":
        what = f"a {target_node.op.name} value" if target_node is not None else "not in the graph"
        raise VerifyError(f"graph @{graph.name}: update target {target!r} must be a variable; "
                          f"it is {what}")
    if not isinstance(value, Value) or value.node is None:
        raise VerifyError(f"graph @{graph.name}: the update of variable {target.name!r} assigns "
                          f"{value!r}, which is not computed by a node")
    have, want = value.type, target.type
    if have.dtype != want.dtype or not same_shape(have.shape, want.shape):
        where = f" at {value.location}" if value.location else ""
        printer = _printer(graph)
        raise VerifyError(
            f"graph @{graph.name}: update of variable {target.name!r}{where}: expected "
            f"{_type_text(printer, want)} (the variable's type), recorded "
            f"{_type_text(printer, have)} (the update value's type)")


def type_of_array(array) -> str:
    if hasattr(array, "dtype") and hasattr(array, "shape"):
        return f"an array of {array.dtype}{list(array.shape)}"
    return f"{type(array).__name__} {array!r}"


def _type_error(graph: Graph, node: Node, recorded, expected) -> VerifyError:
    printer = _printer(graph)
    inputs = ", ".join(_type_text(printer, v.type) for v in node.inputs) or "none"
    return _node_error(
        graph, node,
        f"expected {', '.join(_type_text(printer, t) for t in expected)} (its type rule on "
        f"inputs {inputs}), recorded {', '.join(_type_text(printer, t) for t in recorded)}",
        printer)


def _node_error(graph: Graph, node: Node, problem: str, printer=None) -> VerifyError:
    """`op at file:line: problem`, then the node's line in the graph's text."""
    where = f" at {node.location}" if node.location else ""
    message = f"{node.op.name}{where}: {problem}"
    printer = printer if printer is not None else _printer(graph)
    if printer is not None:  # it printed every node, this one included
        message += "\n  " + printer.node_line(node)
    return VerifyError(message)


def _printer(graph: Graph):
    """A printer that has printed the graph, so types quote its dim names; None if it cannot."""
    from .printer import GraphPrinter

    try:
        printer = GraphPrinter(graph)
        printer.text()
    except Exception:  # noqa: BLE001 (verify reports the inconsistency even if printing fails)
        return None
    return printer


def _type_text(printer, type: TensorType) -> str:
    return printer.type_text(type) if printer is not None else str(type)

"""The pattern -> replacement rule driver shared by `simplify` and `stability`.

A rule is a small function `rule(node, inputs, facts) -> Value | None`
registered for one op name: it looks at the node (its attributes, location
and recorded output types), its already-rewritten `inputs` and the nodes that
produce them, and returns the value that replaces the node's output, or None.
Rules decide from types before they build anything: building runs type
rules, and unifying symbolic dims cannot be undone (ir/shapes.py).

The driver walks the graph once, inputs before users (`ir.rewrite.rebuild`).
A replacement node built by a rule is offered to the rules again (a few
times at most), so each node leaves the walk at its fixed point; since rules
only look at a node's producers, which are already at theirs, one walk
reaches the fixed point of the whole graph and the pass is linear.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..ir.graph import Graph, Node, Value
from ..ir.ops.leaf import constant_value
from ..ir.rewrite import clone, rebuild
from ..ir.shapes import same_dim, same_shape

RETRIES = 8  # replacement nodes offered to the rules again, at most


@dataclass
class Facts:
    """What the walk has seen so far, for rules that need more than a node's producers."""

    relu_of: dict = field(default_factory=dict)  # relu input (rewritten) -> its relu output


@dataclass(frozen=True)
class Rule:
    op: str
    name: str
    rewrite: Callable[[Node, tuple, Facts], "Value | None"]


def apply_rules(graph: Graph, rules) -> Graph:
    table: dict[str, list[Rule]] = {}
    for rule in rules:
        table.setdefault(rule.op, []).append(rule)
    facts = Facts()

    def rewrite(node: Node, inputs: tuple):
        result = _first_match(table, node, inputs, facts)
        if result is not None:
            for _ in range(RETRIES):
                again = _first_match(table, result.node, result.node.inputs, facts)
                if again is None:
                    break
                result = again
            outputs = (result,)
        elif inputs != node.inputs:  # values compare by identity
            outputs = clone(node, inputs)
        else:
            outputs = node.outputs
        _observe(facts, outputs[0].node)
        return None if outputs is node.outputs else outputs

    return rebuild(graph, rewrite)


def _first_match(table: dict, node: Node, inputs: tuple, facts: Facts):
    if node is None or len(node.outputs) != 1:
        return None
    for rule in table.get(node.op.name, ()):
        result = rule.rewrite(node, inputs, facts)
        if result is not None and result is not node.outputs[0] and _fits(result, node):
            return result
    return None


def _fits(result: Value, node: Node) -> bool:
    """A replacement keeps the dtype and rank users were given (a rule whose result an op's
    dtype rule changed is skipped, not applied)."""
    old = node.outputs[0].type
    return result.type.dtype == old.dtype and result.type.ndim == old.ndim


def _observe(facts: Facts, node: Node) -> None:
    if node is not None and node.op.name == "relu" and is_plain_relu(node):
        facts.relu_of.setdefault(node.inputs[0], node.outputs[0])


# --- helpers rules share ----------------------------------------------------------------------

def is_plain_relu(node: Node) -> bool:
    """relu / relu_grad with Keras' defaults: max(x, 0) and its slope x > 0."""
    attrs = node.attrs
    return (attrs.get("alpha") == 0.0 and attrs.get("max_value") is None
            and attrs.get("threshold") == 0.0)


def producer(value: Value, op_name: str) -> Node | None:
    """The node computing `value` if it is an `op_name` node, else None."""
    node = value.node
    return node if node is not None and node.op.name == op_name else None


def same_type(a: Value, b: Value) -> bool:
    """Same dtype and the same dims (symbols unified), so one can stand for the other."""
    return a.type.dtype == b.type.dtype and same_shape(a.type.shape, b.type.shape)


def all_equal_to(value: Value, number) -> bool:
    """A constant every element of which is `number` (exactly; -0.0 and 0.0 both match 0)."""
    array = constant_value(value)
    return array is not None and array.size > 0 and bool(np.all(array == number))


def uniform_constant(value: Value):
    """The one element of a constant holding a single repeated value, else None."""
    array = constant_value(value)
    if array is None or array.size == 0:
        return None
    first = array.flat[0]
    if array.dtype.kind == "f" and np.isnan(first):
        return first if bool(np.all(np.isnan(array))) else None
    if not bool(np.all(array == first)) or (array.dtype.kind == "f" and first == 0
                                            and np.signbit(array).any() != np.signbit(first)):
        return None
    return first


def covered_by(shape, others) -> bool:
    """Whether broadcasting `others` alone gives `shape` (compared, nothing unified)."""
    if not others:
        return len(shape) == 0 or all(d == 1 for d in shape)
    if max(len(s) for s in others) < len(shape):
        return False
    for axis, dim in enumerate(shape):
        offset = len(shape) - axis
        if isinstance(dim, int) and dim == 1:
            continue
        if not any(len(s) >= offset and same_dim(s[len(s) - offset], dim) for s in others):
            return False
    return True


__all__ = ["Rule", "Facts", "apply_rules", "producer", "same_type", "all_equal_to",
           "uniform_constant", "covered_by", "is_plain_relu"]

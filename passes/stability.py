"""Numerical stability rewrites (Theano's `stabilize` rules): forms that overflow or lose
all precision replaced by equal forms that do not.

    log(softmax(x))            -> log_softmax(x)        (log of an underflowed 0 is -inf)
    log(sigmoid(x))            -> -softplus(-x)         (sigmoid(-800) is 0 in float32)
    log(1 - sigmoid(x))        -> -softplus(x)
    crossentropy(t, softmax(z)) -> softmax_cross_entropy(t, z)  (from logits, unclipped,
                                   as tf.keras does when the front end did not already)
    log(1 + x)                 -> log1p(x)   } only if the registry has these ops: graphk
    exp(x) - 1                 -> expm1(x)   } has none today, so these two rules are off

Each rule checks types before it builds (see passes/rules.py).
"""
from __future__ import annotations

from ..ir.graph import Graph, Node
from ..ir.ops.registry import REGISTRY
from ..ir.rewrite import build
from .rules import Facts, Rule, all_equal_to, apply_rules, producer, same_type


def stabilize(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)


def _axis(node: Node) -> int:
    axis = node.attrs["axis"]
    return axis % node.outputs[0].type.ndim if axis < 0 else axis


def log_of_softmax(node: Node, inputs: tuple, facts: Facts):
    """log(softmax(x, axis)) -> log_softmax(x, axis)"""
    inner = producer(inputs[0], "softmax")
    if inner is None or not same_type(inner.inputs[0], node.outputs[0]):
        return None
    return build("log_softmax", [inner.inputs[0]], {"axis": inner.attrs["axis"]}, node.location)


def log_of_sigmoid(node: Node, inputs: tuple, facts: Facts):
    """log(sigmoid(x)) -> -softplus(-x)"""
    inner = producer(inputs[0], "sigmoid")
    if inner is None or not same_type(inner.inputs[0], node.outputs[0]):
        return None
    where = node.location
    negated = build("neg", [inner.inputs[0]], {}, where)
    return build("neg", [build("softplus", [negated], {}, where)], {}, where)


def log_of_one_minus_sigmoid(node: Node, inputs: tuple, facts: Facts):
    """log(1 - sigmoid(x)) -> -softplus(x)   (1 - sigmoid(x) is sigmoid(-x))"""
    difference = producer(inputs[0], "sub")
    if difference is None or not all_equal_to(difference.inputs[0], 1):
        return None
    inner = producer(difference.inputs[1], "sigmoid")
    if inner is None or not same_type(inner.inputs[0], node.outputs[0]):
        return None
    where = node.location
    return build("neg", [build("softplus", [inner.inputs[0]], {}, where)], {}, where)


def crossentropy_of_softmax(node: Node, inputs: tuple, facts: Facts):
    """categorical_crossentropy(t, softmax(z, a), axis=a) -> softmax_cross_entropy(t, z, a)"""
    target, output = inputs
    inner = producer(output, "softmax")
    if inner is None or _axis(inner) != _axis_of(node, output):
        return None
    logits = inner.inputs[0]
    if not same_type(logits, output):
        return None
    return build("softmax_cross_entropy", [target, logits], {"axis": node.attrs["axis"]},
                 node.location)


def _axis_of(node: Node, output) -> int:
    axis = node.attrs["axis"]
    return axis % output.type.ndim if axis < 0 else axis


def log_of_one_plus(node: Node, inputs: tuple, facts: Facts):
    """log(1 + x) -> log1p(x)"""
    total = producer(inputs[0], "add")
    if total is None:
        return None
    for position in (0, 1):
        if all_equal_to(total.inputs[position], 1):
            x = total.inputs[1 - position]
            if same_type(x, node.outputs[0]):
                return build("log1p", [x], {}, node.location)
    return None


def exp_minus_one(node: Node, inputs: tuple, facts: Facts):
    """exp(x) - 1 -> expm1(x)"""
    inner = producer(inputs[0], "exp")
    if inner is None or not all_equal_to(inputs[1], 1):
        return None
    x = inner.inputs[0]
    return build("expm1", [x], {}, node.location) if same_type(x, node.outputs[0]) else None


def _when_registered(op_name: str, rule: Rule) -> tuple:
    """The rule if `op_name` exists (the SCALAR helper may add log1p/expm1), else none."""
    return (rule,) if op_name in REGISTRY else ()


RULES = (
    Rule("log", "log(softmax x) -> log_softmax x", log_of_softmax),
    Rule("log", "log(sigmoid x) -> -softplus(-x)", log_of_sigmoid),
    Rule("log", "log(1 - sigmoid x) -> -softplus(x)", log_of_one_minus_sigmoid),
    Rule("categorical_crossentropy", "crossentropy of a softmax", crossentropy_of_softmax),
    *_when_registered("log1p", Rule("log", "log(1 + x) -> log1p x", log_of_one_plus)),
    *_when_registered("expm1", Rule("sub", "exp(x) - 1 -> expm1 x", exp_minus_one)),
)

__all__ = ["stabilize", "RULES"]

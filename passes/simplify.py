"""Canonicalization: local algebraic simplifications as a pattern -> replacement table.

Every rule is exact in IEEE arithmetic on every input (NaN, inf, -0.0
included) unless its docstring says otherwise: `x * 0` is not 0 (NaN, inf),
`x - x` is not 0 (NaN), and `x + 0.0` is not x (it turns -0.0 into 0.0), so
none of those is here. A rule fires only when its replacement has the node's
dtype and dims, so broadcasting never changes what users see.
The table (RULES, at the end) lists one rule per line; passes/rules.py runs it.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from ..ir.ops.leaf import constant, constant_value
from ..ir.ops.linalg import plan
from ..ir.rewrite import build
from ..ir.shapes import same_shape
from .rules import (
    Facts,
    Rule,
    all_equal_to,
    apply_rules,
    covered_by,
    is_plain_relu,
    producer,
    same_type,
    uniform_constant,
)

NO_AXES_REDUCTIONS = ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod",
                      "reduce_all", "reduce_any")
RESHAPES = ("reshape", "reshape_like", "squeeze", "expand_dims")


def simplify(graph: Graph) -> Graph:
    return apply_rules(graph, RULES)


def _other(inputs: tuple, index: int):
    return inputs[1 - index]


# --- identities -------------------------------------------------------------------------------

def identity_cast(node: Node, inputs: tuple, facts: Facts):
    """cast(x: T) to T -> x"""
    x = inputs[0]
    return x if x.type.dtype == node.attrs["dtype"] and same_type(x, node.outputs[0]) else None


def reduce_over_no_axes(node: Node, inputs: tuple, facts: Facts):
    """reduce(x, axes=()) -> x (sum, mean, max, min, prod, all, any of one element);
    unreduce(g, like, axes=()) -> g"""
    x = inputs[0]
    return x if node.attrs["axes"] == () and same_type(x, node.outputs[0]) else None


def without_identity(element, *positions):
    """x op e -> x for the identity element e of op at the given operand positions."""
    def rule(node: Node, inputs: tuple, facts: Facts):
        for position in positions:
            if all_equal_to(inputs[position], element) and _exactly_identity(inputs[position],
                                                                               element):
                x = _other(inputs, position)
                if same_type(x, node.outputs[0]):
                    return x
        return None
    rule.__doc__ = f"x op {element} -> x"
    return rule


def _exactly_identity(value, element) -> bool:
    """Adding zero is the identity only for -0.0 (x + 0.0 turns -0.0 into 0.0) or integers;
    subtracting zero only for +0.0 or integers (the caller picks by op)."""
    array = constant_value(value)
    if element != 0 or array.dtype.kind not in "fc":
        return True
    return bool(np.all(np.signbit(array)))  # add: -0.0 only


def subtract_zero(node: Node, inputs: tuple, facts: Facts):
    """x - 0 -> x (x - (+0.0) is x for every x, -0.0 included)"""
    x, zero = inputs
    array = constant_value(zero)
    if array is None or array.size == 0 or np.any(array != 0):
        return None
    if array.dtype.kind in "fc" and np.any(np.signbit(array)):
        return None
    return x if same_type(x, node.outputs[0]) else None


def double_negation(node: Node, inputs: tuple, facts: Facts):
    """neg(neg(x)) -> x"""
    inner = producer(inputs[0], "neg")
    return inner.inputs[0] if inner is not None and same_type(inner.inputs[0],
                                                              node.outputs[0]) else None


def no_gradient_barrier(node: Node, inputs: tuple, facts: Facts):
    """stop_gradient(x) -> x (it only matters to K.gradients, which ran before compiling)"""
    return inputs[0] if same_type(inputs[0], node.outputs[0]) else None


# --- shapes -----------------------------------------------------------------------------------

def transpose_of_transpose(node: Node, inputs: tuple, facts: Facts):
    """transpose(transpose(x, p), q) -> transpose(x, p[q]), or x when that is no permutation"""
    inner = producer(inputs[0], "transpose")
    if inner is None:
        return None
    perm = tuple(inner.attrs["perm"][p] for p in node.attrs["perm"])
    x = inner.inputs[0]
    if perm == tuple(range(len(perm))):
        return x if same_type(x, node.outputs[0]) else None
    return build("transpose", [x], {"perm": perm}, node.location)


def reshape_round_trip(node: Node, inputs: tuple, facts: Facts):
    """reshape-like(reshape-like(x)) -> x when it gives x's own shape back (squeeze of
    expand_dims, expand_dims of squeeze, reshape and back); reshape(x) to x's shape -> x"""
    x = inputs[0]
    if node.op.name == "reshape" and same_type(x, node.outputs[0]):
        return x
    inner = next((n for n in (producer(x, name) for name in RESHAPES) if n is not None), None)
    if inner is not None and same_type(inner.inputs[0], node.outputs[0]):
        return inner.inputs[0]
    return None


def reshape_of_reshape(node: Node, inputs: tuple, facts: Facts):
    """reshape(reshape-like(x), s) -> reshape(x, s) (s copies no dim of the middle shape)"""
    shape = node.attrs["shape"]
    if any(isinstance(d, tuple) for d in shape):
        return None
    inner = next((n for n in (producer(inputs[0], name) for name in RESHAPES)
                  if n is not None), None)
    if inner is None:
        return None
    return build("reshape", [inner.inputs[0]], {"shape": shape}, node.location)


def sum_to_as_reduction(node: Node, inputs: tuple, facts: Facts):
    """sum_to(g, like) -> g when shapes agree; -> reduce_sum(g, leading axes) when like is g's
    trailing shape (a bias gradient)"""
    g, like = inputs
    out = node.outputs[0]
    if same_type(g, out):
        return g
    lead = g.type.ndim - like.type.ndim
    if lead <= 0 or not same_shape(g.type.shape[lead:], like.type.shape):
        return None
    summed = build("reduce_sum", [g], {"axes": tuple(range(lead)), "keepdims": False},
                   node.location)
    return summed if summed.type.dtype == out.type.dtype else None


# --- arithmetic -------------------------------------------------------------------------------

def small_integer_power(node: Node, inputs: tuple, facts: Facts):
    """pow(x, 1) -> x, 2 -> square(x), 3 -> square(x) * x, 0.5 -> sqrt(x), -1 -> 1 / x.
    Not bit-exact everywhere: x**3 rounds twice (within 1 ulp of pow); pow(-0.0, 0.5) is
    0.0 and pow(-inf, 0.5) inf where sqrt gives -0.0 and nan (as in Theano and XLA)."""
    x, exponent = inputs
    e = uniform_constant(exponent)
    out = node.outputs[0]
    if e is None or not same_type(x, out) or np.dtype(x.type.dtype).kind not in "fiu":
        return None
    floating = x.type.dtype.startswith("float")
    where = node.location
    if e == 1:
        return x
    if e == 2:
        return build("square", [x], {}, where)
    if e == 3:
        return build("mul", [build("square", [x], {}, where), x], {}, where)
    if e == 0.5 and floating:
        return build("sqrt", [x], {}, where)
    if e == -1 and floating:
        one = constant(np.ones((), x.type.dtype), location=where)
        return build("div", [one, x], {}, where)
    return None


def uniform_constant_as_scalar(node: Node, inputs: tuple, facts: Facts):
    """op(x, full(c)) -> op(x, c): a constant of one repeated value (or one spread by
    broadcast_like or unreduce) becomes a scalar where the other operands alone broadcast
    to the result's shape"""
    if not node.op.elementwise or len(inputs) < 2:
        return None
    out = node.outputs[0]
    for position, value in enumerate(inputs):
        array = constant_value(value)
        if array is None and value.node.op.name in ("broadcast_like", "unreduce"):
            array = constant_value(value.node.inputs[0])  # autodiff's seed of 1, spread
            value = value.node.inputs[0] if array is not None else value
        elif array is not None and array.ndim == 0:
            continue
        if array is None:
            continue
        element = uniform_constant(value)
        others = [v.type.shape for k, v in enumerate(inputs) if k != position]
        if element is None or not covered_by(out.type.shape, others):
            continue
        scalar = constant(np.asarray(element, dtype=array.dtype), location=value.location)
        new_inputs = inputs[:position] + (scalar,) + inputs[position + 1:]
        return build(node.op.name, new_inputs, node.attrs, node.location)
    return None


def constant_condition(node: Node, inputs: tuple, facts: Facts):
    """switch(c, a, b) with c a constant all true (all false) -> a (b), where that branch
    alone has the result's dims: a learning phase fixed at compile time
    (graphk/backend/phase.py) drops the other branch"""
    choice = uniform_constant(inputs[0])
    if choice is None:
        return None
    chosen = inputs[1] if choice else inputs[2]
    return chosen if same_type(chosen, node.outputs[0]) else None


# --- canonical forms ----------------------------------------------------------------------------

def dot_as_matmul(node: Node, inputs: tuple, facts: Facts):
    """dot(x, y) of two matrices -> matmul(x, y) (the same product)"""
    x, y = inputs
    if x.type.ndim != 2 or y.type.ndim != 2:
        return None
    return build("matmul", [x, y], {}, node.location)


def contract_as_matmul(node: Node, inputs: tuple, facts: Facts):
    """contract('ik,kj->ij') and its transposed spellings -> matmul with transpose flags"""
    p = plan(node.attrs["subscripts"])
    if p.batch or len(p.rows) != 1 or len(p.columns) != 1 or len(p.inner) != 1:
        return None
    if len(p.x_terms) != 2 or len(p.y_terms) != 2:
        return None
    (r,), (c,), (k,) = p.rows, p.columns, p.inner
    x, y = inputs
    x_transposed, y_transposed = p.x_terms == k + r, p.y_terms == c + k
    if p.out_terms == r + c:
        attrs = {"transpose_a": x_transposed, "transpose_b": y_transposed}
        return build("matmul", [x, y], attrs, node.location)
    # (x' y')^T = y'^T x'^T
    attrs = {"transpose_a": not y_transposed, "transpose_b": not x_transposed}
    return build("matmul", [y, x], attrs, node.location)


def relu_grad_reads_output(node: Node, inputs: tuple, facts: Facts):
    """relu_grad(g, x) -> relu_grad(g, relu(x)): the slope x > 0 is relu(x) > 0 (NaN too),
    so the pre-activation x need not live until the backward pass"""
    if not is_plain_relu(node):
        return None
    g, x = inputs
    activation = facts.relu_of.get(x)
    if activation is None or activation is x:
        return None
    return build("relu_grad", [g, activation], node.attrs, node.location)


RULES = (
    Rule("cast", "identity cast", identity_cast),
    *(Rule(name, "reduction over no axes", reduce_over_no_axes)
      for name in NO_AXES_REDUCTIONS + ("unreduce",)),
    Rule("mul", "x * 1 and 1 * x", without_identity(1, 1, 0)),
    Rule("add", "x + (-0.0), integer x + 0", without_identity(0, 1, 0)),
    Rule("sub", "x - 0", subtract_zero),
    Rule("div", "x / 1", without_identity(1, 1)),
    Rule("neg", "neg(neg(x))", double_negation),
    Rule("stop_gradient", "no gradient barrier after autodiff", no_gradient_barrier),
    Rule("transpose", "transpose of transpose", transpose_of_transpose),
    *(Rule(name, "reshape round trip", reshape_round_trip) for name in RESHAPES),
    Rule("reshape", "reshape of reshape", reshape_of_reshape),
    Rule("sum_to", "sum_to over leading axes", sum_to_as_reduction),
    Rule("pow", "small integer power", small_integer_power),
    Rule("switch", "switch on a constant condition", constant_condition),
    *(Rule(name, "uniform constant as scalar", uniform_constant_as_scalar)
      for name in ("add", "sub", "mul", "div", "maximum", "minimum", "pow", "switch", "clip")),
    Rule("dot", "matrix dot as matmul", dot_as_matmul),
    Rule("contract", "matrix contraction as matmul", contract_as_matmul),
    Rule("relu_grad", "relu_grad reads the relu output", relu_grad_reads_output),
)

__all__ = ["simplify", "RULES"]

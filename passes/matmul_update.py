"""SGD weight updates as one GEMM: `W <- W - lr * (x^T @ d)` becomes `matmul_update`.

A plain SGD step on a dense layer's weights computes the gradient product
into a fresh matrix, then reads it and W again to write W - lr * G. BLAS
GEMM adds a scaled product into an existing matrix (beta = 1), so the
update is the product alone; the NumPy lowering writes it into W's own
buffer when nothing reads W after it (codegen/in_place.py). The rule:

    update W = sub(W, mul(s, matmul(a, b)))   ->   matmul_update(W, a, b, neg(s))
    update W = add(W, mul(s, matmul(a, b)))   ->   matmul_update(W, a, b, s)

(either operand order of mul and add; `dot` of two matrices too) when s is
a scalar, a and b are matrices, the product and its scaled copy are read
only there, and W, the product and s share one float dtype and W's shape.
Only values a variable update stores are rewritten: elsewhere the product's
epilogue is fusion's business. Runs before fusion.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ..ir.graph import Graph, Value
from ..ir.ops.leaf import constant, constant_value
from ..ir.rewrite import build, rebuild
from ..ir.shapes import same_shape


def fold_products_into_updates(graph: Graph) -> Graph:
    """`graph` with each SGD-shaped weight update computed by one matmul_update."""
    stored = {new: variable for variable, new in graph.updates}
    if not stored:
        return graph
    reads = Counter(v for node in graph.nodes for v in node.inputs)
    reads.update(graph.outputs)
    reads.update(v for pair in graph.updates for v in pair)

    def rewrite_node(node, inputs):
        variable = stored.get(node.outputs[0])
        if variable is None or node.op.name not in ("add", "sub") or any(
                a is not b for a, b in zip(inputs, node.inputs)):
            return None
        update = _update(node, variable, reads)
        return None if update is None else (update,)
    result = rebuild(graph, rewrite_node)
    changed = any(a is not b for (_, a), (_, b) in zip(result.updates, graph.updates))
    return result if changed else graph


def fold_products_into_sums(graph: Graph) -> Graph:
    """`x + a @ b` (the product read only there, no broadcasting) as matmul_update(x, a, b,
    1): for loop bodies (passes/scan_fusion.py), where an RNN step's `xw_t + h @ U` is
    then one GEMM with beta = 1 into a copy of xw_t instead of a product and an add."""
    reads = Counter(v for node in graph.nodes for v in node.inputs)
    reads.update(graph.outputs)

    def rewrite_node(node, inputs):
        if node.op.name != "add" or any(a is not b for a, b in zip(inputs, node.inputs)):
            return None
        for x, product in (node.inputs, node.inputs[::-1]):
            if (product.node.op.name in ("matmul", "dot") and reads[product] == 1
                    and all(v.type.ndim == 2 for v in product.node.inputs)):
                one = constant(np.ones((), x.type.dtype), location=node.location)
                if _fits(x, product, one, node.outputs[0]):
                    return (_as_update(x, product, one, node.location),)
        return None
    result = rebuild(graph, rewrite_node)
    return graph if all(a is b for a, b in zip(result.outputs, graph.outputs)) else result


def _as_update(c: Value, product: Value, scale: Value, location) -> Value:
    a, b = product.node.inputs
    attrs = {"transpose_a": product.node.attrs.get("transpose_a", False),
             "transpose_b": product.node.attrs.get("transpose_b", False)}
    return build("matmul_update", [c, a, b, scale], attrs, location)


def _update(node, variable: Value, reads: Counter) -> Value | None:
    """The matmul_update computing `node` (variable +- s * product), or None."""
    x, y = node.inputs
    if node.op.name == "sub":
        pairs = [(x, y, -1.0)]
    else:
        pairs = [(x, y, 1.0), (y, x, 1.0)]
    for c, scaled, sign in pairs:
        if c is not variable or reads[scaled] != 1 or scaled.node.op.name != "mul":
            continue
        factors = _scale_and_product(scaled, reads)
        if factors is None:
            continue
        scale, product = factors
        if not _fits(c, product, scale, node.outputs[0]):
            continue
        scale = scale if sign > 0 else _negated(scale, node.location)
        return _as_update(c, product, scale, node.location)
    return None


def _scale_and_product(scaled: Value, reads: Counter):
    """(scalar, matrix product) of mul(s, p) or mul(p, s) when p is read only there."""
    for scale, product in (scaled.node.inputs, scaled.node.inputs[::-1]):
        node = product.node
        if (scale.type.ndim == 0 and node.op.name in ("matmul", "dot") and reads[product] == 1
                and all(v.type.ndim == 2 for v in node.inputs)):
            return scale, product
    return None


def _fits(c: Value, product: Value, scale: Value, result: Value) -> bool:
    """One float dtype and no broadcasting: the update's value is exactly c's shape."""
    dtype = c.type.dtype
    return (dtype in ("float32", "float64") and product.type.dtype == dtype
            and scale.type.dtype == dtype and result.type.dtype == dtype
            and same_shape(product.type.shape, c.type.shape)
            and same_shape(result.type.shape, c.type.shape))


def _negated(scale: Value, location) -> Value:
    value = constant_value(scale)
    if value is not None:  # a learning rate: folded now, not negated every call
        return constant(np.negative(value), location=location)
    return build("neg", [scale], {}, location)


__all__ = ["fold_products_into_updates", "fold_products_into_sums"]

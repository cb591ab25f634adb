"""Reverse-mode differentiation as a graph transformation.

`gradients(loss, wrt)` walks the nodes between `wrt` and `loss` once, in
reverse topological order, and asks each op's gradient rule for the
vector-Jacobian product of its inputs. The result is ordinary graph values,
so gradient graphs are compiled, optimized and differentiated again like any
other graph. Cotangents are accumulated per value before its producer is
visited, so each node is visited once however much fan-out the graph has.
"""
from __future__ import annotations

from ..ir.dtypes import is_floating
from ..ir.graph import Value, topological_order
from ..ir.ops import elementwise as ew
from ..ir.ops.broadcast import broadcast_like, sum_to
from ..ir.ops.leaf import constant
from ..ir.ops.registry import NOT_DIFFERENTIABLE
from ..ir.shapes import same_shape
from ..ir.source import location_override


class GradientError(TypeError):
    """An op on the path from a variable to the loss has no gradient rule yet."""


def gradients(loss: Value, wrt, seed: Value | None = None) -> list:
    """d(sum of loss)/d(each of wrt): a value per entry of `wrt`, or None.

    A non-scalar loss is summed (TensorFlow's rule). An entry of `wrt` the
    loss does not reach through differentiable ops gets None, as Keras'
    TensorFlow backend returns.
    """
    return vjp([loss], [seed], wrt)


def vjp(outputs, cotangents, wrt) -> list:
    """The vector-Jacobian product: sum over i of cotangents[i] . d outputs[i] / d wrt.

    One reverse sweep serves every output, so work shared between outputs (a
    loop body's per-step output and new state) is differentiated once. A None
    cotangent stands for ones (the summed-loss rule); a value listed twice
    gets the sum of its cotangents.
    """
    wrt = list(wrt)
    nodes = topological_order(outputs)
    on_path = _depends_on(nodes, wrt)
    contributions: dict[Value, list[Value]] = {}
    for value, cotangent in zip(outputs, cotangents):
        if value in on_path:
            seed = cotangent if cotangent is not None else _ones_seed(value)
            contributions.setdefault(value, []).append(seed)
    if not contributions:
        return [None] * len(wrt)
    for node in reversed(nodes):
        if not any(v in contributions for v in node.outputs) or node.op.leaf:
            continue
        if not any(v in on_path for v in node.inputs):
            continue
        _backpropagate(node, contributions, on_path)
    results = []
    for value in wrt:
        total = _total(contributions, value)
        if total is not None and total.type.dtype != value.type.dtype:
            total = ew.cast(total, dtype=value.type.dtype)
        results.append(total)
    return results


def _ones_seed(loss: Value) -> Value:
    seed = constant(1.0, dtype=loss.type.dtype)
    return broadcast_like(seed, loss) if loss.type.ndim else seed


def _depends_on(nodes, wrt) -> set:
    """Values (of float dtype) that depend on some value in `wrt`."""
    dependent = {v for v in wrt if is_floating(v.type.dtype)}
    for node in nodes:
        if node.op.grad is NOT_DIFFERENTIABLE:
            continue
        if any(v in dependent for v in node.inputs):
            dependent.update(v for v in node.outputs if is_floating(v.type.dtype))
    return dependent


def _accumulate(parts: list) -> Value | None:
    if not parts:
        return None
    total = parts[0]
    for part in parts[1:]:
        total = ew.add(total, part)
    return total


def _total(contributions: dict, value: Value) -> Value | None:
    """The summed cotangent of `value`, kept summed for later readers (wrt entries)."""
    parts = contributions.get(value)
    if not parts:
        return None
    if len(parts) > 1:
        contributions[value] = parts = [_accumulate(parts)]
    return parts[0]


def _backpropagate(node, contributions: dict, on_path: set) -> None:
    rule = node.op.grad
    if rule is None:
        raise GradientError(f"op {node.op.name!r} (built at {node.location}) has no gradient "
                            "rule yet; wrap its input in K.stop_gradient if no gradient is needed")
    with location_override(node.location):
        cotangents = [_total(contributions, v) for v in node.outputs]
        if node.op.grad_uses_autodiff:  # a loop: its rule differentiates the body with vjp
            wanted = tuple(v in on_path for v in node.inputs)
            input_grads = rule(node, tuple(cotangents), vjp, wanted)
        elif node.op.num_outputs == 1:
            input_grads = rule(node, cotangents[0])
        else:
            input_grads = rule(node, tuple(cotangents))
        for value, grad in zip(node.inputs, input_grads):
            if grad is None or value not in on_path:
                continue
            contributions.setdefault(value, []).append(_fit(grad, value))


def _fit(grad: Value, value: Value) -> Value:
    """A cotangent with the shape and dtype of the value it belongs to."""
    if not same_shape(grad.type.shape, value.type.shape):
        grad = sum_to(grad, value)
    if grad.type.dtype != value.type.dtype:
        grad = ew.cast(grad, dtype=value.type.dtype)
    return grad

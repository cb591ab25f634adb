"""`K.function(..., nan_guard=True)`: stop at the first op whose result holds NaN or Inf.

A guarded function's generated program calls each kernel through a wrapper
(the NumPy lowering's `wrap_kernel` hook, as the profiler's) that checks the
kernel's float results. The first non-finite result raises NonFiniteError
naming the op and the user's source line that built it; for a fused kernel,
the region's body is re-run op by op with NumPy on the same inputs to name
the op inside it that first went non-finite. If the kernel's inputs already
held NaN or Inf (a feed, a variable or a constant), the error says which one.
The error is raised before any update is applied, so no variable changes.
Unguarded functions get no wrapper and pay nothing.
"""
from __future__ import annotations

import numpy as np

from .ir.graph import Graph, Node


class NonFiniteError(FloatingPointError):
    """A guarded function produced NaN or Inf; the message names the op and the line."""

    graphk_located = True  # the message already names op and location


def _non_finite(array) -> str | None:
    """"NaN", "Inf" or None for a result (non-float results are never non-finite)."""
    array = np.asarray(array)
    if array.dtype.kind not in "fc" or array.size == 0:
        return None
    if np.isnan(array).any():
        return "NaN"
    if np.isinf(array).any():
        return "Inf"
    return None


def _where(node: Node) -> str:
    return f"{node.op.name}" + (f" at {node.location}" if node.location else "")


def _first_inside(body: Graph, arrays) -> Node | None:
    """The first body op whose result is non-finite while its inputs are finite."""
    values = dict(zip(body.inputs, arrays))
    for node in body.nodes:
        if node.op.leaf:
            if node.outputs[0] not in values:
                values[node.outputs[0]] = node.attrs.get("value")
            continue
        result = node.op.bound_kernel(node.attrs)(*[values[v] for v in node.inputs])
        results = result if len(node.outputs) > 1 else (result,)
        values.update(zip(node.outputs, results))
        if any(_non_finite(r) for r in results) and not any(
                _non_finite(values[v]) for v in node.inputs):
            return node
    return None


def _describe_source(value) -> str:
    node = value.node
    if node.op.name == "placeholder":
        return f"placeholder {value.name or ''} (a feed)".replace("  ", " ")
    if node.op.name == "variable":
        return f"variable {value.name!r}"
    return _where(node)


def _error(node: Node, arrays, results, kind: str) -> NonFiniteError:
    bad_inputs = [k for k, a in enumerate(arrays) if _non_finite(a)]
    if bad_inputs:
        k = bad_inputs[0]
        return NonFiniteError(
            f"nan_guard: {_where(node)} read {_non_finite(arrays[k])} in its input {k}, "
            f"which comes from {_describe_source(node.inputs[k])}")
    detail = ""
    body = node.attrs.get("body") if node.op.name == "fused" else None
    if body is not None:
        inner = _first_inside(body, arrays)
        if inner is not None:
            detail = f"; inside it, {_where(inner)} is the first op to produce it"
    return NonFiniteError(f"nan_guard: {_where(node)} produced {kind}, the first non-finite "
                          f"value of this call{detail}")


class NanGuard:
    """The `wrap_kernel` hook of a guarded function."""

    def wrap(self, node: Node, kernel):
        if getattr(kernel, "donate", None):  # the guard reads the inputs after the call:
            kernel.donate = frozenset()  # no output may be written into them
        def guarded(*arrays):
            result = kernel(*arrays)
            results = result if isinstance(result, tuple) else (result,)
            for r in results:
                kind = _non_finite(r)
                if kind is not None:
                    raise _error(node, arrays, results, kind)
            return result
        guarded.lowering = getattr(kernel, "lowering", "numpy")
        return guarded


def chain(*hooks):
    """One wrap_kernel hook applying each given hook (None ones skipped) in order."""
    hooks = [h for h in hooks if h is not None]
    if not hooks:
        return None
    if len(hooks) == 1:
        return hooks[0]

    def wrap(node, kernel):
        for hook in hooks:
            kernel = hook(node, kernel)
        return kernel
    return wrap


__all__ = ["NanGuard", "NonFiniteError", "chain"]

"""The fused op: one node that computes a region of elementwise and reduction work.

    %a, %b = fused(%x, %y, %w) {body=graph @fused(%p0, %p1, %p2) { ... return %r0, %r1 }}

The body is a closed Graph, like scan's: its inputs are placeholders with
exactly the outer inputs' types (same dtypes, the same symbolic dims), and
the node has one output per body output, of the same type. It holds
constants, elementwise ops (`OpDef.elementwise`), `broadcast_like`,
`sum_to` and the reductions in BODY_REDUCTIONS; a reduction's result may be
used again in the body (softmax: x - max(x), exp, sum, div). The fusion pass
(passes/fusion.py) builds these nodes; lowerings compile the body as a whole
(codegen/fused_numpy.py evaluates it in cache-sized blocks, codegen/llvm/
emits one loop nest).

The op's own kernel below is the plain reference: the body evaluated node
by node with each op's NumPy kernel. Its gradient differentiates the body
inlined on the outer inputs, so a fused graph can still be differentiated.
"""
from __future__ import annotations

from ..graph import Graph
from ..types import TensorType
from .registry import REQUIRED, VARIADIC, OpDef, Sample, apply, register

# Reductions a body may hold (attributes: canonical `axes`, `keepdims`; the values reduced
# are input 0, and reduce_pick's indices input 1).
BODY_REDUCTIONS = frozenset({"reduce_sum", "reduce_max", "reduce_min", "reduce_mean",
                             "reduce_prod", "reduce_pick"})  # reduce_pick: ir/ops/labels.py
# Broadcast helpers a body may hold besides the elementwise ops.
BODY_BROADCASTS = frozenset({"broadcast_like", "sum_to"})


def allowed_in_body(op) -> bool:
    """Whether a node of `op` may sit in a fused body."""
    return (op.elementwise or op.name in BODY_REDUCTIONS or op.name in BODY_BROADCASTS
            or op.name == "constant")


def _fused_infer(*types, body):
    if not isinstance(body, Graph):
        raise TypeError(f"attribute body must be a Graph, got {type(body).__name__}")
    if len(body.inputs) != len(types):
        raise TypeError(f"the body takes {len(body.inputs)} inputs, the node gives it "
                        f"{len(types)}")
    for position, (outer, inner) in enumerate(zip(types, body.inputs)):
        if inner.type != outer:  # same dtype and the same dims (symbols unified), never merged
            raise TypeError(f"input {position} is {outer} but the body's input {position} is "
                            f"{inner.type}; a fused body takes its inputs' exact types")
    for node in body.nodes:
        if not allowed_in_body(node.op) and node.op.name != "placeholder":
            raise TypeError(f"a fused body cannot hold {node.op.name} (built at "
                            f"{node.location}): only constants, elementwise ops, "
                            f"broadcast_like, sum_to and {sorted(BODY_REDUCTIONS)}")
    if not body.outputs:
        raise TypeError("a fused body must return at least one value")
    return tuple(v.type for v in body.outputs)  # types are immutable: shared, not copied


def evaluate_body(body: Graph, arrays) -> list:
    """The body's outputs for input `arrays`, node by node with each op's NumPy kernel."""
    env = dict(zip(body.inputs, arrays))
    for node in body.nodes:
        if node.op.name == "constant":
            env[node.outputs[0]] = node.attrs["value"]
        elif node.op.name != "placeholder":
            result = node.op.bound_kernel(node.attrs)(*[env[v] for v in node.inputs])
            results = result if isinstance(result, tuple) else (result,)
            env.update(zip(node.outputs, results))
    return [env[v] for v in body.outputs]


def _reference_kernel(*arrays, body):
    """Fresh arrays for every output (a body may return its input or a view of one)."""
    import numpy as np

    results = []
    for value, array in zip(body.outputs, evaluate_body(body, arrays)):
        array = np.array(array, dtype=value.type.dtype, copy=True)
        results.append(array)
    return tuple(results) if len(results) > 1 else results[0]


def inline(node) -> list:
    """The node's outputs recomputed by the body's nodes rebuilt on the outer inputs."""
    from ..rewrite import rewire  # ir.rewrite imports the registry: import when used

    body = node.attrs["body"]
    return rewire(list(body.outputs), dict(zip(body.inputs, node.inputs)))


def _fused_grad(node, cotangents, vjp, wanted) -> list:
    """The VJP of the inlined body: exactly the gradient of the unfused region."""
    outputs = inline(node)
    seeded = [(o, g) for o, g in zip(outputs, cotangents) if g is not None]
    if not seeded:
        return [None] * len(node.inputs)
    grads = vjp([o for o, _ in seeded], [g for _, g in seeded], list(node.inputs))
    return [g if want else None for g, want in zip(grads, wanted)]


# --- samples for the registry-wide tests --------------------------------------------------------

def _sample_bodies() -> tuple:
    """Two small bodies: broadcasting with a reduction reused (two outputs), and a softmax."""
    from . import elementwise as ew
    from .leaf import placeholder
    from .reduce import reduce_max, reduce_sum

    x = placeholder(TensorType("float64", (3, 4)), name="x")
    y = placeholder(TensorType("float64", (4,)), name="y")
    row = reduce_sum(x, 1, keepdims=True)
    two = Graph([x, y], [ew.add(ew.tanh(ew.mul(x, y)), row), ew.exp(ew.neg(row))], name="fused")
    z = placeholder(TensorType("float64", (3, 4)), name="z")
    shifted = ew.exp(ew.sub(z, reduce_max(z, 1, keepdims=True)))
    one = Graph([z], [ew.div(shifted, reduce_sum(shifted, 1, keepdims=True))], name="fused")
    return two, one


_TWO_OUTPUTS, _SOFTMAX = _sample_bodies()

register(OpDef(
    "fused", "fused", infer=_fused_infer, kernel=_reference_kernel,
    attrs={"body": REQUIRED}, num_outputs=VARIADIC,
    grad=_fused_grad, grad_uses_autodiff=True,
    samples=(Sample(((3, 4), (4,)), {"body": _TWO_OUTPUTS}, dtypes=("float64",) * 2,
                    symbolic=False),
             Sample(((3, 4),), {"body": _SOFTMAX}, dtypes=("float64",), symbolic=False)),
    doc="A region of elementwise, broadcast and reduction ops as one node; outputs are the "
        "body's outputs."))


def fused(inputs, body: Graph) -> tuple:
    """Apply a fused node (always a tuple of values, even for one output)."""
    result = apply("fused", list(inputs), body=body)
    return result if isinstance(result, tuple) else (result,)


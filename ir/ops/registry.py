"""The op registry: one record per op, and `apply` that builds a node from it.

An `OpDef` is the whole contract of an op (see STYLE.md, "rule tables"): its
attributes with defaults, its type rule, its NumPy kernel, its gradient rule
and, for elementwise ops, the scalar rule the LLVM backend compiles.
`REGISTRY` is a plain dict tests loop over.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..dtypes import DTypeError
from ..errors import located
from ..graph import Node, Value
from ..shapes import ShapeError
from ..source import user_location
from ..types import TensorType

NOT_DIFFERENTIABLE = "not differentiable"
REQUIRED = object()  # attribute default meaning "must be given"
VARIADIC = 0  # num_outputs of an op whose output count depends on its attributes


@dataclass(frozen=True)
class Sample:
    """Example arguments for registry-wide tests (round trip, NumPy, gradients).

    `shapes` are concrete; tests also run each sample with its leading dims
    unknown unless `symbolic` is False. `make(rng)` may build the inputs
    itself (labels, distinct values for max, ...); otherwise floats are drawn
    uniformly from [low, high).
    """

    shapes: tuple
    attrs: dict = field(default_factory=dict)
    dtypes: tuple | None = None
    low: float = -2.0
    high: float = 2.0
    make: Callable | None = None
    symbolic: bool = True
    differentiable_inputs: tuple | None = None  # indices; None means all float inputs


@dataclass(frozen=True, eq=False)
class OpDef:
    name: str
    family: str
    infer: Callable[..., Any] | None  # (*input_types, **attrs) -> TensorType or tuple
    kernel: Callable | None  # (*arrays, **attrs) -> array or tuple; None for leaves
    attrs: dict = field(default_factory=dict)  # name -> default (or REQUIRED)
    num_outputs: int = 1  # or VARIADIC: as many as the type rule gives (scan)
    grad: Callable | str | None = None  # vjp rule, NOT_DIFFERENTIABLE, or None (not yet)
    scalar: Callable | None = None  # LLVM scalar rule, for elementwise ops
    samples: tuple = ()
    elementwise: bool = False
    leaf: bool = False  # placeholder, variable, constant: the type is given, not inferred
    pure: bool = True  # False for random ops: never folded or merged
    # For ops with per-function state (random generators): attrs -> a fresh kernel,
    # called once per compiled function, instead of binding `kernel` to the attrs.
    make_kernel: Callable | None = None
    # The kernel may return a view of its first input (reshape, transpose, a read-only
    # broadcast): codegen copies such results before handing them out or storing them
    # when they could alias a variable, a constant or a feed, or are not writable.
    view: bool = False
    # The gradient rule needs reverse-mode differentiation of a subgraph (a loop body):
    # autodiff calls it as grad(node, cotangents, vjp, wanted), see passes/autodiff.py.
    grad_uses_autodiff: bool = False
    # For ops whose runtime needs compiled subgraphs (loop bodies): codegen calls
    # lower(node, compile_subgraph, needed_outputs) -> kernel instead of binding `kernel`;
    # `compile_subgraph(graph)` returns an executable with `run(feeds)` and `explain(error)`.
    lower: Callable | None = None
    doc: str = ""

    def __repr__(self) -> str:
        return f"<op {self.name}>"

    def complete_attrs(self, attrs: dict) -> dict:
        """Defaults filled in, values frozen (lists become tuples); unknown names rejected."""
        unknown = set(attrs) - set(self.attrs) if attrs else ()
        if unknown:
            raise TypeError(f"{self.name}: unknown attribute(s) {sorted(unknown)}; "
                            f"it takes {sorted(self.attrs) or 'none'}")
        result = {}
        for name, default in self.attrs.items():
            value = attrs.get(name, default)
            if value is REQUIRED:
                raise TypeError(f"{self.name}: attribute {name!r} is required")
            result[name] = freeze(value)
        return result

    def bound_kernel(self, attrs: dict) -> Callable:
        """The NumPy kernel with this node's attributes applied."""
        if self.make_kernel is not None:
            return self.make_kernel(**attrs)
        if not attrs:
            return self.kernel
        kernel, kwargs = self.kernel, dict(attrs)
        return lambda *arrays: kernel(*arrays, **kwargs)


REGISTRY: dict[str, OpDef] = {}

# Active input substitutions (innermost last): while one is active, every node built
# reads mapping[v] wherever it would read v. The front end uses it for
# control dependencies (ops built inside read a variable's updated value).
_substitutions: list[dict] = []


@contextlib.contextmanager
def substituting(mapping: dict):
    """Build every node inside with inputs replaced by `mapping` (a Value -> Value dict)."""
    merged = dict(_substitutions[-1]) if _substitutions else {}
    merged.update(mapping)
    _substitutions.append(merged)
    try:
        yield
    finally:
        _substitutions.pop()


def register(op: OpDef) -> OpDef:
    if op.name in REGISTRY:
        raise ValueError(f"op {op.name!r} is registered twice")
    REGISTRY[op.name] = op
    return op


def freeze(value):
    """Attribute values as immutable plain Python (hashable for CSE, printable)."""
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, np.ndarray):
        frozen = value.copy()
        frozen.setflags(write=False)
        return frozen
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _as_types(result) -> tuple:
    return result if isinstance(result, tuple) else (result,)


def apply(op_name: str, inputs, location: str | None = None, **attrs):
    """Build a node of `op_name` on `inputs`; return its output value(s).

    Type rule errors are re-raised naming the op, the input types and the
    user's call site.
    """
    op = REGISTRY[op_name]
    inputs = tuple(inputs)
    if _substitutions:
        mapping = _substitutions[-1]
        inputs = tuple(mapping.get(v, v) for v in inputs)
    for value in inputs:
        if not isinstance(value, Value):
            raise TypeError(f"{op_name}: expected graphk tensors as inputs, "
                            f"got {type(value).__name__}")
    if location is None:
        location = user_location()
    try:
        attrs = op.complete_attrs(attrs)
        out_types = _as_types(op.infer(*[v.type for v in inputs], **attrs))
    except (ShapeError, DTypeError, TypeError, ValueError) as error:
        given = ", ".join(str(v.type) for v in inputs)
        raise located(error, op_name, location, f" (given {given})" if inputs else "") from None
    return make_node(op, inputs, attrs, out_types, location)


def make_node(op: OpDef, inputs, attrs: dict, out_types, location=None, value_class=Value):
    """A node with given output types (used by apply, leaves, the parser and rewrites)."""
    node = Node(op, inputs, attrs, location)
    if len(out_types) == 1:  # most nodes: no generator (every pass builds thousands)
        node.outputs = (value_class(out_types[0], node, 0),)
    else:
        node.outputs = tuple(value_class(t, node, i) for i, t in enumerate(out_types))
    return node.outputs[0] if op.num_outputs == 1 else node.outputs


def infer_types(node: Node) -> tuple[TensorType, ...]:
    """Output types the op's rule gives for this node's inputs (for verify)."""
    if node.op.leaf:
        return tuple(v.type for v in node.outputs)
    return _as_types(node.op.infer(*[v.type for v in node.inputs], **node.attrs))

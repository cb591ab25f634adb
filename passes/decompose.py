"""Decomposition: nn macro ops rewritten as elementwise ops and reductions, so fusion sees in.

softmax, log_softmax, softmax_grad, softmax_cross_entropy and its gradient,
l2_normalize, reduce_logsumexp, reduce_var and reduce_std become the
max-shift / exp / sum / div steps their hand kernels perform, in the same
order (so results agree to rounding). Pieces shared between a loss and its
gradient (the max, the shifted logits, the exponentials and their sum) are
built once per (logits, axis), so the fused region computes them once.

bias_add becomes an add where broadcasting aligns the bias (channels last),
so a layer's bias and activation fuse after its matmul or convolution.

Shape-only inputs would tie regions together needlessly (a loss's gradient
reads the loss only for its shape), so `unreduce` becomes `broadcast_like`
where broadcasting already aligns the axes, `reduced_size` counts a graph
input's dim instead of an intermediate's, and a loss cotangent that is one
number spread over the loss's shape (what a mean's gradient is) is used as
that number.

Integer labels become a comparison with the class index, so a sparse loss
fuses like the dense one: one_hot(i, C) is cast(equal(arange(C), i[..., None]))
and sparse_softmax_cross_entropy(labels, logits) is log(sum(exps)) -
reduce_pick(shifted, k), k = class_indices(labels): the labels range-checked
(the sparse kernel's ValueError) and given a size-1 class axis, in a node of
their own outside the region; reduce_pick reads shifted[k] (one element a
row: take_along_axis on NumPy, one load on LLVM). The loss keeps the class
axis inside the region, dropped by a squeeze after it (so the NumPy lowering
evaluates the region in blocks of rows). Its gradient is (softmax -
cast(hit)) * g, hit = equal(arange(C), k) with a constant arange (C int32s,
read from L1 by the LLVM kernel). Labels whose dims are unknown and unrelated
to the logits' (Keras' (None, None) target) are reshaped by class_indices to
the logits' shape, its row dims read from the graph input they come from, the
count checked when the function runs. The class count must be static; a
symbolic one keeps the sparse ops whole, as do labels of known shape laid out
unlike the loss and logits whose dims come from no single graph input.

Ops with semantics the elementwise form would lose stay whole: integer
reductions (TensorFlow's truncating integer mean).
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph
from ..ir.ops.leaf import constant
from ..ir.rewrite import build, rebuild
from ..ir.shapes import same_dim


def decompose(graph: Graph) -> Graph:
    if not any(node.op.name in _RULES for node in graph.nodes):
        return graph  # nothing to rewrite: no rebuild
    return _Decomposer(graph).run()


class _Decomposer:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.memo: dict = {}  # (piece, value, axis) -> value, shared by a loss and its gradient
        self.dim_sources = _dim_sources(graph)

    def run(self) -> Graph:
        return rebuild(self.graph, self.rewrite)

    def rewrite(self, node, inputs):
        rule = _RULES.get(node.op.name)
        if rule is None:
            return None
        if node.op.name not in _OWN_DTYPE_RULES and not _all_float(node, inputs):
            return None
        result = rule(self, node, inputs)
        if result is None:
            return None
        old = node.outputs[0]
        if result.type.dtype != old.type.dtype or result.type.ndim != old.type.ndim:
            return None  # only values of exactly the old type replace it
        return (result,)

    # --- building ---------------------------------------------------------------------

    def op(self, name, inputs, location, **attrs):
        return build(name, inputs, attrs, location)

    def scalar(self, number, like, location):
        return constant(np.asarray(number, dtype=like.type.dtype), location=location)

    def shared(self, piece: str, x, axis, make):
        key = (piece, x, axis)
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]

    def softmax_parts(self, x, axis: int, loc) -> tuple:
        """(shifted, exps, total): x - max, exp of it, and its sum (keepdims) along axis."""
        def make():
            peak = self.op("reduce_max", [x], loc, axes=(axis,), keepdims=True)
            shifted = self.op("sub", [x, peak], loc)
            exps = self.op("exp", [shifted], loc)
            total = self.op("reduce_sum", [exps], loc, axes=(axis,), keepdims=True)
            return shifted, exps, total
        return self.shared("softmax", x, axis, make)

    def softmax(self, x, axis, loc):
        _, exps, total = self.softmax_parts(x, axis, loc)
        return self.shared("probs", x, axis, lambda: self.op("div", [exps, total], loc))

    def log_softmax(self, x, axis, loc):
        shifted, _, total = self.softmax_parts(x, axis, loc)
        return self.shared("log_softmax", x, axis, lambda: self.op(
            "sub", [shifted, self.op("log", [total], loc)], loc))

    def class_indices(self, labels, logits, axis: int, loc):
        """class_indices(labels): int32 in the logits' shape with 1 on `axis`; None when
        the class count is symbolic or the labels cannot be lined up with the logits (see
        the module docstring)."""
        classes = logits.type.shape[axis]
        if not isinstance(classes, int):
            return None
        shape, dims = labels.type.shape, logits.type.shape
        if len(shape) == len(dims) - 1:
            insert, placed = axis, shape[:axis] + (1,) + shape[axis:]
        elif len(shape) == len(dims) and shape[axis] == 1:
            insert, placed = None, shape
        else:
            insert, placed = None, None
        if placed is None or not all(k == axis or same_dim(a, b)
                                     for k, (a, b) in enumerate(zip(placed, dims))):
            return self.reshaped_indices(labels, logits, axis, loc)
        return self.shared("indices", (labels, logits), axis, lambda: self.op(
            "class_indices", [labels], loc, classes=classes, axis=insert))

    def reshaped_indices(self, labels, logits, axis: int, loc):
        """class_indices(labels, x) {shape=...}: labels of unknown dims (Keras' (None, None)
        target) reshaped to the logits' shape with 1 on `axis`, the logits' symbolic dims
        read from the one graph input x they come from (a graph input ties no region); the
        count is checked when the function runs. None when the labels' dims are all known
        (the type rule saw their layout) or the logits' dims do not come from one input."""
        if all(isinstance(d, int) for d in labels.type.shape):
            return None
        shape, source = [], None
        for k, dim in enumerate(logits.type.shape):
            if k == axis or isinstance(dim, int):
                shape.append(1 if k == axis else dim)
                continue
            found = self.dim_sources.get(id(dim.root()))
            if found is None or (source is not None and found[0] is not source):
                return None
            source = found[0]
            shape.append(("dim", found[1]))
        if source is None:
            return None
        return self.shared("indices", (labels, logits), axis, lambda: self.op(
            "class_indices", [labels, source], loc, classes=logits.type.shape[axis],
            axis=axis, shape=tuple(shape)))

    def label_hits(self, labels, logits, axis: int, loc):
        """equal(arange(C), class_indices(labels)): bool in the logits' shape, True at each
        position's label (None as class_indices)."""
        indices = self.class_indices(labels, logits, axis, loc)
        if indices is None:
            return None
        rank = logits.type.ndim - axis
        return self.shared("hits", (labels, logits), axis, lambda: self.op(
            "equal", [self.class_index(logits.type.shape[axis], rank, "int32", loc), indices],
            loc))

    def class_index(self, classes: int, rank: int, dtype: str, loc):
        """arange(classes) along the first of `rank` trailing axes (1 on the others)."""
        values = np.arange(classes, dtype=dtype).reshape((classes,) + (1,) * (rank - 1))
        return constant(values, location=loc)

    def spread(self, g, axis: int, loc):
        """A loss cotangent broadcastable against the tensor the loss reduced over `axis`."""
        if g.type.ndim == 0:
            return g
        uniform = self.uniform(g)
        if uniform is not None:
            return uniform
        return self.op("expand_dims", [g], loc, axis=axis)

    def uniform(self, g):
        """A 0-d value every element of g equals (a spread scalar, scaled by scalars), or None."""
        node = g.node
        if node is None or node.op.leaf:
            return None
        name = node.op.name
        if name in ("broadcast_like", "unreduce") and node.inputs[0].type.ndim == 0:
            return node.inputs[0]
        if name in ("mul", "div", "add", "sub") and g.type.dtype == node.inputs[0].type.dtype:
            parts = [x if x.type.ndim == 0 else self.uniform(x) for x in node.inputs]
            if all(p is not None for p in parts) and parts[0].type.dtype == parts[1].type.dtype:
                return self.op(name, parts, node.location)
        if name == "neg":
            inner = self.uniform(node.inputs[0])
            return None if inner is None else self.op("neg", [inner], node.location)
        return None


def _float(value) -> bool:
    return value.type.dtype.startswith("float")


def _all_float(node, inputs) -> bool:
    """Every input and output of one float dtype (the decompositions compute in it)."""
    dtypes = {v.type.dtype for v in inputs} | {v.type.dtype for v in node.outputs}
    return len(dtypes) == 1 and dtypes.pop().startswith("float")


def _dim_sources(graph: Graph) -> dict:
    """id(symbol root) -> (graph input, axis) for every symbolic dim of a graph input."""
    sources: dict = {}
    for value in graph.inputs:
        for axis, dim in enumerate(value.type.shape):
            if not isinstance(dim, int):
                sources.setdefault(id(dim.root()), (value, axis))
    return sources


# --- the rules: (decomposer, node, new inputs) -> replacement value or None -----------------

def _softmax(d, node, inputs):
    return d.softmax(inputs[0], node.attrs["axis"], node.location)


def _log_softmax(d, node, inputs):
    return d.log_softmax(inputs[0], node.attrs["axis"], node.location)


def _softmax_grad(d, node, inputs):
    y, g = inputs
    loc, axis = node.location, node.attrs["axis"]
    product = d.op("mul", [g, y], loc)
    total = d.op("reduce_sum", [product], loc, axes=(axis,), keepdims=True)
    return d.op("sub", [product, d.op("mul", [y, total], loc)], loc)


def _softmax_cross_entropy(d, node, inputs):
    target, logits = inputs
    loc, axis = node.location, node.attrs["axis"]
    picked = d.op("mul", [target, d.log_softmax(logits, axis, loc)], loc)
    return d.op("neg", [d.op("reduce_sum", [picked], loc, axes=(axis,), keepdims=False)], loc)


def _softmax_cross_entropy_grad(d, node, inputs):
    """(softmax * sum(target) - target) * g, as the hand kernel computes it."""
    target, logits, g = inputs
    loc, axis = node.location, node.attrs["axis"]
    mass = d.op("reduce_sum", [target], loc, axes=(axis,), keepdims=True)
    unit = d.op("sub", [d.op("mul", [d.softmax(logits, axis, loc), mass], loc), target], loc)
    return d.op("mul", [unit, d.spread(g, axis, loc)], loc)


def _sparse_softmax_cross_entropy(d, node, inputs):
    """log(sum(exps)) - shifted[label]: the kernel's -log_softmax[label], the same roundings."""
    labels, logits = inputs
    loc, axis = node.location, node.attrs["axis"]
    if not _float(logits):
        return None
    indices = d.class_indices(labels, logits, axis, loc)
    if indices is None:
        return None
    shifted, _, total = d.softmax_parts(logits, axis, loc)
    picked = d.op("reduce_pick", [shifted, indices], loc, axes=(axis,), keepdims=True)
    loss = d.op("sub", [d.op("log", [total], loc), picked], loc)
    # The class axis is dropped outside the region (a view), so a mean of the loss stays
    # out of it: a region that also reduced over the rows could not run row by row (LLVM:
    # a training step's loss and gradient, 8.2 ms with the mean inside, 5.8 ms without,
    # 4096x1000). Inside, every value keeps the logits' rank: the NumPy lowering
    # evaluates large regions in blocks of rows.
    return d.op("squeeze", [loss], loc, axis=axis)


def _sparse_softmax_cross_entropy_grad(d, node, inputs):
    """(softmax - onehot) * g: the kernel subtracts 1 at the label, 0 elsewhere is exact."""
    labels, logits, g = inputs
    loc, axis = node.location, node.attrs["axis"]
    if not _float(logits) or g.type.dtype != logits.type.dtype:
        return None
    hits = d.label_hits(labels, logits, axis, loc)
    if hits is None:
        return None
    onehot = d.op("cast", [hits], loc, dtype=logits.type.dtype)
    unit = d.op("sub", [d.softmax(logits, axis, loc), onehot], loc)
    return d.op("mul", [unit, d.spread(g, axis, loc)], loc)


def _one_hot(d, node, inputs):
    """cast(equal(arange(C), i[..., None]), float32); out-of-range indices match nothing (a
    zero row, as the kernel gives). Index dtypes that cannot hold C - 1 stay whole."""
    indices = inputs[0]
    classes, dtype = node.attrs["num_classes"], indices.type.dtype
    if classes and classes - 1 > np.iinfo(dtype).max:
        return None
    loc = node.location
    column = d.op("expand_dims", [indices], loc, axis=indices.type.ndim)
    hits = d.op("equal", [d.class_index(classes, 1, dtype, loc), column], loc)
    return d.op("cast", [hits], loc, dtype=node.outputs[0].type.dtype)


def _l2_normalize(d, node, inputs):
    x = inputs[0]
    loc, axes, epsilon = node.location, node.attrs["axes"], node.attrs["epsilon"]
    squares = d.op("reduce_sum", [d.op("mul", [x, x], loc)], loc, axes=axes, keepdims=True)
    bounded = d.op("maximum", [squares, d.scalar(epsilon, x, loc)], loc)
    return d.op("div", [x, d.op("sqrt", [bounded], loc)], loc)


def _logsumexp(d, node, inputs):
    """log(sum(exp(x - m))) + m, m the max with infinities replaced by 0 (TensorFlow's rule).

    The max is taken once, keeping dims; without keepdims the peak added at the end is
    that small array reduced over its size-1 axes (a squeeze the region can hold)."""
    x = inputs[0]
    loc, axes, keepdims = node.location, node.attrs["axes"], node.attrs["keepdims"]
    peak = d.op("reduce_max", [x], loc, axes=axes, keepdims=True)
    finite = d.op("less", [d.op("abs", [peak], loc), d.scalar(np.inf, x, loc)], loc)
    shift = d.op("switch", [finite, peak, d.scalar(0, x, loc)], loc)
    exps = d.op("exp", [d.op("sub", [x, shift], loc)], loc)
    total = d.op("reduce_sum", [exps], loc, axes=axes, keepdims=keepdims)
    if not keepdims:
        shift = d.op("reduce_max", [shift], loc, axes=axes, keepdims=False)
    return d.op("add", [d.op("log", [total], loc), shift], loc)


def _variance(d, x, axes, keepdims, loc):
    mean = d.op("reduce_mean", [x], loc, axes=axes, keepdims=True)
    centered = d.op("sub", [x, mean], loc)
    squares = d.op("mul", [centered, centered], loc)
    return d.op("reduce_mean", [squares], loc, axes=axes, keepdims=keepdims)


def _reduce_var(d, node, inputs):
    return _variance(d, inputs[0], node.attrs["axes"], node.attrs["keepdims"], node.location)


def _reduce_std(d, node, inputs):
    variance = _variance(d, inputs[0], node.attrs["axes"], node.attrs["keepdims"],
                         node.location)
    return d.op("sqrt", [variance], node.location)


def _bias_add(d, node, inputs):
    """bias_add is an add when broadcasting already aligns the bias with x's channels (a
    vector on the last axis, or one example's shape); channels_first stays whole."""
    x, bias = inputs
    last = bias.type.ndim == 1 and node.attrs["axis"] == x.type.ndim - 1
    if last or bias.type.ndim == x.type.ndim - 1:
        return d.op("add", [x, bias], node.location)
    return None


def _unreduce(d, node, inputs):
    """unreduce(g, like) is broadcast_like(g, like) when broadcasting already aligns g's axes."""
    g, like = inputs
    axes, keepdims = node.attrs["axes"], node.attrs["keepdims"]
    leading = axes == tuple(range(len(axes)))
    if keepdims or g.type.ndim == 0 or leading:
        return d.op("broadcast_like", [g, like], node.location)
    return None


def _reduced_size(d, node, inputs):
    """The count read from a graph input's dim (not from an intermediate, a false dependency)."""
    x = inputs[0]
    if x in d.graph.inputs:
        return None
    axes, dtype = node.attrs["axes"], node.attrs["dtype"]
    dims = [x.type.shape[a] for a in axes]
    symbols = [dim for dim in dims if not isinstance(dim, int)]
    if len(symbols) != 1 or id(symbols[0].root()) not in d.dim_sources:
        return None
    source, axis = d.dim_sources[id(symbols[0].root())]
    count = d.op("reduced_size", [source], node.location, axes=(axis,), dtype=dtype)
    factor = int(np.prod([dim for dim in dims if isinstance(dim, int)], dtype=np.int64))
    if factor == 1:
        return count
    return d.op("mul", [count, constant(np.asarray(factor, dtype=dtype), location=node.location)],
                node.location)


_RULES = {
    "softmax": _softmax, "log_softmax": _log_softmax, "softmax_grad": _softmax_grad,
    "softmax_cross_entropy": _softmax_cross_entropy,
    "softmax_cross_entropy_grad": _softmax_cross_entropy_grad,
    "sparse_softmax_cross_entropy": _sparse_softmax_cross_entropy,
    "sparse_softmax_cross_entropy_grad": _sparse_softmax_cross_entropy_grad,
    "one_hot": _one_hot,
    "l2_normalize": _l2_normalize, "reduce_logsumexp": _logsumexp,
    "reduce_var": _reduce_var, "reduce_std": _reduce_std,
    "unreduce": _unreduce, "reduced_size": _reduced_size, "bias_add": _bias_add,
}
# Any dtype: they move shapes, not values (bias_add is an add in x's own dtype), or they
# check the dtypes themselves (integer labels and indices beside float logits).
_OWN_DTYPE_RULES = {"unreduce", "reduced_size", "bias_add", "sparse_softmax_cross_entropy",
                    "sparse_softmax_cross_entropy_grad", "one_hot"}

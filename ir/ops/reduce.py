"""Reductions and scans: sum, prod, mean, var, std, max, min, any, all, logsumexp,
argmax, argmin, cumsum and cumprod, with TensorFlow's dtype rules.

Every reduction shares one type rule: attributes `axes` (sorted, distinct,
non-negative ints; the constructors normalize Keras' int / list / negative /
None argument into this canonical form so equal reductions compare equal for
CSE) and `keepdims`. Dtypes are preserved as TensorFlow preserves them (a sum
of int32 is int32), which is why the kernels pass `dtype=` to NumPy.

Gradients broadcast the cotangent back over the reduced axes with `unreduce`,
the transpose of `reduce_sum`, so they are right for symbolic dims too.
"""
from __future__ import annotations

import math

import numpy as np

from ..dtypes import is_floating, require_float, require_numeric
from ..errors import located
from ..shapes import ShapeError, format_shape, merge_shapes, normalize_axes
from ..source import user_location
from ..types import TensorType
from . import elementwise as ew
from .leaf import as_value, constant
from .axes import check_canonical_axes, check_canonical_axis, user_axis
from .registry import NOT_DIFFERENTIABLE, REQUIRED, OpDef, Sample, apply, register

# --- the shared type rule -----------------------------------------------------------


def reduction_axes(axis, ndim: int) -> tuple[int, ...]:
    """Keras' axis argument as canonical axes; on a scalar, axis 0 reduces nothing."""
    if isinstance(axis, np.integer):
        axis = int(axis)
    axes = normalize_axes(axis, ndim)
    return axes if ndim else ()


def reduced_shape(shape: tuple, axes: tuple, keepdims: bool) -> tuple:
    """`shape` with `axes` removed, or set to 1 with `keepdims`."""
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _user_axes(op_name: str, x, axis) -> tuple[int, ...]:
    """reduction_axes, with an out-of-range axis reported like a type-rule error."""
    try:
        return reduction_axes(axis, x.type.ndim)
    except ShapeError as error:
        raise located(error, op_name, user_location(), f" (given {x.type})") from None


# --- dtype rules ------------------------------------------------------------------------


def _numeric(op_name: str):
    """Same dtype as the input; bool is rejected, as TensorFlow rejects it."""
    return lambda dtype: require_numeric(dtype, f"the input of {op_name}")


def _floating(op_name: str):
    return lambda dtype: require_float(dtype, f"the input of {op_name}")


def _same(dtype: str) -> str:
    return dtype


def _boolean(dtype: str) -> str:
    return "bool"


# --- kernels ------------------------------------------------------------------------------


def _sum(x, axes, keepdims):
    return np.asarray(np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype))


def _prod(x, axes, keepdims):
    return np.asarray(np.prod(x, axis=axes, keepdims=keepdims, dtype=x.dtype))


def _count(shape: tuple, axes: tuple) -> int:
    # math.prod of Python ints: exact, and a few us less than np.prod of a list per call
    # (a training step's mean over the batch asks for it every call)
    return math.prod(shape[a] for a in axes)


def _integer_mean(x, axes, keepdims):
    """TensorFlow's integer mean: truncated toward zero (summed in int64 to avoid overflow)."""
    total = np.sum(x, axis=axes, keepdims=keepdims, dtype=np.int64)
    quotient = np.abs(total) // max(_count(x.shape, axes), 1)  # an empty mean is 0
    return np.asarray(np.where(total < 0, -quotient, quotient).astype(x.dtype))


def _mean(x, axes, keepdims):
    if not is_floating(x.dtype.name):
        return _integer_mean(x, axes, keepdims)
    return np.asarray(np.mean(x, axis=axes, keepdims=keepdims), dtype=x.dtype)


def _var(x, axes, keepdims):
    """mean((x - mean(x))**2), as Keras' TensorFlow backend computes it (ints truncate)."""
    if not is_floating(x.dtype.name):
        centered = x.astype(np.int64) - _integer_mean(x, axes, True)
        return _integer_mean(centered * centered, axes, keepdims).astype(x.dtype)
    return np.asarray(np.var(x, axis=axes, keepdims=keepdims), dtype=x.dtype)


def _std(x, axes, keepdims):
    return np.asarray(np.std(x, axis=axes, keepdims=keepdims), dtype=x.dtype)


def _extreme(dtype: np.dtype, largest: bool):
    """The identity of max (largest=False) or min: what an empty reduction gives in TF."""
    if dtype.kind == "b":
        return largest
    if dtype.kind == "f":
        return np.inf if largest else -np.inf
    info = np.iinfo(dtype)
    return info.max if largest else info.min


def _max(x, axes, keepdims):
    return np.asarray(np.max(x, axis=axes, keepdims=keepdims, initial=_extreme(x.dtype, False)))


def _min(x, axes, keepdims):
    return np.asarray(np.min(x, axis=axes, keepdims=keepdims, initial=_extreme(x.dtype, True)))


def _any(x, axes, keepdims):
    return np.asarray(np.any(x, axis=axes, keepdims=keepdims))


def _all(x, axes, keepdims):
    return np.asarray(np.all(x, axis=axes, keepdims=keepdims))


def _logsumexp(x, axes, keepdims):
    """log(sum(exp(x - m))) + m with m the max, replaced by 0 where it is infinite
    (TensorFlow's rule), so large inputs do not overflow and all -inf gives -inf."""
    peak = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    peak = np.where(np.isfinite(peak), peak, np.zeros((), x.dtype))
    with np.errstate(divide="ignore"):  # log(0) is the right -inf
        result = np.log(np.sum(np.exp(x - peak), axis=axes, keepdims=True)) + peak
    if not keepdims:
        result = np.squeeze(result, axis=axes)
    return np.asarray(result, dtype=x.dtype)


def _argmax(x, axis):
    return np.asarray(np.argmax(x, axis=axis), dtype=np.int64)


def _argmin(x, axis):
    return np.asarray(np.argmin(x, axis=axis), dtype=np.int64)


def _scan(accumulate):
    """A cumulative kernel along one axis, from the end when `reverse`."""
    def kernel(x, axis, reverse):
        if not reverse:
            return accumulate(x, axis=axis, dtype=x.dtype)
        flipped = accumulate(np.flip(x, axis), axis=axis, dtype=x.dtype)
        return np.ascontiguousarray(np.flip(flipped, axis))
    return kernel


def _unreduce(g, like, axes, keepdims):
    if not keepdims:
        g = np.expand_dims(g, axes)
    # A read-only broadcast view: no copy (kernels never write into their inputs, and
    # codegen copies views before handing them out).
    return np.broadcast_to(g, np.shape(like))


def _reduced_size(x, axes, dtype):
    return np.asarray(_count(x.shape, axes), dtype=dtype)


# --- registration ---------------------------------------------------------------------------


def _reduction_infer(dtype_rule):
    def infer(x, axes, keepdims):
        check_canonical_axes(axes, x.ndim)
        return TensorType(dtype_rule(x.dtype), reduced_shape(x.shape, axes, keepdims))
    return infer


_FLOAT_SAMPLES = (Sample(((3, 4),), {"axes": (1,)}),
                  Sample(((2, 3, 4),), {"axes": (0, 2), "keepdims": True}),
                  Sample(((3, 4),), {"axes": (0, 1)}))
_INT_SAMPLE = Sample(((3, 4),), {"axes": (0,)}, dtypes=("int32",))


def define_reduction(name: str, kernel, grad, dtype_rule, samples=_FLOAT_SAMPLES, doc=""):
    """Register a reduction over `axes` and return its constructor `op(x, axis, keepdims)`."""
    register(OpDef(name, "reduce", infer=_reduction_infer(dtype_rule), kernel=kernel,
                   attrs={"axes": REQUIRED, "keepdims": False}, grad=grad, samples=samples,
                   doc=doc))

    def construct(x, axis=None, keepdims=False):
        x = as_value(x)
        return apply(name, [x], axes=_user_axes(name, x, axis), keepdims=bool(keepdims))

    construct.__name__ = name
    construct.__doc__ = doc
    return construct


# --- gradient rules ----------------------------------------------------------------------


def _spread(node, g):
    """The cotangent `g` of a reduction node, broadcast back to its input's shape."""
    return unreduce(g, node.inputs[0], node.attrs["axes"], node.attrs["keepdims"])


def _scalar(number, like):
    """A 0-d constant of `like`'s dtype (switch's scalars would otherwise take the mask's)."""
    return constant(np.asarray(number, dtype=like.type.dtype))


def _size(node):
    """How many elements each output of a reduction node summarizes, in the input's dtype."""
    x, axes = node.inputs[0], node.attrs["axes"]
    dims = [x.type.shape[a] for a in axes]
    if all(isinstance(d, int) for d in dims):
        return _scalar(_count(tuple(x.type.shape), axes), x)
    return reduced_size(x, axes, dtype=x.type.dtype)


def _centered(node):
    """x - mean(x) over the node's axes, kept broadcastable to x."""
    x = node.inputs[0]
    return ew.sub(x, reduce_mean(x, node.attrs["axes"], keepdims=True))


def _prod_grad(node, g):
    """Exact with zeros: d prod / d x_i is prod / x_i without zeros in the group; with one
    zero it is the product of the others at that zero and 0 elsewhere; with more, 0."""
    x, axes = node.inputs[0], node.attrs["axes"]
    zero, one = _scalar(0, x), _scalar(1, x)
    is_zero = ew.equal(x, zero)
    safe = ew.switch(is_zero, one, x)
    nonzero_product = reduce_prod(safe, axes, keepdims=True)
    zeros = reduce_sum(ew.cast(is_zero, dtype=x.type.dtype), axes, keepdims=True)
    at_single_zero = ew.switch(ew.logical_and(is_zero, ew.equal(zeros, one)),
                               nonzero_product, zero)
    local = ew.switch(ew.equal(zeros, zero), ew.div(nonzero_product, safe), at_single_zero)
    return (ew.mul(_spread(node, g), local),)


def _extreme_grad(node, g):
    """To the positions that attain the max (or min), split evenly among ties (as TF does)."""
    x = node.inputs[0]
    hit = ew.cast(ew.equal(x, _spread(node, node.outputs[0])), dtype=x.type.dtype)
    ties = reduce_sum(hit, node.attrs["axes"], keepdims=True)
    return (ew.div(ew.mul(_spread(node, g), hit), ties),)


def _logsumexp_grad(node, g):
    weights = ew.exp(ew.sub(node.inputs[0], _spread(node, node.outputs[0])))  # softmax
    return (ew.mul(_spread(node, g), weights),)


def _cumprod_grad(node, g):
    """sum over j >= i of g_j y_j / x_i (a reverse cumsum); x must be free of zeros."""
    axis, reverse = node.attrs["axis"], node.attrs["reverse"]
    later = cumsum(ew.mul(g, node.outputs[0]), axis, reverse=not reverse)
    return (ew.div(later, node.inputs[0]),)


reduce_sum = define_reduction(
    "reduce_sum", _sum, lambda n, g: (_spread(n, g),), _numeric("sum"),
    samples=_FLOAT_SAMPLES + (_INT_SAMPLE,), doc="Sum over axes; ints stay in their dtype.")
reduce_prod = define_reduction(
    "reduce_prod", _prod, _prod_grad, _numeric("prod"),
    samples=_FLOAT_SAMPLES + (_INT_SAMPLE,), doc="Product over axes.")
reduce_mean = define_reduction(
    "reduce_mean", _mean, lambda n, g: (ew.div(_spread(n, g), _size(n)),), _numeric("mean"),
    samples=_FLOAT_SAMPLES + (_INT_SAMPLE,),
    doc="Mean over axes; of ints, an int truncated toward zero (TensorFlow's rule).")
reduce_var = define_reduction(
    "reduce_var", _var,
    lambda n, g: (ew.mul(_spread(n, g), ew.div(ew.mul(_centered(n), 2), _size(n))),),
    _numeric("var"), samples=_FLOAT_SAMPLES + (_INT_SAMPLE,),
    doc="Population variance mean((x - mean(x))**2) over axes.")
reduce_std = define_reduction(
    "reduce_std", _std,
    lambda n, g: (ew.mul(_spread(n, ew.div(g, n.outputs[0])), ew.div(_centered(n), _size(n))),),
    _floating("std"),
    doc="sqrt of the population variance; its gradient is infinite where std is 0.")
reduce_max = define_reduction(
    "reduce_max", _max, _extreme_grad, _same, samples=_FLOAT_SAMPLES + (_INT_SAMPLE,),
    doc="Max over axes; an empty reduction gives the dtype's lowest value (-inf for floats).")
reduce_min = define_reduction(
    "reduce_min", _min, _extreme_grad, _same, samples=_FLOAT_SAMPLES + (_INT_SAMPLE,),
    doc="Min over axes; an empty reduction gives the dtype's highest value (inf for floats).")
_LOGIC_SAMPLES = (Sample(((3, 4),), {"axes": (1,)}, dtypes=("bool",)),
                  Sample(((2, 3, 4),), {"axes": (0, 2), "keepdims": True}, dtypes=("int32",)))
reduce_any = define_reduction(
    "reduce_any", _any, NOT_DIFFERENTIABLE, _boolean, samples=_LOGIC_SAMPLES,
    doc="Logical or over axes of x != 0, a bool tensor.")
reduce_all = define_reduction(
    "reduce_all", _all, NOT_DIFFERENTIABLE, _boolean, samples=_LOGIC_SAMPLES,
    doc="Logical and over axes of x != 0, a bool tensor.")
reduce_logsumexp = define_reduction(
    "reduce_logsumexp", _logsumexp, _logsumexp_grad, _floating("logsumexp"),
    doc="log(sum(exp(x))) over axes, computed without overflow.")


def _argreduce_infer(op_name):
    def infer(x, axis):
        check_canonical_axis(axis, x.ndim, op_name)
        return TensorType("int64", reduced_shape(x.shape, (axis,), False))
    return infer


def _define_argreduce(name: str, kernel, doc: str):
    register(OpDef(name, "reduce", infer=_argreduce_infer(name), kernel=kernel,
                   attrs={"axis": REQUIRED}, grad=NOT_DIFFERENTIABLE, doc=doc,
                   samples=(Sample(((3, 4),), {"axis": 1}), Sample(((2, 3, 4),), {"axis": 0}))))

    def construct(x, axis=-1):
        x = as_value(x)
        return apply(name, [x], axis=user_axis(name, x, axis))

    construct.__name__ = name
    construct.__doc__ = doc
    return construct


argmax = _define_argreduce("argmax", _argmax, "Index (int64) of the first max along axis.")
argmin = _define_argreduce("argmin", _argmin, "Index (int64) of the first min along axis.")


def _scan_infer(op_name):
    dtype_rule = _numeric(op_name)

    def infer(x, axis, reverse):
        check_canonical_axis(axis, x.ndim, op_name)
        return TensorType(dtype_rule(x.dtype), x.shape)
    return infer


def _define_scan(name: str, kernel, grad, samples, doc: str):
    register(OpDef(name, "reduce", infer=_scan_infer(name), kernel=kernel,
                   attrs={"axis": REQUIRED, "reverse": False}, grad=grad, samples=samples,
                   doc=doc))

    def construct(x, axis=0, reverse=False):
        x = as_value(x)
        return apply(name, [x], axis=user_axis(name, x, axis), reverse=bool(reverse))

    construct.__name__ = name
    construct.__doc__ = doc
    return construct


def _scan_samples(low=-2.0):
    return (Sample(((3, 4),), {"axis": 1}, low=low),
            Sample(((2, 3, 4),), {"axis": 0, "reverse": True}, low=low),
            Sample(((3, 4),), {"axis": 1}, dtypes=("int32",)))


cumsum = _define_scan(
    "cumsum", _scan(np.cumsum),
    lambda n, g: (cumsum(g, n.attrs["axis"], reverse=not n.attrs["reverse"]),),
    _scan_samples(), "Running sum along axis (from the end with reverse).")
cumprod = _define_scan(
    "cumprod", _scan(np.cumprod), _cumprod_grad, _scan_samples(low=0.5),
    "Running product along axis (from the end with reverse); its gradient divides by x, "
    "so it is not defined where x has zeros.")


# --- helpers for the gradient rules ---------------------------------------------------------


def _unreduce_infer(g, like, axes, keepdims):
    check_canonical_axes(axes, like.ndim)
    merge_shapes(g.shape, reduced_shape(like.shape, axes, keepdims),
                 f"the cotangent and what {format_shape(like.shape)} reduces to over "
                 f"axes {axes}")
    return TensorType(g.dtype, like.shape)


register(OpDef(
    "unreduce", "reduce", infer=_unreduce_infer, kernel=_unreduce, view=True,
    attrs={"axes": REQUIRED, "keepdims": False},
    grad=lambda n, g: (reduce_sum(g, n.attrs["axes"], n.attrs["keepdims"]), None),
    samples=(Sample(((3,), (3, 4)), {"axes": (1,)}, differentiable_inputs=(0,)),
             Sample(((1, 3, 1), (2, 3, 4)), {"axes": (0, 2), "keepdims": True},
                    differentiable_inputs=(0,))),
    doc="g, the result of reducing like over axes, broadcast back to like's shape "
        "(the transpose of reduce_sum)."))

def _reduced_size_infer(x, axes, dtype):
    check_canonical_axes(axes, x.ndim)
    return TensorType(dtype, ())


register(OpDef(
    "reduced_size", "reduce", infer=_reduced_size_infer,
    kernel=_reduced_size, attrs={"axes": REQUIRED, "dtype": "float32"},
    grad=NOT_DIFFERENTIABLE,
    samples=(Sample(((3, 4),), {"axes": (0,), "dtype": "float64"}),),
    doc="The number of elements reducing x over axes gathers, at run time (for unknown dims)."))


def unreduce(g, like, axes, keepdims: bool = False):
    return apply("unreduce", [g, like], axes=tuple(axes), keepdims=bool(keepdims))


def reduced_size(x, axes, dtype: str = "float32"):
    return apply("reduced_size", [x], axes=tuple(axes), dtype=dtype)

"""Shape ops: ops that select, move or copy elements without computing on them.

Reshapes, transposes, concatenation, tiling, and the
ops that read a tensor's runtime shape (`shape_of`, `size_of`). Attributes
are plain Python: a reshape target may copy an input dim by position
(`("dim", 0)`), so `(?0,5,2) -> (("dim", 0), -1)` keeps the symbol `?0`
without putting a SymDim in an attribute. Gradient rules that need the
input's runtime shape take the input itself as a "like" argument
(`reshape_like(g, x)`, `getitem_grad(g, x)`), as `sum_to` does, so they are
right for symbolic dims too.

Kernels return NumPy views where NumPy does (reshape, transpose, basic
indexing, flip): callers must not write into a kernel's result in place.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..dtypes import DTypeError, as_dtype, is_integer, promote, require_numeric
from ..graph import Value
from ..shapes import (ShapeError, SymbolicSize, SymDim, format_shape, merge_shapes, normalize_axis,
                      scaled_dim)
from ..types import TensorType
from . import elementwise as ew
from .axes import user_axis
from .indexing import getitem, take_slice
from .kernels import as_array
from .registry import NOT_DIFFERENTIABLE, REQUIRED, OpDef, Sample, apply, register



# Kernels that return NumPy views of their first input rather than new arrays.
_VIEW_OPS = {"reshape", "reshape_dynamic", "reshape_like", "transpose", "expand_dims",
             "squeeze", "reverse"}


def _op(name: str, infer, kernel, grad, samples, attrs=None, doc: str = "") -> None:
    register(OpDef(name, "shape", infer=infer, kernel=kernel, attrs=attrs or {}, grad=grad,
                   samples=samples, doc=doc, view=name in _VIEW_OPS))


# --- the runtime shape ------------------------------------------------------------

_op("shape_of",
    infer=lambda x: TensorType("int32", (x.ndim,)),
    kernel=lambda x: np.array(x.shape, dtype=np.int32),
    grad=NOT_DIFFERENTIABLE,
    samples=(Sample(((3, 4),)), Sample(((),))),
    doc="The runtime shape of x as an int32 vector (K.shape).")

_op("size_of",
    infer=lambda x: TensorType("int32", ()),
    kernel=lambda x: np.asarray(x.size, dtype=np.int32),
    grad=NOT_DIFFERENTIABLE,
    samples=(Sample(((3, 4),)),),
    doc="The runtime number of elements of x as an int32 scalar (K.size).")


def shape_of(x: Value) -> Value:
    return apply("shape_of", [x])


def size_of(x: Value) -> Value:
    return apply("size_of", [x])


def _full_like_infer(x, value, dtype):
    return TensorType(dtype or x.dtype, x.shape)


def _full_like_kernel(x, value, dtype):
    return np.full(x.shape, value, dtype=dtype or x.dtype)


_op("full_like", _full_like_infer, _full_like_kernel, NOT_DIFFERENTIABLE,
    attrs={"value": REQUIRED, "dtype": None},
    samples=(Sample(((3, 4),), {"value": 1.5, "dtype": "float64"}),
             Sample(((3, 4),), {"value": 0, "dtype": "int32"})),
    doc="A tensor of x's runtime shape filled with `value` (zeros_like, ones_like).")


def full_like(x: Value, value, dtype=None) -> Value:
    """x's runtime shape filled with `value`; dtype defaults to x's."""
    return apply("full_like", [x], value=value, dtype=as_dtype(dtype or x.type.dtype))


# --- reshapes ----------------------------------------------------------------------
#
# A static reshape target holds ints, at most one -1, and ("dim", i): "the
# input's dim i", which keeps a symbolic size exactly.

def _target_text(x_shape, target) -> str:
    return format_shape(tuple(x_shape[t[1]] if isinstance(t, tuple) else t for t in target))


def _size_text(size: SymbolicSize) -> str:
    factors = [str(size.factor)] if size.factor != 1 or not size.symbols else []
    factors += [str(s) if n == 1 else f"{s}^{n}" for s, n in size.symbols.items()]
    return "*".join(factors)


def _resolve_target(x: TensorType, target, unknown_ok: bool):
    """Dims of the target (None for -1 or runtime slots) and the positions of the unknowns."""
    dims, unknown = [], []
    for position, item in enumerate(target):
        if isinstance(item, tuple):
            dims.append(x.shape[normalize_axis(item[1], x.ndim, "copied dim")])
        elif item is None or item == -1:
            dims.append(None)
            unknown.append(position)
        elif not isinstance(item, int) or item < 0:
            raise ShapeError(f"reshape target {target} has an invalid size {item!r}")
        else:
            dims.append(item)
    if len(unknown) > 1 and not unknown_ok:
        raise ShapeError(f"reshape target {target} has more than one -1")
    return dims, unknown


def _reshaped(x: TensorType, target, unknown_ok: bool = False) -> tuple:
    """The output shape of reshaping x to target, checking element counts where known."""
    dims, unknown = _resolve_target(x, target, unknown_ok)
    total = SymbolicSize(x.shape)
    given = SymbolicSize([d for d in dims if d is not None])
    comparable = total.symbols == given.symbols
    if not unknown:
        if comparable and total.factor != given.factor:
            raise _size_error(x, target, total, given)
        return tuple(dims)
    if comparable and (given.factor == 0 or total.factor % given.factor):
        raise _size_error(x, target, total, given)
    for position in unknown:
        dims[position] = SymDim()
    if len(unknown) == 1:
        quotient = total.divide(given)
        if quotient is not None:
            dims[unknown[0]] = quotient
    return tuple(dims)


def _size_error(x, target, total, given) -> ShapeError:
    return ShapeError(f"cannot reshape a tensor of shape {format_shape(x.shape)} "
                      f"({_size_text(total)} elements) into shape {_target_text(x.shape, target)}"
                      f" ({_size_text(given)} elements{' times the -1' if -1 in target else ''})")


@lru_cache(maxsize=4096)
def _copies_dims(target) -> bool:
    return any(isinstance(t, tuple) for t in target)


def _reshape_kernel(x, shape):
    if _copies_dims(shape):
        shape = tuple(x.shape[t[1]] if isinstance(t, tuple) else t for t in shape)
    return x.reshape(shape)


def _reshape_dynamic_infer(x, shape, known):
    if shape.ndim != 1 or not is_integer(shape.dtype) or not isinstance(shape.shape[0], int):
        raise ShapeError(f"a reshape target tensor must be an int vector of known length, "
                         f"got {shape}")
    if len(known) != shape.shape[0]:
        raise ShapeError(f"known sizes {known} do not match a target of length {shape.shape[0]}")
    return TensorType(x.dtype, _reshaped(x, known, unknown_ok=True))


def _reshape_like_infer(x, like):
    total, given = SymbolicSize(x.shape), SymbolicSize(like.shape)
    if total.symbols == given.symbols and total.factor != given.factor:
        raise ShapeError(f"cannot reshape a tensor of shape {format_shape(x.shape)} "
                         f"({_size_text(total)} elements) into shape {format_shape(like.shape)} "
                         f"({_size_text(given)} elements)")
    return TensorType(x.dtype, like.shape)


def _reshape_back(node, g):
    return (reshape_like(g, node.inputs[0]),) + (None,) * (len(node.inputs) - 1)


_op("reshape", lambda x, shape: TensorType(x.dtype, _reshaped(x, shape)), _reshape_kernel,
    _reshape_back, attrs={"shape": REQUIRED},
    samples=(Sample(((3, 4),), {"shape": (2, -1)}),
             Sample(((2, 3, 4),), {"shape": (("dim", 0), -1)}),
             Sample(((2, 6),), {"shape": (("dim", 0), 3, 2)})),
    doc="x with a new static shape: ints, one -1, and ('dim', i) copying x's dim i.")

_op("reshape_dynamic", _reshape_dynamic_infer,
    lambda x, shape, known: x.reshape(shape.tolist()), _reshape_back,
    attrs={"known": REQUIRED},
    samples=(Sample(((3, 4), (2,)), {"known": (None, 6)}, dtypes=("float64", "int32"),
                    make=lambda rng: [rng.uniform(-2, 2, (3, 4)), np.array([2, 6], np.int32)],
                    symbolic=False, differentiable_inputs=(0,)),),
    doc="x reshaped to a runtime int vector; `known` gives the sizes fixed at build time "
        "(None where only the runtime knows).")

_op("reshape_like", _reshape_like_infer, lambda x, like: x.reshape(like.shape), _reshape_back,
    samples=(Sample(((3, 4), (4, 3)), differentiable_inputs=(0,)),),
    doc="x reshaped to like's runtime shape (the gradient of every reshape).")


def reshape(x: Value, shape) -> Value:
    """Static reshape; `shape` holds ints, one -1 and ('dim', i) items."""
    return apply("reshape", [x], shape=tuple(shape))


def reshape_dynamic(x: Value, shape: Value, known) -> Value:
    return apply("reshape_dynamic", [x, shape], known=tuple(known))


def reshape_like(x: Value, like: Value) -> Value:
    return apply("reshape_like", [x, like])


# --- axis moves --------------------------------------------------------------------

def _transpose_infer(x, perm):
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError(f"perm {perm} is not a permutation of the {x.ndim} axes of a tensor of "
                         f"shape {format_shape(x.shape)}")
    return TensorType(x.dtype, tuple(x.shape[p] for p in perm))


_op("transpose", _transpose_infer, lambda x, perm: np.transpose(x, perm),
    lambda n, g: (transpose(g, tuple(np.argsort(n.attrs["perm"]).tolist())),),
    attrs={"perm": REQUIRED},
    samples=(Sample(((2, 3, 4),), {"perm": (2, 0, 1)}), Sample(((3, 4),), {"perm": (1, 0)})),
    doc="Axes permuted: output axis i is input axis perm[i].")


def transpose(x: Value, perm=None) -> Value:
    """Axes permuted by `perm` (all axes reversed when None)."""
    perm = tuple(range(x.type.ndim))[::-1] if perm is None else tuple(perm)
    return apply("transpose", [x], perm=perm)


def _expand_dims_infer(x, axis):
    axis = normalize_axis(axis, x.ndim + 1)
    return TensorType(x.dtype, x.shape[:axis] + (1,) + x.shape[axis:])


def _squeeze_infer(x, axis):
    axis = normalize_axis(axis, x.ndim)
    dim = x.shape[axis]
    if isinstance(dim, int) and dim != 1:
        raise ShapeError(f"cannot squeeze axis {axis} of shape {format_shape(x.shape)}: "
                         f"its size is {dim}, not 1")
    return TensorType(x.dtype, x.shape[:axis] + x.shape[axis + 1:])


def _reverse_infer(x, axes):
    for axis in axes:
        normalize_axis(axis, x.ndim)
    return x


_op("expand_dims", _expand_dims_infer, lambda x, axis: np.expand_dims(x, axis), _reshape_back,
    attrs={"axis": REQUIRED},
    samples=(Sample(((3, 4),), {"axis": 1}), Sample(((3, 4),), {"axis": -1})),
    doc="A new axis of size 1 at `axis` (counted in the output's axes).")

_op("squeeze", _squeeze_infer, lambda x, axis: np.squeeze(x, axis), _reshape_back,
    attrs={"axis": REQUIRED},
    samples=(Sample(((3, 1, 4),), {"axis": 1}), Sample(((3, 4, 1),), {"axis": -1})),
    doc="The size-1 axis `axis` removed.")

_op("reverse", _reverse_infer, lambda x, axes: np.flip(x, axes),
    lambda n, g: (reverse(g, n.attrs["axes"]),),
    attrs={"axes": REQUIRED},
    samples=(Sample(((2, 3, 4),), {"axes": (0, 2)}),),
    doc="x with the order of elements along `axes` reversed.")


def expand_dims(x: Value, axis: int = -1) -> Value:
    return apply("expand_dims", [x], axis=user_axis("expand_dims", x, axis, x.type.ndim + 1))


def squeeze(x: Value, axis: int) -> Value:
    return apply("squeeze", [x], axis=user_axis("squeeze", x, axis, x.type.ndim))


def reverse(x: Value, axes) -> Value:
    axes = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    normalized = {user_axis("reverse", x, a, x.type.ndim) for a in axes}
    return apply("reverse", [x], axes=tuple(sorted(normalized)))


# --- joining: concatenate and stack ----------------------------------------------------

def _common_dtype(types, what: str) -> str:
    dtypes = sorted({t.dtype for t in types})
    if len(dtypes) > 1:
        raise DTypeError(f"{what} needs tensors of one dtype, got {', '.join(dtypes)}")
    return dtypes[0]


def _merged_dims(types, skip: int | None, what: str) -> list:
    """Dims that must agree across `types` (all but axis `skip`), merged."""
    if len({t.ndim for t in types}) > 1:
        raise ShapeError(f"{what} needs tensors of one rank, got shapes "
                         + ", ".join(format_shape(t.shape) for t in types))
    dims = types[0].shape
    for t in types[1:]:
        dims = merge_shapes(dims, t.shape, what, except_axis=skip)
    return list(dims)


def _concatenate_infer(*types, axis):
    if not types:
        raise ShapeError("concatenate needs at least one tensor")
    if types[0].ndim == 0:
        raise ShapeError("cannot concatenate scalars; use stack")
    axis = normalize_axis(axis, types[0].ndim)
    dtype = _common_dtype(types, "concatenate")
    dims = _merged_dims(types, axis, f"concatenate along axis {axis}")
    sizes = [t.shape[axis] for t in types]
    if len(sizes) == 1:
        dims[axis] = sizes[0]
    elif all(isinstance(s, int) for s in sizes):
        dims[axis] = sum(sizes)
    else:
        dims[axis] = SymDim()
    return TensorType(dtype, dims)


def _axis_size(x: Value, axis: int):
    """x's size along axis: an int if known, else an int32 scalar tensor."""
    dim = x.type.shape[axis]
    return dim if isinstance(dim, int) else getitem(shape_of(x), axis)


def _offset_add(a, b):
    """a + b for offsets that are ints or int32 scalar tensors (0 + b is b)."""
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if isinstance(a, int) and a == 0:
        return b
    return ew.add(a, b)


def _concatenate_grad(node, g):
    """Each input's cotangent is its slice of g along the axis."""
    axis = node.attrs["axis"]
    grads, start = [], 0
    for x in node.inputs:
        stop = _offset_add(start, _axis_size(x, axis))
        grads.append(take_slice(g, axis, start, stop))
        start = stop
    return tuple(grads)


def _stack_infer(*types, axis):
    if not types:
        raise ShapeError("stack needs at least one tensor")
    axis = normalize_axis(axis, types[0].ndim + 1)
    dtype = _common_dtype(types, "stack")
    dims = _merged_dims(types, None, "stack")
    return TensorType(dtype, dims[:axis] + [len(types)] + dims[axis:])


def _stack_grad(node, g):
    before = (slice(None),) * node.attrs["axis"]
    return tuple(getitem(g, before + (k,)) for k in range(len(node.inputs)))


_op("concatenate", _concatenate_infer, lambda *xs, axis: np.concatenate(xs, axis=axis),
    _concatenate_grad, attrs={"axis": REQUIRED},
    samples=(Sample(((2, 3), (2, 4)), {"axis": 1}), Sample(((2, 3), (1, 3), (3, 3)), {"axis": 0}),
             Sample(((2, 3, 4),), {"axis": 1})),
    doc="Tensors joined along an existing axis.")

_op("stack", _stack_infer, lambda *xs, axis: np.stack(xs, axis=axis), _stack_grad,
    attrs={"axis": REQUIRED},
    samples=(Sample(((2, 3), (2, 3)), {"axis": 1}), Sample(((), (), ()), {"axis": 0})),
    doc="Tensors of one shape joined along a new axis.")


def concatenate(values, axis: int = -1) -> Value:
    values = list(values)
    if values and values[0].type.ndim:
        axis = user_axis("concatenate", values[0], axis, values[0].type.ndim)
    return apply("concatenate", values, axis=axis)


def stack(values, axis: int = 0) -> Value:
    values = list(values)
    if values:
        axis = user_axis("stack", values[0], axis, values[0].type.ndim + 1)
    return apply("stack", values, axis=axis)


# --- repeating: tile and repeat_elements -----------------------------------------------

def _tile_infer(x, reps):
    if len(reps) != x.ndim or any(not isinstance(r, int) or r < 0 for r in reps):
        raise ShapeError(f"tile needs one count >= 0 per axis of shape {format_shape(x.shape)}, "
                         f"got {reps}")
    return TensorType(x.dtype, tuple(scaled_dim(d, r) for d, r in zip(x.shape, reps)))


def _like_infer(g, like, **attrs):
    if g.ndim != like.ndim:
        raise ShapeError(f"cotangent {g} does not match the rank of {like}")
    return TensorType(g.dtype, like.shape)


def _tile_grad_kernel(g, like, reps):
    """Sum the tiles: view g as (r0, d0, r1, d1, ...) and sum the r axes."""
    blocks = tuple(n for r, d in zip(reps, like.shape) for n in (r, d))
    return as_array(g.reshape(blocks).sum(axis=tuple(range(0, len(blocks), 2)), dtype=g.dtype))


def _repeat_elements_infer(x, rep, axis):
    axis = normalize_axis(axis, x.ndim)
    if rep < 0:
        raise ShapeError(f"repeat count must be >= 0, got {rep}")
    return TensorType(x.dtype, x.shape[:axis] + (scaled_dim(x.shape[axis], rep),)
                      + x.shape[axis + 1:])


def _repeat_elements_grad_kernel(g, like, rep, axis):
    """Sum each run of `rep` copies: view the axis as (d, rep) and sum the rep axis."""
    shape = like.shape
    runs = g.reshape(shape[:axis] + (shape[axis], rep) + shape[axis + 1:])
    return runs.sum(axis=axis + 1, dtype=g.dtype)


_op("tile", _tile_infer, lambda x, reps: np.tile(x, reps),
    lambda n, g: (tile_grad(g, n.inputs[0], n.attrs["reps"]),),
    attrs={"reps": REQUIRED},
    samples=(Sample(((2, 3),), {"reps": (2, 1)}), Sample(((2, 3),), {"reps": (1, 3)})),
    doc="x repeated reps[i] times along each axis i (np.tile).")

_op("tile_grad", _like_infer, _tile_grad_kernel,
    lambda n, g: (tile(g, n.attrs["reps"]), None),
    attrs={"reps": REQUIRED},
    samples=(Sample(((4, 3), (2, 3)), {"reps": (2, 1)}, differentiable_inputs=(0,)),
             Sample(((2, 6), (2, 3)), {"reps": (1, 2)}, differentiable_inputs=(0,))),
    doc="The tiles of g summed into like's shape: the transpose of tile.")

def _tile_dynamic_infer(x, reps):
    if reps.ndim != 1 or not is_integer(reps.dtype) or reps.shape[0] != x.ndim:
        raise ShapeError(f"tile needs an int vector of {x.ndim} counts for shape "
                         f"{format_shape(x.shape)}, got {reps}")
    return TensorType(x.dtype, tuple(SymDim() for _ in x.shape))


def _tile_dynamic_grad_kernel(g, like, reps):
    return _tile_grad_kernel(g, like, tuple(int(r) for r in reps))


_op("tile_dynamic", _tile_dynamic_infer, lambda x, reps: np.tile(x, tuple(reps)),
    lambda n, g: (tile_dynamic_grad(g, *n.inputs), None),
    samples=(Sample(((2, 3), (2,)), dtypes=("float64", "int32"),
                    make=lambda rng: [rng.normal(size=(2, 3)), np.array([2, 1], np.int32)],
                    differentiable_inputs=(0,), symbolic=False),),
    doc="x repeated reps[i] times along each axis i, with reps known only at run time.")

_op("tile_dynamic_grad", lambda g, like, reps: _like_infer(g, like), _tile_dynamic_grad_kernel,
    lambda n, g: (tile_dynamic(g, n.inputs[2]), None, None),
    samples=(Sample(((4, 3), (2, 3), (2,)), dtypes=("float64", "float64", "int32"),
                    make=lambda rng: [rng.normal(size=(4, 3)), rng.normal(size=(2, 3)),
                                      np.array([2, 1], np.int32)],
                    differentiable_inputs=(0,), symbolic=False),),
    doc="The tiles of g summed into like's shape, reps known at run time.")

_op("repeat_elements", _repeat_elements_infer,
    lambda x, rep, axis: np.repeat(x, rep, axis=axis),
    lambda n, g: (repeat_elements_grad(g, n.inputs[0], n.attrs["rep"], n.attrs["axis"]),),
    attrs={"rep": REQUIRED, "axis": REQUIRED},
    samples=(Sample(((2, 3),), {"rep": 2, "axis": 1}), Sample(((2, 3),), {"rep": 3, "axis": 0})),
    doc="Each element repeated `rep` times along `axis` (np.repeat).")

_op("repeat_elements_grad", _like_infer, _repeat_elements_grad_kernel,
    lambda n, g: (repeat_elements(g, n.attrs["rep"], n.attrs["axis"]), None),
    attrs={"rep": REQUIRED, "axis": REQUIRED},
    samples=(Sample(((2, 6), (2, 3)), {"rep": 2, "axis": 1}, differentiable_inputs=(0,)),
             Sample(((6, 3), (2, 3)), {"rep": 3, "axis": 0}, differentiable_inputs=(0,))),
    doc="Runs of `rep` copies of g summed into like's shape: the transpose of repeat_elements.")


def tile_dynamic(x: Value, reps: Value) -> Value:
    return apply("tile_dynamic", [x, reps])


def tile_dynamic_grad(g: Value, like: Value, reps: Value) -> Value:
    return apply("tile_dynamic_grad", [g, like, reps])


def tile(x: Value, reps) -> Value:
    return apply("tile", [x], reps=tuple(int(r) for r in reps))


def tile_grad(g: Value, like: Value, reps) -> Value:
    return apply("tile_grad", [g, like], reps=tuple(reps))


def repeat_elements(x: Value, rep: int, axis: int) -> Value:
    axis = user_axis("repeat_elements", x, axis, x.type.ndim)
    return apply("repeat_elements", [x], rep=int(rep), axis=axis)


def repeat_elements_grad(g: Value, like: Value, rep: int, axis: int) -> Value:
    return apply("repeat_elements_grad", [g, like], rep=rep, axis=axis)


# --- ranges ----------------------------------------------------------------------------

def _arange_infer(start, stop, step):
    for t in (start, stop, step):
        if t.ndim != 0:
            raise ShapeError(f"arange bounds must be numeric scalars, got {t}")
        require_numeric(t.dtype, "an arange bound", "scalar")
    return TensorType(promote(start.dtype, stop.dtype, step.dtype), (SymDim(),))


def _arange_kernel(start, stop, step):
    dtype = np.result_type(start, stop, step)
    return np.arange(start, stop, step).astype(dtype, copy=False)


_op("arange", _arange_infer, _arange_kernel, NOT_DIFFERENTIABLE,
    samples=(Sample(((), (), ()), dtypes=("int32",) * 3,
                    make=lambda rng: [np.asarray(v, np.int32) for v in (1, 8, 2)]),),
    doc="start, start + step, ... up to (not including) stop, from runtime scalars.")


def arange(start: Value, stop: Value, step: Value) -> Value:
    return apply("arange", [start, stop, step])

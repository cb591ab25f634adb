"""Indexing ops: basic indexing (`x[key]`), gather and one_hot, with their gradients.

`getitem` takes a static key (ints, slices, newaxis; Ellipsis expanded) and
scalar int tensors as extra inputs; its gradient `getitem_grad` scatters g
into zeros shaped like x. `gather` picks rows along axis 0 and its gradient
adds rows back (np.add.at), so repeated indices accumulate.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..dtypes import DTypeError, is_integer, require_integer
from ..errors import located
from ..graph import Value
from ..shapes import ShapeError, SymDim, format_shape
from ..source import user_location
from ..types import TensorType
from .leaf import constant_value
from .kernels import as_array
from .registry import NOT_DIFFERENTIABLE, REQUIRED, OpDef, Sample, apply, register

FULL_SLICE = ("slice", None, None, None)
NEWAXIS = ("newaxis",)


def _op(name: str, infer, kernel, grad, samples, attrs=None, doc: str = "") -> None:
    register(OpDef(name, "indexing", infer=infer, kernel=kernel, attrs=attrs or {}, grad=grad,
                   samples=samples, doc=doc, view=name == "getitem"))

# --- basic indexing: x[key] ------------------------------------------------------------
#
# A key is stored as a tuple with one item per index position, Ellipsis
# expanded and trailing full slices dropped:
#   an int                             index (negative counts from the end)
#   ("input", k)                       index by the k-th scalar int input after x
#   ("slice", start, stop, step)       each bound an int, None or ("input", k)
#   ("newaxis",)                       a new axis of size 1

def _is_slice(item) -> bool:
    return isinstance(item, tuple) and item[0] == "slice"


def _input_refs(key) -> list[int]:
    refs = []
    for item in key:
        parts = item[1:] if _is_slice(item) else (item,)
        refs.extend(p[1] for p in parts if isinstance(p, tuple) and p[0] == "input")
    return refs


def _check_index_inputs(indices, key) -> None:
    refs = _input_refs(key)
    if sorted(refs) != list(range(len(indices))):
        raise ShapeError(f"key {key} refers to index inputs {sorted(refs)} but "
                         f"{len(indices)} are given")
    for t in indices:
        if t.ndim != 0 or not is_integer(t.dtype):
            raise DTypeError(f"tensor indices must be int scalars, got {t}")


def _sliced_dim(dim, item, axis: int):
    _, start, stop, step = item
    if step == 0:
        raise ShapeError(f"slice step on axis {axis} cannot be zero")
    dynamic = any(isinstance(b, tuple) for b in (start, stop, step))
    if isinstance(dim, int) and not dynamic:
        return len(range(dim)[slice(start, stop, step)])
    if start is None and stop is None and step in (None, 1, -1):
        return dim  # all of the axis, maybe reversed: the same size
    return SymDim()


def _indexed_shape(x: TensorType, key) -> tuple:
    shape, axis = [], 0
    for item in key:
        if item == NEWAXIS:
            shape.append(1)
            continue
        if axis >= x.ndim:
            consumed = sum(1 for i in key if i != NEWAXIS)
            raise ShapeError(f"too many indices ({consumed}) for a tensor of rank {x.ndim}")
        dim = x.shape[axis]
        if _is_slice(item):
            shape.append(_sliced_dim(dim, item, axis))
        elif isinstance(item, int) and isinstance(dim, int) and not -dim <= item < dim:
            raise ShapeError(f"index {item} is out of range for axis {axis} of size {dim} "
                             f"(shape {format_shape(x.shape)})")
        axis += 1
    return tuple(shape) + tuple(x.shape[axis:])


def _getitem_infer(x, *indices, key):
    _check_index_inputs(indices, key)
    return TensorType(x.dtype, _indexed_shape(x, key))


def _decode(item, indices):
    if isinstance(item, int):
        return item
    kind = item[0]
    if kind == "newaxis":
        return None
    if kind == "input":
        return int(indices[item[1]])
    return slice(*(int(indices[b[1]]) if isinstance(b, tuple) else b for b in item[1:]))


@lru_cache(maxsize=4096)
def _static_key(key) -> tuple:
    return tuple(_decode(item, ()) for item in key)


def _python_key(key, indices) -> tuple:
    """The NumPy index for a stored key (cached when no tensor index is involved)."""
    if not indices:
        return _static_key(key)
    return tuple(_decode(item, indices) for item in key)


def _getitem_kernel(x, *indices, key):
    return as_array(x[_python_key(key, indices)])


def _getitem_grad_infer(g, x, *indices, key):
    _check_index_inputs(indices, key)
    expected = _indexed_shape(x, key)
    if g.ndim != len(expected):
        raise ShapeError(f"cotangent of rank {g.ndim} does not fit x{list(key)} of rank "
                         f"{len(expected)}")
    return TensorType(g.dtype, x.shape)


def _getitem_grad_kernel(g, x, *indices, key):
    result = np.zeros(x.shape, dtype=g.dtype)
    result[_python_key(key, indices)] = g
    return result


def _getitem_grad(node, g):
    x, *indices = node.inputs
    return (getitem_grad(g, x, indices, node.attrs["key"]),) + (None,) * len(indices)


def _getitem_grad_grad(node, g):
    indices = node.inputs[2:]
    return (_apply_getitem(g, node.attrs["key"], indices), None) + (None,) * len(indices)


def _dynamic_index_sample(rng):
    return [rng.uniform(-2, 2, (4, 5)), np.asarray(-2, np.int32), np.asarray(1, np.int32)]


_op("getitem", _getitem_infer, _getitem_kernel, _getitem_grad, attrs={"key": REQUIRED},
    samples=(Sample(((4, 5),), {"key": (1, ("slice", None, None, -2))}),
             Sample(((4, 5, 3),), {"key": (FULL_SLICE, ("slice", 1, -1, None), NEWAXIS, -1)}),
             Sample(((4, 5), (), ()), {"key": (("slice", ("input", 1), None, None),
                                                ("input", 0))},
                    make=_dynamic_index_sample, differentiable_inputs=(0,))),
    doc="Basic indexing x[key]: ints, slices (any step), new axes, scalar int tensors.")

_op("getitem_grad", _getitem_grad_infer, _getitem_grad_kernel, _getitem_grad_grad,
    attrs={"key": REQUIRED},
    samples=(Sample(((3,), (4, 5)), {"key": (1, ("slice", None, None, -2))},
                    differentiable_inputs=(0,)),
             Sample(((4, 3), (4, 5)), {"key": (FULL_SLICE, ("slice", 1, 4, None))},
                    differentiable_inputs=(0,))),
    doc="Zeros shaped like x with g written at x[key]: the transpose of getitem.")


def _index_scalar(value, extras: list):
    """An index or slice bound in stored form; a tensor becomes an ("input", k) reference."""
    if value is None:
        return None
    if isinstance(value, Value):
        if value.type.ndim != 0 or not is_integer(value.type.dtype):
            raise TypeError(f"a tensor index must be an int scalar, got {value.type}")
        fixed = constant_value(value)
        if fixed is not None:
            return int(fixed)
        extras.append(value)
        return ("input", len(extras) - 1)
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"index {value!r}: booleans are not indices")
    if isinstance(value, (int, np.integer)) or (isinstance(value, np.ndarray) and value.ndim == 0
                                                and value.dtype.kind in "iu"):
        return int(value)
    raise TypeError(f"index {value!r} of type {type(value).__name__} is not supported: graphk "
                    "tensors take ints, slices, None, Ellipsis and int scalar tensors "
                    "(use K.gather to select with an array of indices)")


def encode_key(key, ndim: int) -> tuple[tuple, list]:
    """A Python index as (stored key, tensor inputs it refers to)."""
    key = key if isinstance(key, tuple) else (key,)
    extras: list = []
    items = []
    for k in key:
        if k is Ellipsis:
            items.append(Ellipsis)
        elif k is None:
            items.append(NEWAXIS)
        elif isinstance(k, slice):
            step = _index_scalar(k.step, extras)
            items.append(("slice", _index_scalar(k.start, extras), _index_scalar(k.stop, extras),
                          None if step == 1 else step))
        else:
            items.append(_index_scalar(k, extras))
    if items.count(Ellipsis) > 1:
        raise ShapeError("an index can have only one Ellipsis (...)")
    consumed = sum(1 for i in items if i is not Ellipsis and i != NEWAXIS)
    if consumed > ndim:
        raise ShapeError(f"too many indices ({consumed}) for a tensor of rank {ndim}")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at:at + 1] = [FULL_SLICE] * (ndim - consumed)
    while items and items[-1] == FULL_SLICE:
        items.pop()
    return tuple(items), extras


def _apply_getitem(x: Value, key: tuple, indices) -> Value:
    return apply("getitem", [x, *indices], key=key)


def getitem(x: Value, key) -> Value:
    """x[key] (Python indexing of a graph value)."""
    try:
        stored, extras = encode_key(key, x.type.ndim)
    except (ShapeError, TypeError) as error:
        raise located(error, "getitem", user_location(), f" (indexing {x.type})") from None
    return _apply_getitem(x, stored, extras)


def getitem_grad(g: Value, x: Value, indices, key: tuple) -> Value:
    return apply("getitem_grad", [g, x, *indices], key=key)


def take_slice(x: Value, axis: int, start, stop) -> Value:
    """x[..., start:stop, ...] on one axis; bounds are ints, None or int scalar tensors."""
    return getitem(x, (slice(None),) * axis + (slice(start, stop),))


# --- gathering by index ----------------------------------------------------------------

def _gather_infer(reference, indices):
    require_integer(indices.dtype, "gather indices")
    if reference.ndim == 0:
        raise ShapeError("gather needs a reference of rank >= 1, got a scalar")
    return TensorType(reference.dtype, indices.shape + reference.shape[1:])


def _gather_grad_infer(g, indices, like):
    require_integer(indices.dtype, "gather_grad indices")
    if g.ndim != indices.ndim + like.ndim - 1:
        raise ShapeError(f"cotangent {g} does not fit indices {indices} into {like}")
    return TensorType(g.dtype, like.shape)


def _gather_grad_kernel(g, indices, like):
    """Scatter-add: rows picked more than once get the sum of their cotangents."""
    result = np.zeros(like.shape, dtype=g.dtype)
    np.add.at(result, indices, g)
    return result


def _gather_sample(rng):
    return [rng.uniform(-2, 2, (5, 3)), rng.integers(-5, 5, (2, 4)).astype(np.int32)]


def _gather_grad_sample(rng):
    return [rng.uniform(-2, 2, (2, 4, 3)), rng.integers(0, 5, (2, 4)).astype(np.int32),
            rng.uniform(-2, 2, (5, 3))]


_op("gather", _gather_infer, lambda ref, indices: as_array(np.take(ref, indices, axis=0)),
    lambda n, g: (gather_grad(g, n.inputs[1], n.inputs[0]), None),
    samples=(Sample(((5, 3), (2, 4)), dtypes=("float64", "int32"), make=_gather_sample,
                    differentiable_inputs=(0,)),),
    doc="Rows of reference picked by an int tensor of indices (negative count from the end).")

_op("gather_grad", _gather_grad_infer, _gather_grad_kernel,
    lambda n, g: (gather(g, n.inputs[1]), None, None),
    samples=(Sample(((2, 4, 3), (2, 4), (5, 3)), dtypes=("float64", "int32", "float64"),
                    make=_gather_grad_sample, differentiable_inputs=(0,)),),
    doc="g's rows added into zeros shaped like `like` at `indices`: the transpose of gather.")


def gather(reference: Value, indices: Value) -> Value:
    return apply("gather", [reference, indices])


def gather_grad(g: Value, indices: Value, like: Value) -> Value:
    return apply("gather_grad", [g, indices, like])


def _one_hot_infer(indices, num_classes):
    require_integer(indices.dtype, "one_hot indices")
    if num_classes < 0:
        raise ShapeError(f"num_classes must be >= 0, got {num_classes}")
    return TensorType("float32", indices.shape + (num_classes,))


def _one_hot_kernel(indices, num_classes):
    """1.0 where the last axis equals the index; indices outside [0, n) give a zero row (TF)."""
    return (indices[..., None] == np.arange(num_classes)).astype(np.float32)


_op("one_hot", _one_hot_infer, _one_hot_kernel, NOT_DIFFERENTIABLE,
    attrs={"num_classes": REQUIRED},
    samples=(Sample(((3, 4),), {"num_classes": 3}, dtypes=("int32",)),),
    doc="float32 one-hot vectors along a new last axis, as tf.one_hot gives.")


def one_hot(indices: Value, num_classes: int) -> Value:
    return apply("one_hot", [indices], num_classes=int(num_classes))

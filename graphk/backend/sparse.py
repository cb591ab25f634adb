"""Sparse tensors: K.placeholder(sparse=True), K.to_dense, K.dot with a sparse operand.

Representation. A `SparseTensor` is a front-end object holding three
ordinary graph values, TensorFlow's COO layout: `indices` int64 (nnz, ndim),
`values` (nnz,) and `dense_shape` int64 (ndim,), plus the static shape of the
dense tensor it stands for (symbols where unknown). For a sparse placeholder
each of the three is a placeholder, the first two sharing the symbol nnz.
This keeps sparsity out of the IR: the type system, passes, autodiff, IR
text and codegen only ever see dense values; the sparse ops
(graphk/ir/ops/sparse.py) take the three parts as inputs; and the generated
program's feed checks (dtypes, ranks, equal nnz) apply to the parts as to
any input. The alternative, a sparse TensorType, would have touched every
layer for a feature only a few ops read. What the choice costs: the object
is not a `Value`, so K.is_tensor, K.ndim, K.dtype, K.function and K.dot
recognize it explicitly.

Feeds. K.function accepts a SparseTensor among its inputs; its feed is a
scipy.sparse matrix (anything with `tocoo()`, so scipy is never imported
here) or an `(indices, values, dense_shape)` tuple, and is split into the
three placeholders before the generated program runs. Only functions that
have a sparse input or output take that wrapper; a dense function's call
path is unchanged. A sparse output comes back as a `SparseValue` tuple.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..ir.errors import FeedError
from ..ir.graph import Value
from ..ir.ops import indexing, leaf
from ..ir.ops import shape as shape_ops
from ..ir.ops import sparse as sparse_ops
from ..ir.shapes import SymDim, format_shape, from_user, merge_dim
from ..ir.source import user_location
from ..ir.types import TensorType, Typed
from .arguments import argument_error


class SparseTensor(Typed):
    """A sparse tensor: graph values `indices`, `values`, `dense_shape`, and its dense type.

    `type` is the TensorType of the dense tensor it represents; `shape`,
    `ndim` and `dtype` read from it as they do on a dense tensor.
    """

    def __init__(self, indices: Value, values: Value, dense_shape: Value, dims: tuple,
                 name: str | None = None, is_placeholder: bool = False):
        self.indices = indices
        self.values = values
        self.dense_shape = dense_shape
        self.type = TensorType(values.type.dtype, dims)
        self.name = name
        self.is_placeholder = is_placeholder
        self._keras_shape = self.type.int_shape
        self._uses_learning_phase = False

    @property
    def parts(self) -> tuple:
        return self.indices, self.values, self.dense_shape

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<graphk sparse tensor{label} {self.type}>"


class SparseValue(NamedTuple):
    """A sparse tensor's value: what K.function returns for a sparse output (as TF's
    SparseTensorValue), and one of the forms its feed may take."""

    indices: np.ndarray
    values: np.ndarray
    dense_shape: np.ndarray


def sparse_placeholder(shape, dtype: str, name: str | None = None) -> SparseTensor:
    """Three placeholders (indices, values, dense_shape) fed from one sparse feed."""
    dims = from_user(shape, "placeholder shape")
    nnz = SymDim()
    prefix = name or "sparse"
    location = user_location()
    parts = (leaf.placeholder(TensorType("int64", (nnz, len(dims))), f"{prefix}/indices",
                              location=location),
             leaf.placeholder(TensorType(dtype, (nnz,)), f"{prefix}/values", location=location),
             leaf.placeholder(TensorType("int64", (len(dims),)), f"{prefix}/dense_shape",
                              location=location))
    return SparseTensor(*parts, dims, name=name, is_placeholder=True)


def sparse_constant(matrix, dtype: str, name: str | None = None) -> SparseTensor:
    """A sparse tensor of constants holding a scipy.sparse matrix (K.variable of one).

    Keras' TensorFlow backend makes a tf.SparseTensor of the matrix's COO form;
    duplicate entries are summed and the indices put in row-major order, as
    TensorFlow's sparse ops expect.
    """
    coo = matrix.tocoo(copy=True)
    coo.sum_duplicates()
    indices = np.stack([coo.row, coo.col], axis=1).astype(np.int64)
    parts = (leaf.constant(indices), leaf.constant(np.asarray(coo.data, dtype=dtype)),
             leaf.constant(np.array(coo.shape, dtype=np.int64)))
    return SparseTensor(*parts, tuple(int(d) for d in coo.shape), name=name)


def _unify(value: Value, dims: tuple) -> Value:
    """Record that value's dims are `dims` where both are symbols.

    Sparse ops make a fresh symbol for each dim the static shape leaves
    unknown; it is the sparse tensor's own symbol, which the op cannot see.
    """
    for own, known in zip(value.type.shape, dims):
        if isinstance(own, SymDim) and isinstance(known, SymDim):
            merge_dim(known, own)
    return value


def to_dense(tensor):
    """The dense tensor a sparse one stands for; any other tensor is returned unchanged.

    Arguments:
        tensor: a sparse or dense tensor.

    Returns:
        A dense tensor.

    Example:
        >>> x = K.placeholder((2, 3), sparse=True)
        >>> K.int_shape(K.to_dense(x))
        (2, 3)
    """
    if not isinstance(tensor, SparseTensor):
        return tensor
    dense = sparse_ops.sparse_to_dense(*tensor.parts, tensor.type.int_shape)
    return _unify(dense, tensor.type.shape)


def _sparse_matmul(a: SparseTensor, y: Value, adjoint_a: bool) -> Value:
    """a @ y (a^T @ y with adjoint_a), with the known symbols carried over."""
    product = sparse_ops.sparse_dense_matmul(*a.parts, y, a.type.int_shape, adjoint_a)
    rows, inner = a.type.shape[::-1] if adjoint_a else a.type.shape
    if isinstance(inner, SymDim) and isinstance(y.type.shape[0], SymDim):
        merge_dim(inner, y.type.shape[0])
    return _unify(product, (rows,))


def sparse_concatenate(tensors: list, axis: int) -> SparseTensor:
    """Sparse tensors joined along `axis`: indices shifted by the sizes before them."""
    ndim = tensors[0].ndim
    axis = axis % ndim if -ndim <= axis < ndim else axis
    if not 0 <= axis < ndim or any(t.ndim != ndim for t in tensors):
        raise argument_error("concatenate", f"cannot join sparse tensors of ranks "
                                            f"{[t.ndim for t in tensors]} along axis {axis}")
    unit = leaf.constant(np.eye(ndim, dtype=np.int64)[axis])  # moves only the joined axis
    offset = leaf.constant(np.int64(0))
    indices = []
    for tensor in tensors:
        indices.append(tensor.indices + unit * offset)
        offset = offset + indexing.getitem(tensor.dense_shape, axis)
    first = tensors[0]
    dense_shape = first.dense_shape + unit * (offset - indexing.getitem(first.dense_shape, axis))
    sizes = [t.type.shape[axis] for t in tensors]
    joined = sum(sizes) if all(isinstance(d, int) for d in sizes) else SymDim()
    dims = first.type.shape[:axis] + (joined,) + first.type.shape[axis + 1:]
    return SparseTensor(shape_ops.concatenate(indices, 0),
                        shape_ops.concatenate([t.values for t in tensors], 0), dense_shape, dims)


def _check_matrix(x, side: str) -> None:
    if x.type.ndim != 2:
        raise argument_error("dot", f"a dot product with a sparse operand needs two matrices (as "
                                    f"tf.sparse.sparse_dense_matmul); the {side} operand has "
                                    f"shape {format_shape(x.type.shape)}")


def sparse_dot(x, y) -> Value:
    """K.dot when x or y is sparse: the product computed from the nonzeros, never densified.

    sparse @ dense is tf.sparse.sparse_dense_matmul; dense @ sparse (which
    Keras' TensorFlow backend cannot do) is computed as (sparse^T @ dense^T)^T.
    """
    if isinstance(x, SparseTensor) and isinstance(y, SparseTensor):
        raise argument_error("dot", "both operands are sparse; densify one with K.to_dense",
                             TypeError)
    _check_matrix(x, "left")
    _check_matrix(y, "right")
    if isinstance(x, SparseTensor):
        return _sparse_matmul(x, y, adjoint_a=False)
    return shape_ops.transpose(_sparse_matmul(y, shape_ops.transpose(x), adjoint_a=True))


# --- K.function with sparse inputs or outputs -----------------------------------------------


class SparseSignature:
    """How a K.function with sparse inputs or outputs maps onto its all-dense graph.

    `flat_inputs` / `flat_outputs` list each sparse tensor's three parts in its
    place; `wrap(run)` splits sparse feeds before `run` and regroups sparse
    results after it.
    """

    def __init__(self, inputs: list, outputs: list, single_output: bool, function_name: str):
        self.function_name = function_name
        self.inputs = inputs
        self.outputs = outputs
        self.single_output = single_output
        self.flat_inputs = _flatten(inputs)
        self.flat_outputs = _flatten(outputs)

    @classmethod
    def of(cls, inputs: list, outputs, function_name: str) -> SparseSignature | None:
        """The signature if a sparse tensor is among inputs or outputs, else None (dense)."""
        single = isinstance(outputs, (Value, SparseTensor))
        listed = [outputs] if single else outputs
        if not isinstance(listed, (list, tuple)):
            listed = ()  # an iterable of outputs: read once, by K.function; never sparse
        if not any(isinstance(v, SparseTensor) for v in (*inputs, *listed)):
            return None
        return cls(list(inputs), list(listed), single, function_name)

    def wrap(self, run):
        split, group = self.split, self.group

        def run_with_sparse(feeds):
            return group(run(split(feeds)))
        return run_with_sparse

    def split(self, feeds) -> list:
        """The feeds with each sparse feed replaced by its (indices, values, dense_shape)."""
        try:
            count = len(feeds)
        except TypeError:
            raise FeedError(f"function {self.function_name!r} expects a list of {len(self.inputs)} "
                            f"feeds, got {type(feeds).__name__}") from None
        if count != len(self.inputs):
            raise FeedError(f"function {self.function_name!r} expects {len(self.inputs)} feeds, "
                            f"got {count}")
        flat = []
        for index, (value, feed) in enumerate(zip(self.inputs, feeds)):
            if isinstance(value, SparseTensor):
                flat.extend(self._sparse_feed(index, value, feed))
            else:
                flat.append(feed)
        return flat

    def _sparse_feed(self, index: int, tensor: SparseTensor, feed) -> tuple:
        where = f"function {self.function_name!r}: input {index} (sparse {tensor.type})"
        if hasattr(feed, "tocoo"):  # a scipy.sparse matrix or array
            coo = feed.tocoo()
            indices = np.stack([coo.row, coo.col], axis=1).astype(np.int64)
            parts = (indices, coo.data, np.array(coo.shape, dtype=np.int64))
        elif isinstance(feed, (tuple, list)) and len(feed) == 3:
            indices = np.asarray(feed[0])
            if indices.size == 0:  # [] has no rank to tell the index width by
                indices = np.zeros((0, tensor.ndim), dtype=np.int64)
            parts = (indices, np.asarray(feed[1]), np.asarray(feed[2]))
        else:
            raise FeedError(f"{where} takes a scipy.sparse matrix or an (indices, values, "
                            f"dense_shape) tuple, got {type(feed).__name__}")
        _check_dense_shape(where, tensor, parts[2])
        return parts

    def group(self, results: list) -> list:
        grouped, position = [], 0
        for value in self.outputs:
            if isinstance(value, SparseTensor):
                grouped.append(SparseValue(*results[position:position + 3]))
                position += 3
            else:
                grouped.append(results[position])
                position += 1
        return grouped


def _flatten(tensors: list) -> list:
    flat = []
    for tensor in tensors:
        flat.extend(tensor.parts if isinstance(tensor, SparseTensor) else (tensor,))
    return flat


def _check_dense_shape(where: str, tensor: SparseTensor, dense_shape: np.ndarray) -> None:
    """A fed dense shape has the tensor's rank and its known dims."""
    given = tuple(int(d) for d in np.ravel(dense_shape))
    expected = tensor.type.int_shape
    if np.ndim(dense_shape) != 1 or len(given) != len(expected) or any(
            e is not None and e != g for e, g in zip(expected, given)):
        raise FeedError(f"{where} expects a dense shape {format_shape(tensor.type.shape)}, "
                        f"got {given}")


__all__ = ["to_dense"]

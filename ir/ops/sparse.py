"""Sparse tensors in COO form: densifying, gathering, and sparse-times-dense products.

The IR has no sparse type. A sparse tensor is three ordinary values, as in
TensorFlow: `indices` int64 (nnz, ndim), `values` (nnz,), `dense_shape`
int64 (ndim,). The ops here take them as separate inputs, so every pass,
autodiff and the feed checks see plain dense values; the front end
(graphk/backend/sparse.py) bundles the three into one SparseTensor object.

The dense shape's values are only known at run time, so ops whose output
size comes from it take the sparse tensor's static shape as an attribute
(`shape`: ints, None where unknown). A None becomes a fresh symbol that the
front end then unifies with the sparse tensor's own symbol; kernels check
that the fed `dense_shape` agrees with the known dims.

Duplicate indices add up (as in scipy and tf.sparse.sparse_dense_matmul;
tf.sparse.to_dense rejects them), so `sparse_to_dense` and the product are
linear in `values` (the gradient of to_dense is a gather). The product uses
scipy's compiled CSR product when scipy is importable (it is not a graphk
dependency, Keras depends on it) and a NumPy scatter-add otherwise; both
give the same result.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import DTypeError, is_integer, promote, require_integer
from ..shapes import ShapeError, SymDim, format_shape, merge_dim
from ..types import TensorType
from .registry import NOT_DIFFERENTIABLE, REQUIRED, OpDef, Sample, apply, register
from .shape import shape_of

# --- type rules ---------------------------------------------------------------------------


def _static_dims(shape) -> tuple:
    """The `shape` attribute as dims: known sizes stay, None becomes a fresh symbol."""
    return tuple(SymDim() if d is None else d for d in shape)


def _check_sparse_parts(indices: TensorType, values: TensorType, dense_shape: TensorType,
                        ndim: int):
    """indices (nnz, ndim) int, values (nnz,), dense_shape (ndim,) int; returns nnz."""
    if not is_integer(indices.dtype) or not is_integer(dense_shape.dtype):
        raise DTypeError(f"indices and dense_shape must be integers, got {indices.dtype} and "
                         f"{dense_shape.dtype}")
    if indices.ndim != 2 or values.ndim != 1 or dense_shape.ndim != 1:
        raise ShapeError(f"a sparse tensor is indices (nnz, ndim), values (nnz,) and dense_shape "
                         f"(ndim,); got shapes {format_shape(indices.shape)}, "
                         f"{format_shape(values.shape)} and {format_shape(dense_shape.shape)}")
    try:
        merge_dim(indices.shape[1], ndim)
        merge_dim(dense_shape.shape[0], ndim)
        return merge_dim(indices.shape[0], values.shape[0])
    except ShapeError:
        raise ShapeError(f"indices {format_shape(indices.shape)}, values "
                         f"{format_shape(values.shape)} and dense_shape "
                         f"{format_shape(dense_shape.shape)} do not describe one sparse tensor of "
                         f"rank {ndim}") from None


# --- kernel helpers -------------------------------------------------------------------------


def _runtime_shape(dense_shape: np.ndarray, shape: tuple) -> tuple:
    """The fed dense shape as ints, checked against the dims known when the graph was built."""
    dims = tuple(int(d) for d in dense_shape)
    if len(dims) != len(shape) or any(s is not None and s != d for s, d in zip(shape, dims)):
        raise ValueError(f"the sparse tensor's dense_shape is {dims}, but it was declared with "
                         f"shape {tuple(shape)}")
    if any(d < 0 for d in dims):
        raise ValueError(f"dense_shape {dims} has a negative dimension")
    return dims


def _check_indices(indices: np.ndarray, dims: tuple) -> None:
    """Every index row lies inside the dense shape (NumPy would wrap negative ones)."""
    if indices.shape[0] == 0:
        return
    if indices.min() < 0 or np.any(indices.max(axis=0) >= np.asarray(dims)):
        bad = np.flatnonzero(np.any((indices < 0) | (indices >= np.asarray(dims)), axis=1))[0]
        raise ValueError(f"sparse index {indices[bad].tolist()} (entry {bad}) is out of bounds "
                         f"for dense shape {dims}")


_scipy_sparse = None  # the scipy.sparse module once imported, False if it is not installed


def _scipy():
    """scipy.sparse if importable (imported on first use only), else None."""
    global _scipy_sparse
    if _scipy_sparse is None:
        try:
            import scipy.sparse as module
        except ImportError:
            module = False
        _scipy_sparse = module
    return _scipy_sparse or None


# --- sparse_to_dense -------------------------------------------------------------------------


def _to_dense_infer(indices, values, dense_shape, shape):
    _check_sparse_parts(indices, values, dense_shape, len(shape))
    return TensorType(values.dtype, _static_dims(shape))


def _to_dense_kernel(indices, values, dense_shape, shape):
    dims = _runtime_shape(dense_shape, shape)
    _check_indices(indices, dims)
    result = np.zeros(dims, dtype=values.dtype)
    if indices.shape[0]:
        flat = np.ravel_multi_index(tuple(indices.T), dims) if dims else np.zeros(0, np.intp)
        np.add.at(result.reshape(-1), flat, values)
    return result


def _to_dense_sample(rng):
    indices = np.array([[0, 1], [2, 3], [1, 0], [2, 0]], dtype=np.int64)
    return [indices, rng.uniform(-2, 2, 4), np.array([3, 4], dtype=np.int64)]


register(OpDef(
    "sparse_to_dense", "sparse",
    infer=_to_dense_infer, kernel=_to_dense_kernel, attrs={"shape": REQUIRED},
    grad=lambda n, g: (None, sparse_gather(g, n.inputs[0]), None),
    samples=(Sample(((4, 2), (4,), (2,)), {"shape": (3, 4)}, make=_to_dense_sample,
                    differentiable_inputs=(1,)),
             Sample(((4, 2), (4,), (2,)), {"shape": (None, 4)}, make=_to_dense_sample,
                    differentiable_inputs=(1,))),
    doc="The dense tensor of a COO sparse tensor: zeros with `values` added at `indices`."))


def sparse_to_dense(indices, values, dense_shape, shape: tuple):
    return apply("sparse_to_dense", [indices, values, dense_shape], shape=tuple(shape))


# --- sparse_gather ---------------------------------------------------------------------------


def _gather_infer(x, indices):
    require_integer(indices.dtype, "indices", "matrix (nnz, ndim)")
    if indices.ndim != 2:
        raise ShapeError(f"indices must be an integer matrix (nnz, ndim), got {indices}")
    merge_dim(indices.shape[1], x.ndim, "index width and rank")
    return TensorType(x.dtype, indices.shape[:1])


def _gather_kernel(x, indices):
    _check_indices(indices, x.shape)
    return x[tuple(indices.T)]


def _gather_grad(node, h):
    x, indices = node.inputs
    return sparse_to_dense(indices, h, shape_of(x), x.type.int_shape), None


register(OpDef(
    "sparse_gather", "sparse",
    infer=_gather_infer, kernel=_gather_kernel, grad=_gather_grad,
    samples=(Sample(((3, 4), (4, 2)), make=lambda rng: [rng.uniform(-2, 2, (3, 4)),
                                                       _to_dense_sample(rng)[0]],
                    differentiable_inputs=(0,)),),
    doc="The elements of x at the rows of `indices` (nnz, x.ndim): the transpose of "
        "sparse_to_dense."))


def sparse_gather(x, indices):
    return apply("sparse_gather", [x, indices])


# --- sparse_dense_matmul ------------------------------------------------------------------------


def _operand_dims(shape: tuple, adjoint_a: bool) -> tuple:
    """(rows, inner) of the sparse operand as it multiplies (transposed if adjoint_a)."""
    rows, inner = _static_dims(shape)
    return (inner, rows) if adjoint_a else (rows, inner)


def _matmul_infer(indices, values, dense_shape, y, shape, adjoint_a):
    if len(shape) != 2:
        raise ShapeError(f"the sparse operand must be a matrix, it has shape {tuple(shape)}")
    _check_sparse_parts(indices, values, dense_shape, 2)
    if y.ndim != 2:
        raise ShapeError(f"the dense operand must be a matrix, it has shape "
                         f"{format_shape(y.shape)}")
    rows, inner = _operand_dims(shape, adjoint_a)
    try:
        merge_dim(inner, y.shape[0])
    except ShapeError:
        sparse = tuple(reversed(shape)) if adjoint_a else tuple(shape)
        raise ShapeError(f"inner dimensions differ: cannot multiply sparse {sparse} by dense "
                         f"{format_shape(y.shape)}") from None
    return TensorType(promote(values.dtype, y.dtype), (rows, y.shape[1]))


def _coordinates(indices, dims, adjoint_a):
    """(rows, columns, out_rows) of the sparse operand as it multiplies."""
    rows, columns = indices[:, 0], indices[:, 1]
    if adjoint_a:
        return columns, rows, dims[1]
    return rows, columns, dims[0]


def _matmul_kernel(indices, values, dense_shape, y, shape, adjoint_a):
    dims = _runtime_shape(dense_shape, shape)
    _check_indices(indices, dims)
    rows, columns, out_rows = _coordinates(indices, dims, adjoint_a)
    inner = dims[0] if adjoint_a else dims[1]
    if inner != y.shape[0]:
        raise ValueError(f"inner dimensions differ: the sparse operand has {inner} columns, "
                         f"the dense operand {y.shape[0]} rows")
    dtype = np.result_type(values.dtype, y.dtype)
    scipy_sparse = _scipy()
    if scipy_sparse is not None and dtype.kind == "f" and dtype.itemsize >= 4:
        # scipy's compiled CSR product: no (nnz, n) intermediate (no float16 in scipy.sparse)
        matrix = scipy_sparse.csr_matrix((values.astype(dtype, copy=False), (rows, columns)),
                                         shape=(out_rows, inner))
        return np.asarray(matrix @ y, dtype=dtype)
    result = np.zeros((out_rows, y.shape[1]), dtype=dtype)
    np.add.at(result, rows, values[:, None] * y[columns])
    return result


def _matmul_grad(node, g):
    indices, values, dense_shape, y = node.inputs
    shape, adjoint_a = node.attrs["shape"], node.attrs["adjoint_a"]
    d_values = sparse_dense_matmul_values_grad(indices, dense_shape, g, y, shape, adjoint_a)
    d_y = sparse_dense_matmul(indices, values, dense_shape, g, shape, not adjoint_a)
    return None, d_values, None, d_y


def _matmul_sample(rng, adjoint_a=False):
    indices = np.array([[0, 1], [2, 3], [1, 0], [2, 0], [0, 1]], dtype=np.int64)  # one repeat
    y_rows = 3 if adjoint_a else 4
    return [indices, rng.uniform(-2, 2, 5), np.array([3, 4], dtype=np.int64),
            rng.uniform(-2, 2, (y_rows, 2))]


register(OpDef(
    "sparse_dense_matmul", "sparse",
    infer=_matmul_infer, kernel=_matmul_kernel, attrs={"shape": REQUIRED, "adjoint_a": False},
    grad=_matmul_grad,
    samples=(Sample(((5, 2), (5,), (2,), (4, 2)), {"shape": (3, 4)}, make=_matmul_sample,
                    differentiable_inputs=(1, 3)),
             Sample(((5, 2), (5,), (2,), (3, 2)), {"shape": (None, 4), "adjoint_a": True},
                    make=lambda rng: _matmul_sample(rng, True), differentiable_inputs=(1, 3))),
    doc="A @ y for a sparse matrix A (A^T @ y with adjoint_a), as tf.sparse.sparse_dense_matmul."))


def sparse_dense_matmul(indices, values, dense_shape, y, shape: tuple, adjoint_a: bool = False):
    return apply("sparse_dense_matmul", [indices, values, dense_shape, y], shape=tuple(shape),
                 adjoint_a=bool(adjoint_a))


# --- the gradient of the product with respect to the values -------------------------------------


def _values_grad_infer(indices, dense_shape, g, y, shape, adjoint_a):
    product = _matmul_infer(indices, TensorType(g.dtype, indices.shape[:1]), dense_shape, y,
                            shape, adjoint_a)
    if g.ndim != 2:
        raise ShapeError(f"the cotangent must be a matrix, got shape {format_shape(g.shape)}")
    merge_dim(g.shape[0], product.shape[0], "cotangent rows and product rows")
    merge_dim(g.shape[1], product.shape[1], "cotangent columns and product columns")
    return TensorType(promote(g.dtype, y.dtype), indices.shape[:1])


def _values_grad_kernel(indices, dense_shape, g, y, shape, adjoint_a):
    dims = _runtime_shape(dense_shape, shape)
    _check_indices(indices, dims)
    rows, columns, _ = _coordinates(indices, dims, adjoint_a)
    return np.einsum("ij,ij->i", g[rows], y[columns])


def _values_grad_grad(node, h):
    """out[j] = sum_n g[r_j, n] y[c_j, n] is bilinear: each cotangent is a sparse product."""
    indices, dense_shape, g, y = node.inputs
    shape, adjoint_a = node.attrs["shape"], node.attrs["adjoint_a"]
    d_g = sparse_dense_matmul(indices, h, dense_shape, y, shape, adjoint_a)
    d_y = sparse_dense_matmul(indices, h, dense_shape, g, shape, not adjoint_a)
    return None, None, d_g, d_y


def _values_grad_sample(rng):
    indices, _, dense_shape, y = _matmul_sample(rng)
    return [indices, dense_shape, rng.uniform(-2, 2, (3, 2)), y]


register(OpDef(
    "sparse_dense_matmul_values_grad", "sparse",
    infer=_values_grad_infer, kernel=_values_grad_kernel,
    attrs={"shape": REQUIRED, "adjoint_a": False}, grad=_values_grad_grad,
    samples=(Sample(((5, 2), (2,), (3, 2), (4, 2)), {"shape": (3, 4)}, make=_values_grad_sample,
                    differentiable_inputs=(2, 3)),),
    doc="The cotangent of sparse_dense_matmul's values: sum over n of g[row, n] * y[col, n]."))


def sparse_dense_matmul_values_grad(indices, dense_shape, g, y, shape: tuple,
                                    adjoint_a: bool = False):
    return apply("sparse_dense_matmul_values_grad", [indices, dense_shape, g, y],
                 shape=tuple(shape), adjoint_a=bool(adjoint_a))


# --- dense rows with lengths to sparse ------------------------------------------------------------


def _from_lengths_infer(dense, lengths):
    if dense.ndim != 2 or lengths.ndim != 1 or not is_integer(lengths.dtype):
        raise ShapeError(f"needs a matrix (batch, max_length) and integer lengths (batch,), got "
                         f"{dense} and {lengths}")
    merge_dim(dense.shape[0], lengths.shape[0], "batch sizes")
    nnz = SymDim()
    return (TensorType("int64", (nnz, 2)), TensorType(dense.dtype, (nnz,)),
            TensorType("int64", (2,)))


def _from_lengths_kernel(dense, lengths):
    mask = np.arange(dense.shape[1]) < lengths[:, None]
    indices = np.argwhere(mask).astype(np.int64)  # row-major: TensorFlow's canonical order
    return indices, dense[mask], np.array(dense.shape, dtype=np.int64)


register(OpDef(
    "sparse_from_lengths", "sparse", num_outputs=3,
    infer=_from_lengths_infer, kernel=_from_lengths_kernel, grad=NOT_DIFFERENTIABLE,
    samples=(Sample(((3, 4), (3,)), make=lambda rng: [
        rng.integers(0, 5, (3, 4)).astype(np.int32), np.array([2, 0, 4], dtype=np.int32)]),),
    doc="The first lengths[b] entries of each row b of a matrix, as a sparse tensor "
        "(ctc_label_dense_to_sparse)."))


def sparse_from_lengths(dense, lengths) -> tuple:
    return apply("sparse_from_lengths", [dense, lengths])

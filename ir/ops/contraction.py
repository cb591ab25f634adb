"""Contraction plans: a two-operand einsum run as one matrix product, and that product.

Every product in ir/ops/linalg.py is a *contraction*: an einsum with two
operands in which each index appears in two of the three terms (x, y,
result). A `ContractionPlan` lays x out as (batch, rows, inner) and y as
(batch, inner, columns) matrices, using transposed views instead of copies
when the memory order allows, makes one matrix product and permutes the
result into the output order. `product` is that matrix product.
"""
from __future__ import annotations

from functools import cache

import numpy as np

from ...threads import BLAS_WORK_PER_THREAD, blas
from ...threads import matmul as blas_matmul  # np.matmul on the BLAS threads its size is worth
from ..shapes import ShapeError, format_shape, merge_dim

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class ContractionPlan:
    """How `x_terms,y_terms->out_terms` becomes one batched matrix product.

    Index groups: batch (in x, y and out), rows (x and out), columns
    (y and out), inner (x and y only). x is laid out as (batch, rows, inner),
    y as (batch, inner, columns); the product is (batch, rows, columns), then
    unflattened and permuted into the output order.
    """

    def __init__(self, subscripts: str):
        self.subscripts = subscripts
        self.x_terms, self.y_terms, self.out_terms = _parse_subscripts(subscripts)
        xs, ys, out = self.x_terms, self.y_terms, self.out_terms
        self.batch = [i for i in xs if i in ys and i in out]
        self.rows = [i for i in xs if i in out and i not in ys]
        self.columns = [i for i in ys if i in out and i not in xs]
        self.inner = [i for i in xs if i in ys and i not in out]
        product = self.batch + self.rows + self.columns
        self.out_perm = tuple(product.index(i) for i in out)

    def out_shape(self, x_shape, y_shape, describe=None) -> tuple:
        """Output dims, with each index's dims merged (ShapeError if known sizes differ)."""
        dims: dict[str, object] = {}
        for terms, shape in ((self.x_terms, x_shape), (self.y_terms, y_shape)):
            for index, dim in zip(terms, shape):
                if index not in dims:
                    dims[index] = dim
                    continue
                try:
                    dims[index] = merge_dim(dims[index], dim)
                except ShapeError:
                    where = (describe(index) if describe else
                             f"index {index!r} of {self.subscripts!r}")
                    raise ShapeError(f"{where}: sizes {dims[index]} and {dim} differ "
                                     f"(shapes {format_shape(x_shape)} and "
                                     f"{format_shape(y_shape)})") from None
        return tuple(dims[i] for i in self.out_terms)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        sizes = dict(zip(self.x_terms, x.shape))
        sizes.update(zip(self.y_terms, y.shape))
        a = _as_matrices(x, self.x_terms, self.batch, self.rows, self.inner, sizes)
        b = _as_matrices(y, self.y_terms, self.batch, self.inner, self.columns, sizes)
        shape = tuple(sizes[i] for i in self.batch + self.rows + self.columns)
        result = product(a, b).reshape(shape)
        if self.out_perm != tuple(range(len(self.out_perm))):
            result = result.transpose(self.out_perm)
        return result

    def gradient_subscripts(self) -> tuple[str, str]:
        """Subscripts of d/dx = contract(g, y) and d/dy = contract(x, g)."""
        xs, ys, out = self.x_terms, self.y_terms, self.out_terms
        return f"{out},{ys}->{xs}", f"{xs},{out}->{ys}"


def product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b, through np.dot for two matrices that one BLAS thread is right for.

    np.dot calls GEMM directly; np.matmul first dispatches as a generalized
    ufunc, about 1 us more per call: a quarter of a 32x64 by 64x64 product,
    the size of a recurrent step's products, which a loop runs T times.
    """
    if (a.ndim == 2 and b.ndim == 2 and blas.current == 1 and blas.owned
            and max(a.size * b.shape[1], b.size * a.shape[0]) < 2 * BLAS_WORK_PER_THREAD):
        return np.dot(a, b)
    return blas_matmul(a, b)


def sum_leading_axes(array: np.ndarray, lead: int) -> np.ndarray:
    """The sum over the first `lead` axes (a bias gradient, BPTT's summed over time too).

    NumPy reduces the leading axis row by row, a short inner loop per row:
    with many short rows (a (1600, 64) float32 stack: 53 us) a ones-vector
    GEMV is several times faster (16 us); with few or long rows NumPy wins
    (the GEMV's fixed cost is about 8 us).
    """
    rows = sizes_product(array.shape[:lead])
    columns = sizes_product(array.shape[lead:])
    if (array.dtype.kind == "f" and array.dtype.itemsize >= 4 and array.flags.c_contiguous
            and rows >= 512 and rows >= 8 * columns):
        ones = np.ones(rows, array.dtype)
        return product(ones, array.reshape(rows, columns)).reshape(array.shape[lead:])
    return np.add.reduce(array, axis=0 if lead == 1 else tuple(range(lead)), dtype=array.dtype)


def sizes_product(sizes) -> int:
    total = 1
    for size in sizes:
        total *= size
    return total


def _as_matrices(array, terms, batch, rows, columns, sizes) -> np.ndarray:
    """`array` as (batch, rows, columns) matrices (no batch axis when there are none).

    When the memory order is (batch, columns, rows) instead, the reshape is
    done in that order and the result is a transposed view: matmul hands BLAS
    a transpose flag rather than copying.
    """
    shape = ((sizes_product(sizes[i] for i in batch),) if batch else ()) + (
        sizes_product(sizes[i] for i in rows), sizes_product(sizes[i] for i in columns))
    order = [terms.index(i) for i in batch + rows + columns]
    if order == sorted(order):
        return array.reshape(shape)
    swapped = [terms.index(i) for i in batch + columns + rows]
    if swapped == sorted(swapped):
        return array.reshape(shape[:-2] + shape[:-3:-1]).swapaxes(-1, -2)
    return array.transpose(order).reshape(shape)


def _parse_subscripts(subscripts: str) -> tuple[str, str, str]:
    """Split and check `x,y->out`: letters only, no index twice in a term, each in two terms."""
    try:
        inputs, out = subscripts.split("->")
        xs, ys = inputs.split(",")
    except ValueError:
        raise ValueError(f"contraction subscripts {subscripts!r} must look like 'ij,jk->ik'") \
            from None
    for term in (xs, ys, out):
        if not all(c in LETTERS for c in term) or len(set(term)) != len(term):
            raise ValueError(f"contraction subscripts {subscripts!r}: each term must be distinct "
                             "letters")
    for index in set(xs + ys + out):
        if (index in xs) + (index in ys) + (index in out) < 2:
            raise ValueError(f"contraction subscripts {subscripts!r}: index {index!r} appears in "
                             "only one term (traces and lone sums are not contractions)")
    return xs, ys, out


@cache
def plan(subscripts: str) -> ContractionPlan:
    return ContractionPlan(subscripts)

"""C += alpha * op(A) @ op(B) in place, through the BLAS NumPy itself links.

NumPy's matrix product always writes a fresh result; an SGD step
`W - lr * (x^T @ d)` then costs a second pass over W and the gradient.
BLAS GEMM computes `alpha * A B + beta * C` into C, so with beta = 1 the
update is the product itself, written into W (ir/ops/linalg.py,
`matmul_update`, whose kernel is `MatmulUpdate` here). The library is the
one threadpoolctl finds behind NumPy (graphk/threads.py controls its
threads); its CBLAS entry is looked up by the names OpenBLAS builds export.
When none is found (another BLAS, another build) `gemm_into` returns False
and the kernel computes the product with NumPy.
"""
from __future__ import annotations

import ctypes

import numpy as np

from ...threads import BLAS_WORK_PER_THREAD, blas, blas_threads
from .contraction import product

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
# (symbol, integer type): NumPy 2 wheels' scipy-openblas (ILP64), then plain OpenBLAS builds
_CANDIDATES = (("scipy_cblas_{t}gemm64_", ctypes.c_int64), ("cblas_{t}gemm64_", ctypes.c_int64),
               ("cblas_{t}gemm", ctypes.c_int))
_SCALARS = {"s": ctypes.c_float, "d": ctypes.c_double}


def _entries() -> dict:
    """dtype -> the CBLAS gemm function of NumPy's BLAS (float32 and float64), if found."""
    found = {}
    for controller in getattr(blas, "controllers", ()):
        if getattr(controller, "internal_api", None) != "openblas":
            continue
        try:
            library = ctypes.CDLL(controller.filepath)
        except OSError:
            continue
        for letter, scalar in _SCALARS.items():
            for pattern, integer in _CANDIDATES:
                function = getattr(library, pattern.format(t=letter), None)
                if function is None:
                    continue
                function.restype = None
                function.argtypes = ([integer] * 6 + [scalar, ctypes.c_void_p, integer,
                                                      ctypes.c_void_p, integer, scalar,
                                                      ctypes.c_void_p, integer])
                found[np.dtype(np.float32 if letter == "s" else np.float64)] = function
                break
        if found:
            return found
    return {}


_GEMM = _entries()


def _leading(matrix: np.ndarray, itemsize: int):
    """(transposed?, leading dimension) of a matrix BLAS can read in place, or None."""
    rows, columns = matrix.strides
    if columns == itemsize and rows >= max(1, matrix.shape[1]) * itemsize:
        return False, rows // itemsize
    if rows == itemsize and columns >= max(1, matrix.shape[0]) * itemsize:
        return True, columns // itemsize
    return None


def gemm_into(c: np.ndarray, a: np.ndarray, b: np.ndarray, alpha: float) -> bool:
    """c += alpha * a @ b for matrices of one float dtype, c C-contiguous and writable;
    a and b may be transposed views. Returns False (nothing written) when BLAS cannot
    take these arrays here, so the caller computes it another way."""
    function = _GEMM.get(c.dtype)
    if (function is None or a.dtype != c.dtype or b.dtype != c.dtype or c.ndim != 2
            or a.ndim != 2 or b.ndim != 2 or not c.flags.c_contiguous
            or not c.flags.writeable or not c.size):
        return False
    m, n = c.shape
    k = a.shape[1]
    if a.shape[0] != m or b.shape != (k, n) or k == 0:
        return False
    layout_a, layout_b = _leading(a, c.itemsize), _leading(b, c.itemsize)
    if layout_a is None or layout_b is None:
        return False
    work = m * n * k  # as threads.matmul decides a product's BLAS threads
    wanted = 1 if work < 2 * BLAS_WORK_PER_THREAD else blas_threads(work)
    if wanted != blas.current or not blas.owned:
        blas.use(wanted)
    function(_ROW_MAJOR, _TRANS if layout_a[0] else _NO_TRANS,
             _TRANS if layout_b[0] else _NO_TRANS, m, n, k, alpha, a.ctypes.data, layout_a[1],
             b.ctypes.data, layout_b[1], 1.0, c.ctypes.data, n)
    return True


class MatmulUpdate:
    """The kernel of one matmul_update node: c + scale * op(a) @ op(b).

    `in_place` is set by the NumPy lowering (codegen/in_place.py) when c is
    a variable's value that nothing reads after this node and the result
    replaces: the product is then accumulated into c's own buffer by GEMM
    (beta = 1), with no new array and no second pass over the matrix.
    """

    def __init__(self, transpose_a=False, transpose_b=False):
        self.transpose_a, self.transpose_b = transpose_a, transpose_b
        self.in_place = False

    def __call__(self, c, a, b, scale):
        a = a.T if self.transpose_a else a
        b = b.T if self.transpose_b else b
        alpha = float(scale)
        if (self.in_place and c.flags.writeable and c.flags.c_contiguous
                and gemm_into(c, a, b, alpha)):
            return c
        # A fresh result: the product, scaled, plus c (np.dot and one add cost less than a
        # ctypes GEMM call at a loop step's sizes, and the same memory traffic when large).
        result = product(a, b)
        if alpha != 1.0:
            np.multiply(result, np.asarray(scale, result.dtype), out=result)
        np.add(result, c, out=result)
        return result


__all__ = ["gemm_into", "MatmulUpdate"]

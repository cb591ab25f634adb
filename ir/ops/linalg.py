"""Linear algebra: matmul, Keras' dot and batch_dot, and the contraction behind them.

Every product here is a *contraction*: an einsum with two operands in which
each index appears in two of the three terms (x, y, result). Indices in all
three are batch indices, indices only in x and y are summed. That class is
closed under differentiation: the gradient of `contract("ik,kj->ij")` with
respect to x is `contract("ij,kj->ik")(g, y)`, again a contraction, so
gradients never need a transpose or reshape op. Every kernel ends in one
matrix product (ir/ops/contraction.py: BLAS GEMM when there are no batch
indices): operands are permuted and flattened into (batch, rows, inner)
matrices, using transposed views instead of copies when the memory order
allows.

`matmul` keeps NumPy's batch broadcasting (the `@` operator); `dot` and
`batch_dot` carry Keras' shape rules, and so read well in printed IR.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import DTypeError, promote
from ..shapes import ShapeError, broadcast_shapes, format_shape, merge_dim, merge_shapes
from ..types import TensorType
from .contraction import LETTERS as _LETTERS
from .blas_gemm import MatmulUpdate
from .contraction import ContractionPlan, plan, product, sizes_product
from .elementwise import mul
from .leaf import as_value
from .registry import OpDef, Sample, apply, register


# --- contract ------------------------------------------------------------------------

def _check_ranks(subscripts: str, x: TensorType, y: TensorType) -> ContractionPlan:
    contraction = plan(subscripts)
    if (len(contraction.x_terms), len(contraction.y_terms)) != (x.ndim, y.ndim):
        raise ShapeError(f"subscripts {subscripts!r} need ranks {len(contraction.x_terms)} and "
                         f"{len(contraction.y_terms)}, given {x.ndim} and {y.ndim}")
    return contraction


def _contraction_grad(subscripts: str, x, y, g) -> tuple:
    dx_subscripts, dy_subscripts = plan(subscripts).gradient_subscripts()
    return contract(g, y, subscripts=dx_subscripts), contract(x, g, subscripts=dy_subscripts)


def _contract_infer(x: TensorType, y: TensorType, subscripts: str) -> TensorType:
    contraction = _check_ranks(subscripts, x, y)
    return TensorType(promote(x.dtype, y.dtype), contraction.out_shape(x.shape, y.shape))


register(OpDef(
    "contract", "linalg",
    infer=_contract_infer,
    kernel=lambda x, y, subscripts: plan(subscripts)(x, y),
    attrs={"subscripts": "ij,jk->ik"},
    grad=lambda n, g: _contraction_grad(n.attrs["subscripts"], *n.inputs, g),
    samples=(Sample(((3, 4), (4, 5)), {"subscripts": "ij,jk->ik"}),
             Sample(((2, 3, 4), (2, 5, 4)), {"subscripts": "bij,bkj->bki"}),
             Sample(((3, 4), (5,)), {"subscripts": "ij,k->kji"}),
             Sample(((2, 3, 4), (4, 3)), {"subscripts": "aij,ji->a"})),
    doc="Two-operand einsum in which every index is in two of the three terms."))


def contract(x, y, subscripts: str):
    """einsum(subscripts, x, y) for a pure contraction (see the module docstring)."""
    return apply("contract", [x, y], subscripts=subscripts)


# --- matmul --------------------------------------------------------------------------

def _matrix_shape(shape, transposed: bool, name: str) -> tuple:
    if not transposed:
        return shape
    if len(shape) < 2:
        raise ShapeError(f"transpose_{name} needs a matrix, {name} has shape {format_shape(shape)}")
    return shape[:-2] + (shape[-1], shape[-2])


def _matmul_infer(a: TensorType, b: TensorType, transpose_a=False, transpose_b=False):
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError("matmul needs operands of rank 1 or more; use * to scale by a scalar")
    a_shape = _matrix_shape(a.shape, transpose_a, "a")
    b_shape = _matrix_shape(b.shape, transpose_b, "b")
    b_inner = b_shape[-2] if len(b_shape) > 1 else b_shape[0]
    try:
        merge_dim(a_shape[-1], b_inner)
    except ShapeError:
        raise ShapeError(f"inner dimensions {a_shape[-1]} and {b_inner} differ: cannot multiply "
                         f"{format_shape(a_shape)} by {format_shape(b_shape)}") from None
    if a.ndim == 1 or b.ndim == 1:  # no broadcasting: a vector operand has no batch dims
        shape = a_shape[:-1] if b.ndim == 1 else b_shape[:-2] + b_shape[-1:]
    else:
        try:
            batch = broadcast_shapes(a_shape[:-2], b_shape[:-2])
        except ShapeError:
            raise ShapeError(f"batch dimensions of {format_shape(a_shape)} and "
                             f"{format_shape(b_shape)} do not broadcast") from None
        shape = batch + (a_shape[-2], b_shape[-1])
    return TensorType(promote(a.dtype, b.dtype), shape)


def _matmul_kernel(a, b, transpose_a=False, transpose_b=False):
    # Swapped axes are views; matmul passes BLAS a transpose flag instead of copying.
    return product(a.swapaxes(-1, -2) if transpose_a else a,
                   b.swapaxes(-1, -2) if transpose_b else b)


def _vector_matmul_subscripts(a_ndim: int, b_ndim: int, transpose_a: bool,
                              transpose_b: bool) -> str:
    """The contraction a matmul with a vector operand is (vectors have no batch dims).

    Lowercase i, k, m name the matrix axes; batch axes take uppercase letters.
    """
    if a_ndim == 1 and b_ndim == 1:
        return "k,k->"
    if a_ndim == 1:
        batch = _LETTERS[26:24 + b_ndim]
        b_terms = batch + ("mk" if transpose_b else "km")
        return f"k,{b_terms}->{batch}m"
    batch = _LETTERS[26:24 + a_ndim]
    a_terms = batch + ("ki" if transpose_a else "ik")
    return f"{a_terms},k->{batch}i"


def _matmul_grad(node, g):
    a, b = node.inputs
    ta, tb = node.attrs["transpose_a"], node.attrs["transpose_b"]
    if a.type.ndim == 1 or b.type.ndim == 1:
        return _contraction_grad(_vector_matmul_subscripts(a.type.ndim, b.type.ndim, ta, tb),
                                 a, b, g)
    # With A' = A^T if ta, B' likewise: dA' = g B'^T and dB' = A'^T g. Batch dims that
    # broadcast are summed back by autodiff (sum_to).
    da = matmul(b, g, transpose_a=tb, transpose_b=True) if ta else \
        matmul(g, b, transpose_b=not tb)
    db = matmul(g, a, transpose_a=True, transpose_b=ta) if tb else \
        matmul(a, g, transpose_a=not ta)
    return da, db


register(OpDef(
    "matmul", "linalg",
    infer=_matmul_infer,
    kernel=_matmul_kernel,
    attrs={"transpose_a": False, "transpose_b": False},
    grad=_matmul_grad,
    samples=(Sample(((3, 4), (4, 5))),
             Sample(((3, 4), (5, 4)), {"transpose_b": True}),
             Sample(((4, 3), (4, 5)), {"transpose_a": True}),
             Sample(((4, 3), (5, 4)), {"transpose_a": True, "transpose_b": True}),
             Sample(((2, 3, 4), (4, 5))),
             Sample(((2, 1, 3, 4), (3, 4, 5)), symbolic=False),
             Sample(((3, 4), (4,))),
             Sample(((4,), (2, 4, 5)), symbolic=False),
             Sample(((4,), (4,)), symbolic=False)),
    doc="NumPy matmul (the @ operator), with optional transposes of the last two axes."))


def matmul(a, b, transpose_a: bool = False, transpose_b: bool = False):
    """a @ b with NumPy's rules (vectors promoted, batch dims broadcast)."""
    a = as_value(a, b if hasattr(b, "type") else None)
    b = as_value(b, a)
    return apply("matmul", [a, b], transpose_a=bool(transpose_a), transpose_b=bool(transpose_b))


# --- a product added to a matrix: one GEMM, in place when the matrix is dead ------------

def _matmul_update_infer(c: TensorType, a: TensorType, b: TensorType, scale: TensorType,
                         transpose_a=False, transpose_b=False) -> TensorType:
    if a.ndim != 2 or b.ndim != 2 or scale.ndim != 0:
        raise ShapeError(f"matmul_update takes matrices a and b and a scalar scale, given "
                         f"{format_shape(a.shape)}, {format_shape(b.shape)} and "
                         f"{format_shape(scale.shape)}")
    product_type = _matmul_infer(a, b, transpose_a, transpose_b)
    if len({c.dtype, product_type.dtype, scale.dtype}) != 1 or c.dtype not in ("float32",
                                                                                "float64"):
        raise DTypeError(f"matmul_update needs one float dtype, given c {c.dtype}, a {a.dtype}, "
                         f"b {b.dtype}, scale {scale.dtype}")
    shape = merge_shapes(c.shape, product_type.shape, "c and the product (no broadcasting)")
    return TensorType(c.dtype, shape)


def _matmul_update_grad(node, g):
    c, a, b, scale = node.inputs
    ta, tb = node.attrs["transpose_a"], node.attrs["transpose_b"]
    scaled = mul(g, scale)
    da = matmul(b, scaled, transpose_a=tb, transpose_b=True) if ta else \
        matmul(scaled, b, transpose_b=not tb)
    db = matmul(scaled, a, transpose_a=True, transpose_b=ta) if tb else \
        matmul(a, scaled, transpose_a=not ta)
    d_scale = apply("reduce_sum", [mul(g, matmul(a, b, ta, tb))], axes=(0, 1), keepdims=False)
    return g, da, db, d_scale


register(OpDef(
    "matmul_update", "linalg",
    infer=_matmul_update_infer,
    kernel=lambda c, a, b, scale, **attrs: MatmulUpdate(**attrs)(c, a, b, scale),
    make_kernel=lambda **attrs: MatmulUpdate(**attrs),
    attrs={"transpose_a": False, "transpose_b": False},
    grad=_matmul_update_grad,
    samples=(Sample(((3, 5), (3, 4), (4, 5), ())),
             Sample(((3, 5), (4, 3), (5, 4), ()), {"transpose_a": True, "transpose_b": True}),
             Sample(((3, 5), (4, 3), (4, 5), ()), {"transpose_a": True},
                    dtypes=("float64",) * 4)),
    doc="c + scale * op(a) @ op(b) for matrices (an SGD step's weight update, "
        "passes/matmul_update.py): one GEMM with beta = 1, into c's buffer when it is dead."))


def matmul_update(c, a, b, scale, transpose_a: bool = False, transpose_b: bool = False):
    return apply("matmul_update", [c, a, b, scale], transpose_a=bool(transpose_a),
                 transpose_b=bool(transpose_b))


# --- a transposed copy ----------------------------------------------------------------

def _matrix_transpose_infer(x: TensorType) -> TensorType:
    if x.ndim < 2:
        raise ShapeError(f"matrix_transpose needs a matrix (rank 2 or more), given shape "
                         f"{format_shape(x.shape)}")
    return TensorType(x.dtype, x.shape[:-2] + (x.shape[-1], x.shape[-2]))


register(OpDef(
    "matrix_transpose", "linalg",
    infer=_matrix_transpose_infer,
    kernel=lambda x: np.ascontiguousarray(np.swapaxes(x, -1, -2)),
    grad=lambda n, g: (matrix_transpose(g),),
    samples=(Sample(((3, 4),)), Sample(((2, 3, 4),))),
    doc="The last two axes swapped, as a C-contiguous copy: GEMM reads that layout faster "
        "than a transposed operand at small sizes, so a loop transposes an invariant "
        "operand once before it (passes/scan_hoist.py) rather than in every step's product."))


def matrix_transpose(x):
    return apply("matrix_transpose", [x])


# --- Keras dot -----------------------------------------------------------------------

def dot_subscripts(x_ndim: int, y_ndim: int) -> str:
    """x's last axis against y's second-to-last (its only one for a vector), as np.dot."""
    x_terms = _LETTERS[:x_ndim]
    inner = x_terms[-1]
    if y_ndim == 1:
        return f"{x_terms},{inner}->{x_terms[:-1]}"
    rest = _LETTERS[x_ndim:x_ndim + y_ndim - 1]
    y_terms = rest[:-1] + inner + rest[-1]
    return f"{x_terms},{y_terms}->{x_terms[:-1]}{rest}"


def _dot_infer(x: TensorType, y: TensorType) -> TensorType:
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeError("dot needs operands of rank 1 or more; use * to scale by a scalar")
    axis = "-2" if y.ndim > 1 else "-1"
    describe = lambda _: f"x's last axis and y's axis {axis} must have the same size"
    contraction = plan(dot_subscripts(x.ndim, y.ndim))
    return TensorType(promote(x.dtype, y.dtype),
                      contraction.out_shape(x.shape, y.shape, describe))


def _dot_grad(node, g):
    x, y = node.inputs
    if x.type.ndim == 2 and y.type.ndim == 2:  # the dense-layer hot path: two GEMMs
        return matmul(g, y, transpose_b=True), matmul(x, g, transpose_a=True)
    return _contraction_grad(dot_subscripts(x.type.ndim, y.type.ndim), x, y, g)


def _dot_kernel(x, y):
    if y.ndim == 2 and x.ndim == 2:  # the hottest case: one plain GEMM
        return product(x, y)
    if y.ndim == 2 and x.ndim > 2:  # the common case: x's leading axes are rows of one GEMM
        return _rows_product(x, y)
    return plan(dot_subscripts(x.ndim, y.ndim))(x, y)


def _rows_product(x, y):
    """x @ y with all of x's leading axes as rows of one GEMM, read in memory order.

    A time-major view of batch-major data (K.rnn's sequences, transposed)
    has its leading axes out of memory order: the GEMM runs on the rows as
    they lie and the result is permuted back (a view), instead of copying x.
    """
    lead = x.ndim - 1
    order = sorted(range(lead), key=lambda axis: -x.strides[axis])
    laid = x.transpose(order + [lead])
    if order == list(range(lead)) or not laid.flags.c_contiguous:
        laid, order = x, list(range(lead))
    rows = laid.reshape(sizes_product(laid.shape[:-1]), x.shape[-1])
    result = product(rows, y).reshape(laid.shape[:-1] + y.shape[-1:])
    if order == list(range(lead)):
        return result
    return result.transpose(list(np.argsort(order)) + [lead])


register(OpDef(
    "dot", "linalg",
    infer=_dot_infer,
    kernel=_dot_kernel,
    grad=_dot_grad,
    samples=(Sample(((3, 4), (4, 5))),
             Sample(((2, 3, 4), (4, 5))),
             Sample(((2, 3), (4, 3, 5))),
             Sample(((3, 4), (4,))),
             Sample(((4,), (2, 4, 3)), symbolic=False)),
    doc="Keras dot: x's last axis against y's second-to-last; "
        "shape x.shape[:-1] + y.shape[:-2] + y.shape[-1:]."))


def dot(x, y):
    return apply("dot", [x, y])


# --- Keras batch_dot -----------------------------------------------------------------

def batch_dot_subscripts(x_ndim: int, y_ndim: int, axes: tuple) -> str:
    """Keras' batch_dot as a contraction: axis 0 is the batch, x.axes[0] meets y.axes[1].

    The result keeps x's other axes, then y's (as Keras 2.3.1's TensorFlow
    backend orders them).
    """
    x_axis, y_axis = axes
    x_terms = _LETTERS[:x_ndim]
    fresh = iter(_LETTERS[x_ndim:])
    y_terms = "".join(x_terms[0] if i == 0 else x_terms[x_axis] if i == y_axis else next(fresh)
                      for i in range(y_ndim))
    out = x_terms[:x_axis] + x_terms[x_axis + 1:] + "".join(
        t for i, t in enumerate(y_terms) if i not in (0, y_axis))
    return f"{x_terms},{y_terms}->{out}"


def _batch_dot_infer(x: TensorType, y: TensorType, axes) -> TensorType:
    if x.ndim < 2 or y.ndim < 2:
        raise ShapeError(f"batch_dot needs inputs of rank 2 or more, given shapes "
                         f"{format_shape(x.shape)} and {format_shape(y.shape)}")
    x_axis, y_axis = axes
    if not (0 < x_axis < x.ndim and 0 < y_axis < y.ndim):
        raise ShapeError(f"axes {tuple(axes)} out of range for shapes {format_shape(x.shape)} "
                         f"and {format_shape(y.shape)} (axis 0 is the batch axis and cannot "
                         "be reduced)")

    def describe(index):
        if index == "a":
            return "batch sizes (axis 0) must agree"
        return f"x.shape[{x_axis}] and y.shape[{y_axis}] (axes={tuple(axes)}) must agree"

    contraction = plan(batch_dot_subscripts(x.ndim, y.ndim, tuple(axes)))
    shape = contraction.out_shape(x.shape, y.shape, describe)
    if len(shape) == 1:
        shape += (1,)  # Keras: a rank-1 result is reshaped to (batch_size, 1)
    return TensorType(promote(x.dtype, y.dtype), shape)


def _batch_dot_kernel(x, y, axes):
    result = plan(batch_dot_subscripts(x.ndim, y.ndim, tuple(axes)))(x, y)
    return result.reshape(result.shape[0], 1) if result.ndim == 1 else result


def _batch_dot_grad(node, g):
    x, y = node.inputs
    if x.type.ndim == 2 and y.type.ndim == 2:  # rowwise inner products; g is (batch, 1)
        return mul(g, y), mul(g, x)
    return _contraction_grad(batch_dot_subscripts(x.type.ndim, y.type.ndim, node.attrs["axes"]),
                             x, y, g)


register(OpDef(
    "batch_dot", "linalg",
    infer=_batch_dot_infer,
    kernel=_batch_dot_kernel,
    attrs={"axes": (1, 1)},
    grad=_batch_dot_grad,
    samples=(Sample(((3, 4), (3, 4)), {"axes": (1, 1)}),
             Sample(((3, 4), (3, 4, 5)), {"axes": (1, 1)}),
             Sample(((3, 5, 4), (3, 4)), {"axes": (2, 1)}),
             Sample(((3, 4, 2), (3, 5, 4)), {"axes": (1, 2)}),
             Sample(((2, 3, 4, 5), (2, 5, 3)), {"axes": (3, 1)})),
    doc="Keras batch_dot with axes (x_axis, y_axis), both positive and not 0."))


def batch_dot(x, y, axes: tuple):
    return apply("batch_dot", [x, y], axes=tuple(int(a) for a in axes))

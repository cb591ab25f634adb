"""How the blocked NumPy lowering writes each body op: one line of NumPy, into `out=`.

`emit(node, inputs, shapes)` returns an `Emitted`: the Python expression for
the node given its input expressions, and how its result is held:

- "out":   the expression writes into the name `{out}` the caller chooses (a
           block buffer, an output slice) and the caller reuses buffers;
           `inplace` says `{out}` may be one of the inputs (a single ufunc
           call, which NumPy evaluates elementwise in place exactly).
- "fresh": the expression returns a new array (the op's own NumPy kernel,
           for ops without an `out=` form here: correct, just not buffered).
- "alias": the expression returns its first input or a view of it.

Only ops whose NumPy kernel is exactly one ufunc (or a reduction with
`dtype=`) are written here; everything else runs its own kernel, so the
fused result equals the unfused one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# op name -> NumPy ufunc, for ops whose kernel is that ufunc and that take no attributes.
UFUNCS = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "floordiv": np.floor_divide, "mod": np.mod, "pow": np.power,
    "maximum": np.maximum, "minimum": np.minimum,
    "neg": np.negative, "abs": np.absolute, "square": np.square, "sqrt": np.sqrt,
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
    "sign": np.sign, "round": np.rint,
    "equal": np.equal, "not_equal": np.not_equal, "greater": np.greater,
    "greater_equal": np.greater_equal, "less": np.less, "less_equal": np.less_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or,
    "logical_not": np.logical_not,
}
_KEYWORD_OUT = {"maximum", "minimum"}
_DEFAULT_RELU = {"alpha": 0.0, "max_value": None, "threshold": 0.0}
# The identity of max/min over no elements, as ir/ops/reduce.py gives it.
_REDUCERS = {"reduce_sum": "_add.reduce", "reduce_prod": "_multiply.reduce"}


@dataclass(frozen=True)
class Emitted:
    expression: str
    kind: str  # "out", "fresh" or "alias"
    inplace: bool = False
    quiet: bool = False  # overflow is expected (and harmless): run with overflow warnings off


def _sigmoid_into(x, out):
    """1 / (1 + exp(-x)) in four ufunc calls, no temporaries. exp(-x) may overflow to inf
    (x below about -88 in float32), giving 0 where the op's kernel gives a denormal: the
    two agree within 1.2e-38 (float32) / 2.3e-308 (float64); elsewhere within a few ulp.
    x is read only by the first call, so out may be x's buffer."""
    np.negative(x, out=out)
    np.exp(out, out=out)
    np.add(out, 1, out=out)
    return np.reciprocal(out, out=out)


def names() -> dict:
    """The globals the emitted expressions refer to."""
    env = {f"_{ufunc.__name__}": ufunc for ufunc in UFUNCS.values()}
    env.update(_add=np.add, _multiply=np.multiply, _max=np.max, _min=np.min, _mean=np.mean,
               _copyto=np.copyto, _greater=np.greater, _maximum=np.maximum,
               _sigmoid_into=_sigmoid_into, _minimum=np.minimum, _true_divide=np.true_divide)
    return env


def emit(node, inputs: list, shapes: dict) -> Emitted:
    """The NumPy form of body `node` on input expressions `inputs`; "{kernel}" in a
    "fresh" or "alias" expression stands for the op's own bound kernel."""
    op, attrs = node.op, node.attrs
    fallback = Emitted(f"{{kernel}}({', '.join(inputs)})", "alias" if op.view else "fresh")
    if op.name in UFUNCS and not attrs:
        # out passed by position: NumPy parses no keywords (it matters for small arrays),
        # except to maximum/minimum, where NumPy 2.4 deprecates a third positional argument
        out = "out={out}" if op.name in _KEYWORD_OUT else "{out}"
        return Emitted(f"_{UFUNCS[op.name].__name__}({', '.join(inputs)}, {out})", "out",
                       inplace=True)
    if op.name == "relu" and attrs == _DEFAULT_RELU:
        zero = f"_zero_{node.outputs[0].type.dtype}"
        return Emitted(f"_maximum({inputs[0]}, {zero}, out={{out}})", "out", inplace=True)
    if op.name == "relu_grad" and attrs == _DEFAULT_RELU:
        # the mask is computed before the product is stored, so {out} may be g or x
        return Emitted(f"_multiply({inputs[0]}, _greater({inputs[1]}, 0), {{out}})", "out",
                       inplace=True)
    if op.name == "sigmoid":  # 1 / (1 + exp(-x)); see _sigmoid_into
        return Emitted(f"_sigmoid_into({inputs[0]}, {{out}})", "out", inplace=True, quiet=True)
    if op.name == "cast":
        return Emitted(f"_copyto({{out}}, {inputs[0]}, casting='unsafe')", "out")
    if op.name == "stop_gradient":
        return Emitted(inputs[0], "alias")
    if op.name == "broadcast_like":
        same = shapes[node.inputs[0]] == shapes[node.outputs[0]]
        return Emitted(inputs[0], "alias") if same else fallback
    if op.name in ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "reduce_mean"):
        return _reduction(node, inputs[0], shapes) or fallback
    if op.name == "sum_to":
        return _sum_to(node, inputs[0], shapes) or fallback
    return fallback


def _reduction(node, x: str, shapes: dict) -> Emitted | None:
    """Reductions as ufunc.reduce (np.max and np.mean add a Python layer per call)."""
    op, axes, keepdims = node.op.name, node.attrs["axes"], node.attrs["keepdims"]
    dtype = node.inputs[0].type.dtype
    where = f"axis={axes!r}, keepdims={keepdims}, out={{out}}"
    if op in _REDUCERS:
        return Emitted(f"{_REDUCERS[op]}({x}, {where}, dtype=_dt_{dtype})", "out")
    if op == "reduce_mean":
        if not dtype.startswith("float"):
            return None  # TensorFlow's truncated integer mean: the op's own kernel
        count = math.prod(shapes[node.inputs[0]][a] for a in axes)
        # np.mean's own steps: a sum in the dtype, then a true division by the count
        return Emitted(f"_true_divide(_add.reduce({x}, {where}, dtype=_dt_{dtype}), {count}, "
                       f"out={{out}}, casting='unsafe')", "out")
    if np.dtype(dtype).kind == "b":
        return None
    initial = _initial(np.dtype(dtype), largest=op == "reduce_min")
    function = "_maximum.reduce" if op == "reduce_max" else "_minimum.reduce"
    return Emitted(f"{function}({x}, {where}, initial={initial})", "out")


def _initial(dtype: np.dtype, largest: bool) -> str:
    if dtype.kind == "f":
        return "_inf" if largest else "-_inf"
    info = np.iinfo(dtype)
    return repr(int(info.max if largest else info.min))


def _sum_to(node, g: str, shapes: dict) -> Emitted | None:
    """sum_to with the plan's shapes: the reduced axes are known, so it is one reduce."""
    have, want = shapes[node.inputs[0]], shapes[node.outputs[0]]
    if have == want:
        return Emitted(g, "alias")
    lead = len(have) - len(want)
    if lead < 0 or any(w != 1 and w != h for w, h in zip(want, have[lead:])):
        return None
    axes = tuple(range(lead)) + tuple(lead + i for i, w in enumerate(want)
                                      if w == 1 and have[lead + i] != 1)
    dtype = node.inputs[0].type.dtype
    target = f"{{out}}[{'None, ' * lead}...]" if lead else "{out}"
    return Emitted(f"_add.reduce({g}, axis={axes!r}, keepdims=True, out={target}, "
                   f"dtype=_dt_{dtype})", "out")


def constants() -> dict:
    """Per-dtype zeros (relu), dtype objects (reductions' dtype=) and inf, by name."""
    from ..ir.dtypes import DTYPES, numpy_dtype

    env = {"_inf": np.inf}
    for dtype in DTYPES:
        env[f"_dt_{dtype}"] = numpy_dtype(dtype)
        env[f"_zero_{dtype}"] = np.zeros((), numpy_dtype(dtype))
    return env

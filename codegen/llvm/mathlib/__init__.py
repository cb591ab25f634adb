"""graphk's vector math library: branch-free scalar functions in LLVM IR.

    fn = declare_math(module, "exp", "float32")   # float @graphk.exp.f32(float)

Each function is emitted once per module (cached by name), marked alwaysinline and
internal, and built only from instructions and intrinsics the loop vectorizer widens
(fma, fabs, floor, rint, copysign, select, fcmp, bitcast, integer arithmetic on bit
patterns): a loop that calls it vectorizes to the host's SIMD width, with no libm calls.
Accuracy: within 4 ulp in float32 and float64 (see tests/test_mathlib.py for the
measured bounds), NumPy's exact answers at inf, -inf, nan, -0, overflow, underflow and
subnormals. Algorithms live in one module per family; coefficients in coefficients.py
(fitted by fit.py).
"""
from __future__ import annotations

from typing import Callable

import llvmlite.ir as ir

from . import erf as _erf
from . import exp_log as _exp_log
from . import hyperbolic as _hyperbolic
from . import pow as _pow
from . import trig as _trig
from .emit import FORMATS, Emitter

__all__ = ["declare_math", "MATH_FUNCTIONS", "function_name"]

# name -> (number of arguments, rule(emitter, *args) -> result)
MATH_FUNCTIONS: dict[str, tuple[int, Callable]] = {
    "exp": (1, _exp_log.exp),
    "expm1": (1, _exp_log.expm1),
    "log": (1, _exp_log.log),
    "log1p": (1, _exp_log.log1p),
    "tanh": (1, _hyperbolic.tanh),
    "sigmoid": (1, _hyperbolic.sigmoid),
    "softplus": (1, _hyperbolic.softplus),
    "pow": (2, _pow.pow),
    "sin": (1, _trig.sin),
    "cos": (1, _trig.cos),
    "erf": (1, _erf.erf),
}


def function_name(name: str, dtype: str) -> str:
    return f"graphk.{name}.{FORMATS[dtype].suffix}"


def declare_math(module: ir.Module, name: str, dtype: str) -> ir.Function:
    """The scalar function `graphk.<name>.<f32|f64>` in `module`, emitted on first use.

    Signature: float(float) (pow: float(float, float)) in the given dtype."""
    if name not in MATH_FUNCTIONS:
        raise NotImplementedError(
            f"math library: no function {name!r} (expected one of "
            f"{', '.join(sorted(MATH_FUNCTIONS))})")
    if dtype not in FORMATS:
        raise NotImplementedError(
            f"math library: {name} has no {dtype!r} version (expected float32 or float64)")
    full_name = function_name(name, dtype)
    existing = module.globals.get(full_name)
    if existing is not None:
        return existing
    arity, rule = MATH_FUNCTIONS[name]
    float_type = Emitter.float_type(dtype)
    function = ir.Function(module, ir.FunctionType(float_type, [float_type] * arity),
                           full_name)
    function.linkage = "internal"
    function.attributes.add("alwaysinline")
    function.attributes.add("nounwind")
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    builder.ret(rule(Emitter(builder, dtype), *function.args))
    return function

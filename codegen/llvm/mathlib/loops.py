"""Array loops over one math function, compiled for the host: the harness of the
accuracy tests, the exhaustive float32 sweep and the throughput benchmark.

    loop = compile_loop("exp", "float32")
    out = loop(x)              # out[i] = graphk.exp.f32(x[i]), one native loop
"""
from __future__ import annotations

import ctypes
import functools

import llvmlite.ir as ir
import numpy as np

from .. import target
from ..loops import WHOLE_VECTORS, for_range, scalar_loop
from . import MATH_FUNCTIONS, declare_math
from .emit import Emitter


def loop_module(name: str, dtype: str) -> ir.Module:
    """void @kernel(T* noalias x0, [T* noalias x1,] T* noalias out, i64 n): counted
    loops writing out[i] = name(x0[i], ...), over whole vectors and then a scalar rest,
    as the flat region kernels do (kernel.emit_flat: no masked AVX-512 tail)."""
    arity = MATH_FUNCTIONS[name][0]
    module = target.new_module(f"mathlib_{name}_{dtype}")
    float_type = Emitter.float_type(dtype)
    pointer = float_type.as_pointer()
    index = ir.IntType(64)
    kernel = ir.Function(module, ir.FunctionType(
        ir.VoidType(), [pointer] * (arity + 1) + [index]), "kernel")
    for argument in kernel.args[:-1]:
        argument.add_attribute("noalias")
    math = declare_math(module, name, dtype)
    builder = ir.IRBuilder(kernel.append_basic_block("entry"))
    n = kernel.args[-1]
    whole = builder.and_(n, index(-WHOLE_VECTORS))

    def emit(i, _):
        inputs = [builder.load(builder.gep(p, [i])) for p in kernel.args[:arity]]
        builder.store(builder.call(math, inputs), builder.gep(kernel.args[arity], [i]))
    with builder.if_then(builder.icmp_signed(">=", n, index(WHOLE_VECTORS))):
        for_range(builder, index(0), whole, emit)   # no scalar fallback of its own
    rest = builder.select(builder.icmp_signed(">", n, index(0)), whole, n)  # none if n <= 0
    for_range(builder, rest, n, emit, hints=scalar_loop(module))
    builder.ret_void()
    return module


class Loop:
    """A compiled loop: call with arrays of the dtype (same length), get a new array."""

    def __init__(self, name: str, dtype: str):
        self.name, self.dtype = name, np.dtype(dtype)
        self.arity = MATH_FUNCTIONS[name][0]
        self.ir = str(loop_module(name, dtype))
        self._object = target.load_object(target.compile_ir(self.ir))
        pointer = ctypes.c_void_p
        self._call = ctypes.CFUNCTYPE(None, *([pointer] * (self.arity + 1)), ctypes.c_int64)(
            self._object.address("kernel"))

    def __call__(self, *arrays: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if len(arrays) != self.arity:
            raise TypeError(f"{self.name} takes {self.arity} arrays, got {len(arrays)}")
        arrays = [np.ascontiguousarray(a, dtype=self.dtype).ravel() for a in arrays]
        size = arrays[0].size
        if any(a.size != size for a in arrays):
            raise ValueError(f"{self.name}: arrays of different sizes "
                             f"{[a.size for a in arrays]}")
        if out is None:
            out = np.empty(size, dtype=self.dtype)
        elif out.dtype != self.dtype or out.size != size or not out.flags.c_contiguous:
            raise ValueError(f"{self.name}: out must be a contiguous {self.dtype} array "
                             f"of {size} elements, got {out.dtype} {out.shape}")
        self._call(*[a.ctypes.data for a in arrays], out.ctypes.data, size)
        return out

    def assembly(self) -> str:
        return target.assembly(self.ir)

    def optimized_ir(self) -> str:
        return str(target.optimized_module(self.ir))


@functools.lru_cache(maxsize=None)
def compile_loop(name: str, dtype: str) -> Loop:
    return Loop(name, dtype)

"""Loop pieces of the region kernels (kernel.py): counted loops with vectorizer hints,
row prefetches, and the accumulators of reductions (identities and combine steps).

Row reductions (softmax, logsumexp, crossentropy rows: a max pass, then an
exp-and-sum pass over the same row) are where these matter:
- A reduction loop accumulates in registers; its one add or max per element
  is a dependency chain, so the loop vectorizer is asked to interleave
  (`llvm.loop.interleave.count`): several vector accumulators, combined once.
- The row loop asks for the next row's cache lines (`llvm.prefetch`) while
  the current row computes: the exp pass reads only cached data, so without
  it memory would sit idle there and the next max pass would wait for it.
"""
from __future__ import annotations

import llvmlite.ir as ir
import numpy as np

from .plan import accumulate_dtype
from .scalar_llvm import Scalar, register_type

I64 = ir.IntType(64)
I32 = ir.IntType(32)
PTR = ir.PointerType()

# Vector accumulators per reduction loop: 4 for short bodies (a max pass: the latency of an
# add or a NaN-propagating max is 4 or more cycles, its throughput 1 or 2 a cycle), 2 for
# long ones (an exp pass hides the latency by itself; 4 copies of its body spill
# registers). MATH_OPS is what a math function counts as (its inlined polynomial).
MATH_OPS = 20
LONG_BODY = 16


def reduction_interleave(body_ops: int) -> int:
    """Vector iterations per step of a reduction loop whose point computes `body_ops` ops."""
    return 2 if body_ops >= LONG_BODY else 4
CACHE_LINE = 64
PREFETCH_LOCALITY = 3  # into every cache level (hint 3); 0-2 measured the same on W2
PREFETCH_ROWS = 1  # how far ahead: the next row (2 or 3 rows ahead measured the same)


def for_range(b: ir.IRBuilder, start, stop, emit_body, carried=(), hints=None):
    """for i in [start, stop): values = emit_body(i, values), a rotated loop.

    Returns the carried values after the loop (their initial values when it
    runs zero times). `hints` is loop metadata for the latch (see loop_hints)."""
    entry = b.block
    loop = b.append_basic_block("loop")
    after = b.append_basic_block("after")
    b.cbranch(b.icmp_signed("<", start, stop), loop, after)
    b.position_at_end(loop)
    index = b.phi(I64)
    index.add_incoming(start, entry)
    phis = []
    for value in carried:
        phi = b.phi(value.type)
        phi.add_incoming(value, entry)
        phis.append(phi)
    updated = emit_body(index, phis) if carried else (emit_body(index, ()) or ())
    following = b.add(index, ir.Constant(I64, 1))
    following.flags.append("nsw")
    latch = b.block
    index.add_incoming(following, latch)
    for phi, value in zip(phis, updated):
        phi.add_incoming(value, latch)
    branch = b.cbranch(b.icmp_signed("<", following, stop), loop, after)
    if hints is not None:
        branch.set_metadata("llvm.loop", hints)
    b.position_at_end(after)
    results = []
    for init, value in zip(carried, updated):
        result = b.phi(init.type)
        result.add_incoming(init, entry)
        result.add_incoming(value, latch)
        results.append(result)
    return results


def loop_hints(module: ir.Module, interleave: int):
    """A fresh loop ID asking the vectorizer for `interleave` vector iterations per step.

    A loop ID is a node whose first operand is itself (LLVM's convention); each loop needs
    its own, so the node is made unique by a name before it is closed on itself."""
    count = module.add_metadata([ir.MetaDataString(module, "llvm.loop.interleave.count"),
                                 ir.Constant(I32, interleave)])
    number = getattr(module, "_graphk_loops", 0)
    module._graphk_loops = number + 1
    loop_id = module.add_metadata([ir.MetaDataString(module, f"graphk.loop.{number}")])
    loop_id.operands = (loop_id, count)
    return loop_id


# Elements per step of a flat kernel's main loop: a multiple of every vector width
# (16 float32 lanes with AVX-512), so that loop needs no masked tail (kernel.emit_flat)
WHOLE_VECTORS = 16


def scalar_loop(module: ir.Module):
    """A fresh loop ID that keeps a loop scalar and rolled: the few elements after a flat
    kernel's whole vectors, not worth more copies of the body to compile."""
    off = module.add_metadata([ir.MetaDataString(module, "llvm.loop.vectorize.enable"),
                               ir.Constant(ir.IntType(1), 0)])
    rolled = module.add_metadata([ir.MetaDataString(module, "llvm.loop.unroll.disable")])
    number = getattr(module, "_graphk_loops", 0)
    module._graphk_loops = number + 1
    loop_id = module.add_metadata([ir.MetaDataString(module, f"graphk.loop.{number}")])
    loop_id.operands = (loop_id, off, rolled)
    return loop_id


def prefetch_lines(b: ir.IRBuilder, module: ir.Module, row, count, itemsize: int,
                   element_type: ir.Type) -> None:
    """Prefetch (for reading, into all cache levels) the lines of `count` elements at `row`.
    A prefetch never faults; the caller still only names elements inside the buffer."""
    prefetch = module.declare_intrinsic(
        "llvm.prefetch", [PTR], ir.FunctionType(ir.VoidType(), [PTR, I32, I32, I32]))
    step = max(1, CACHE_LINE // itemsize)
    lines = b.sdiv(b.add(count, ir.Constant(I64, step - 1)), ir.Constant(I64, step))

    def line(j, _):
        pointer = b.gep(row, [b.mul(j, ir.Constant(I64, step))], source_etype=element_type)
        b.call(prefetch, [pointer, ir.Constant(I32, 0), ir.Constant(I32, PREFETCH_LOCALITY),
                          ir.Constant(I32, 1)])
    for_range(b, ir.Constant(I64, 0), lines, line)


# --- reductions ------------------------------------------------------------------------

_IDENTITIES = {"reduce_sum": 0, "reduce_mean": 0, "reduce_prod": 1, "reduce_pick": 0}


def start_value(op_name: str, dtype: str):
    """The start of an accumulation: what the reduction of no elements gives."""
    if op_name in _IDENTITIES:
        return _IDENTITIES[op_name]
    largest = op_name == "reduce_min"
    if dtype == "bool":
        return largest
    if dtype in ("float32", "float64"):
        return float("inf") if largest else float("-inf")
    info = np.iinfo(dtype)
    return int(info.max if largest else info.min)


def identity(op_name: str, dtype: str):
    """The value a slot is filled with before a reduction accumulates into it."""
    return start_value(op_name, accumulate_dtype(dtype))


def combiner(emitter, op_name: str, dtype: str):
    """combine(acc, value, reassociate=False) -> Scalar for the reduction `op_name`."""
    b = emitter.b

    def combine(acc: Scalar, value: Scalar, reassociate: bool = False) -> Scalar:
        if op_name in ("reduce_sum", "reduce_mean", "reduce_prod"):
            is_sum = op_name != "reduce_prod"
            if dtype in ("float32", "float64"):
                result = (b.fadd if is_sum else b.fmul)(acc.value, value.value)
                if reassociate:  # lets the vectorizer keep one partial sum per lane
                    result.flags.append("reassoc")
                return Scalar(result, dtype)
            return Scalar((b.add if is_sum else b.mul)(acc.value, value.value), dtype)
        largest = op_name == "reduce_max"
        if dtype == "bool":
            return Scalar((b.or_ if largest else b.and_)(acc.value, value.value), dtype)
        if dtype in ("float32", "float64"):  # NaN-propagating, vectorizable reductions
            name = "maximum" if largest else "minimum"
            ty = register_type(dtype)
            fn = emitter.module.declare_intrinsic(f"llvm.{name}", [ty],
                                                  ir.FunctionType(ty, [ty, ty]))
            return Scalar(b.call(fn, [acc.value, value.value]), dtype)
        extreme = emitter.sb.maximum if largest else emitter.sb.minimum
        return extreme(acc, value)

    return combine

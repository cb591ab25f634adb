"""Which lowering `backend="auto"` runs one call of a fused node on: a cost model of each.

Both estimates are microseconds of one call, from the run-time shape of
every body value (so a given input pattern always gets the same answer: the
choice never depends on timing or on how many calls came before):

    NumPy   NUMPY_CALL_US + sum over body ops of
                (NUMPY_OP_US, or NUMPY_REDUCE_US for a reduction)
                + elements it reads * (NUMPY_NS[class]
                                       + NUMPY_BROADCAST_NS if an operand is broadcast) / 1000
                + rows * NUMPY_ROW_NS / 1000 for a reduction over the last axis
    native  LLVM_CALL_US + LLVM_STAGE_US * (loop nests - 1)
                + elements of each loop nest * LLVM_STREAM_NS / 1000
                  (nests of one shape inside shared loops counted once)
                + sum over body ops of elements it reads * LLVM_NS[class] / 1000

An op's class is "cheap" (arithmetic, comparisons, casts), "select"
(maximum, relu, where...), "transcendental" (the math library's
polynomials) or "reduce". The
constants are CPU time per call on the development machine (AVX2 EPYC,
float32, one thread; `python benchmarks/bench_llvm_overhead.py` prints the
two kernels side by side): NumPy pays a ufunc call per op (about 0.7 us) and
a pass over memory per op, the native call a fixed ctypes cost (about 5 us:
input checks, buffers, pointers, the call) and one pass per loop nest.
Native runs only where it is expected to be NATIVE_MARGIN times faster and
to save enough per call to pay back its compile (below): where the two are
close (memory-bound streams of one or two cheap ops), or where the call is
too small for the saving to matter, NumPy keeps it. So a `w - lr * g`
update stays on NumPy at every size, the 13-op W1 chain goes native from
about 1,000 elements, a bias add with relu from about 30,000, a 16-wide row
softmax from about 100 rows.
"""
from __future__ import annotations

import math

from ...ir.ops.fused import BODY_REDUCTIONS

NUMPY_CALL_US = 0.5
# per op: a ufunc call (a 17-op chain on 16 elements: ~10 us); a reduction costs more
# (np.add.reduce over (32, 10) rows ~2 us, plus the blocked evaluator's out= and keepdims
# handling), and so do its elements (a bias gradient's sum over the leading axes of
# (32, 4, 4, 64): 0.5 ns each). Measured: a 12-op crossentropy with 4 reductions on
# (32, 10) takes ~30 us on NumPy, ~12 native.
NUMPY_OP_US = 0.7
NUMPY_REDUCE_US = 3.0
NUMPY_NS = {"cheap": 0.13, "select": 0.3, "transcendental": 0.7, "reduce": 0.5}
NUMPY_ROW_NS = 50.0  # a reduction over the last axis: NumPy's loop per row (x2.5 max/min)
NUMPY_BROADCAST_NS = 0.45  # an operand repeated along axes (a bias): NumPy's slower loops
LLVM_CALL_US = 5.0
LLVM_STAGE_US = 1.5
LLVM_STREAM_NS = 0.2
LLVM_NS = {"cheap": 0.02, "select": 0.02, "transcendental": 0.5, "reduce": 0.05}
NATIVE_MARGIN = 1.15
# A native kernel costs a compile first (CPU ms, cold: about COMPILE_MS + COMPILE_OP_MS
# per body op + COMPILE_STAGE_MS per loop nest after the first; ~3 ms from the disk
# cache). A call goes native only when it saves at least NATIVE_SAVING_US, and at least
# SAVING_PER_COMPILE_MS per ms of that compile: the compile pays for itself within about
# 7,000 calls, and small functions (tests, tiny models, optimizer updates of a few
# weights) compile nothing.
NATIVE_SAVING_US = 5.0
SAVING_PER_COMPILE_MS = 0.15
# Measured on W3's regions (cold, one region a module, CPU ms): a bias add with relu
# (1 nest) 25, relu_grad + bias gradient + update (3 nests) 27-33, a 22-op
# crossentropy with its gradient (8 nests) 116.
COMPILE_MS, COMPILE_OP_MS, COMPILE_STAGE_MS = 18.0, 1.5, 10.0

TRANSCENDENTAL = frozenset({"exp", "expm1", "log", "log1p", "tanh", "sigmoid", "softplus",
                            "pow", "sin", "cos", "erf", "elu", "sigmoid_cross_entropy"})
SELECT = frozenset({"relu", "relu_grad", "maximum", "minimum", "clip", "switch", "sign"})
_FREE = frozenset({"placeholder", "constant"})


def op_class(name: str) -> str:
    if name in BODY_REDUCTIONS:
        return "reduce"
    if name in SELECT:  # NumPy's maximum/where loops are slower than its arithmetic
        return "select"
    return "transcendental" if name in TRANSCENDENTAL else "cheap"


def _size(shape) -> int:
    return math.prod(shape) if shape else 1


def estimates(body, shapes: dict, stage_extents: list, shared=()) -> tuple[float, float]:
    """(NumPy us, native us) for one call; `shapes` maps every body value to its run-time
    shape, `stage_extents` holds each loop nest's extents, `shared` whether each runs
    inside shared loops (plan.py): those of one shape stream their operands once (the
    later ones find the row in cache)."""
    numpy_us, native_us = NUMPY_CALL_US, LLVM_CALL_US + LLVM_STAGE_US * (len(stage_extents) - 1)
    streamed = [tuple(e) for e in stage_extents]
    if shared:
        inside = {e for e, member in zip(streamed, shared) if member}
        streamed = [e for e, member in zip(streamed, shared) if not member] + list(inside)
    native_us += sum(_size(e) for e in streamed) * LLVM_STREAM_NS / 1e3
    for node in body.nodes:
        name = node.op.name
        if name in _FREE:
            continue
        kind = op_class(name)
        sizes = [_size(shapes[v]) for v in node.inputs]
        read = max(sizes + [_size(shapes[node.outputs[0]])])
        per_element = NUMPY_NS[kind]
        if kind != "reduce" and any(1 < size < read for size in sizes):
            per_element += NUMPY_BROADCAST_NS
        numpy_us += (NUMPY_REDUCE_US if kind == "reduce" else NUMPY_OP_US) \
            + read * per_element / 1e3
        shape = shapes[node.inputs[0]]
        if kind == "reduce" and shape and len(shape) - 1 in node.attrs["axes"]:
            rows = read // max(shape[-1], 1)
            numpy_us += rows * NUMPY_ROW_NS * (1 if name in ("reduce_sum", "reduce_mean")
                                                 else 2.5) / 1e3
        native_us += read * LLVM_NS[kind] / 1e3
    return numpy_us, native_us


def compile_ms(body, stages: int) -> float:
    """Estimated CPU ms to compile the region cold (see SAVING_PER_COMPILE_MS)."""
    ops = sum(1 for node in body.nodes if node.op.name not in _FREE)
    return COMPILE_MS + COMPILE_OP_MS * ops + COMPILE_STAGE_MS * (stages - 1)


def numpy_is_faster(body, shapes: dict, stage_extents: list, shared=()) -> bool:
    """Whether auto runs this call on NumPy: native is not expected to be NATIVE_MARGIN
    times faster, or to save enough per call to pay back its compile."""
    numpy_us, native_us = estimates(body, shapes, stage_extents, shared)
    wanted = max(NATIVE_SAVING_US,
                 SAVING_PER_COMPILE_MS * compile_ms(body, len(stage_extents)))
    return native_us * NATIVE_MARGIN >= numpy_us or numpy_us - native_us < wanted


__all__ = ["compile_ms", "estimates", "numpy_is_faster", "op_class"]

"""The closure a fused node runs as: checks, specialization, buffers, the native call.

`FusedKernel(node, region)(*arrays)` is called by the generated Python
program with the node's input arrays and returns its outputs (one array,
or a tuple for several). Per call it

1. checks the inputs (ndarray of the declared dtype, aligned; a misaligned
   one is copied) and evaluates the run-time shape of every body value with
   NumPy's broadcasting rules, so a dim that is neither 1 nor the other
   size is a ShapeError naming the op and its line, before native code runs;
2. picks an entry: `flat` when every operand is C-contiguous in the
   output's shape (or a single element), else the strided loop nest with
   strides in elements (0 where broadcast; negative strides are fine), with
   the shared loops of the plan unless the run-time extents disagree;
3. allocates outputs and scratch (reductions' scratch filled with their
   identity) and calls the native entry through ctypes, which releases the
   GIL, split over threads when large.

Everything derived from the input shapes and strides is prepared once per
(shapes, strides) and cached on the kernel, so a steady call costs a
dictionary lookup, the allocations and the native call. Native code only
ever indexes within the extents computed here, so it cannot read or write
out of bounds whatever the feeds.
"""
from __future__ import annotations

import ctypes
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ...ir.errors import located
from ...threads import capacity, lease, threads_for
from ...ir.ops.fused import BODY_REDUCTIONS
from ...ir.shapes import ShapeError, format_shape
from .kernel import identity
from .layout import accesses
from .plan import Unsupported, accumulate_dtype

# When a call is small, the blocked NumPy kernel wins: the native call has a fixed cost
# (argument checks, buffer pointers, ctypes, allocation) that NumPy only matches with
# enough ops. Cost models in microseconds, from benchmarks/bench_llvm_overhead.py (CPU
# time per call on the development machine; see the README):
#   native  LLVM_CALL_US + LLVM_STAGE_US * loop nests        (the loops themselves are free
#                                                             next to that at these sizes)
#   NumPy   ops * (NUMPY_OP_US + NUMPY_ELEMENT_US * elements)
# so a 17-op chain runs natively at every size, a 5-op softmax from about 2000 elements.
LLVM_CALL_US = 6.0
LLVM_STAGE_US = 2.0
NUMPY_OP_US = 1.5
NUMPY_ELEMENT_US = 0.001
# Elements (times the body's op count) per thread before a kernel is split.
WORK_PER_THREAD = 400_000
_PREPARED_ENTRIES = 64

_FLAT = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)
_NEST = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                         ctypes.c_void_p, ctypes.c_void_p)
_pool: ThreadPoolExecutor | None = None


def numpy_is_faster(elements: int, ops: int, stages: int) -> bool:
    """The cost models above: whether NumPy beats the native call on this many elements
    (summed over the loop nests) of a region of `ops` body ops."""
    native = LLVM_CALL_US + LLVM_STAGE_US * stages
    return ops * (NUMPY_OP_US + NUMPY_ELEMENT_US * elements) < native


def _executor() -> ThreadPoolExecutor:
    """The persistent helper threads (created once; the budget limits how many work)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, capacity() - 1),
                                   thread_name_prefix="graphk-llvm")
    return _pool


class Prepared:
    """What one (shapes, strides) pattern of the inputs needs per call."""

    __slots__ = ("variant", "function", "extents", "strides", "outputs", "scratch",
                 "views", "split", "work")


class FusedKernel:
    """The LLVM lowering of one fused node (see the module docstring)."""

    lowering = "llvm"

    def __init__(self, node, region, small_on_numpy: bool = True):
        self.node = node
        self.region = region
        self.plan = region.plan
        self.body = node.attrs["body"]
        self.small_on_numpy = small_on_numpy
        self._numpy = None  # the node's blocked NumPy kernel, made when first needed
        self.input_dtypes = [np.dtype(v.type.dtype) for v in self.body.inputs]
        self.constants = {k: np.ascontiguousarray(slot.value.node.attrs["value"],
                                                  dtype=slot.dtype)
                          for k, slot in enumerate(self.plan.slots) if slot.kind == "constant"}
        self.ops = max(1, sum(1 for n in self.body.nodes if n.op.name != "placeholder"))
        self._prepared: dict = {}
        self._functions: dict = {}

    # --- the call -------------------------------------------------------------------
    def __call__(self, *arrays):
        arrays = [self._checked(k, a) for k, a in enumerate(arrays)]
        key = tuple((a.shape, a.strides) for a in arrays)
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepare(arrays)
            if len(self._prepared) >= _PREPARED_ENTRIES:
                self._prepared.clear()
            self._prepared[key] = prepared
        if prepared.variant == "numpy":
            return self.numpy_kernel(*arrays)
        buffers = self._buffers(arrays, prepared)
        pointers = (ctypes.c_void_p * len(buffers))(*[b.ctypes.data for b in buffers])
        self._run(prepared, pointers)
        outputs = [buffers[k] for k, slot in enumerate(self.plan.slots) if slot.kind == "output"]
        return tuple(outputs) if len(outputs) > 1 else outputs[0]

    def _checked(self, k: int, array) -> np.ndarray:
        expected = self.input_dtypes[k]
        if array.__class__ is not np.ndarray:
            array = np.asarray(array)
        if array.dtype != expected:
            if not np.can_cast(array.dtype, expected, casting="same_kind"):
                raise TypeError(f"fused node at {self.node.location}: input {k} has dtype "
                                f"{array.dtype}, expected {expected}")
            array = array.astype(expected)
        if array.ndim != self.body.inputs[k].type.ndim:
            raise ShapeError(f"fused node at {self.node.location}: input {k} has shape "
                             f"{format_shape(array.shape)}, expected rank "
                             f"{self.body.inputs[k].type.ndim}")
        if not array.flags.aligned:  # native loads assume aligned elements
            array = array.copy()
        return array

    def _buffers(self, arrays, prepared: Prepared) -> list:
        buffers = []
        scratch = iter(prepared.scratch)
        outputs = iter(prepared.outputs)
        for k, slot in enumerate(self.plan.slots):
            if slot.kind == "input":
                buffers.append(arrays[slot.index])
            elif slot.kind == "constant":
                buffers.append(self.constants[k])
            elif slot.kind == "output":
                shape, dtype, fill = next(outputs)
                buffers.append(np.empty(shape, dtype) if fill is None
                               else np.full(shape, fill, dtype))
            elif slot.kind == "scratch":
                shape, dtype, fill = next(scratch)
                buffers.append(np.full(shape, fill, dtype))
            else:  # a view: the aliased buffer in this value's shape
                buffers.append(buffers[slot.alias].reshape(prepared.views[k]))
        return buffers

    def _run(self, prepared: Prepared, pointers) -> None:
        function, split = prepared.function, prepared.split
        if prepared.variant == "flat":
            call = lambda begin, end: function(begin, end, pointers)  # noqa: E731
        else:
            extents = prepared.extents.ctypes.data
            strides = prepared.strides.ctypes.data
            call = lambda begin, end: function(begin, end, pointers, extents, strides)  # noqa: E731
        if split <= 1 or prepared.work < 2 * WORK_PER_THREAD:  # no budget query needed
            call(0, split)
            return
        wanted = threads_for(prepared.work, WORK_PER_THREAD)
        if wanted <= 1:
            call(0, split)
            return
        with lease(min(wanted, split)) as granted:
            bounds = [split * t // granted for t in range(granted + 1)]
            futures = [_executor().submit(call, bounds[t], bounds[t + 1])
                       for t in range(1, granted)]
            call(bounds[0], bounds[1])
            for future in futures:
                future.result()

    # --- preparation per input pattern ---------------------------------------------------
    def _prepare(self, arrays) -> Prepared:
        shapes = self._shapes(arrays)
        plan = self.plan
        prepared = Prepared()
        extents = [shapes[stage.root] for stage in plan.stages]
        prepared.work = sum(int(np.prod(e, dtype=np.int64)) for e in extents) * self.ops
        prepared.outputs = self._output_specs(shapes)
        prepared.views = {k: shapes[slot.value] for k, slot in enumerate(plan.slots)
                          if slot.kind == "view"}
        prepared.scratch = [(shapes[slot.value], slot.dtype,
                             identity(slot.value.node.op.name, slot.value.type.dtype))
                            for slot in plan.slots if slot.kind == "scratch"]
        if self.small_on_numpy and numpy_is_faster(prepared.work // self.ops, self.ops,
                                                   len(plan.stages)):
            prepared.variant = "numpy"
            return prepared
        try:
            return self._native(prepared, arrays, shapes, extents)
        except Unsupported:  # this entry's code could not be generated: the report says why
            prepared.variant = "numpy"
            return prepared

    @property
    def numpy_kernel(self):
        if self._numpy is None:
            from ..fused_numpy import compile_fused

            self._numpy = compile_fused(self.node)
        return self._numpy

    def _native(self, prepared: Prepared, arrays, shapes, extents) -> Prepared:
        plan, layout = self.plan, self.region.layout
        if self.region.flat and self._flat_ok(arrays, shapes):
            prepared.variant = "flat"
            prepared.split = int(np.prod(extents[0], dtype=np.int64))
            prepared.function = self._function("flat")
            return prepared
        depth = plan.depth
        if depth and any(tuple(e[:depth]) != tuple(extents[0][:depth]) for e in extents):
            depth = 0  # the shared loops disagree at run time: run the stages one by one
        prepared.split = extents[0][0] if depth else 1
        prepared.extents = np.zeros(layout.num_extents, np.int64)
        prepared.strides = np.zeros(layout.num_strides, np.int64)
        for s, stage in enumerate(plan.stages):
            start = layout.extent_offset[s]
            prepared.extents[start:start + stage.rank] = extents[s]
            for slot in accesses(plan, stage):
                offset = layout.stride_offset[(s, slot)]
                prepared.strides[offset:offset + stage.rank] = self._stage_strides(
                    stage, slot, extents[s], arrays, shapes)
        generic = not self._inner_strides_hold(prepared, extents)
        prepared.variant = f"nest{depth}" + ("g" if generic else "")
        prepared.function = self._function(prepared.variant)
        return prepared

    def _inner_strides_hold(self, prepared: Prepared, extents) -> bool:
        """Whether the innermost strides are the ones the specialized entry assumes."""
        layout = self.region.layout
        for (s, slot), stride in self.region.inner.items():
            rank = self.plan.stages[s].rank
            if extents[s][rank - 1] > 1 and prepared.strides[
                    layout.stride_offset[(s, slot)] + rank - 1] != stride:
                return False
        return True

    def _function(self, variant: str):
        function = self._functions.get(variant)
        if function is None:
            kind = _FLAT if variant == "flat" else _NEST
            function = kind(self.region.entry(variant))
            self._functions[variant] = function
        return function

    def _output_specs(self, shapes) -> list:
        """(shape, dtype, fill) per output: a reduction accumulating into it starts at its
        identity, anything else is written whole."""
        specs = []
        for k, slot in enumerate(self.plan.slots):
            if slot.kind != "output":
                continue
            value = slot.value
            fill = None
            if self.plan.slot_of.get(value) == k and value.node.op.name in BODY_REDUCTIONS:
                fill = identity(value.node.op.name, value.type.dtype)
            specs.append((shapes[value], slot.dtype, fill))
        return specs

    def _flat_ok(self, arrays, shapes) -> bool:
        root = shapes[self.plan.stages[0].root]
        for slot in accesses(self.plan, self.plan.stages[0]):
            info = self.plan.slots[slot]
            if info.kind != "input":
                continue
            array = arrays[info.index]
            if array.size == 1 and all(d == 1 for d in info.value.type.shape):
                continue
            if array.shape != root or not array.flags.c_contiguous:
                return False
        return True

    def _shapes(self, arrays) -> dict:
        """Run-time shape of every body value, by NumPy's rules (errors name the op)."""
        shapes = {v: a.shape for v, a in zip(self.body.inputs, arrays)}
        for node in self.body.nodes:
            name = node.op.name
            if name == "placeholder":
                continue
            if name == "constant":
                shapes[node.outputs[0]] = np.shape(node.attrs["value"])
            elif name in BODY_REDUCTIONS:
                shape, axes = shapes[node.inputs[0]], node.attrs["axes"]
                if node.attrs["keepdims"]:
                    shapes[node.outputs[0]] = tuple(1 if a in axes else d
                                                    for a, d in enumerate(shape))
                else:
                    shapes[node.outputs[0]] = tuple(d for a, d in enumerate(shape)
                                                    if a not in axes)
            else:
                operands = [shapes[v] for v in node.inputs]
                try:
                    shapes[node.outputs[0]] = np.broadcast_shapes(*operands)
                except ValueError:
                    error = ShapeError("shapes " + " and ".join(map(format_shape, operands))
                                       + " do not broadcast (each dim must be equal or 1)")
                    raise located(error, name, node.location,
                                  " (while running the function)") from None
        return shapes

    def _stage_strides(self, stage, slot: int, extents, arrays, shapes) -> list:
        """Strides in elements along the stage's axes for one access (0 where broadcast)."""
        info = self.plan.slots[slot]
        rank = stage.rank
        if info.kind == "input":
            array = arrays[info.index]
            shape, strides = array.shape, [s // array.itemsize for s in array.strides]
        elif info.kind == "constant":
            array = self.constants[slot]
            shape, strides = array.shape, [s // array.itemsize for s in array.strides]
        else:  # outputs and scratch are fresh C-contiguous buffers
            shape = shapes[info.value]
            strides = _contiguous_strides(shape)
        for node in stage.nodes:
            if slot == self.plan.slot_of[node.outputs[0]]:
                return _reduction_write_strides(node, strides, rank)
        result = [0] * rank
        offset = rank - len(shape)
        for j, (dim, stride) in enumerate(zip(shape, strides)):
            extent = extents[offset + j]
            if dim == extent and dim != 1:
                result[offset + j] = stride
            elif dim != 1:  # never reached when _shapes agreed; guards the native code
                raise ShapeError(f"fused node at {self.node.location}: an operand of shape "
                                 f"{format_shape(shape)} does not fit the loop over "
                                 f"{format_shape(tuple(extents))}")
        return result


def _contiguous_strides(shape) -> list:
    strides, step = [], 1
    for dim in reversed(shape):
        strides.append(step)
        step *= max(dim, 1)
    return strides[::-1]


def _reduction_write_strides(node, slot_strides: list, rank: int) -> list:
    """A reduction writes its slot at the loop's kept axes; reduced axes stay put (0)."""
    axes = node.attrs["axes"]
    if node.attrs["keepdims"]:
        return [0 if a in axes else slot_strides[a] for a in range(rank)]
    kept = iter(slot_strides)
    return [0 if a in axes else next(kept) for a in range(rank)]


__all__ = ["FusedKernel", "numpy_is_faster", "accumulate_dtype"]

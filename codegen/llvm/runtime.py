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
   the shared loops of the plan unless the run-time extents disagree, and a
   stage's adjacent axes that every operand walks as one merged into one loop
   (extents.coalesce: a (1024, 10) update vectorizes as 10,240 elements); with
   backend="auto", the blocked NumPy kernel instead where the cost model
   (cost.py) says so, decided from the shapes alone;
3. allocates outputs (a single elementwise output goes into a dead input the
   memory plan donated, when one fits exactly), takes a scratch arena reset to
   the reductions' identities (buffers.py) and calls the native entry through
   ctypes, which releases the GIL, split over threads when large. The first
   native call compiles the function's module (compiler.py, Region.entry).

Everything derived from the input shapes and strides is prepared once per
(shapes, strides) and cached on the kernel, so a steady call costs the
input checks, a dictionary lookup, the allocations, one word read per
buffer for its address (pointers.py) and the native call. Native code only
ever indexes within the extents computed here, so it cannot read or write
out of bounds whatever the feeds.
"""
from __future__ import annotations

import ctypes
import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ...ir.ops.fused import BODY_REDUCTIONS
from ...ir.shapes import ShapeError, format_shape
from ...threads import capacity, lease, threads_for
from .cost import numpy_is_faster
from .extents import access_strides, coalesce, value_shapes
from .kernel import identity
from .layout import accesses
from .plan import Unsupported, accumulate_dtype
from .buffers import CallBuffers
from .pointers import data_address

# Elements (times the body's op count) per thread before a kernel is split.
WORK_PER_THREAD = 400_000
_PREPARED_ENTRIES = 64

_FLAT = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)
_NEST = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                         ctypes.c_void_p, ctypes.c_void_p)
_pool: ThreadPoolExecutor | None = None


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
                 "split", "work", "why", "donor", "buffers", "run")


_COST = "faster there at this size"  # why a pattern runs on NumPy: the cost model said so

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
        self._inputs = list(zip(self.input_dtypes, [v.type.ndim for v in self.body.inputs]))
        self.constants = {k: np.ascontiguousarray(slot.value.node.attrs["value"],
                                                  dtype=slot.dtype)
                          for k, slot in enumerate(self.plan.slots) if slot.kind == "constant"}
        self.ops = max(1, sum(1 for n in self.body.nodes if n.op.name != "placeholder"))
        self._outputs = [k for k, slot in enumerate(self.plan.slots) if slot.kind == "output"]
        self._prepared: dict = {}
        self._on_numpy: dict = {}  # input shapes the cost model sent to NumPy -> its plan
        self._functions: dict = {}
        # Inputs the caller no longer needs (the memory plan, codegen/memory_plan.py): the
        # output may be written into one of them rather than into fresh memory (page faults
        # on every call for large arrays). Only a single elementwise store may do so: it
        # reads each input element before writing the output element at the same place.
        self.donate: frozenset = frozenset()
        stage = self.plan.stages[0] if self.plan.flat_eligible() else None
        self._may_donate = stage is not None and len(stage.stores) == 1 and not any(
            slot.kind == "view" for slot in self.plan.slots)

    # --- the call -------------------------------------------------------------------
    def __call__(self, *given):
        if self._on_numpy:  # input shapes the cost model gave to NumPy: straight to its plan
            try:  # (the driver passes each input in its declared dtype, as checked below)
                run = self._on_numpy.get(tuple([a.shape for a in given]))
            except AttributeError:  # not arrays: checked below
                run = None
            if run is not None:
                try:
                    return run(*given)
                except Exception as error:
                    raise self._numpy._explain(error) from error
        arrays = [a if a.__class__ is np.ndarray and a.dtype is dtype and a.ndim == ndim
                  and a.flags.aligned else self._checked(k, a)
                  for k, (a, (dtype, ndim)) in enumerate(zip(given, self._inputs))]
        key = tuple([(a.shape, a.strides) for a in arrays])
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepare(arrays)
            if len(self._prepared) >= _PREPARED_ENTRIES:
                self._prepared.clear()
                self._on_numpy.clear()
            self._prepared[key] = prepared
            if prepared.why == _COST and all(a is b for a, b in zip(arrays, given)):
                # decided from the shapes alone (cost.py), for arrays that needed no checks
                # (the NumPy kernel's plan for these shapes, codegen/fused_numpy.py)
                self._on_numpy[tuple([a.shape for a in arrays])] = \
                    self.numpy_kernel._plan_for(arrays)
        if prepared.run is None:
            return self.numpy_kernel(*arrays)
        buffers = prepared.buffers
        entry = buffers.take()  # scratch and the addresses of every buffer
        made = buffers.fill(entry, arrays)
        prepared.run(entry.address)
        buffers.give(entry)
        return made[0] if len(made) == 1 else tuple(made)

    def call_summary(self) -> str:
        """Which entry ran each input pattern (shapes, strides) called so far, for the report."""
        if not self._prepared:
            return "none yet"
        counts: dict = {}
        for prepared in self._prepared.values():
            name = (f"NumPy ({prepared.why})" if prepared.variant == "numpy"
                    else f"native {prepared.variant}")
            counts[name] = counts.get(name, 0) + 1
        return ", ".join(f"{n} input pattern(s) {name}" for name, n in counts.items())

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

    def _call_buffers(self, prepared: Prepared) -> CallBuffers:
        """Where each slot's buffer comes from on every call of this pattern."""
        inputs, outputs, views, constants = [], [], [], {}
        specs, scratch = iter(prepared.outputs), iter(prepared.scratch)
        for k, slot in enumerate(self.plan.slots):
            if slot.kind == "input":
                inputs.append((k, slot.index))
            elif slot.kind == "constant":
                constants[k] = self.constants[k]
            elif slot.kind == "output":
                shape, dtype, fill = next(specs)
                donor = prepared.donor if fill is None else None
                outputs.append((k, shape, dtype, fill, donor))
            elif slot.kind == "view":
                views.append((k, slot.alias))
        scratch = [(k, *next(scratch)) for k, slot in enumerate(self.plan.slots)
                   if slot.kind == "scratch"]
        return CallBuffers(len(self.plan.slots), inputs, outputs, scratch, constants, views)

    def _runner(self, prepared: Prepared):
        """run(pointers): the native call, with the prepared extents and strides (one
        Python frame at most between the driver and ctypes when the call is not split)."""
        function, split = prepared.function, prepared.split
        # a tail stage or a sum across the first loop: each split call would run it again
        alone = split <= 1 or prepared.work < 2 * WORK_PER_THREAD or (
            prepared.variant != "flat" and not self.plan.splittable)
        if prepared.variant == "flat":
            call = function
            if alone:  # no budget query needed
                return functools.partial(function, 0, split)
        else:
            extents, strides = data_address(prepared.extents), data_address(prepared.strides)
            call = lambda begin, end, pointers: function(  # noqa: E731
                begin, end, pointers, extents, strides)
            if alone:
                return lambda pointers: function(0, split, pointers, extents, strides)
        return lambda pointers: _split(call, split, prepared.work, pointers)

    # --- preparation per input pattern ---------------------------------------------------
    def _prepare(self, arrays) -> Prepared:
        shapes = value_shapes(self.body, arrays)
        plan = self.plan
        prepared = Prepared()
        extents = [shapes[stage.root] for stage in plan.stages]
        prepared.work = sum(int(np.prod(e, dtype=np.int64)) for e in extents) * self.ops
        prepared.outputs = self._output_specs(shapes)
        prepared.donor = self._donor(arrays, prepared.outputs)
        prepared.scratch = [(shapes[slot.value], slot.dtype,
                             identity(slot.value.node.op.name, slot.value.type.dtype))
                            for slot in plan.slots if slot.kind == "scratch"]
        prepared.run, prepared.why = None, None  # run None: the NumPy kernel runs this pattern
        shared = plan.shared if plan.depth else ()
        if self.small_on_numpy and numpy_is_faster(self.body, shapes, extents, shared):  # cost.py
            prepared.variant, prepared.why = "numpy", _COST
            return prepared
        try:
            self._native(prepared, arrays, shapes, extents)
        except Unsupported as error:  # this entry's code could not be generated
            prepared.variant, prepared.why = "numpy", f"LLVM: {error}"
            return prepared
        prepared.buffers = self._call_buffers(prepared)
        prepared.run = self._runner(prepared)
        return prepared

    def _donor(self, arrays, outputs) -> int | None:
        """The donated input the single output is written into, if one fits exactly (same
        shape and dtype, C-contiguous: element i of each is the same memory)."""
        if not (self.donate and self._may_donate):
            return None
        (shape, dtype, fill), = outputs
        for k in sorted(self.donate):
            array = arrays[k]
            if fill is None and array.shape == shape and array.dtype == dtype \
                    and array.flags.c_contiguous:
                return k
        return None

    @property
    def numpy_kernel(self):
        if self._numpy is None:
            from ..fused_numpy import compile_fused

            self._numpy = compile_fused(self.node)
            self._numpy.donate = self.donate  # the same memory plan as the native call's
        return self._numpy

    def _native(self, prepared: Prepared, arrays, shapes, extents) -> None:
        plan, layout = self.plan, self.region.layout
        if self.region.flat and self._flat_ok(arrays, shapes):
            prepared.variant = "flat"
            prepared.split = int(np.prod(extents[0], dtype=np.int64))
            prepared.function = self._function("flat")
            return
        depth = plan.depth
        inside = plan.shared_stages(depth)
        if depth and any(tuple(extents[s][:depth]) != tuple(extents[0][:depth]) for s in inside):
            depth = 0  # the shared loops disagree at run time: run the stages one by one
            inside = plan.shared_stages(0)
        prepared.split = extents[0][0] if depth else 1
        prepared.extents = np.zeros(layout.num_extents, np.int64)
        prepared.strides = np.zeros(layout.num_strides, np.int64)
        loops = []  # per stage: its extents after coalescing
        for s, stage in enumerate(plan.stages):
            slots = accesses(plan, stage)
            ext = list(extents[s])
            strides = [self._access_strides(stage, slot, extents[s], arrays, shapes)
                       for slot in slots]
            if stage.kind != "pick":  # a pick's index counts along its own axis
                coalesce(ext, strides, depth if s in inside else 0, stage.root.type.shape,
                         stage.reduced_axes)
            loops.append(ext)
            start = layout.extent_offset[s]
            prepared.extents[start:start + stage.rank] = ext
            for slot, walk in zip(slots, strides):
                offset = layout.stride_offset[(s, slot)]
                prepared.strides[offset:offset + stage.rank] = walk
        generic = not self._inner_strides_hold(prepared, loops)
        prepared.variant = f"nest{depth}" + ("g" if generic else "")
        prepared.function = self._function(prepared.variant)

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

    def _access_strides(self, stage, slot: int, extents, arrays, shapes) -> list:
        info = self.plan.slots[slot]
        array = (arrays[info.index] if info.kind == "input" else self.constants[slot]
                 if info.kind == "constant" else None)
        return access_strides(stage, slot, self.plan, extents, array, shapes[info.value],
                              self.node.location)


def _split(call, split: int, work: int, pointers) -> None:
    """call(begin, end, pointers) over 0..split, shared with helper threads when the budget
    grants some (graphk/threads.py)."""
    wanted = threads_for(work, WORK_PER_THREAD)
    if wanted <= 1:
        call(0, split, pointers)
        return
    with lease(min(wanted, split)) as granted:
        bounds = [split * t // granted for t in range(granted + 1)]
        futures = [_executor().submit(call, bounds[t], bounds[t + 1], pointers)
                   for t in range(1, granted)]
        call(bounds[0], bounds[1], pointers)
        for future in futures:
            future.result()


__all__ = ["FusedKernel", "numpy_is_faster", "accumulate_dtype"]

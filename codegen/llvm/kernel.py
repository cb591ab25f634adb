"""LLVM IR for one fused region: the loop nests of its plan (see plan.py).

Two entry points per region, both `void(i64 begin, i64 end, ...)`:

    flat(begin, end, ptr* buffers)
        One loop over elements begin..end of a single elementwise stage whose
        operands are all contiguous with the output's shape or single
        elements: unit strides known at compile time, the fast path.
    nest(begin, end, ptr* buffers, i64* extents, i64* strides)
        The general loop nest: every stage's extents and every access's
        strides (in elements, in the stage's axes, 0 where broadcast) come at
        run time, laid out as `Layout` says. begin..end is the range of the
        first shared loop (threads split it); with no shared loop the caller
        passes 0..1.

Each entry loads its buffer pointers and calls an internal body whose
pointer arguments are `noalias` (outputs and scratch never overlap anything
else; inputs are only read), so loads of earlier results hoist out of inner
loops and the vectorizer needs no run-time overlap checks.

Row-wise regions (the shared loops run every stage of a row in turn) get
pipelined rows, pick stages and row prefetches from rows.py; counted loops,
vectorizer hints and reduction accumulators are in loops.py.
"""
from __future__ import annotations

import llvmlite.ir as ir

from ...ir.scalar import MATH_FUNCTIONS
from .element import Element
from .layout import Layout, inner_strides, is_full
from .loops import identity  # noqa: F401  (runtime.py imports it from here)
from .loops import (MATH_OPS, WHOLE_VECTORS, combiner, for_range, loop_hints,
                    reduction_interleave, scalar_loop, start_value)
from .plan import Plan, accumulate_dtype
from .pointers import DATA_OFFSET
from .rows import RowStages
from .scalar_llvm import LLVMScalarBuilder, Scalar, register_type

I64 = ir.IntType(64)
PTR = ir.PointerType()
_STORAGE = {"bool": ir.IntType(8)}


def storage_type(dtype: str) -> ir.Type:
    """The LLVM type of one element in memory (bool is a byte)."""
    return _STORAGE.get(dtype) or register_type(dtype)


class Emitter(RowStages):
    """Emits the entry points of one region into a module."""

    def __init__(self, module: ir.Module, plan: Plan, name: str):
        self.module = module
        self.plan = plan
        self.name = name
        self.layout = Layout(plan)
        self.b: ir.IRBuilder = None
        self.sb: LLVMScalarBuilder = None
        self.counts: dict = {}  # mean node -> element count (float of its dtype)

    # --- memory -------------------------------------------------------------------
    def load(self, pointer, v) -> Scalar:
        """The element of memory-backed value `v` at `pointer`, as a register value."""
        slot = self.plan.slots[self.plan.slot_of[v]]
        raw = self.b.load(pointer, typ=storage_type(slot.dtype))
        dtype = v.type.dtype
        if slot.dtype == "bool":
            return Scalar(self.b.icmp_unsigned("!=", raw, ir.Constant(raw.type, 0)), "bool")
        value = Scalar(raw, slot.dtype)
        node = v.node
        if node.op.name == "reduce_mean":
            count = self.sb.cast(Scalar(self.counts[node], "int64"), slot.dtype)
            value = self.sb.div(value, count)
        if slot.dtype != dtype:  # float16 reductions keep float32 scratch
            value = self.sb.cast(value, dtype)
        return value

    def store(self, pointer, value: Scalar, dtype: str) -> None:
        if value.dtype != dtype:
            value = self.sb.cast(value, dtype)
        raw = value.value
        if dtype == "bool":
            raw = self.b.zext(raw, storage_type("bool"))
        self.b.store(raw, pointer)

    def element_pointer(self, base, offset, slot: int):
        return self.b.gep(base, [offset], source_etype=storage_type(self.plan.slots[slot].dtype))

    # --- functions -------------------------------------------------------------------
    def _body_function(self, suffix: str, extra: list) -> ir.Function:
        n = len(self.plan.slots)
        fnty = ir.FunctionType(ir.VoidType(), [I64, I64] + [PTR] * n + extra)
        fn = ir.Function(self.module, fnty, f"{self.name}.{suffix}.body")
        fn.linkage = "internal"
        for k, slot in enumerate(self.plan.slots):
            arg = fn.args[2 + k]
            arg.add_attribute("noalias")
            if slot.kind in ("input", "constant"):
                arg.add_attribute("nofree")
        for arg in fn.args[2 + n:]:
            arg.add_attribute("noalias")
            arg.add_attribute("nofree")
        fn.attributes.add("nounwind")
        return fn

    def _entry(self, suffix: str, extra: list, body: ir.Function) -> None:
        """`void name.suffix(begin, end, ptr* buffers, extra...)`: loads pointers, calls body.
        `buffers` holds the arrays' object addresses, whose data pointers sit DATA_OFFSET
        bytes in (pointers.py), or the data pointers themselves when that is unknown."""
        fnty = ir.FunctionType(ir.VoidType(), [I64, I64, PTR] + extra)
        fn = ir.Function(self.module, fnty, f"{self.name}.{suffix}")
        fn.attributes.add("nounwind")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        pointers = [b.load(b.gep(fn.args[2], [ir.Constant(I64, k)], source_etype=PTR), typ=PTR)
                    for k in range(len(self.plan.slots))]
        if DATA_OFFSET is not None:
            offset = ir.Constant(I64, DATA_OFFSET)
            pointers = [b.load(b.gep(p, [offset], source_etype=ir.IntType(8)), typ=PTR)
                        for p in pointers]
        b.call(body, [fn.args[0], fn.args[1]] + pointers + list(fn.args[3:]))
        b.ret_void()

    def _start(self, fn: ir.Function) -> None:
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.sb = LLVMScalarBuilder(self.b, self.module)

    # --- flat ---------------------------------------------------------------------
    def emit_flat(self) -> str:
        """The flat entry point (plan.flat_eligible()); returns its symbol name."""
        stage = self.plan.stages[0]
        body = self._body_function("flat", [])
        self._start(body)
        bases = self._aliased(body.args[2:])
        def emit(i, _):
            def address(slot):
                offset = i if is_full(self.plan, stage, slot) else ir.Constant(I64, 0)
                return self.element_pointer(bases[slot], offset, slot)
            element = Element(self, address)
            for value, slot in stage.stores:
                self.store(address(slot), element.value(value), self.plan.slots[slot].dtype)
        # whole vectors first, then the rest in a loop of its own: with one loop the
        # vectorizer masks every AVX-512 iteration for the tail (6 more vector
        # instructions per 16 elements, 8% of W1); a trip count known to be a multiple
        # of 16 (64 bytes of float32, 128 of float64) needs none
        begin, end = body.args[0], body.args[1]
        count = self.b.sub(end, begin)
        whole = self.b.and_(count, ir.Constant(I64, -WHOLE_VECTORS))
        split = self.b.add(begin, whole)   # the trip count the vectorizer sees: whole
        # entered only with a whole vector to do, which lets LLVM drop the vectorizer's
        # own scalar fallback for shorter trip counts (compile time)
        with self.b.if_then(self.b.icmp_signed(">=", count, ir.Constant(I64, WHOLE_VECTORS))):
            for_range(self.b, begin, split, emit)
        rest = self.b.select(self.b.icmp_signed("<", begin, end), split, end)  # none if empty
        for_range(self.b, rest, end, emit, hints=scalar_loop(self.module))
        self.b.ret_void()
        self._entry("flat", [], body)
        return f"{self.name}.flat"

    # --- nest ---------------------------------------------------------------------
    def emit_nest(self, depth: int, generic: bool = False) -> str:
        """The loop-nest entry point sharing `depth` leading loops; returns its name.

        Unless `generic`, innermost strides are the compile-time ones of
        `inner_strides` (unit or 0: vectorizes without versioning); the
        generic entry reads every stride at run time."""
        suffix = f"nest{depth}" + ("g" if generic else "")
        self.inner = {} if generic else inner_strides(self.plan)
        body = self._body_function(suffix, [PTR, PTR])
        self._start(body)
        n = len(self.plan.slots)
        bases, extents_ptr, strides_ptr = body.args[2:2 + n], body.args[2 + n], body.args[3 + n]
        bases = self._aliased(bases)
        extents = self._load_all(extents_ptr, self.layout.num_extents)
        strides = self._load_all(strides_ptr, self.layout.num_strides)
        self._mean_counts(extents)
        begin, end = body.args[0], body.args[1]

        pipelined = self.pipelined(depth)

        def shared(level, indices):
            if level == depth:
                self.prefetch_next_row(depth, indices, end, bases, extents, strides)
                for s in self.plan.shared_stages(depth):
                    self.stage(s, depth, indices, bases, extents, strides)
                return
            start = begin if level == 0 else ir.Constant(I64, 0)
            stop = end if level == 0 else self.extent(0, level, extents)
            if pipelined and level == depth - 1:
                self.pipelined_rows(depth, indices, start, stop, bases, extents, strides)
                return
            for_range(self.b, start, stop, lambda i, _: shared(level + 1, indices + [i]))

        shared(0, [])
        for s in self.plan.tail_stages(depth):  # what reads sums across the shared loops
            self.stage(s, 0, [], bases, extents, strides)
        self.b.ret_void()
        self._entry(suffix, [PTR, PTR], body)
        return f"{self.name}.{suffix}"

    def _aliased(self, bases) -> list:
        """Base pointers per slot, a view reading its alias's argument (never its own, so
        no two noalias arguments ever reach the same memory)."""
        return [bases[slot.alias] if slot.kind == "view" else bases[k]
                for k, slot in enumerate(self.plan.slots)]

    def _load_all(self, pointer, count: int) -> list:
        return [self.b.load(self.b.gep(pointer, [ir.Constant(I64, k)], source_etype=I64), typ=I64)
                for k in range(count)]

    def _mean_counts(self, extents: list) -> None:
        for s, stage in enumerate(self.plan.stages):
            for node in stage.nodes:
                if node.op.name == "reduce_mean":
                    count = ir.Constant(I64, 1)
                    for axis in stage.reduced_axes:
                        count = self.b.mul(count, extents[self.layout.extent_offset[s] + axis])
                    self.counts[node] = count

    def _address(self, s: int, slot: int, indices, bases, strides):
        """Pointer to `slot`'s element at loop point `indices` of stage `s`."""
        rank = self.plan.stages[s].rank
        base = self.layout.stride_offset[(s, slot)]
        offset = ir.Constant(I64, 0)
        inner = self.inner.get((s, slot))
        for axis, index in enumerate(indices):
            if axis == rank - 1 and inner is not None:
                if inner:
                    offset = self.b.add(offset, index)
                continue
            term = self.b.mul(index, strides[base + axis])
            offset = self.b.add(offset, term)
        return self.element_pointer(bases[slot], offset, slot)

    def extent(self, s: int, axis: int, extents):
        return extents[self.layout.extent_offset[s] + axis]

    def address_at(self, s: int, bases, strides):
        """indices -> (slot -> pointer to that slot's element at loop point `indices` of
        stage `s`)."""
        return lambda indices: lambda slot: self._address(s, slot, indices, bases, strides)

    def element(self, address) -> "Element":
        return Element(self, address)

    @staticmethod
    def storage(dtype: str) -> ir.Type:
        return storage_type(dtype)

    def stage(self, s: int, depth: int, outer: list, bases, extents, strides) -> None:
        """Stage `s` at the shared loop point `outer` (its own loops inside)."""
        stage = self.plan.stages[s]
        rank = stage.rank
        ext = extents[self.layout.extent_offset[s]:self.layout.extent_offset[s] + rank]
        # an axis of static size 1 is no loop (a row's one loss value): never more
        # iterations than the run-time extent, so this cannot reach past any buffer
        ext = [ir.Constant(I64, 1) if d == 1 else e for d, e in zip(stage.root.type.shape, ext)]
        address_at = self.address_at(s, bases, strides)

        if stage.kind == "output":
            def point(indices):
                address = address_at(indices)
                element = Element(self, address)
                for value, slot in stage.stores:
                    self.store(address(slot), element.value(value), self.plan.slots[slot].dtype)
            self.nest(depth, rank, ext, outer, point)
        elif stage.kind == "pick":
            self.pick_stage(s, depth, outer, ext, address_at)
        else:
            self._reduce_stage(s, depth, outer, ext, address_at)

    def nest(self, level: int, rank: int, ext: list, indices: list, point) -> None:
        """point(indices) for every index of the axes level..rank-1 (loops over `ext`)."""
        if level == rank:
            point(indices)
            return
        for_range(self.b, ir.Constant(I64, 0), ext[level],
                  lambda i, _: self.nest(level + 1, rank, ext, indices + [i], point))

    def _reduce_stage(self, s, depth, outer, ext, address_at) -> None:
        """One pass accumulating every reduction of the stage (they share loads)."""
        rank = self.plan.stages[s].rank
        if rank > depth and (rank - 1) in self.plan.stages[s].reduced_axes:
            # innermost axis reduced: register accumulators (vectorized with reassociation)
            self.nest(depth, rank - 1, ext, outer,
                      lambda indices: self.row_reductions([(s, indices, address_at)],
                                                          ext[rank - 1]))
        else:
            def point(indices):
                address = address_at(indices)
                self._accumulate_in_memory(s, address, self._reduced_values(s, address))
            self.nest(depth, rank, ext, outer, point)

    def row_reductions(self, parts, width) -> None:
        """One loop over the innermost axis (0..width) accumulating in registers the
        reductions of every part, (stage, outer indices, address_at); then into memory."""
        nodes = [n for s, _, _ in parts for n in self.plan.stages[s].nodes]
        dtypes = [accumulate_dtype(n.outputs[0].type.dtype) for n in nodes]
        combines = [combiner(self, n.op.name, dtype) for n, dtype in zip(nodes, dtypes)]
        starts = [self.sb.const(start_value(n.op.name, dtype), dtype).value
                  for n, dtype in zip(nodes, dtypes)]
        interleave = reduction_interleave(self._element_ops([n.inputs[0] for n in nodes]))

        def step(i, carried):
            values = [v for s, outer, address_at in parts
                      for v in self._reduced_values(s, address_at(outer + [i]))]
            return [combine(Scalar(acc, dtype), value, reassociate=True).value
                    for combine, acc, dtype, value in zip(combines, carried, dtypes, values)]
        totals = for_range(self.b, ir.Constant(I64, 0), width, step, starts,
                           loop_hints(self.module, interleave))
        totals = iter([Scalar(t, d) for t, d in zip(totals, dtypes)])
        for s, outer, address_at in parts:
            mine = [next(totals) for _ in self.plan.stages[s].nodes]
            self._accumulate_in_memory(s, address_at(outer + [ir.Constant(I64, 0)]), mine)

    def _reduced_values(self, s: int, address) -> list:
        """The values stage `s`'s reductions take in at one point, in accumulation dtypes."""
        element = Element(self, address)
        values = []
        for node in self.plan.stages[s].nodes:
            dtype = accumulate_dtype(node.outputs[0].type.dtype)
            value = element.value(node.inputs[0])
            values.append(self.sb.cast(value, dtype) if value.dtype != dtype else value)
        return values

    def _accumulate_in_memory(self, s: int, address, values) -> None:
        for node, value in zip(self.plan.stages[s].nodes, values):
            slot = self.plan.slot_of[node.outputs[0]]
            dtype = accumulate_dtype(node.outputs[0].type.dtype)
            pointer = address(slot)
            combine = combiner(self, node.op.name, dtype)
            self.store(pointer, combine(self.load_raw(pointer, slot), value), dtype)

    def _element_ops(self, values) -> int:
        """How many body ops a loop point computes for `values` (up to memory loads);
        a math function counts as many (its polynomial is inlined)."""
        seen, stack, count = set(), list(values), 0
        while stack:
            v = stack.pop()
            if v in seen or v in self.plan.slot_of or v.node.op.name == "constant":
                continue
            seen.add(v)
            count += MATH_OPS if v.node.op.name in MATH_FUNCTIONS else 1
            stack.extend(v.node.inputs)
        return count

    def load_raw(self, pointer, slot: int) -> Scalar:
        dtype = self.plan.slots[slot].dtype
        raw = self.b.load(pointer, typ=storage_type(dtype))
        if dtype == "bool":
            return Scalar(self.b.icmp_unsigned("!=", raw, ir.Constant(raw.type, 0)), "bool")
        return Scalar(raw, dtype)

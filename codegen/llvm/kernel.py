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
"""
from __future__ import annotations

import llvmlite.ir as ir
import numpy as np

from ...ir.dtypes import DTypeError
from ...ir.scalar import MATH_FUNCTIONS
from .layout import Layout, inner_strides, is_full
from . import loops
from .loops import identity  # noqa: F401  (runtime.py imports it from here)
from .loops import (MATH_OPS, combiner, for_range, loop_hints, prefetch_lines,
                    reduction_interleave, start_value)
from .plan import Plan, Unsupported, accumulate_dtype
from .scalar_llvm import LLVMScalarBuilder, Scalar, register_type

I64 = ir.IntType(64)
PTR = ir.PointerType()
_STORAGE = {"bool": ir.IntType(8)}


def storage_type(dtype: str) -> ir.Type:
    """The LLVM type of one element in memory (bool is a byte)."""
    return _STORAGE.get(dtype) or register_type(dtype)


# --- element values ------------------------------------------------------------------

def _python_number(array, dtype: str):
    item = array.reshape(()).item()
    return bool(item) if dtype == "bool" else item


class Element:
    """Values of one stage at one loop point, computed on demand and memoized."""

    def __init__(self, emitter: "Emitter", address):
        self.emitter = emitter
        self.address = address  # slot -> pointer to this point's element
        self.memo: dict = {}

    def value(self, v) -> Scalar:
        stack = [v]
        while stack:  # iterative: long chains need no deep recursion
            top = stack[-1]
            if top in self.memo:
                stack.pop()
                continue
            pending = self._pending_inputs(top)
            if pending:
                stack.extend(pending)
                continue
            self.memo[top] = self._compute(top)
            stack.pop()
        return self.memo[v]

    def _pending_inputs(self, v) -> list:
        if v in self.emitter.plan.slot_of or v.node.op.name == "constant":
            return []
        return [u for u in v.node.inputs if u not in self.memo]

    def _compute(self, v) -> Scalar:
        e = self.emitter
        node = v.node
        if v in e.plan.slot_of:
            return e.load(self.address(e.plan.slot_of[v]), v)
        if node.op.name == "constant":
            return e.sb.const(_python_number(node.attrs["value"], v.type.dtype), v.type.dtype)
        args = [self.memo[u] for u in node.inputs]
        try:
            result = node.op.scalar(e.sb, *args, **node.attrs)
        except DTypeError as error:  # a rule that does not cover these dtypes
            dtypes = ", ".join(u.type.dtype for u in node.inputs)
            raise Unsupported(f"{node.op.name} (built at {node.location}): its scalar rule "
                              f"fails for ({dtypes}): {error}") from None
        if result.dtype != v.type.dtype:
            raise Unsupported(f"{node.op.name} (built at {node.location}): its scalar rule gives "
                              f"{result.dtype}, the node's type is {v.type.dtype}")
        return result


class Emitter:
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
        """`void name.suffix(begin, end, ptr* buffers, extra...)`: loads pointers, calls body."""
        fnty = ir.FunctionType(ir.VoidType(), [I64, I64, PTR] + extra)
        fn = ir.Function(self.module, fnty, f"{self.name}.{suffix}")
        fn.attributes.add("nounwind")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        pointers = [b.load(b.gep(fn.args[2], [ir.Constant(I64, k)], source_etype=PTR), typ=PTR)
                    for k in range(len(self.plan.slots))]
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
        for_range(self.b, body.args[0], body.args[1], emit)
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
        stages = self.plan.stages
        begin, end = body.args[0], body.args[1]

        def shared(level, indices):
            if level == depth:
                self._prefetch_next_row(depth, indices, end, bases, extents, strides)
                for s in range(len(stages)):
                    self._stage(s, depth, indices, bases, extents, strides)
                return
            start = begin if level == 0 else ir.Constant(I64, 0)
            stop = end if level == 0 else extents[self.layout.extent_offset[0] + level]
            for_range(self.b, start, stop, lambda i, _: shared(level + 1, indices + [i]))

        shared(0, [])
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

    def _prefetch_next_row(self, depth, outer, end, bases, extents, strides) -> None:
        """Prefetch the next row of the inputs the first stage reads (a row: the stage's one
        loop inside the shared ones), clamped to the last row so it names real elements."""
        if not depth or self.plan.stages[0].rank != depth + 1:
            return
        last = outer[-1]
        following = self.b.add(last, ir.Constant(I64, loops.PREFETCH_ROWS))
        stop = end if depth == 1 else self._extent(0, depth - 1, extents)
        following = self.b.select(self.b.icmp_signed("<", following, stop), following, last)
        start = outer[:-1] + [following, ir.Constant(I64, 0)]
        for slot in self.plan.stages[0].reads:
            info = self.plan.slots[slot]
            if info.kind == "input" and self.inner.get((0, slot)) == 1:  # a contiguous row
                row = self._address(0, slot, start, bases, strides)
                prefetch_lines(self.b, self.module, row, self._extent(0, depth, extents),
                               np.dtype(info.dtype).itemsize, storage_type(info.dtype))

    def _extent(self, s: int, axis: int, extents):
        return extents[self.layout.extent_offset[s] + axis]

    def _stage(self, s: int, depth: int, outer: list, bases, extents, strides) -> None:
        stage = self.plan.stages[s]
        rank = stage.rank
        ext = extents[self.layout.extent_offset[s]:self.layout.extent_offset[s] + rank]

        def address_at(indices):
            return lambda slot: self._address(s, slot, indices, bases, strides)

        if stage.kind == "output":
            def point(indices):
                address = address_at(indices)
                element = Element(self, address)
                for value, slot in stage.stores:
                    self.store(address(slot), element.value(value), self.plan.slots[slot].dtype)
            self._nest(depth, rank, ext, outer, point)
        else:
            self._reduce_stage(s, depth, outer, ext, address_at)

    def _nest(self, level: int, rank: int, ext: list, indices: list, point) -> None:
        if level == rank:
            point(indices)
            return
        for_range(self.b, ir.Constant(I64, 0), ext[level],
                  lambda i, _: self._nest(level + 1, rank, ext, indices + [i], point))

    def _reduce_stage(self, s, depth, outer, ext, address_at) -> None:
        """One pass accumulating every reduction of the stage (they share loads)."""
        stage = self.plan.stages[s]
        nodes = stage.nodes
        slots = [self.plan.slot_of[node.outputs[0]] for node in nodes]
        dtypes = [accumulate_dtype(node.outputs[0].type.dtype) for node in nodes]
        combines = [combiner(self, node.op.name, dtype) for node, dtype in zip(nodes, dtypes)]
        rank = stage.rank

        def element_values(indices) -> list:
            element = Element(self, address_at(indices))
            values = []
            for node, dtype in zip(nodes, dtypes):
                value = element.value(node.inputs[0])
                values.append(self.sb.cast(value, dtype) if value.dtype != dtype else value)
            return values

        def accumulate_in_memory(indices, values) -> None:
            address = address_at(indices)
            for slot, dtype, combine, value in zip(slots, dtypes, combines, values):
                pointer = address(slot)
                self.store(pointer, combine(self.load_raw(pointer, slot), value), dtype)

        if rank > depth and (rank - 1) in stage.reduced_axes:
            # innermost axis reduced: register accumulators (vectorized with reassociation)
            interleave = reduction_interleave(self._element_ops([n.inputs[0] for n in nodes]))
            def row(indices):
                identities = [self.sb.const(start_value(node.op.name, dtype), dtype).value
                              for node, dtype in zip(nodes, dtypes)]

                def step(i, carried):
                    values = element_values(indices + [i])
                    return [combine(Scalar(acc, dtype), value, reassociate=True).value
                            for combine, acc, dtype, value
                            in zip(combines, carried, dtypes, values)]
                totals = for_range(self.b, ir.Constant(I64, 0), ext[rank - 1], step,
                                   identities, loop_hints(self.module, interleave))
                accumulate_in_memory(indices + [ir.Constant(I64, 0)],
                                     [Scalar(t, d) for t, d in zip(totals, dtypes)])
            self._nest(depth, rank - 1, ext, outer, row)
        else:
            self._nest(depth, rank, ext, outer,
                       lambda indices: accumulate_in_memory(indices, element_values(indices)))

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

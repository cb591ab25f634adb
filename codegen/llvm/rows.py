"""Row-wise regions (softmax, logsumexp, crossentropy rows): how the kernel runs the
stages of one row while it is in cache, as a mixin of kernel.Emitter.

- Pipelined rows: when the first two stages both reduce the row (the max, then
  the sum of exp(x - max)), the first stage of row i+1 runs inside the second
  stage's loop of row i. The next row's loads then overlap the exp work of this
  one (the memory stream and the arithmetic proceed together) and its max costs
  no pass of its own. The first row's first stage runs before the loop; the
  last row runs the second stage alone.
- Otherwise the next row's cache lines are prefetched while this row computes.
- A pick stage (plan._pick) reads one element a row: a sparse crossentropy's
  picked logit, instead of a comparison and an add per element.
"""
from __future__ import annotations

import llvmlite.ir as ir
import numpy as np

from . import loops
from .loops import combiner, prefetch_lines
from .plan import accumulate_dtype, same_shape
from .scalar_llvm import Scalar

I64 = ir.IntType(64)


class RowStages:
    """Emitter methods for row-wise regions (see the module docstring)."""

    def pipelined(self, depth: int) -> bool:
        """Whether stage 0 of row i+1 can run inside stage 1's loop of row i: both reduce
        over the one axis inside the shared loops, over the same shape."""
        stages = [self.plan.stages[s] for s in self.plan.shared_stages(depth)]
        if depth < 1 or len(stages) < 2 or self.plan.shared_stages(depth)[:2] != [0, 1]:
            return False
        first, second = stages[0], stages[1]
        return (first.kind == second.kind == "reduce" and first.rank == second.rank == depth + 1
                and first.reduced_axes == second.reduced_axes == (depth,)
                and same_shape(first.root, second.root))

    def pipelined_rows(self, depth, outer, start, stop, bases, extents, strides) -> None:
        """The innermost shared loop (rows start..stop) with stage 0 one row ahead."""
        b = self.b
        first, second = self.address_at(0, bases, strides), self.address_at(1, bases, strides)
        width = self.extent(1, depth, extents)
        with b.if_then(b.icmp_signed("<", start, stop)):
            self.stage(0, depth, outer + [start], bases, extents, strides)

        def row(i, _):
            following = b.add(i, ir.Constant(I64, 1))
            with b.if_else(b.icmp_signed("<", following, stop)) as (ahead, last):
                with ahead:
                    self.row_reductions([(1, outer + [i], second),
                                         (0, outer + [following], first)], width)
                with last:
                    self.row_reductions([(1, outer + [i], second)], width)
            for s in self.plan.shared_stages(depth)[2:]:
                self.stage(s, depth, outer + [i], bases, extents, strides)
        loops.for_range(b, start, stop, row)

    def prefetch_next_row(self, depth, outer, end, bases, extents, strides) -> None:
        """Prefetch the next row of the inputs the first stage reads (a row: the stage's one
        loop inside the shared ones), clamped to the last row so it names real elements."""
        if not depth or self.plan.stages[0].rank != depth + 1:
            return
        last = outer[-1]
        following = self.b.add(last, ir.Constant(I64, loops.PREFETCH_ROWS))
        stop = end if depth == 1 else self.extent(0, depth - 1, extents)
        following = self.b.select(self.b.icmp_signed("<", following, stop), following, last)
        start = outer[:-1] + [following, ir.Constant(I64, 0)]
        for slot in self.plan.stages[0].reads:
            info = self.plan.slots[slot]
            if info.kind == "input" and self.inner.get((0, slot)) == 1:  # a contiguous row
                row = self.address_at(0, bases, strides)(start)(slot)
                prefetch_lines(self.b, self.module, row, self.extent(0, depth, extents),
                               np.dtype(info.dtype).itemsize, self.storage(info.dtype))

    def pick_stage(self, s, depth, outer, ext, address_at) -> None:
        """The slot (filled with +0) plus v[k] at each point of the kept axes, for k inside
        [0, n) (ir/ops/labels.py's reduce_pick): k read once, v computed at one point."""
        stage = self.plan.stages[s]
        node, (index, value) = stage.nodes[0], stage.pick
        slot = self.plan.slot_of[node.outputs[0]]
        dtype = accumulate_dtype(node.outputs[0].type.dtype)
        add = combiner(self, "reduce_sum", dtype)
        (axis,), zero = stage.reduced_axes, ir.Constant(I64, 0)
        pinned = list(ext)
        pinned[axis] = ir.Constant(I64, 1)  # the picked axis: no loop, index 0

        def point(indices):
            k = self.as_index(self.element(address_at(indices)).value(index))
            inside = self.b.and_(self.b.icmp_signed(">=", k, zero),
                                 self.b.icmp_signed("<", k, ext[axis]))
            with self.b.if_then(inside):
                at = indices[:axis] + [k] + indices[axis + 1:]
                picked = self.element(address_at(at)).value(value)
                if picked.dtype != dtype:
                    picked = self.sb.cast(picked, dtype)
                pointer = address_at(indices)(slot)
                self.store(pointer, add(self.load_raw(pointer, slot), picked), dtype)
        self.nest(depth, stage.rank, pinned, outer, point)

    def as_index(self, k: Scalar):
        """An integer Scalar as i64 (zero-extended when unsigned)."""
        if k.value.type.width == 64:
            return k.value
        extend = self.b.zext if k.dtype in ("uint8", "bool") else self.b.sext
        return extend(k.value, I64)

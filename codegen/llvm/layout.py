"""Where a region's operands sit: the run-time extent and stride arrays of the loop-nest
entry (`Layout`), the slots each loop nest touches, and the static facts the specialized
entries assume (unit or broadcast innermost strides, flat eligibility)."""
from __future__ import annotations

from ...ir.shapes import same_dim
from .plan import Plan


class Layout:
    """Where each stage's extents and each access's strides sit in the run-time arrays."""

    def __init__(self, plan: Plan):
        self.extent_offset: list = []
        self.stride_offset: dict = {}  # (stage index, slot) -> offset
        extents = strides = 0
        for s, stage in enumerate(plan.stages):
            self.extent_offset.append(extents)
            extents += stage.rank
            for slot in accesses(plan, stage):
                self.stride_offset[(s, slot)] = strides
                strides += stage.rank
        self.num_extents = max(extents, 1)
        self.num_strides = max(strides, 1)


def accesses(plan: Plan, stage) -> list:
    """Slots a stage touches: its loads, then its stores."""
    if stage.kind in ("reduce", "pick"):
        return list(stage.reads) + [plan.slot_of[node.outputs[0]] for node in stage.nodes]
    return list(stage.reads) + [slot for _, slot in stage.stores]


# --- loops -----------------------------------------------------------------------

def inner_strides(plan: Plan) -> dict:
    """(stage, slot) -> the innermost stride (1 or 0) the static types promise, for
    accesses where they do; the run time checks the promise (else the generic entry)."""
    result = {}
    for s, stage in enumerate(plan.stages):
        if stage.rank == 0:
            continue
        last = stage.root.type.shape[-1]
        written = {plan.slot_of[node.outputs[0]] for node in stage.nodes}
        for slot in accesses(plan, stage):
            info = plan.slots[slot]
            shape = info.value.type.shape
            if slot in written:
                result[(s, slot)] = 0 if stage.rank - 1 in stage.reduced_axes else 1
            elif not shape or (shape[-1] == 1 and last != 1):
                result[(s, slot)] = 0
            elif same_dim(shape[-1], last) and (info.kind != "input" or last != 1):
                result[(s, slot)] = 1
    return result


def is_full(plan: Plan, stage, slot: int) -> bool:
    """In the flat entry: a slot indexed by the element (not a single broadcast element)."""
    info = plan.slots[slot]
    if info.kind == "output":
        return True
    return not all(d == 1 for d in info.value.type.shape)


def flat_slots_ok(plan: Plan) -> bool:
    """Whether every operand of the single stage is either full-shaped or one element."""
    stage = plan.stages[0]
    root = stage.root.type.shape
    for slot in accesses(plan, stage):
        shape = plan.slots[slot].value.type.shape
        if all(d == 1 for d in shape):
            continue
        if len(shape) != len(root) or not all(
                a == b or (not isinstance(a, int) and not isinstance(b, int) and a == b)
                for a, b in zip(shape, root)):
            return False
    return True

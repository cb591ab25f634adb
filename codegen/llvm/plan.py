"""The schedule of a fused region: which loop nests (stages) compute it, over
which memory (slots), and how many leading loops the stages share.

A fused body is split into stages, each one loop nest over a *root* shape:
- a reduce stage per reduction node loops over the reduction's input shape
  and accumulates into the reduction's slot (scratch memory, or the output
  buffer when the reduction is itself an output);
- output stages loop over an output's shape and store into its buffer
  (outputs of one shape share a stage).
Elementwise nodes are not materialized: every stage recomputes the ones it
needs from loads of inputs, constants and earlier reductions' slots, so a
chain of any length is one pass over memory. All of a stage's values
right-align with its root (NumPy broadcasting), so a memory operand of rank
r read in a stage of rank R uses stage axes R-r..R-1.

Stages run in order, but the first `depth` loops are shared: when no stage
reduces over them and each reduction's result is read back at the same
leading index, the kernel runs every stage for one row before the next row
(softmax: max, then sum, then the output, while the row is in cache), and
threads split the first shared loop.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ...ir.graph import Graph, Value
from ...ir.ops.fused import BODY_REDUCTIONS
from ...ir.shapes import same_dim


class Unsupported(NotImplementedError):
    """A fused region (or a part of it) the LLVM backend does not compile."""


@dataclass
class Slot:
    """One buffer the kernel reads or writes (one entry of its pointer array)."""

    kind: str  # "input", "constant", "output", "scratch" or "view"
    dtype: str  # the dtype in memory (a float16 reduction keeps float32 scratch)
    value: Value  # the body value whose elements the buffer holds
    index: int = 0  # body input or output position, for "input" and "output"
    alias: int | None = None  # a "view" reads this slot's buffer in its own value's shape


@dataclass
class Stage:
    kind: str  # "reduce", "pick" or "output"
    root: Value  # the value whose shape the loop nest spans
    nodes: list = field(default_factory=list)  # reductions accumulated in one pass (same axes)
    stores: list = field(default_factory=list)  # (value, slot index) of an output stage
    reads: list = field(default_factory=list)  # slot indices loaded in this stage
    pick: tuple | None = None  # (index k, value v) of a "pick" stage (see _pick)

    @property
    def rank(self) -> int:
        return self.root.type.ndim

    @property
    def reduced_axes(self) -> tuple:
        return self.nodes[0].attrs["axes"] if self.kind in ("reduce", "pick") else ()


@dataclass
class Plan:
    body: Graph
    slots: list
    stages: list
    depth: int
    slot_of: dict  # Value -> slot index, for memory-backed values
    # Per stage: whether it runs inside the `depth` shared loops (else after them, over its
    # whole shape: a "tail" stage, see _shared_group).
    shared: tuple = ()

    def shared_stages(self, depth: int) -> list:
        """Stage indices run inside `depth` shared loops, in order (every stage at 0)."""
        if depth == 0 or not self.shared:
            return list(range(len(self.stages)))
        return [s for s, inside in enumerate(self.shared) if inside]

    def tail_stages(self, depth: int) -> list:
        """Stage indices run after the shared loops, in order."""
        if depth == 0 or not self.shared:
            return []
        return [s for s, inside in enumerate(self.shared) if not inside]

    @property
    def splittable(self) -> bool:
        """Whether threads may split the first shared loop: no stage accumulates across it
        and none runs after it (each split call would run those again)."""
        return self.depth > 0 and all(self.shared) and not any(
            stage.reduced_axes and min(stage.reduced_axes) < self.depth
            for stage in self.stages)

    def flat_eligible(self) -> bool:
        """One elementwise stage: may run as a single flat loop when memory allows."""
        return len(self.stages) == 1 and self.stages[0].kind == "output"


def accumulate_dtype(dtype: str) -> str:
    """The dtype a reduction accumulates in: float16 sums in float32."""
    return "float32" if dtype == "float16" else dtype


def _is_scalar_constant(node) -> bool:
    return node.op.name == "constant" and node.attrs["value"].size == 1


def _check_nodes(body: Graph) -> None:
    for node in body.nodes:
        name = node.op.name
        if name in ("placeholder", "constant") or name in BODY_REDUCTIONS:
            continue
        if name == "sum_to":
            raise Unsupported(f"sum_to (built at {node.location}) in a fused body: the LLVM "
                              "backend needs it as reduce_sum over static axes")
        if not node.op.elementwise:
            raise Unsupported(f"{name} (built at {node.location}) cannot be compiled in a fused "
                              "body")
        if node.op.scalar is None:
            raise Unsupported(f"{name} (built at {node.location}) has no scalar rule")
        _check_right_aligned(node)
    for node in body.nodes:
        if node.op.name == "reduce_mean" and node.outputs[0].type.dtype not in (
                "float16", "float32", "float64"):
            raise Unsupported(f"reduce_mean of {node.outputs[0].type.dtype} (built at "
                              f"{node.location}): integer means truncate; not compiled")


def _check_right_aligned(node) -> None:
    """Elementwise operands broadcast NumPy's way against the node's output."""
    out = node.outputs[0].type.shape
    for value in node.inputs:
        shape = value.type.shape
        if len(shape) > len(out):
            raise Unsupported(f"{node.op.name} (built at {node.location}): an operand of rank "
                              f"{len(shape)} has more axes than its result")
        for d, e in zip(shape, out[len(out) - len(shape):]):
            if not (d == 1 or same_dim(d, e) or not isinstance(d, int) or not isinstance(e, int)):
                raise Unsupported(f"{node.op.name} (built at {node.location}): operand shape "
                                  f"{shape} does not broadcast to {out} from the right")


def _reads(value: Value, slot_of: dict, found: list, seen: set) -> None:
    """Slots a stage loads to compute `value` (walks elementwise nodes, stops at memory)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in slot_of:
            found.append(slot_of[v])
        elif v.node.op.name not in ("constant", "placeholder"):
            stack.extend(v.node.inputs)


def make_plan(body: Graph) -> Plan:
    """The stages, slots and shared depth of a fused body (raises Unsupported)."""
    _check_nodes(body)
    slots: list = []
    slot_of: dict = {}
    for i, value in enumerate(body.inputs):
        slot_of[value] = len(slots)
        slots.append(Slot("input", value.type.dtype, value, i))
    for node in body.nodes:
        if node.op.name == "constant" and not _is_scalar_constant(node):
            slot_of[node.outputs[0]] = len(slots)
            slots.append(Slot("constant", node.outputs[0].type.dtype, node.outputs[0]))
    output_slot: dict = {}
    for k, value in enumerate(body.outputs):
        output_slot.setdefault(value, len(slots))
        slots.append(Slot("output", value.type.dtype, value, k))
    stages: list = []
    computed: dict = {}  # (op, input, axes) -> slot of a reduction already planned
    for node in body.nodes:
        if node.op.name not in BODY_REDUCTIONS:
            continue
        value = node.outputs[0]
        same = (node.op.name, tuple(node.inputs), node.attrs["axes"])
        if same in computed and node.op.name != "reduce_mean":
            # max(x, keepdims) and max(x): one accumulation, read in two shapes
            slot_of[value] = len(slots)
            slots.append(Slot("view", slots[computed[same]].dtype, value,
                              alias=computed[same]))
            continue
        direct = (value in output_slot and node.op.name != "reduce_mean"
                  and accumulate_dtype(value.type.dtype) == value.type.dtype)
        if direct:
            slot_of[value] = output_slot[value]
        else:
            slot_of[value] = len(slots)
            slots.append(Slot("scratch", accumulate_dtype(value.type.dtype), value))
        computed[same] = slot_of[value]
        pick = _pick(node)
        if pick is not None:
            stages.append(Stage("pick", node.inputs[0], nodes=[node], pick=pick))
        else:
            _add_reduction(stages, node, slots, slot_of)
    stages.extend(_output_stages(body, slots, slot_of))
    for stage in stages:
        seen: set = set()
        for node in stage.nodes:
            for value in node.inputs:  # the values reduced (and a pick's indices)
                _reads(value, slot_of, stage.reads, seen)
        for value, _ in stage.stores:
            _reads(value, slot_of, stage.reads, seen)
    depth = _shared_depth(stages, slots, slot_of)
    everything = (True,) * len(stages)
    if depth and (len(stages) == 1 or _reuse(stages, everything, slots, slot_of, depth)):
        return Plan(body, slots, stages, depth, slot_of, everything)
    depth, shared = _shared_group(stages, slots, slot_of)
    return Plan(body, slots, stages, depth, slot_of, shared)


def _add_reduction(stages: list, node, slots: list, slot_of: dict) -> None:
    """A stage for `node`, or a place in an earlier reduce stage over the same shape and
    axes whose pass `node` can share (it reads no result of that stage or a later one,
    directly or through a view of it)."""
    needs: list = []
    _reads(node.inputs[0], slot_of, needs, set())
    needs = [slots[k].alias if slots[k].kind == "view" else k for k in needs]
    for position in range(len(stages) - 1, -1, -1):
        stage = stages[position]
        written = {slot_of[n.outputs[0]] for later in stages[position:] for n in later.nodes}
        if written & set(needs):
            break
        if (stage.kind == "reduce" and stage.reduced_axes == node.attrs["axes"]
                and same_shape(stage.root, node.inputs[0])):
            stage.nodes.append(node)
            return
    stages.append(Stage("reduce", node.inputs[0], nodes=[node]))


def _pick(node):
    """(k, v) of a reduce_pick node (ir/ops/labels.py), else None: its stage reads k and one
    element of v a row instead of passing over the row."""
    if node.op.name != "reduce_pick":
        return None
    return node.inputs[1], node.inputs[0]


def _output_stages(body: Graph, slots: list, slot_of: dict) -> list:
    """One stage per output shape, storing every output (not written by its reduction)."""
    stages: list = []
    for k, value in enumerate(body.outputs):
        slot = next(i for i, s in enumerate(slots) if s.kind == "output" and s.index == k)
        if slot_of.get(value) == slot:
            continue  # a reduction accumulates straight into this output
        stage = next((s for s in stages if same_shape(s.root, value)), None)
        if stage is None:
            stage = Stage("output", value)
            stages.append(stage)
        stage.stores.append((value, slot))
    return stages


def same_shape(a: Value, b: Value) -> bool:
    """Equal ranks and the same dims (symbols unified)."""
    sa, sb = a.type.shape, b.type.shape
    return len(sa) == len(sb) and all(same_dim(x, y) for x, y in zip(sa, sb))


def _shared_depth(stages: list, slots: list, slot_of: dict) -> int:
    """How many leading loops every stage can share (see the module docstring)."""
    if not stages:
        return 0
    depth = min(stage.rank for stage in stages)
    for stage in stages:
        if stage.reduced_axes:
            depth = min(depth, min(stage.reduced_axes))
    first = stages[0].root.type.shape
    for stage in stages[1:]:
        shape = stage.root.type.shape
        same = 0
        while same < depth and same_dim(shape[same], first[same]):
            same += 1
        depth = same
    for stage in stages:
        for slot in stage.reads:
            if slots[slot].kind in ("scratch", "view") or (
                    slots[slot].kind == "output" and slots[slot].value.node.op.name
                    in BODY_REDUCTIONS):
                # a reduction read back at another rank would need other rows' results
                if slots[slot].value.type.ndim != stage.rank:
                    depth = 0
    return depth


def _shared_group(stages: list, slots: list, slot_of: dict) -> tuple[int, tuple]:
    """(depth, per-stage membership) when only some stages can share leading loops.

    A crossentropy's rows (max, sum of exp, loss) share the row loop even though its
    mean over the rows, or a bias gradient summed over them, reduces across it: such a
    stage accumulates into memory row by row inside the loop (in the same order as a
    nest of its own, so the same sums), and what reads its result (the mean itself,
    the bias update) runs after the loop as a tail stage. A member reads only rows of
    members' results that are complete within its row. Picks the depth where most
    stages share (at least two), the deeper on ties; (0, ()) when none does."""
    best = (0, 0, ())
    for depth in range(1, stages[0].rank + 1 if stages else 1):
        shared = _members(stages, slots, slot_of, depth)
        if shared is not None and sum(shared) >= 2 and (sum(shared), depth) > best[:2]:
            best = (sum(shared), depth, shared)
    return best[1], best[2]


def _members(stages: list, slots: list, slot_of: dict, depth: int):
    """Which stages can run inside `depth` loops shared with stage 0 (see _shared_group),
    or None when stage 0 itself cannot."""
    producer = {slot_of[node.outputs[0]]: s for s, stage in enumerate(stages)
                for node in stage.nodes}
    first = stages[0].root.type.shape
    shared: list = []
    for s, stage in enumerate(stages):
        shape = stage.root.type.shape
        inside = stage.rank >= depth and all(same_dim(a, b) for a, b in
                                             zip(shape[:depth], first[:depth]))
        if stage.reduced_axes and min(stage.reduced_axes) < depth and stage.kind == "pick":
            inside = False  # a pick pins its axis: it cannot be one of the shared loops
        for read in stage.reads if inside else ():
            slot = slots[read].alias if slots[read].kind == "view" else read
            if slot not in producer:
                continue  # an input or constant: any element can be read at any time
            before = stages[producer[slot]]
            # read in its own shape (a view's, for a view) at this row: rank-aligned
            inside = (shared[producer[slot]] and slots[read].value.type.ndim == stage.rank
                      and not (before.reduced_axes and min(before.reduced_axes) < depth))
            if not inside:
                break
        if s == 0 and not inside:
            return None
        shared.append(inside)
    return tuple(shared) if _reuse(stages, shared, slots, slot_of, depth) else None


def _reuse(stages: list, shared: tuple, slots: list, slot_of: dict, depth: int) -> bool:
    """Whether sharing pays: some member reads rows an earlier member read or produced
    (they are then in cache). Members with nothing in common but scalars (two weights
    of an Adam update whose leading dims happen to agree) would only lose their loops'
    coalescing (extents.coalesce merges no shared axis)."""
    seen: set = set()
    for stage, inside in zip(stages, shared):
        if not inside:
            continue
        rows = {slots[slot].alias if slots[slot].kind == "view" else slot
                for slot in stage.reads if slots[slot].value.type.ndim >= depth}
        if seen & rows:
            return True
        seen.update(rows)
        seen.update(slot_of[node.outputs[0]] for node in stage.nodes)
    return False

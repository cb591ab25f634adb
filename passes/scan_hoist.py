"""Scan hoisting: body work that does not depend on the carries leaves the loop.

Theano's PushOutNonSeqScan and PushOutSeqScan. In a scan body a value is

- invariant when it reads only captured values and constants: it is the
  same at every step, so it is computed once before the loop and captured;
- per-step when it reads sequence slices (and invariants) but no carry: it
  is computed for all steps at once on the whole sequences, when its op
  allows that: elementwise ops (the time axis in front broadcasts like any
  other axis) and products whose other operand is invariant, so x_t @ W for
  every t becomes one (T*B, F) @ (F, U) GEMM; the body reads a slice of the
  result, a new sequence. Elementwise work alone stays in the step unless
  it is a per-step output (fused with the step's own elementwise work it
  costs no call, lifted it costs a pass over (T, ...));
- a loop value otherwise (it reads a carry, or its op cannot be lifted).

A per-step output that no longer needs the loop is not stacked by it: the
lifted value is the stack. Impure ops (random draws) and nested loops stay.

    before  %ys, %h, %hs = scan(%xs, %h0, %w, %u) {
              %a = dot(%x_t, %w); %h' = tanh(add(%a, dot(%h, %u))) }
    after   %xw = dot(%xs, %w)
            %ys, %h, %hs = scan(%xw, %h0, %u) { %h' = tanh(add(%xw_t, dot(%h, %u))) }
"""
from __future__ import annotations

from ..ir.graph import Graph, Value, topological_order
from ..ir.ops.leaf import placeholder
from ..ir.ops.registry import REGISTRY, make_node
from ..ir.rewrite import build
from ..ir.shapes import same_shape
from ..ir.types import TensorType
from .decompose import decompose
from .scan_parts import ScanParts, rewrite_scans

INVARIANT, STEP, LOOP = "invariant", "step", "loop"


def hoist_scan_work(graph: Graph) -> Graph:
    """`graph` with every scan's carry-independent body work moved before the loop.

    Bodies are decomposed first (passes/decompose.py), so that macro ops such as
    Keras' bias_add are the elementwise ops this pass knows how to lift."""
    return rewrite_scans(graph, _hoist, body_pass=decompose)


def _hoist(parts: ScanParts, used: set) -> bool:
    grouped = _group_step_terms(parts)
    lifted = _lift_work(parts) or grouped
    transposed = _pretranspose(parts)
    return _stack_from_boundaries(parts, used) or transposed or lifted


def _lift_work(parts: ScanParts) -> bool:
    kinds = _classify(parts)
    stacked = [s for s in parts.outputs if kinds[s.value] == STEP]
    frontier = _frontier(parts, kinds)
    if not frontier and not stacked:
        return False
    outer = _lift(parts, frontier + [s.value for s in stacked if not _is_input(s.value)])
    mapping = {}
    for value in frontier:
        inner_type = TensorType(value.type.dtype, value.type.shape)
        inner = placeholder(inner_type, name=f"hoisted{len(mapping)}", location=value.location)
        group = parts.sequences if kinds[value] == STEP else parts.captured
        group.append((inner, outer[value]))
        mapping[value] = inner
    for slot in stacked:  # the lifted value, or the sequence itself, is the stack
        slot.result = outer[slot.value]
        parts.outputs.remove(slot)
    parts.replace_in_body(mapping)
    return True


def _group_step_terms(parts: ScanParts) -> bool:
    """(s + l) + i -> (s + i) + l, with s per-step work holding a product, l a loop value
    and i invariant (an RNN's bias): s + i is then lifted whole, and the step is left with
    one add of its recurrent product (one GEMM with beta = 1, passes/scan_fusion.py).
    Float addition is reassociated, as a fused multiply-add or BLAS may do."""
    kinds = _classify(parts)
    worth = _holding_products(parts, kinds)
    readers: dict = {}
    for node in parts.body_nodes():
        for value in node.inputs:
            readers[value] = readers.get(value, 0) + 1
    mapping = {}
    for node in parts.body_nodes():
        if node.op.name != "add":
            continue
        for inner, invariant in (node.inputs, node.inputs[::-1]):
            terms = _step_and_loop_terms(inner, kinds, worth, readers)
            if terms is None or kinds[invariant] != INVARIANT:
                continue
            step, loop = terms
            grouped = build("add", [step, invariant], {}, inner.node.location)
            if grouped.type.dtype != step.type.dtype or not same_shape(grouped.type.shape,
                                                                       step.type.shape):
                continue  # the invariant would widen the per-step term
            mapping[node.outputs[0]] = build("add", [grouped, loop], {}, node.location)
            break
    parts.replace_in_body(mapping)
    return bool(mapping)


def _step_and_loop_terms(value: Value, kinds: dict, worth: dict, readers: dict):
    """(per-step term with a product, loop term) of add(a, b) read once, else None."""
    node = value.node
    if node.op.name != "add" or readers.get(value, 0) != 1:
        return None
    a, b = node.inputs
    for step, loop in ((a, b), (b, a)):
        if kinds[step] == STEP and worth.get(step) and kinds[loop] == LOOP:
            return step, loop
    return None


def _pretranspose(parts: ScanParts) -> bool:
    """matmul(a, W, transpose_b) with W the same every step reads a transposed copy of W
    made once before the loop (likewise transpose_a): GEMM is slower on transposed operands
    at a step's sizes (backpropagation through time multiplies by U^T every step)."""
    invariant = dict(parts.captured)
    mapping = {}
    for node in parts.body_nodes():
        if node.op.name != "matmul":
            continue
        operands = list(node.inputs)
        attrs = dict(node.attrs)
        for k, flag in enumerate(("transpose_a", "transpose_b")):
            value = operands[k]
            outer = value if value.node.op.name == "constant" else invariant.get(value)
            if not attrs[flag] or outer is None or value.type.ndim != 2:
                continue
            copy = build("matrix_transpose", [outer], {}, node.location)
            inner = placeholder(TensorType(copy.type.dtype, value.type.shape[::-1]),
                                name=f"transposed{len(parts.captured)}", location=node.location)
            parts.captured.append((inner, copy))
            operands[k], attrs[flag] = inner, False
        if operands != list(node.inputs):
            mapping[node.outputs[0]] = build("matmul", operands, attrs, node.location)
    parts.replace_in_body(mapping)
    return bool(mapping)


def _stack_from_boundaries(parts: ScanParts, used: set) -> bool:
    """A per-step output that is also a carry's new value, when the graph reads that
    carry's step boundaries anyway, is a view of them (boundaries 1..T going forward,
    0..T-1 in reverse) instead of a second copy stored every step: an RNN's outputs are
    its hidden states, which backpropagation through time reads as boundaries."""
    old = parts.node.outputs
    ny, nc = len(parts.original_outputs), len(parts.original_carries)
    read = {slot.value: j for j, slot in enumerate(parts.original_carries)
            if slot in parts.carries and old[ny + nc + j] in used}
    moved = False
    for slot in list(parts.outputs):
        j = read.get(slot.value)
        if j is None or slot not in parts.original_outputs:
            continue
        stacked_type = old[parts.original_outputs.index(slot)].type
        carry = parts.original_carries[j]
        slot.result_after_build = _leaving(carry, stacked_type, parts.reverse)
        parts.outputs.remove(slot)
        moved = True
    return moved


def _leaving(carry, stacked_type: TensorType, reverse: bool):
    """() -> the carry leaving each position, a view of the new node's boundaries."""
    key = (("slice", None, -1, None),) if reverse else (("slice", 1, None, None),)

    def view() -> Value:  # the stack's own type: its length is the sequences' (T, not T+1-1)
        return make_node(REGISTRY["getitem"], (carry.boundaries,), {"key": key},
                         (stacked_type,), carry.value.location)
    return view


def _is_input(value: Value) -> bool:
    return value.node.op.leaf


def _classify(parts: ScanParts) -> dict:
    """Each body value's kind: INVARIANT, STEP (liftable per-step work) or LOOP."""
    kinds: dict = {}
    kinds.update((inner, STEP) for inner, _ in parts.sequences)
    kinds.update((slot.inner, LOOP) for slot in parts.carries)
    kinds.update((inner, INVARIANT) for inner, _ in parts.captured)
    for node in parts.body_nodes():
        if node.op.leaf:
            if node.op.name == "constant":
                kinds[node.outputs[0]] = INVARIANT
            continue
        given = {kinds[v] for v in node.inputs}
        if LOOP in given or not _movable(node):
            kind = LOOP
        elif STEP in given:
            kind = STEP if _liftable(node, kinds) else LOOP
        else:
            kind = INVARIANT
        kinds.update((v, kind) for v in node.outputs)
    return kinds


def _movable(node) -> bool:
    """Pure work with no body of its own: computing it elsewhere changes nothing."""
    op = node.op
    return op.pure and op.lower is None and "body" not in node.attrs


def _liftable(node, kinds: dict) -> bool:
    """Whether the op computes all steps at once when its per-step operands gain a time axis."""
    op, inputs = node.op, node.inputs
    if op.elementwise:  # the time axis must line up: per-step operands of the result's rank
        rank = node.outputs[0].type.ndim
        return all(v.type.ndim == rank if kinds[v] == STEP else v.type.ndim <= rank
                   for v in inputs)
    step = [kinds[v] == STEP for v in inputs]
    if op.name == "dot":  # x's leading axes are rows: a time axis in front is more rows
        return step == [True, False]
    if op.name == "matmul":  # a time axis in front is a batch axis
        a, b = inputs
        if all(step):
            return a.type.ndim == b.type.ndim >= 2
        lifted, other = (a, b) if step[0] else (b, a)
        return lifted.type.ndim >= 2 and other.type.ndim <= 2
    return False


def _frontier(parts: ScanParts, kinds: dict) -> list:
    """Lifted values the loop still reads: by loop nodes, as carries, or (invariants) stacked.

    Per-step work the loop reads is lifted only when it holds a product: elementwise
    work alone (BPTT's 1 - h*h) stays in the step, where fusion joins it to the loop's
    own elementwise work at no extra call, rather than costing a pass over (T, ...) and
    an extra sequence read per step."""
    worth = _holding_products(parts, kinds)
    worth.update((s.value, True) for s in parts.outputs)  # lifted anyway: the stack
    frontier: dict = {}
    for node in parts.body_nodes():
        if node.op.leaf or kinds[node.outputs[0]] != LOOP:
            continue
        for value in node.inputs:
            if kinds[value] == STEP and not worth.get(value):
                continue
            if kinds[value] != LOOP and not _is_input(value):
                frontier[value] = None
    for value in [c.value for c in parts.carries] + [s.value for s in parts.outputs]:
        if kinds[value] != LOOP and not _is_input(value):
            if kinds[value] == INVARIANT or value in [c.value for c in parts.carries]:
                frontier[value] = None
    return list(frontier)


def _holding_products(parts: ScanParts, kinds: dict) -> dict:
    """Per-step value -> whether computing it takes a matrix product (dot, matmul)."""
    held: dict = {}
    for node in parts.body_nodes():
        if node.op.leaf or kinds[node.outputs[0]] != STEP:
            continue
        product = node.op.name in ("dot", "matmul") or any(held.get(v) for v in node.inputs)
        held.update((v, product) for v in node.outputs)
    return held


def _lift(parts: ScanParts, values: list) -> dict:
    """Body value -> the outer value computing it for the whole loop (built in order)."""
    outer = dict(parts.outer_of())
    for node in topological_order(values):
        if node.outputs[0] in outer:
            continue
        if node.op.name == "constant":
            outer[node.outputs[0]] = node.outputs[0]  # a constant is the same value outside
            continue
        results = build(node.op.name, [outer[v] for v in node.inputs], node.attrs,
                        node.location)
        results = results if isinstance(results, tuple) else (results,)
        outer.update(zip(node.outputs, results))
    return outer


__all__ = ["hoist_scan_work"]

"""The NumPy lowering of a fused node: its body evaluated in cache-sized blocks.

numexpr's idea: instead of one full-size temporary per op (each streamed
through memory), the output is split along its leading axis into blocks of
about BLOCK_BYTES per operand, and the whole body runs on one block at a
time with `out=` into a few block buffers that stay in cache; buffers are
reused as soon as a value is dead, in place where the op allows.

A plan depends on the run-time shapes, so `FusedKernel` compiles one small
Python program (codegen/fused_program.py) per distinct input-shape signature
(a dict lookup after that). Programs are shared process-wide between fused
nodes of the same structure (ops, attributes, wiring, dtypes; not locations)
called with the same shapes: the 100 layers of a deep MLP compile one.
Values that do not vary along the blocked axis (a bias, a scalar, a
reduction's result that does not depend on blocked values) are computed once,
whole, before the block loop. A region that reduces over the leading axis
(a bias gradient, a mean over the batch) cannot be split that way; it is
evaluated whole, still with `out=` buffers and reuse. Each NumPy call has
at most three operands, so no ufunc operand limit reaches the user however
many inputs the region has.

Errors name the body op that failed and the user's line that built it.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..ir.errors import located
from ..ir.rewrite import attrs_key
from ..ir.shapes import ShapeError
from .fused_program import generate

BLOCK_BYTES = 64 * 1024  # per block operand: a few of them stay in L1/L2 together
# per block operand of a region reducing along its rows (a softmax, a loss per row): each
# block is a few calls per row reduction (reduce_pick's own kernel ~10 us), so blocks of
# whole rows are made larger; measured on W2 (4096x1000): 64 KB 1.21x, 256 KB 0.84x NumPy
ROW_BLOCK_BYTES = 256 * 1024
WHOLE_BELOW = 1024 * 1024  # regions whose largest value is smaller run whole (in L2; no loop)
_PLAN_CACHE_LIMIT = 64  # distinct input-shape signatures compiled per node
_SHARED_LIMIT = 1024  # programs kept for nodes of the same structure (dropped all at once)
_FILENAME = "<graphk fused plan {id}>"
_counter = itertools.count()


class FusedKernel:
    """kernel(*arrays) -> output array(s) of one fused node, planned per input-shape signature."""

    lowering = "numpy"

    def __init__(self, node):
        self.node = node
        self.body = node.attrs["body"]
        self.single = len(self.body.outputs) == 1
        self.plans: dict = {}  # input shapes -> run(*arrays)
        self.sources: dict = {}  # input shapes -> the generated program, for reading
        self.line_nodes: dict = {}  # plan file name -> {line: body node}
        self._structure = False  # structure_key(body), computed at the first plan
        # Indices of inputs whose arrays the caller no longer needs (set by the NumPy
        # lowering's memory plan): the body may reuse them for its values and outputs.
        self.donate: frozenset = frozenset()

    def __call__(self, *arrays):
        run = self.plans.get(tuple([a.shape for a in arrays]))
        if run is None:
            run = self._plan_for(arrays)
        try:
            return run(*arrays)
        except Exception as error:
            raise self._explain(error) from error

    def _plan_for(self, arrays):
        try:
            return self._compile(tuple([a.shape for a in arrays]))
        except Exception as error:
            raise self._explain(error) from error

    def _compile(self, key):
        if self._structure is False:
            self._structure = _structure_of(self.body)
        shared_key = None if self._structure is None else (self._structure, key, self.donate)
        plan = _SHARED.get(shared_key) if shared_key is not None else None
        if plan is None:
            plan = _Plan(self.body, runtime_shapes(self.body, key), self.donate)
            if shared_key is not None:
                if len(_SHARED) >= _SHARED_LIMIT:
                    _SHARED.clear()
                _SHARED[shared_key] = plan
        # this node's own body nodes (and so its users' lines) for the plan's lines
        self.line_nodes[plan.filename] = plan.lines_in(self.body)
        if len(self.plans) >= _PLAN_CACHE_LIMIT:
            self.plans.clear()
        self.plans[key] = plan.run
        self.sources[key] = plan.source
        return plan.run

    def _explain(self, error: Exception) -> Exception:
        """The error located at the body node whose line raised (found from the traceback)."""
        node = getattr(error, "graphk_body_node", None)
        tb = error.__traceback__
        while tb is not None:
            lines = self.line_nodes.get(tb.tb_frame.f_code.co_filename)
            if lines is not None and tb.tb_lineno in lines:
                node = lines[tb.tb_lineno]
            tb = tb.tb_next
        if node is None:
            return error
        return located(error, node.op.name, node.location, " (inside a fused region)")


def compile_fused(node) -> FusedKernel:
    return FusedKernel(node)


class _Plan:
    """One compiled program: `run`, its source, and body node positions by source line.

    The program reads nothing but its inputs and the body's constants and
    attributes (buffers are allocated per call), so it serves every body of
    the same structure; errors are located through each node's own body."""

    def __init__(self, body, shapes: dict, donate: frozenset):
        source, env, line_nodes = generate(body, shapes, choose_blocking(body, shapes), donate)
        self.filename = _FILENAME.format(id=next(_counter))
        exec(compile(source, self.filename, "exec"), env)
        self.run = env["run"]
        self.source = source
        self.body, self.line_nodes = body, line_nodes
        position = {node: k for k, node in enumerate(body.nodes)}
        self.positions = {line: position[node] for line, node in line_nodes.items()}

    def lines_in(self, body) -> dict:
        """line -> node of `body` (of this structure) that the line computes."""
        if body is self.body:  # fusion gives equal regions one body: most calls
            return self.line_nodes
        nodes = body.nodes
        return {line: nodes[k] for line, k in self.positions.items()}


_SHARED: dict = {}  # (structure key, input shapes, donated inputs) -> _Plan
_STRUCTURES: dict = {}  # id(body) -> (body, its structure key): fusion shares equal bodies


def _structure_of(body):
    entry = _STRUCTURES.get(id(body))
    if entry is None or entry[0] is not body:
        if len(_STRUCTURES) >= _SHARED_LIMIT:
            _STRUCTURES.clear()
        entry = _STRUCTURES[id(body)] = (body, structure_key(body))
    return entry[1]


def structure_key(body):
    """A hashable key equal for bodies that compute the same thing the same way: op names,
    attributes (floats by their text, arrays by dtype, shape and bytes), which values each
    node reads, every value's dtype, and the outputs; not locations, names or symbolic
    dims (plans are per concrete shapes). None when an attribute has no such key."""
    number = {value: k for k, value in enumerate(body.inputs)}
    parts = [tuple(v.type.dtype for v in body.inputs)]
    for node in body.nodes:
        if node.op.name == "placeholder":
            if node.outputs[0] not in number:
                return None  # a placeholder the body does not take as an input
            continue
        attrs = attrs_key(node.attrs)
        if attrs is None:
            return None
        reads = tuple(number.get(v, -1) for v in node.inputs)
        if -1 in reads:
            return None  # reads a value from outside the body (not a closed body)
        parts.append((node.op.name, reads, attrs, tuple(v.type.dtype for v in node.outputs)))
        for value in node.outputs:
            number[value] = len(number)
    parts.append(tuple(number[v] for v in body.outputs))
    return tuple(parts)


# --- run-time shapes ------------------------------------------------------------------------

def runtime_shapes(body, input_shapes) -> dict:
    """The concrete shape of every body value for these input shapes (checking broadcasts)."""
    shapes = dict(zip(body.inputs, input_shapes))
    for node in body.nodes:
        name = node.op.name
        if name == "placeholder":
            continue
        if name == "constant":
            shapes[node.outputs[0]] = node.attrs["value"].shape
            continue
        given = [shapes[v] for v in node.inputs]
        if node.op.elementwise and all(g == given[0] for g in given):
            shapes[node.outputs[0]] = given[0]  # the common case, without NumPy's call
            continue
        try:
            shapes[node.outputs[0]] = _node_shape(node, given)
        except ValueError:
            error = ShapeError(f"shapes {' and '.join(str(s) for s in given)} do not broadcast "
                               "(found when the function ran)")
            error.graphk_body_node = node
            raise error from None
    return shapes


def _node_shape(node, given) -> tuple:
    name, attrs = node.op.name, node.attrs
    if name == "sum_to":
        return tuple(given[1])
    if "axes" in attrs and not node.op.elementwise:  # the body's reductions
        axes, keepdims = attrs["axes"], attrs["keepdims"]
        shape = given[0]
        if keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(shape))
        return tuple(d for i, d in enumerate(shape) if i not in axes)
    return tuple(np.broadcast_shapes(*given))


# --- the plan: which values are computed per block --------------------------------------------

def choose_blocking(body, shapes: dict):
    """(blocked values, rows per block, rows) or None to evaluate the region whole.

    The blocked axis is axis 0 of the values of the largest rank R with the
    largest leading size N. Broadcasting aligns every rank-R value's axis 0,
    so an elementwise op on a blocked value is blocked; a reduction or
    sum_to that sums over that axis cannot be blocked. A reduction over
    other axes is a row reduction: its result keeps axis 0 even when it drops
    rank (a loss per row), and is blocked too (`_row_values`).
    """
    values = list(shapes)
    if not values:
        return None
    largest = max(_size(s) * _itemsize(v) for v, s in shapes.items())
    if largest < WHOLE_BELOW:
        return None
    rank = max(len(s) for s in shapes.values())
    rows = max((s[0] for s in shapes.values() if len(s) == rank and rank), default=0)
    if rows <= 1:
        return None
    blocked = {v for v, s in shapes.items() if len(s) == rank and s[0] == rows}
    found = _row_values(body, shapes, blocked, rank)
    if found is None:
        return None  # sums over the blocked axis, or a row value misaligned: evaluate whole
    blocked, row_region = found
    row_bytes = max(_size(shapes[v][1:]) * _itemsize(v) for v in blocked)
    target = ROW_BLOCK_BYTES if row_region else BLOCK_BYTES
    per_block = max(1, target // max(row_bytes, 1))
    if per_block >= rows:
        return None
    if row_region:  # equal blocks, no short tail: 4096 rows by 64, not 63 x 65 and 1
        per_block = -(-rows // -(-rows // per_block))
    return blocked, per_block, rows


def _row_values(body, shapes: dict, blocked: set, rank: int):
    """(blocked values, whether a reduction runs along the rows) or None if some node
    would mix blocked rows with something else.

    A reduction of a blocked value over axes other than 0 is blocked whatever its rank;
    a value of lower rank is blocked when an elementwise op computes it from blocked
    values of its own rank (so axis 0 lines up) and unblocked ones without rows at
    axis 0. A lower-rank row value must never reach a rank-R op: broadcasting would
    line its rows up with the last axis."""
    blocked = set(blocked)
    row_region = False
    for node in body.nodes:
        name = node.op.name
        if name in ("placeholder", "constant"):
            continue
        out = node.outputs[0]
        reads = [v for v in node.inputs if v in blocked]
        if not reads:
            continue
        low = [v for v in reads if len(shapes[v]) < rank]
        if out in blocked:  # rank R with the rows at axis 0
            if low:
                return None
            if "axes" in node.attrs and not node.op.elementwise:
                row_region = True  # keepdims: (rows, 1)
            continue
        if "axes" in node.attrs and not node.op.elementwise:
            if 0 in node.attrs["axes"] or len(shapes[out]) == 0:
                return None
            row_region = True
        elif not node.op.elementwise or len(shapes[out]) == 0 or any(
                len(shapes[v]) != len(shapes[out]) for v in reads) or any(
                v not in blocked and len(shapes[v]) == len(shapes[out]) and shapes[v][0] != 1
                for v in node.inputs):
            return None
        blocked.add(out)
    return blocked, row_region


def _size(shape) -> int:
    return math.prod(shape)


def _itemsize(value) -> int:
    return np.dtype(value.type.dtype).itemsize

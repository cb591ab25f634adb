"""Symbolic loops: the `scan` op, one node whose body is a subgraph run once per step.

    %ys, %final, %saved = scan(%xs, %h0, %W) {body=graph @body(%x, %h, %W) {...}, ...}

The body is a closed Graph (it reads nothing but its inputs) taking, per
step, one slice of each sequence (axis 0 is time), the current carries and
the captured values (weights a step function closes over, made explicit so
that their gradient can be accumulated), and returning the per-step
outputs, then the new carries. With `reverse` the steps visit positions
T-1 .. 0; a per-step output is stored at the position that produced it.

The node's outputs are: each per-step output stacked over time, (T, ...);
the final carries; and each carry at the T+1 step boundaries, (T+1, ...)
(boundary 0 holds the initial carry going forward, boundary T in reverse).
The last group is what backpropagation through time reads. The gradient of
a scan is a scan in the other direction whose body is the forward body's
gradient, built by the autodiff pass (the op is `grad_uses_autodiff`), with
the captured values' cotangents accumulated as extra carries. Codegen
computes only the outputs a graph uses, so a forward-only function never
stores the boundaries.

`scan(step, sequences, initial_carries)` traces a Python step function into
a body: it calls it on fresh placeholders and turns whatever the step read
from outside (variables, outer tensors; constants stay inside) into
captured inputs.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

from ..dtypes import DTypeError, is_floating
from ..graph import Graph, Value, topological_order
from ..rewrite import close_subgraph, rewire
from ..shapes import ShapeError, SymDim, format_shape, merge_dim, merge_shapes
from ..source import location_override
from ..types import TensorType
from . import elementwise as ew
from .indexing import getitem, take_slice
from .leaf import placeholder
from .linalg import dot
from .registry import REQUIRED, VARIADIC, OpDef, Sample, apply, register
from .shape import full_like


# --- the layout of inputs and outputs -------------------------------------------------------

def _counts(num_inputs: int, body: Graph, num_sequences: int, num_carries: int) -> tuple:
    """(sequences, carries, captured values, per-step outputs) of a scan."""
    return (num_sequences, num_carries, num_inputs - num_sequences - num_carries,
            len(body.outputs) - num_carries)


def _split(items, *sizes) -> list:
    """`items` cut into consecutive groups of the given sizes, then the rest."""
    groups, start = [], 0
    for size in sizes:
        groups.append(list(items[start:start + size]))
        start += size
    groups.append(list(items[start:]))
    return groups


def _node_counts(node) -> tuple:
    return _counts(len(node.inputs), node.attrs["body"], node.attrs["num_sequences"],
                   node.attrs["num_carries"])


# --- the type rule ---------------------------------------------------------------------------

def _merged_type(want: TensorType, have: TensorType, what: str) -> TensorType:
    """The type two descriptions of one value agree on (known sizes win), or raise."""
    if want.dtype != have.dtype:
        raise DTypeError(f"{what}: expected dtype {want.dtype}, the body has {have.dtype}")
    shape = merge_shapes(want.shape, have.shape, f"{what}, expected and in the body")
    return TensorType(want.dtype, shape)


def _sequence_length(sequence_types) -> object:
    length = None
    for i, t in enumerate(sequence_types):
        if t.ndim == 0:
            raise ShapeError(f"sequence {i} is a scalar; a scan steps over axis 0 of each "
                             "sequence")
        if length is None:
            length = t.shape[0]
            continue
        try:
            length = merge_dim(length, t.shape[0])
        except ShapeError:
            shapes = ", ".join(format_shape(s.shape) for s in sequence_types)
            raise ShapeError(f"sequences of different lengths {shapes} (axis 0 is time)") from None
    return length


def _scan_infer(*types, body, num_sequences, num_carries, reverse):
    if not isinstance(body, Graph):
        raise TypeError(f"attribute body must be a Graph, got {type(body).__name__}")
    if num_sequences < 1:
        raise ShapeError("a scan needs at least one sequence (its length is the step count)")
    ns, nc, nk, ny = _counts(len(types), body, num_sequences, num_carries)
    if nk < 0 or ny < 0:
        raise TypeError(f"{len(types)} inputs and {len(body.outputs)} body outputs cannot hold "
                        f"{num_sequences} sequences and {num_carries} carries")
    if len(body.inputs) != len(types):
        raise TypeError(f"the body takes {len(body.inputs)} inputs; the scan gives it "
                        f"{ns} sequence slices, {nc} carries and {nk} captured values")
    sequences, carries, captured = _split(types, ns, nc)
    length = _sequence_length(sequences)
    expected = ([TensorType(t.dtype, t.shape[1:]) for t in sequences] + carries + captured)
    roles = ([f"slice of sequence {i}" for i in range(ns)] + [f"carry {j}" for j in range(nc)]
             + [f"captured value {k}" for k in range(nk)])
    for want, value, role in zip(expected, body.inputs, roles):
        _merged_type(want, value.type, f"{role} (body input)")
    finals = []
    for j, (carry, new) in enumerate(zip(carries, body.outputs[ny:])):
        try:
            finals.append(_merged_type(carry, new.type, f"carry {j}"))
        except (ShapeError, DTypeError):
            raise ShapeError(f"carry {j} is {carry} but the body returns {new.type} for it; "
                             "a carry must keep its dtype and shape from step to step") from None
    boundaries = length + 1 if isinstance(length, int) else SymDim()
    return (tuple(TensorType(v.type.dtype, (length,) + v.type.shape) for v in body.outputs[:ny])
            + tuple(finals)
            + tuple(TensorType(t.dtype, (boundaries,) + t.shape) for t in finals))


# --- running the loop ------------------------------------------------------------------------

class LoopError(ValueError):
    """A scan's sequences or a step's results do not fit (found at run time)."""


class _Loop:
    """Runs `step(feeds) -> outputs` over the sequences; stores what `needed` asks for.

    The first step runs before the stacked outputs are allocated (their
    runtime shapes are known only then). The steps themselves run in a
    small loop function generated for this scan's counts, so a step costs
    the body's own kernels plus a few list and array stores.
    """

    def __init__(self, body: Graph, num_inputs: int, num_sequences: int, num_carries: int,
                 reverse: bool, step: Callable, needed: tuple):
        self.body = body
        self.ns, self.nc, self.nk, self.ny = _counts(num_inputs, body, num_sequences, num_carries)
        self.reverse = reverse
        self.step = step
        need_outputs, self.need_finals, self.need_boundaries = _split(needed, self.ny,
                                                                      self.nc)[:3]
        self.kept = tuple(k for k in range(self.ny) if need_outputs[k])
        bounded = tuple(j for j in range(self.nc) if self.need_boundaries[j])
        self.run_steps = _stepper(self.ns, self.nc, self.ny, self.kept, bounded,
                                  0 if reverse else 1)

    def __call__(self, *arrays):
        ns, nc = self.ns, self.nc
        # Time-major views of batch-major data are not copied: a slice of one is a strided
        # matrix that BLAS and ufuncs take as it is (NumPy's own x[:, t] loop does the same).
        sequences = arrays[:ns]
        length = self._length(sequences)
        carries = list(arrays[ns:ns + nc])
        feeds = [None] * ns + carries + list(arrays[ns + nc:])
        boundaries = self._boundaries(carries, length)
        stacked = [None] * self.ny
        if length:
            order = range(length - 1, -1, -1) if self.reverse else range(length)
            for i in range(ns):
                feeds[i] = sequences[i][order[0]]
            first = self.step(feeds)
            for k in self.kept:
                stacked[k] = np.empty((length,) + np.shape(first[k]),
                                      dtype=self.body.outputs[k].type.dtype)
            self.run_steps(self.step, feeds, sequences, stacked, boundaries,
                           [np.shape(c) for c in carries], order, first, _changed)
        elif self.kept:
            self._allocate_empty(stacked, arrays)
        finals = [np.array(feeds[ns + j]) if self.need_finals[j] else None for j in range(nc)]
        results = tuple(stacked) + tuple(finals) + tuple(boundaries)
        return results if len(results) > 1 else results[0]  # one output: the array itself

    def _length(self, sequences) -> int:
        lengths = [len(s) if np.ndim(s) else None for s in sequences]
        if None in lengths or len(set(lengths)) != 1:
            shapes = ", ".join(str(np.shape(s)) for s in sequences)
            raise LoopError(f"scan: sequences of shapes {shapes} do not share a length on "
                            "axis 0 (axis 0 is time)")
        return lengths[0]

    def _boundaries(self, carries, length) -> list:
        result = []
        for j, carry in enumerate(carries):
            if not self.need_boundaries[j]:
                result.append(None)
                continue
            carry = np.asarray(carry)
            stack = np.empty((length + 1,) + carry.shape, dtype=carry.dtype)
            stack[length if self.reverse else 0] = carry
            result.append(stack)
        return result

    def _allocate_empty(self, stacked, arrays) -> None:
        """Zero steps: per-step output sizes come from the input sizes the body's types share."""
        sizes: dict = {}
        shapes = ([np.shape(a)[1:] for a in arrays[:self.ns]]
                  + [np.shape(a) for a in arrays[self.ns:]])
        for value, shape in zip(self.body.inputs, shapes):
            for dim, size in zip(value.type.shape, shape):
                if isinstance(dim, SymDim):
                    sizes[dim.root()] = size
        for k in self.kept:
            out = self.body.outputs[k].type
            dims = [d if isinstance(d, int) else sizes.get(d.root()) for d in out.shape]
            if None in dims:
                raise LoopError(f"scan over an empty sequence: the shape {out} of per-step "
                                f"output {k} is not known without running a step")
            stacked[k] = np.empty((0,) + tuple(dims), dtype=out.dtype)


def _changed(what: str, index: int, expected, value) -> None:
    raise LoopError(f"scan: the body's {what} {index} has shape {tuple(np.shape(value))} "
                    f"at this step, {tuple(expected)} before; a loop value must keep its "
                    "shape from step to step")


@lru_cache(maxsize=256)
def _stepper(ns: int, nc: int, ny: int, kept: tuple, bounded: tuple, shift: int) -> Callable:
    """A loop function written out for these counts: no inner loops over inputs or outputs.

    `results` comes in holding the first step's results (computed to size
    the stacked outputs); each step stores the per-step outputs kept, passes
    the new carries on and, when asked, records them at the step boundary
    after position t.
    """
    lines = ["def run_steps(step, feeds, seqs, stacked, bounds, carry_shapes, order, results, "
             "changed):"]
    lines += [f"    s{i} = seqs[{i}]" for i in range(ns)]
    lines += [f"    y{k} = stacked[{k}]; ys{k} = y{k}.shape[1:]" for k in kept]
    lines += [f"    cs{j} = carry_shapes[{j}]" for j in range(nc)]
    lines += [f"    b{j} = bounds[{j}]" for j in bounded]
    lines += ["    for t in order:", "        if results is None:"]
    lines += [f"            feeds[{i}] = s{i}[t]" for i in range(ns)]
    lines += ["            results = step(feeds)"]
    for k in kept:  # a shape check first: assigning would broadcast silently
        lines += [f"        v = results[{k}]",
                  f"        if v.shape != ys{k}: changed('per-step output', {k}, ys{k}, v)",
                  f"        y{k}[t] = v"]
    for j in range(nc):
        lines += [f"        v = results[{ny + j}]",
                  f"        if v.shape != cs{j}: changed('carry', {j}, cs{j}, v)",
                  f"        feeds[{ns + j}] = v"]
        if j in bounded:
            lines.append(f"        b{j}[t + {shift}] = v")
    lines.append("        results = None")
    namespace: dict = {}
    exec(compile("\n".join(lines) + "\n", "<graphk scan steps>", "exec"), namespace)
    return namespace["run_steps"]


def _interpreter(body: Graph) -> Callable:
    """A step function that evaluates the body node by node (the kernel without codegen)."""
    nodes = body.nodes
    kernels = {node: node.op.bound_kernel(node.attrs) for node in nodes if not node.op.leaf}

    def run(feeds):
        env = dict(zip(body.inputs, feeds))
        for node in nodes:
            if node.op.leaf:
                if node.op.name == "constant":
                    env[node.outputs[0]] = node.attrs["value"]
                continue
            result = kernels[node](*[env[v] for v in node.inputs])
            if len(node.outputs) == 1:
                env[node.outputs[0]] = result
            else:
                env.update(zip(node.outputs, result))
        return [env[v] for v in body.outputs]
    return run


def _scan_kernel(*arrays, body, num_sequences, num_carries, reverse):
    loop = _Loop(body, len(arrays), num_sequences, num_carries, reverse, _interpreter(body),
                 (True,) * (len(body.outputs) + num_carries))
    return loop(*arrays)


def _lower_scan(node, compile_subgraph, needed) -> Callable:
    """The codegen kernel: the loop driver around the body compiled once to straight-line code."""
    attrs = node.attrs
    body = compile_subgraph(attrs["body"])
    loop = _Loop(attrs["body"], len(node.inputs), attrs["num_sequences"], attrs["num_carries"],
                 attrs["reverse"], body.run, needed)

    def kernel(*arrays):
        try:
            return loop(*arrays)
        except LoopError:
            raise
        except Exception as error:  # name the body op and step-function line that failed
            explained = body.explain(error)
            if explained is error:
                raise
            raise explained from error
    return kernel


# --- the gradient: backpropagation through time ----------------------------------------------

def _boundary_slices(stacked: Value, reverse: bool) -> tuple[Value, Value]:
    """(carry entering, carry leaving) each position, as views of the T+1 boundaries."""
    first, rest = take_slice(stacked, 0, None, -1), take_slice(stacked, 0, 1, None)
    return (rest, first) if reverse else (first, rest)


class _BackwardBody:
    """The inputs of the reverse scan's body, each with the outer value that feeds it."""

    def __init__(self):
        self.sequences: list[tuple[Value, Value]] = []  # (body placeholder, outer sequence)
        self.carries: list[tuple[Value, Value]] = []  # (body placeholder, outer initial value)
        self.captured: list[tuple[Value, Value]] = []
        self.saved: dict = {}  # forward body value -> placeholder fed what the loop stored

    def sequence(self, like: Value, outer: Value, name: str) -> Value:
        inner = placeholder(TensorType(like.type.dtype, like.type.shape), name=name)
        self.sequences.append((inner, outer))
        return inner

    def carry(self, like: Value, initial: Value, name: str) -> Value:
        inner = placeholder(like.type, name=name)
        self.carries.append((inner, initial))
        return inner

    def build(self, outputs: list, new_carries: list, reverse: bool) -> tuple:
        """Apply the scan, feeding only the sequences and captured values the body reads.

        Every read of a forward value the loop stored becomes a read of the
        stored copy, so it is not recomputed (and a random draw is not redrawn).
        """
        rewired = rewire(outputs + new_carries, self.saved)
        outputs, new_carries = rewired[:len(outputs)], rewired[len(outputs):]
        reached = {v for node in topological_order(rewired) for v in node.outputs}
        sequences = [pair for pair in self.sequences if pair[0] in reached] or self.sequences[:1]
        captured = [pair for pair in self.captured if pair[0] in reached]
        groups = (sequences, self.carries, captured)
        body = Graph([inner for group in groups for inner, _ in group], outputs + new_carries,
                     name="grad_body")
        results = apply("scan", [outer for group in groups for _, outer in group], body=body,
                        num_sequences=len(sequences), num_carries=len(self.carries),
                        reverse=reverse)
        return _split(results, len(outputs), len(new_carries))[:2]


def _saved_values(node, plan: _BackwardBody, reverse: bool, boundaries) -> dict:
    """Body outputs the forward loop stored, to be fed to the reverse body instead of
    recomputed: the tanh in h' = tanh(x W + h U) is read, not recomputed."""
    body = node.attrs["body"]
    ny = _node_counts(node)[3]
    saved: dict = {}
    for k, value in enumerate(body.outputs):
        if value.node.op.leaf or value in saved:
            continue
        outer = node.outputs[k] if k < ny else boundaries[k - ny][1]
        saved[value] = plan.sequence(value, outer, f"saved{len(saved)}")
    return saved


def _scan_grad(node, cotangents, vjp, wanted) -> tuple:
    """Cotangents of a scan's inputs: a scan in the other direction over the body's gradient.

    Per reverse step the body's VJP turns the output cotangent at t and the
    carry cotangent into the cotangents of the slice at t (stacked), of the
    carry entering t (the next carry) and of the captured values (summed in
    accumulator carries).
    """
    body, reverse = node.attrs["body"], node.attrs["reverse"]
    ns, nc, nk, ny = _node_counts(node)
    sequences, _, captured = _split(node.inputs, ns, nc)
    finals, stacked_carries = _split(node.outputs, ny, nc)[1:]
    d_outputs, d_finals, d_stacked = _split(cotangents, ny, nc)
    slices, carries, captured_inner = _split(body.inputs, ns, nc)
    floats = [is_floating(c.type.dtype) for c in carries]
    boundaries = [_boundary_slices(s, reverse) for s in stacked_carries]

    plan = _BackwardBody()
    for inner, outer in zip(slices, sequences):
        plan.sequences.append((inner, outer))
    for j, inner in enumerate(carries):
        plan.sequences.append((inner, boundaries[j][0]))
    plan.saved = _saved_values(node, plan, reverse, boundaries)
    plan.captured = list(zip(captured_inner, captured))

    values, seeds = [], []
    for k, g in enumerate(d_outputs):
        if g is not None:
            values.append(body.outputs[k])
            seeds.append(plan.sequence(body.outputs[k], g, f"d_output{k}"))
    carry_cotangents = []
    for j, new in enumerate(body.outputs[ny:]):
        if not floats[j]:
            continue
        initial = d_finals[j] if d_finals[j] is not None else full_like(finals[j], 0)
        carry_cotangents.append(plan.carry(new, initial, f"d_carry{j}"))
        values.append(new)
        seeds.append(carry_cotangents[-1])
        if d_stacked[j] is not None:  # a cotangent of the carry after each step
            values.append(new)
            seeds.append(plan.sequence(new, _boundary_slices(d_stacked[j], reverse)[1],
                                       f"d_boundary{j}"))
    wrt_sequences = [i for i in range(ns) if wanted[i] and is_floating(slices[i].type.dtype)]
    wrt_captured = [k for k in range(nk) if wanted[ns + nc + k]]
    wrt = ([slices[i] for i in wrt_sequences] + [carries[j] for j in range(nc) if floats[j]]
           + [captured_inner[k] for k in wrt_captured])
    if not values or not wrt:
        return (None,) * len(node.inputs)
    grads = vjp(values, seeds, wrt)
    d_slices, d_carries, d_captured = _split(grads, len(wrt_sequences), len(carry_cotangents))

    new_carries = [g if g is not None else full_like(c, 0)
                   for g, c in zip(d_carries, carry_cotangents)]
    accumulated = []
    for k, g in zip(wrt_captured, d_captured):
        if g is not None:
            total = plan.carry(captured_inner[k], full_like(captured[k], 0), f"d_captured{k}")
            new_carries.append(ew.add(total, g))
            accumulated.append(k)
    stepped = [(i, g) for i, g in zip(wrt_sequences, d_slices) if g is not None]
    outputs, results = plan.build([g for _, g in stepped], new_carries, not reverse)

    input_grads: list = [None] * len(node.inputs)
    for (i, _), stack in zip(stepped, outputs):
        input_grads[i] = stack
    float_carries = [j for j in range(nc) if floats[j]]
    for j, result in zip(float_carries, results):
        if d_stacked[j] is not None:  # the initial carry's own boundary
            result = ew.add(result, getitem(d_stacked[j], -1 if reverse else 0))
        input_grads[ns + j] = result
    for k, result in zip(accumulated, results[len(float_carries):]):
        input_grads[ns + nc + k] = result
    return tuple(input_grads)


# --- the op ------------------------------------------------------------------------------------

def _sample_body(reverse: bool) -> Graph:
    """h' = tanh(x + h W), y = h' * x: a small RNN body for the registry-wide tests."""
    with location_override("sample.py:1"):
        x = placeholder(TensorType("float64", (3, 4)), name="x")
        h = placeholder(TensorType("float64", (3, 4)), name="h")
        w = placeholder(TensorType("float64", (4, 4)), name="W")
        new = ew.tanh(ew.add(x, dot(h, w)))
        return Graph([x, h, w], [ew.mul(new, x), new], name="body")


_SAMPLE_SHAPES = ((5, 3, 4), (3, 4), (4, 4))
_SAMPLE_DTYPES = ("float64",) * 3

register(OpDef(
    "scan", "loop",
    infer=_scan_infer, kernel=_scan_kernel, lower=_lower_scan,
    attrs={"body": REQUIRED, "num_sequences": REQUIRED, "num_carries": REQUIRED,
           "reverse": False},
    num_outputs=VARIADIC,
    grad=_scan_grad, grad_uses_autodiff=True,
    samples=tuple(Sample(_SAMPLE_SHAPES, {"body": _sample_body(reverse), "num_sequences": 1,
                                          "num_carries": 1, "reverse": reverse},
                         dtypes=_SAMPLE_DTYPES, low=-1.0, high=1.0)
                  for reverse in (False, True)),
    doc="Run a body graph over axis 0 of the sequences, threading carries; outputs stacked "
        "per-step outputs, final carries and the carries at every step boundary."))


# --- tracing a step function -------------------------------------------------------------------

def scan(step: Callable, sequences, initial_carries, reverse: bool = False) -> tuple:
    """Trace `step(slices, carries) -> (outputs, new_carries)` into one scan node.

    `sequences` are time-major (axis 0 is time); each step gets one slice of
    each. Returns (stacked outputs, final carries, carries at the T+1 step
    boundaries), three lists.
    """
    sequences, initial_carries = list(sequences), list(initial_carries)
    slices = [placeholder(TensorType(s.type.dtype, s.type.shape[1:]), name=f"slice{i}")
              for i, s in enumerate(sequences)]
    carries = [placeholder(c.type, name=f"carry{j}") for j, c in enumerate(initial_carries)]
    outputs, new_carries = step(slices, carries)
    outputs, new_carries = list(outputs), list(new_carries)
    if len(new_carries) != len(carries):
        raise ValueError(f"scan: the step function returned {len(new_carries)} new carries "
                         f"for {len(carries)} carries")
    for value in outputs + new_carries:
        if not isinstance(value, Value):
            raise TypeError(f"scan: the step function must return graph tensors, got {value!r}")
    inputs = slices + carries
    captured_inner, captured, body_outputs = close_subgraph(inputs, outputs + new_carries)
    body_outputs, new_carries = body_outputs[:len(outputs)], body_outputs[len(outputs):]
    draws = _draws(body_outputs + new_carries)
    body = Graph(inputs + captured_inner, body_outputs + draws + new_carries, name="body")
    results = apply("scan", sequences + initial_carries + captured, body=body,
                    num_sequences=len(sequences), num_carries=len(carries), reverse=reverse)
    stacked, finals, boundaries = _split(results, len(body_outputs) + len(draws), len(carries))
    return [stacked[:len(outputs)], finals, boundaries]


def _draws(outputs: list) -> list:
    """Values of impure ops (random draws) in a body, which become hidden per-step outputs.

    The reverse loop then reads the draws the forward loop made (as it reads
    every body output) instead of drawing again; a forward-only function
    does not store them.
    """
    return [v for node in topological_order(outputs) if not node.op.pure and not node.op.leaf
            for v in node.outputs if v not in outputs]

"""Lowering to NumPy: a graph becomes one generated Python function.

The function's body is the graph's schedule written out as straight-line
NumPy calls (`v3 = k_add(v1, v2)`), preceded by the feed checks
(codegen/feeds.py) and followed by the variable updates, so a call walks no
graph and dispatches nothing. Intermediates are deleted after their last use
so large graphs do not keep every buffer alive; one read only by the next call
is computed inside that call, on a line of its own (`k_add(\n k_mul(v1, v2),
v4)`): fewer statements compile faster, and an error still names its line.
Nodes alike share one kernel and its name. `Executable.source` is that
program, for reading.

A fused node runs codegen/fused_numpy.py's blocked kernel; an intermediate
that dies at a fused node is donated to it (codegen/memory_plan.py), which
writes its values and outputs into that memory instead of allocating.
"""
from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np

from ..ir.errors import FeedError, located
from ..ir.graph import Graph
from ..ir.shapes import format_shape
from .feeds import emit_feeds, emit_trusted_feeds
from .fused_numpy import FusedKernel, attrs_key, compile_fused
from .in_place import in_place_nodes
from .memory_plan import donations

_FILENAME = "<graphk {name}>"


class Executable:
    """A compiled graph: `executable(feeds) -> list of arrays`, then updates applied."""

    def __init__(self, graph: Graph, run, source: str, line_nodes: dict, lowerings: dict):
        self.graph = graph
        self.run = run
        self.source = source
        self._line_nodes = line_nodes
        self.lowerings = lowerings  # Node -> name of the lowering whose kernel runs it

    def __call__(self, feeds):
        try:
            return self.run(feeds)
        except FeedError:
            raise
        except Exception as error:
            explained = self.explain(error)
            if explained is error:
                raise
            raise explained from error

    def explain(self, error: Exception) -> Exception:
        """The error a kernel raised, named by the op and the user's line that built it."""
        node = self._failing_node(error)
        if node is None:
            return error
        return located(error, node.op.name, node.location, " (while running the function)")

    def _failing_node(self, error):
        """The node whose generated line raised, found from the traceback."""
        tb = error.__traceback__
        node = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == _FILENAME.format(name=self.graph.name):
                node = self._line_nodes.get(tb.tb_lineno)
            tb = tb.tb_next
        return node


class _Program:
    """Accumulates the generated source and the objects it refers to."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.lines: list[str] = []
        self.env: dict = {"_asarray": np.asarray, "_ndarray": np.ndarray, "_writable": _writable}
        self.names: dict = {}  # Value -> local variable name
        self.line_nodes: dict = {}
        self.lowerings: dict = {}  # Node -> "numpy" or the name a kernel_for kernel gives
        # Plain NumPy kernels by (op, attributes): nodes alike call one kernel under one
        # global name (a program with fewer distinct names compiles faster).
        self.shared_kernels: dict = {}
        self.kernel_names: dict = {}  # id(kernel) -> its global name (kernels live in env)

    def bind(self, prefix: str, obj) -> str:
        name = f"{prefix}{len(self.env)}"
        self.env[name] = obj
        return name

    def emit(self, line: str, node=None) -> None:
        self.lines.append("    " + line)
        if node is not None:
            self.line_nodes[len(self.lines) + 1] = node  # +1 for the `def` line


def compile_graph(graph: Graph, subgraph: bool = False,
                  kernel_for: Callable | None = None,
                  wrap_kernel: Callable | None = None) -> Executable:
    """Generate, compile and return the NumPy program for `graph`.

    With `subgraph` the program is a loop body run by a loop kernel once per
    step: its feeds are trusted (the loop made them, so no checks), and its
    results may share memory with its feeds (the loop copies what it keeps).

    `kernel_for(node)` lets another lowering take nodes over: it returns a
    callable to run instead of the op's NumPy kernel (same arguments, same
    results: `kernel(*input_arrays) -> array or tuple`), or None to keep
    NumPy. It is consulted for loop bodies too. `Executable.lowerings` maps
    each non-leaf node to the lowering that runs it: "numpy", or the
    kernel's `lowering` attribute (default "custom").

    `wrap_kernel(node, kernel) -> kernel` (the profiler's, graphk/bench/profiler.py)
    replaces each top-level kernel; without it the program calls kernels directly.
    """
    program = _Program(graph)
    program.kernel_for = kernel_for
    program.wrap_kernel = wrap_kernel
    if subgraph:
        emit_trusted_feeds(program)
    else:
        emit_feeds(program)
    _emit_nodes(program)
    _emit_updates_and_return(program, copy_aliased=not subgraph)
    source = "def run(feeds):\n" + "\n".join(program.lines) + "\n"
    code = compile(source, _FILENAME.format(name=graph.name), "exec")
    exec(code, program.env)
    return Executable(graph, program.env["run"], source, program.line_nodes, program.lowerings)


def _subgraph_compiler(kernel_for):
    """compile_subgraph for ops lowered with `OpDef.lower`: a loop body's executable."""
    return lambda graph: compile_graph(graph, subgraph=True, kernel_for=kernel_for)


# --- the schedule -------------------------------------------------------------

def _last_uses(graph: Graph) -> dict:
    """For each node position, the values whose last use is that node."""
    last: dict = {}
    for position, node in enumerate(graph.nodes):
        for value in node.inputs:
            last[value] = position
    keep = set(graph.outputs) | {v for pair in graph.updates for v in pair}
    by_position: dict = {}
    for value, position in last.items():
        if value not in keep and not value.node.op.leaf:
            by_position.setdefault(position, []).append(value)
    return by_position


def _emit_nodes(program: _Program) -> None:
    graph = program.graph
    fed = set(graph.inputs)
    frees = _last_uses(graph)
    reads = Counter(v for node in graph.nodes for v in node.inputs)
    kept = set(graph.outputs) | {v for pair in graph.updates for v in pair}
    used = set(reads) | kept
    donated = donations(graph, frees)  # dead inputs fused kernels may write outputs into
    # variables whose update writes into their own buffer; not under a kernel wrapper (the
    # NaN guard must be able to fail a call with every variable unchanged)
    in_place = in_place_nodes(graph) if program.wrap_kernel is None else set()
    nested = _nested_values(graph, reads, kept)
    pending: dict = {}  # nested value -> its call's lines, written into its reader's call
    deferred: list = []  # dead values of nested calls: deleted after their reader's line
    for position, node in enumerate(graph.nodes):
        op = node.op
        if op.leaf:
            value = node.outputs[0]
            _emit_leaf(program, node, fed, reads[value] == 1 and value not in kept)
            continue
        args = [pending.pop(v, None) or program.names[v] for v in node.inputs]
        bound = _kernel(program, node, used, private=node in in_place or node in donated)
        if node in donated and (isinstance(bound, FusedKernel)
                                or getattr(bound, "lowering", None) == "llvm"):
            bound.donate = frozenset(donated[node].values())
        if node in in_place:
            bound.in_place = True
        if program.wrap_kernel is not None:  # profiled functions only
            bound = program.wrap_kernel(node, bound)
        kernel = program.kernel_names.get(id(bound))
        if kernel is None:
            kernel = program.kernel_names[id(bound)] = program.bind(f"k_{op.name}_", bound)
        lines = _call_lines(kernel, args, node)
        deferred += [v for v in frees.get(position, ()) if v not in nested]
        if node.outputs[0] in nested:
            pending[node.outputs[0]] = lines
            continue
        outputs = [f"v{len(program.names) + k}" for k in range(len(node.outputs))]
        program.names.update(zip(node.outputs, outputs))
        lines[0][0] = f"{', '.join(outputs)} = {lines[0][0]}"
        for line, source in lines:
            program.emit(line, source)
        if deferred:
            program.emit(f"del {', '.join(program.names[v] for v in deferred)}")
            deferred = []


def _nested_values(graph: Graph, reads: Counter, kept: set) -> set:
    """Values computed inside their reader's call: the only output of a node, read once,
    by the next node that is not a leaf, and neither returned nor stored (so nothing is
    reordered, and the value is freed when that call returns, as `del` would)."""
    nested = set()
    previous = None
    for node in graph.nodes:
        if node.op.leaf:
            continue
        if previous is not None:
            value = previous.outputs[0]
            if reads[value] == 1 and value not in kept and value in node.inputs:
                nested.add(value)
        previous = node if len(node.outputs) == 1 else None
    return nested


def _call_lines(kernel: str, args: list, node) -> list:
    """[line, node] pairs of `kernel(args)`; a nested argument (a list of such pairs) starts
    a line of its own, so an error raised by its call names its node (a traceback gives the
    line where the call that raised starts)."""
    lines = [[f"{kernel}(", node]]
    for k, arg in enumerate(args):
        if isinstance(arg, str):
            lines[-1][0] += f", {arg}" if k else arg
        else:
            if k:
                lines[-1][0] += ","
            lines += [["    " + line, source] for line, source in arg]
    lines[-1][0] += ")"
    return lines


def _kernel(program: _Program, node, used: set, private: bool = False) -> Callable:
    """The callable that runs `node`, from kernel_for if it gives one, else NumPy's; shared
    with nodes alike unless `private` (codegen sets per-node flags on it)."""
    op = node.op
    if program.kernel_for is not None:
        custom = program.kernel_for(node)
        if custom is not None:
            program.lowerings[node] = getattr(custom, "lowering", "custom")
            return custom
    program.lowerings[node] = "numpy"
    if op.name == "fused":  # the body evaluated in cache-sized blocks
        return compile_fused(node)
    if op.lower is not None:  # a loop: its kernel runs compiled bodies
        needed = tuple(v in used for v in node.outputs)
        return op.lower(node, _subgraph_compiler(program.kernel_for), needed)
    if private or op.make_kernel is not None or not op.pure:  # state of its own (random...)
        return op.bound_kernel(node.attrs)
    key = attrs_key(node.attrs)
    if key is None:
        return op.bound_kernel(node.attrs)
    kernel = program.shared_kernels.get((op, key))
    if kernel is None:
        kernel = program.shared_kernels[(op, key)] = op.bound_kernel(node.attrs)
    return kernel


def _emit_leaf(program: _Program, node, fed: set, read_once: bool) -> None:
    """Names for a leaf's value; a variable read by one node and neither returned nor
    stored is read where that node runs (one statement less: updates come after every
    node, so it reads the same array)."""
    value = node.outputs[0]
    kind = node.op.name
    if kind == "placeholder" and value not in fed:
        default = node.attrs["default"]
        if default is None:
            raise FeedError(f"function {program.graph.name!r} needs placeholder "
                            f"{value.name or '(unnamed)'} {value.type} (created at "
                            f"{node.location}), which is neither in its inputs nor has a default")
        program.names[value] = program.bind("c", default)
    elif kind == "variable":
        holder = program.bind("var", value)
        if read_once:
            program.names[value] = f"{holder}.storage"
            return
        program.names[value] = f"{holder}_now"
        program.emit(f"{holder}_now = {holder}.storage", node)
    elif kind == "constant":
        program.names[value] = program.bind("c", node.attrs["value"])


def _may_alias_leaf(graph: Graph) -> set:
    """Values that may share memory with a variable, a constant or a feed.

    They are copied before being handed to the caller or stored, so that
    writing into a result never changes state (TensorFlow returns fresh arrays).
    """
    aliased = set()
    for node in graph.nodes:
        if node.op.leaf or (node.op.view and node.inputs and node.inputs[0] in aliased):
            aliased.update(node.outputs)
    return aliased


def _emit_updates_and_return(program: _Program, copy_aliased: bool = True) -> None:
    graph = program.graph
    aliased = _may_alias_leaf(graph) if copy_aliased else set()
    handed_out: set = set()  # values already stored or returned: a second holder gets a copy
    new_values = []
    for k, (variable, new) in enumerate(graph.updates):
        name = program.names[new]
        shape = variable.type.shape
        check = program.bind("_update_error", _update_error(variable))
        program.emit(f"u{k} = {_owned(new, name, aliased | handed_out)}")
        handed_out.add(new)
        program.emit(f"if u{k}.shape != {tuple(shape)!r}: {check}(u{k})")
        new_values.append((program.bind("var", variable), f"u{k}"))
    for holder, name in new_values:  # only after every output and update is computed
        program.emit(f"{holder}.storage = {name}")
    results = []
    for value in graph.outputs:
        name = program.names[value]
        shared = aliased | handed_out if copy_aliased else aliased
        results.append(_owned(value, name, shared))
        handed_out.add(value)
    program.emit(f"return [{', '.join(results)}]")


def _owned(value, name: str, aliased: set) -> str:
    """An expression for `value` as an array the caller may keep and write into."""
    if value in aliased:  # never hand out a variable's, constant's or feed's own buffer
        return f"_asarray({name}).copy()"
    if value.node.op.view:  # a view of an intermediate may be a read-only broadcast
        return f"_writable({name})"
    if value.type.ndim == 0:  # NumPy returns 0-d results as scalars
        return f"_asarray({name})"
    return name


def _writable(array):
    array = np.asarray(array)
    return array if array.flags.writeable else array.copy()


def _update_error(variable):
    def fail(array):
        raise FeedError(f"update of variable {variable.name!r} produced shape "
                        f"{format_shape(array.shape)}, "
                        f"expected {format_shape(variable.type.shape)}")
    return fail

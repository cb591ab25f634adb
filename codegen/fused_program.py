"""The program a fused kernel runs for one plan: straight-line NumPy calls with out= buffers.

`generate(body, shapes, blocking, donate)` writes `run(*inputs)`: values that
do not vary along the blocked axis computed once, whole; then, when the plan
is blocked, a loop calling `block(...)` per block of rows (and once more for
the tail, with the block buffers sliced). Buffers come from pools keyed by
dtype and shape and are reused as soon as the value they hold (and every
view of it) is dead, in place when the op is a single ufunc; inputs the
caller donated join the pool once read. Outputs are arrays of their own.
"""
from __future__ import annotations

import numpy as np

from . import fused_ops

class _Program:
    """The generated `run(*inputs)` (and `block(...)` when blocked) with its globals."""

    def __init__(self):
        self.env = dict(fused_ops.names())
        self.env.update(fused_ops.constants())
        self.env.update(_empty=np.empty, _array=np.array, _errstate=np.errstate)
        self.run_lines: list[str] = []
        self.block_lines: list[str] = []
        self.line_nodes: dict = {}  # (function, index) -> node, resolved to line numbers later

    def bind(self, prefix: str, obj) -> str:
        name = f"{prefix}{len(self.env)}"
        self.env[name] = obj
        return name


class _Buffers:
    """Buffers by (dtype, shape), reused once the value they hold is dead."""

    def __init__(self, allocate):
        self.free: dict = {}
        self.allocate = allocate  # (dtype, shape) -> a new buffer name

    def take(self, dtype: str, shape: tuple) -> str:
        pool = self.free.get((dtype, shape))
        return pool.pop() if pool else self.allocate(dtype, shape)

    def give(self, dtype: str, shape: tuple, name: str) -> None:
        self.free.setdefault((dtype, shape), []).append(name)


def generate(body, shapes: dict, blocking, donate=frozenset()) -> tuple:
    """(source, globals, line -> body node) of the program evaluating `body` for `shapes`;
    `donate` holds indices of inputs whose arrays the body may overwrite once it has read them."""
    return _Generator(body, shapes, blocking, donate).source()


class _Generator:
    def __init__(self, body, shapes: dict, blocking, donate):
        self.body, self.shapes = body, shapes
        self.donors = [body.inputs[i] for i in sorted(donate)
                       if body.inputs[i] not in body.outputs]
        self.donated: dict = {}  # blocked output -> the input whose array it is written into
        self.blocked, self.per_block, self.rows = blocking or (set(), 0, 0)
        self.program = _Program()
        self.names: dict = {}  # value -> expression, in the function that computes it
        self.owned: set = set()  # values held in an array nobody else holds (safe to return)
        self.root: dict = {}  # value -> the value whose array it is (a view's base)
        self.block_params: list = []  # (name in block, expression passed per block)
        self.block_buffers: list = []  # (name, dtype, block shape)
        self.output_slices: dict = {}  # blocked output value -> its output array's name
        self.quiet = False  # some op overflows harmlessly: run with overflow warnings off
        self.last_use = self._last_uses()
        self.root_last_use = dict(self.last_use)  # an array lives while any view of it does
        self.buffer_of: dict = {}  # value -> name of the reusable buffer holding it
        self.used_in_block = {v for n in body.nodes if n.outputs and n.outputs[0] in self.blocked
                              for v in n.inputs}

    # --- liveness -------------------------------------------------------------------------

    def _last_uses(self) -> dict:
        last: dict = {}
        for position, node in enumerate(self.body.nodes):
            for value in node.inputs:
                last[value] = position
        for value in self.body.outputs:
            last[value] = len(self.body.nodes)
        return last

    def _dies_at(self, position: int, value) -> bool:
        """Whether the array behind `value` is dead after node `position` (all its views too)."""
        return self.root_last_use.get(value, -1) <= position

    # --- the program ----------------------------------------------------------------------

    def source(self) -> tuple:
        program = self.program
        inputs = [f"a{i}" for i in range(len(self.body.inputs))]
        for value, name in zip(self.body.inputs, inputs):
            self.names[value] = name
            self.root[value] = value
        self._name_blocked_outputs()
        whole = _Buffers(self._whole_buffer)
        block = _Buffers(self._block_buffer)
        for position, node in enumerate(self.body.nodes):
            if node.op.name == "placeholder":
                continue
            value = node.outputs[0]
            if node.op.name == "constant":
                self.names[value] = program.bind("c", node.attrs["value"])
                self.root[value] = value
                continue
            in_block = value in self.blocked
            self._emit_node(position, node, block if in_block else whole, in_block)
        self._allocate_blocked_outputs()
        results = self._results()
        indent = "        " if self.quiet else "    "
        lines = [f"def run({', '.join(inputs)}):"]
        if self.quiet:
            lines.append("    with _errstate(over='ignore'):")
        lines += [indent + line for line in program.run_lines]
        line_nodes = {}
        for (where, index), node in program.line_nodes.items():
            if where == "run":
                line_nodes[index + len(lines) - len(program.run_lines) + 1] = node
        if self.blocked:
            lines += [indent + line for line in self._block_loop()]
        lines.append(f"{indent}return {results}")
        if self.blocked:
            offset = len(lines)
            params = [p for p, _ in self.block_params] + [b for b, _, _ in self.block_buffers]
            lines.append(f"def block({', '.join(params)}):")
            lines += ["    " + line for line in program.block_lines] + ["    return None"]
            for (where, index), node in program.line_nodes.items():
                if where == "block":
                    line_nodes[offset + index + 2] = node
        return "\n".join(lines) + "\n", program.env, line_nodes

    def _emit(self, where: str, line: str, node=None) -> None:
        lines = self.program.run_lines if where == "run" else self.program.block_lines
        if node is not None:
            self.program.line_nodes[(where, len(lines))] = node
        lines.append(line)

    def _whole_buffer(self, dtype: str, shape: tuple) -> str:
        name = f"w{len(self.program.run_lines)}_{len(self.names)}"
        self._emit("run", f"{name} = _empty({shape!r}, _dt_{dtype})")
        return name

    def _block_buffer(self, dtype: str, shape: tuple) -> str:
        name = f"t{len(self.block_buffers)}"
        self.block_buffers.append((name, dtype, (self.per_block,) + shape[1:]))
        return name

    def _name_blocked_outputs(self) -> None:
        for k, value in enumerate(self.body.outputs):
            if value in self.blocked and value not in self.output_slices \
                    and value.node.op.name != "placeholder":
                self.output_slices[value] = f"o{k}"

    def _allocate_blocked_outputs(self) -> None:
        """After the hoisted lines, before the loop: each blocked output's array."""
        for value, name in self.output_slices.items():
            self._emit("run", f"{name} = {self._new_array(value)}")

    def _new_array(self, value) -> str:
        """An expression for a fresh array for `value`, or its donor input's when usable."""
        fresh = f"_empty({self.shapes[value]!r}, _dt_{value.type.dtype})"
        donor = self.donated.get(value)
        return fresh if donor is None else self._guarded(donor)

    def _may_donate(self, position: int, node, emitted) -> None:
        """A blocked output may be written into a donor input's array: same shape and dtype,
        and nothing reads the donor after the output's node (that node itself only as a
        single in-place ufunc)."""
        value = node.outputs[0]
        if value not in self.output_slices or emitted.kind != "out":
            return
        for donor in self.donors:
            if donor in self.donated.values() or self.shapes[donor] != self.shapes[value] \
                    or donor.type.dtype != value.type.dtype:
                continue
            if self.root_last_use.get(donor, -1) > position:
                continue
            if donor in node.inputs and not emitted.inplace:
                continue
            self.donated[value] = donor
            return

    def _dead_donors(self, position: int, node) -> list:
        """Donor inputs of a whole-evaluated node read for the last time here: their arrays
        join the buffer pool (guarded: a read-only or other-dtype array is not reused)."""
        dead = []
        for donor in self.donors:
            if donor in node.inputs and donor not in self.buffer_of and \
                    donor not in self.used_in_block and donor not in self.donated.values() \
                    and self.root_last_use.get(donor, -1) <= position:
                guard = f"g{self.body.inputs.index(donor)}"
                self._emit("run", f"{guard} = {self._guarded(donor)}")
                self.buffer_of[donor] = guard
                dead.append(donor)
        return dead

    def _guarded(self, donor) -> str:
        name, dtype = self.names[donor], donor.type.dtype
        return (f"{name} if {name}.flags.writeable and {name}.dtype == _dt_{dtype} "
                f"else _empty({self.shapes[donor]!r}, _dt_{dtype})")

    def _input_name(self, value, in_block: bool) -> str:
        """`value` as the function computing a node sees it (block parameters for the block)."""
        name = self.names[value]
        if not in_block or value in self.blocked and value.node.op.name != "placeholder":
            return name
        if name.startswith("c") and name in self.program.env:
            return name  # a constant: a global
        param = f"p_{name}"
        if all(p != param for p, _ in self.block_params):
            sliced = f"{name}[s:e]" if value in self.blocked else name
            self.block_params.append((param, sliced))
        return param

    def _emit_node(self, position: int, node, buffers: _Buffers, in_block: bool) -> None:
        where = "block" if in_block else "run"
        value = node.outputs[0]
        inputs = [self._input_name(v, in_block) for v in node.inputs]
        emitted = fused_ops.emit(node, inputs, self.shapes)
        self.quiet = self.quiet or emitted.quiet
        if emitted.kind != "out" and "{kernel}" in emitted.expression:  # the op's own kernel
            kernel = self.program.bind("k", node.op.bound_kernel(node.attrs))
            emitted = fused_ops.Emitted(emitted.expression.format(kernel=kernel), emitted.kind)
        name = f"v{len(self.names)}"
        if emitted.kind == "alias":
            self._emit(where, f"{name} = {emitted.expression}", node)
            root = self.root.get(node.inputs[0], node.inputs[0])
            self.root[value] = root
            self.root_last_use[root] = max(self.root_last_use.get(root, -1),
                                           self.last_use.get(value, -1))
        elif emitted.kind == "fresh":
            self._emit(where, f"{name} = {emitted.expression}", node)
            self.root[value] = value
            self.owned.add(value)
        else:
            self._may_donate(position, node, emitted)
            dying = [v for v in node.inputs if self._releasable(v, position, in_block)]
            if not in_block:
                dying += self._dead_donors(position, node)
            if emitted.inplace:
                self._release(dying, buffers)
            name = self._destination(value, buffers, in_block)
            self._emit(where, emitted.expression.format(out=name), node)
            self.root[value] = value
            self.owned.add(value)
            if not emitted.inplace:
                self._release(dying, buffers)
        self.names[value] = name
        if in_block and value in self.output_slices and name != self._slice_param(value):
            self._emit(where, f"_copyto({self._slice_param(value)}, {name})", node)

    def _releasable(self, value, position: int, in_block: bool) -> bool:
        """A buffer this lowering allocated whose value (and every view of it) dies here."""
        return (value in self.buffer_of and (value in self.blocked) == in_block
                and (in_block or value not in self.used_in_block)
                and self._dies_at(position, value))

    def _release(self, values, buffers: _Buffers) -> None:
        for value in dict.fromkeys(values):
            buffers.give(value.type.dtype, self._pool_shape(value), self.buffer_of.pop(value))

    def _pool_shape(self, value) -> tuple:
        return tuple(self.shapes[value])

    def _destination(self, value, buffers: _Buffers, in_block: bool) -> str:
        if in_block and value in self.output_slices:
            return self._slice_param(value)
        name = buffers.take(value.type.dtype, self._pool_shape(value))
        if value not in self.body.outputs:  # an output's buffer is handed out, never reused
            self.buffer_of[value] = name
        return name

    def _slice_param(self, value) -> str:
        name = f"p_{self.output_slices[value]}"
        if all(p != name for p, _ in self.block_params):
            self.block_params.append((name, f"{self.output_slices[value]}[s:e]"))
        return name

    # --- after the nodes ------------------------------------------------------------------

    def _block_loop(self) -> list:
        """The loop over full blocks, then the tail block with sliced buffers."""
        lines = [f"{b} = _empty({shape!r}, _dt_{dtype})" for b, dtype, shape in self.block_buffers]
        full = self.rows - self.rows % self.per_block
        passed = [expr for _, expr in self.block_params] + [b for b, _, _ in self.block_buffers]
        lines.append(f"for s in range(0, {full}, {self.per_block}):")
        lines.append(f"    e = s + {self.per_block}")
        lines.append(f"    block({', '.join(passed)})")
        if full < self.rows:
            tail = self.rows - full
            passed = ([expr for _, expr in self.block_params]
                      + [f"{b}[:{tail}]" for b, _, _ in self.block_buffers])
            lines += [f"s, e = {full}, {self.rows}", f"block({', '.join(passed)})"]
        return lines

    def _results(self) -> str:
        """The outputs, each an array of its own (copies where a value is shared or a view)."""
        handed: set = set()
        results = []
        for value in self.body.outputs:
            if value in self.output_slices and value not in handed:
                results.append(self.output_slices[value])
            elif value in self.owned and value not in handed and \
                    self.root.get(value, value) is value:
                results.append(self.names[value])
            else:
                source = self.names.get(value) or self.output_slices[value]
                results.append(f"_array({source}, dtype=_dt_{value.type.dtype}, copy=True)")
            handed.add(value)
        if len(results) == 1:
            return results[0]
        return "(" + ", ".join(results) + ")"

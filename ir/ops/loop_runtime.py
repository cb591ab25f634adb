"""Running a scan: the loop driver around a body's step function (see ir/ops/loop.py).

`Loop(body, ..., step, needed)(*arrays)` runs `step(feeds) -> outputs` over
the sequences (axis 0 is time) and stores what `needed` asks for: the
stacked per-step outputs, the final carries and the carries at the T+1
step boundaries. The steps run in a small loop function generated for the
scan's counts (`stepper`), so a step costs the body's own kernels plus a
few list and array stores. `interpreter(body)` is a step function that
walks the body node by node (the op's plain kernel, without codegen).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

from ..graph import Graph
from ..shapes import SymDim


# --- the layout of inputs and outputs ---------------------------------------------------

def counts(num_inputs: int, body: Graph, num_sequences: int, num_carries: int) -> tuple:
    """(sequences, carries, captured values, per-step outputs) of a scan."""
    return (num_sequences, num_carries, num_inputs - num_sequences - num_carries,
            len(body.outputs) - num_carries)


def split_groups(items, *sizes) -> list:
    """`items` cut into consecutive groups of the given sizes, then the rest."""
    groups, start = [], 0
    for size in sizes:
        groups.append(list(items[start:start + size]))
        start += size
    groups.append(list(items[start:]))
    return groups


def node_counts(node) -> tuple:
    return counts(len(node.inputs), node.attrs["body"], node.attrs["num_sequences"],
                   node.attrs["num_carries"])


# --- running the loop --------------------------------------------------------------------

class LoopError(ValueError):
    """A scan's sequences or a step's results do not fit (found at run time)."""


class Loop:
    """Runs `step(feeds) -> outputs` over the sequences; stores what `needed` asks for.

    The first step runs before the stacked outputs are allocated (their
    runtime shapes are known only then). The steps themselves run in a
    small loop function generated for this scan's counts, so a step costs
    the body's own kernels plus a few list and array stores.
    """

    def __init__(self, body: Graph, num_inputs: int, num_sequences: int, num_carries: int,
                 reverse: bool, step: Callable, needed: tuple):
        self.body = body
        self.ns, self.nc, self.nk, self.ny = counts(num_inputs, body, num_sequences, num_carries)
        self.reverse = reverse
        self.step = step
        need_outputs, self.need_finals, self.need_boundaries = split_groups(needed, self.ny,
                                                                      self.nc)[:3]
        self.kept = tuple(k for k in range(self.ny) if need_outputs[k])
        bounded = tuple(j for j in range(self.nc) if self.need_boundaries[j])
        self.run_steps = stepper(self.ns, self.nc, self.ny, self.kept, bounded,
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
def stepper(ns: int, nc: int, ny: int, kept: tuple, bounded: tuple, shift: int) -> Callable:
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


def interpreter(body: Graph) -> Callable:
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


__all__ = ["Loop", "LoopError", "counts", "split_groups", "node_counts", "interpreter"]

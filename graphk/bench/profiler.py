"""Per-kernel time of a compiled function: `K.function(..., profile=True)`, `fn.profile()`.

A profiled function's generated program calls each kernel through a wrapper
that adds the kernel's perf_counter time and call count to its record
(`Profiler.wrap`, handed to the NumPy lowering as `wrap_kernel`). Functions
compiled without `profile=True` get no wrapper, so they pay nothing per call.
A loop node (scan) is one kernel: its body's kernels are inside its time.

`profile_table(fn)` lays out the records sorted by time: kernel (op and the
lowering that ran it), the ops a fused kernel holds, output shapes seen at
run time, calls, total, share and the user's source line; then the compile
time by pass (from the pipeline's report) and the code generation time.
"""
from __future__ import annotations

import time
from collections import Counter

from ..benchmarking import _format


class KernelRecord:
    """One node's kernel: calls and seconds over every call of the function."""

    __slots__ = ("node", "calls", "seconds", "shapes")

    def __init__(self, node):
        self.node = node
        self.calls = 0
        self.seconds = 0.0
        self.shapes = None  # output shapes of the first call

    def note_shapes(self, result) -> None:
        results = result if isinstance(result, tuple) else (result,)
        self.shapes = tuple(tuple(getattr(r, "shape", ())) for r in results)


class Profiler:
    """The `wrap_kernel` hook of one profiled function, and its records."""

    def __init__(self):
        self.records: list[KernelRecord] = []

    def wrap(self, node, kernel):
        """`kernel` timed into a new record of `node` (same arguments, same results)."""
        record = KernelRecord(node)
        self.records.append(record)
        clock = time.perf_counter

        def timed(*arrays):
            start = clock()
            result = kernel(*arrays)
            record.seconds += clock() - start
            if record.calls == 0:
                record.note_shapes(result)
            record.calls += 1
            return result
        timed.lowering = getattr(kernel, "lowering", "numpy")
        return timed

    def reset(self) -> None:
        for record in self.records:
            record.calls, record.seconds = 0, 0.0


def fused_ops(node) -> str:
    """'exp, mul x3, reduce_sum': the body ops of a fused node (its own op otherwise)."""
    body = node.attrs.get("body") if node.op.name == "fused" else None
    if body is None:
        return node.op.name
    counts = Counter(n.op.name for n in body.nodes if not n.op.leaf)
    return ", ".join(name if k == 1 else f"{name} x{k}" for name, k in counts.items())


def _shapes(record: KernelRecord) -> str:
    if record.shapes is None:
        return "-"
    return " ".join("(" + ",".join(map(str, s)) + ")" for s in record.shapes)


def profile_table(fn) -> str:
    """The kernel table of a profiled function, then its compile time by pass and codegen."""
    profiler = getattr(fn, "_profiler", None)
    if profiler is None:
        raise ValueError(f"function {fn.name!r} was compiled without profiling; "
                         "compile it with K.function(..., profile=True) to call fn.profile()")
    lowerings = fn._executable.lowerings
    records = sorted(profiler.records, key=lambda r: r.seconds, reverse=True)
    total = sum(r.seconds for r in records) or 1.0
    rows = [("kernel", "ops", "shapes", "calls", "total", "share", "source")]
    for r in records:
        kernel = f"{r.node.op.name}[{lowerings.get(r.node, 'numpy')}]"
        rows.append((kernel, fused_ops(r.node), _shapes(r), str(r.calls),
                     _format(r.seconds) if r.calls else "0", f"{r.seconds / total:.1%}",
                     str(r.node.location)))
    widths = [min(60, max(len(row[k]) for row in rows)) for k in range(len(rows[0]))]
    lines = [f"profile of function {fn.name!r}: {len(records)} kernels, "
             f"{_format(sum(r.seconds for r in records))} in kernels"]
    for row in rows:
        cells = [cell if len(cell) <= w else cell[:w - 3] + "..." for cell, w in zip(row, widths)]
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    lines.extend(compile_lines(fn))
    return "\n".join(lines)


def compile_lines(fn) -> list:
    """Compile seconds: each pass (the pipeline's own timing), code generation, in all."""
    lines = ["compile time:"]
    for record in fn._report.records:
        lines.append(f"  pass {record.name:<18}{_format(record.seconds):>10}")
    codegen = getattr(fn, "codegen_seconds", None)
    if codegen is not None:
        lines.append(f"  {'code generation':<23}{_format(codegen):>10}")
    if getattr(fn, "compile_seconds", None) is not None:
        lines.append(f"  {'in all (K.function)':<23}{_format(fn.compile_seconds):>10}")
    return lines


__all__ = ["Profiler", "KernelRecord", "profile_table", "fused_ops", "compile_lines"]

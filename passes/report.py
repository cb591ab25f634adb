"""What compiling a function did: each pass's time and node counts, and IR dumps.

`CompileReport` is handed to `run_pipeline` as its `trace`; `text(fn)` lays
out the pass table, then one section per contributor. Contributors are
callables `section(fn) -> str | None`: the ones in `REPORT_SECTIONS` (a
module-level list other parts of graphk append to, e.g. fusion's peak
intermediate bytes or the per-node lowering) and the ones appended to a
single report's `sections`. Nobody edits this file to add a section.

`DumpDirectory` writes the IR after every pass (`GRAPHK_DUMP_DIR=dir`), one
subdirectory per compiled function (`<name>.<pid>.<n>`, so functions of one
name never overwrite each other):

    00-input.gkir  01-fold.gkir  02-simplify.gkir ...   the IR after each pass
    program.py                                           runnable on its own
    variables.npz                                        the variables' values

`diff 01-fold.gkir 02-simplify.gkir` shows one pass's work. program.py holds
the final IR (constants in full) and rebuilds the kernels from it with
graphk's own NumPy lowering (`parse` + `compile_graph`), so it calls nothing
it does not define or import; the generated driver program is included as a
commented listing, each kernel line annotated with its op and user line.
"""
from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..ir.graph import Graph

# Contributors to every report: section(fn) -> text or None (fn is the compiled Function).
REPORT_SECTIONS: list[Callable] = []

_dump_numbers = itertools.count()


@dataclass(frozen=True)
class PassRecord:
    name: str
    seconds: float
    nodes_before: int
    nodes_after: int


class CompileReport:
    """Collects per-pass figures while the pipeline runs; renders them with the sections."""

    def __init__(self, name: str, graph: Graph, dump: DumpDirectory | None = None):
        self.name = name
        self.records: list[PassRecord] = []
        self.sections: list[Callable] = []
        self.dump = dump
        self.input_nodes = len(graph.nodes)
        self._nodes = self.input_nodes
        self._start = time.perf_counter()
        if dump is not None:
            dump.write_ir("input", graph)

    def trace(self, name: str, graph: Graph, seconds: float) -> None:
        """run_pipeline's `trace`: record a pass's figures (and dump its IR)."""
        after = len(graph.nodes)
        self.records.append(PassRecord(name, seconds, self._nodes, after))
        self._nodes = after
        if self.dump is not None:
            self.dump.write_ir(name, graph)

    def text(self, fn=None) -> str:
        lines = [f"function {self.name!r}: {self.input_nodes} nodes in, {self._nodes} out"]
        if self.records:
            width = max(12, *(len(r.name) + 2 for r in self.records))  # scan_accumulate
            lines.append(f"  {'pass':<{width}}{'ms':>9}{'nodes before':>15}{'after':>8}")
            for r in self.records:
                lines.append(f"  {r.name:<{width}}{r.seconds * 1e3:9.2f}{r.nodes_before:15d}"
                             f"{r.nodes_after:8d}")
            total = sum(r.seconds for r in self.records)
            lines.append(f"  {'all passes':<{width}}{total * 1e3:9.2f}")
        else:
            lines.append("  no passes ran (passes='none')")
        for section in list(REPORT_SECTIONS) + self.sections:
            try:
                text = section(fn)
            except Exception as error:  # noqa: BLE001 (a broken section must not hide the rest)
                text = f"(report section {getattr(section, '__name__', section)!r} failed: " \
                       f"{type(error).__name__}: {error})"
            if text:
                lines.append(text.rstrip("\n"))
        if self.dump is not None:
            lines.append(f"IR after each pass: {self.dump.path}")
        return "\n".join(lines)


class DumpDirectory:
    """One function's dump directory under GRAPHK_DUMP_DIR (created at compile time)."""

    def __init__(self, root: str, function_name: str):
        if os.path.exists(root) and not os.path.isdir(root):
            raise ValueError(f"GRAPHK_DUMP_DIR={root!r} is an existing file, not a directory: "
                             "point it at a directory (created if missing) or unset it")
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in function_name)
        while True:  # a fresh name even beside another process dumping into the same root
            path = os.path.join(root, f"{safe}.{os.getpid()}.{next(_dump_numbers)}")
            try:
                os.makedirs(path)
                break
            except FileExistsError:
                continue
            except OSError as error:
                raise ValueError(f"GRAPHK_DUMP_DIR={root!r}: cannot create the dump directory "
                                 f"{path!r} ({error.strerror})") from None
        self.path = path
        self._count = 0

    @classmethod
    def from_environment(cls, function_name: str) -> DumpDirectory | None:
        root = os.environ.get("GRAPHK_DUMP_DIR")
        return cls(root, function_name) if root else None

    def write_ir(self, pass_name: str, graph: Graph) -> None:
        filename = f"{self._count:02d}-{pass_name}.gkir"
        self._count += 1
        with open(os.path.join(self.path, filename), "w") as handle:
            handle.write(graph.to_text() + "\n")

    def write_program(self, graph: Graph, source: str, line_nodes: dict) -> None:
        """program.py (final IR + loader + annotated listing) and variables.npz."""
        values = {f"v{i}": np.asarray(v.storage) for i, v in enumerate(graph.variables)}
        np.savez(os.path.join(self.path, "variables.npz"), **values)
        with open(os.path.join(self.path, "program.py"), "w") as handle:
            handle.write(program_text(graph, source, line_nodes))


def _listing(source: str, line_nodes: dict) -> str:
    """The generated driver as comment lines, each kernel call annotated with its node."""
    lines = []
    for number, line in enumerate(source.splitlines(), start=1):
        node = line_nodes.get(number)
        note = ""
        if node is not None:
            attrs = ", ".join(f"{k}={v!r}" for k, v in sorted(node.attrs.items())
                              if not isinstance(v, (Graph, np.ndarray)))
            note = f"    <- {node.op.name}({attrs}) at {node.location}"
        lines.append(f"#   {line}{note}")
    return "\n".join(lines)


_PROGRAM = '''"""graphk function {name!r}: the compiled IR, runnable on its own.

Run `python program.py` to compile it again with graphk's NumPy lowering and
call it once on random feeds (unknown dims take size 2), variables loaded
from variables.npz beside this file. `load()` returns the executable:
`load()([feed, ...])` -> list of outputs, then the variable updates.
"""
import os

import numpy as np

from graphk.codegen.numpy_backend import compile_graph
from graphk.ir import parse

IR = {ir}


def load():
    graph = parse(IR)
    here = os.path.dirname(os.path.abspath(__file__))
    with np.load(os.path.join(here, "variables.npz")) as values:
        for i, variable in enumerate(graph.variables):
            variable.assign(values[f"v{{i}}"])
    return compile_graph(graph)


def random_feeds(graph, rng):
    shapes = [[d if isinstance(d, int) else 2 for d in v.type.shape] for v in graph.inputs]
    return [rng.uniform(-1, 1, s).astype(v.type.dtype) for s, v in zip(shapes, graph.inputs)]


if __name__ == "__main__":
    executable = load()
    outputs = executable(random_feeds(executable.graph, np.random.default_rng(0)))
    for k, array in enumerate(outputs):
        print(f"output {{k}}: {{np.asarray(array).dtype}}{{list(np.shape(array))}}")


# The generated driver program (what `load()` compiles), for reading:
{listing}
'''


def program_text(graph: Graph, source: str, line_nodes: dict) -> str:
    text = graph.to_text(full_constants=True)
    # A raw triple-quoted string reads as the IR itself; repr() only if that cannot hold it.
    literal = f"r'''{text}\n'''" if "'''" not in text and not text.endswith("\\") \
        else repr(text)
    return _PROGRAM.format(name=graph.name, ir=literal, listing=_listing(source, line_nodes))


__all__ = ["CompileReport", "DumpDirectory", "PassRecord", "REPORT_SECTIONS", "program_text"]

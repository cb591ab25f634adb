"""The compilation pipeline: one ordered list of named passes.

Each pass is `Graph -> Graph`. `run_pipeline` runs them in order, times each,
can verify the graph after each, and can print the IR after each (for
reading what a pass did). A pass list spec such as "-fusion" removes a pass
by name; "none" runs no optional pass.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ..ir.graph import Graph
from ..ir.verify import verify


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable[[Graph], Graph]
    doc: str = ""


PIPELINE: list[Pass] = []  # filled in order by the optimization passes as they land


def select_passes(spec: str | None) -> list[Pass]:
    """The passes a spec keeps: None or "default" for all, "none", or "-a,-b" to drop some."""
    if spec is None or spec == "default":
        return list(PIPELINE)
    if spec == "none":
        return []
    known = {p.name for p in PIPELINE}
    dropped = set()
    for item in spec.split(","):
        item = item.strip()
        if not item.startswith("-") or item[1:] not in known:
            raise ValueError(f"unknown pass spec {item!r}; known passes: {sorted(known)} "
                             "(write '-name' to switch one off, or 'none')")
        dropped.add(item[1:])
    return [p for p in PIPELINE if p.name not in dropped]


def run_pipeline(graph: Graph, spec: str | None = None, check: bool = False,
                 trace: Callable[[str, Graph, float], None] | None = None) -> Graph:
    """Run the selected passes in order; `trace(name, graph, seconds)` sees each result."""
    for compiler_pass in select_passes(spec):
        start = time.perf_counter()
        graph = compiler_pass.run(graph)
        elapsed = time.perf_counter() - start
        if check:
            verify(graph)
        if trace is not None:
            trace(compiler_pass.name, graph, elapsed)
    return graph

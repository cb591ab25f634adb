"""The compilation pipeline: one ordered list of named passes.

Each pass is `Graph -> Graph`. `run_pipeline` runs them in order, times each,
can verify the graph after each, and can print the IR after each (for
reading what a pass did). A pass list spec such as "-fusion" removes a pass
by name; "none" runs no optional pass.

    fold       constant folding (passes/fold.py)
    simplify   algebraic canonicalization, a rule table (passes/simplify.py)
    stability  numerically stable forms (passes/stability.py)
    cse        common subexpression elimination (passes/cse.py)
    dce        dead code elimination (passes/dce.py)

Folding comes first so the rules see constants; CSE after the rules merges
what they made equal; later passes (fusion) see a small canonical graph.
"""
from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import dataclass
from typing import Callable

from ..ir.graph import Graph
from ..ir.verify import verify
from .cse import eliminate_common_subexpressions
from .dce import eliminate_dead_code
from .decompose import decompose
from .fold import fold_constants
from .fusion import fuse_elementwise
from .matmul_update import fold_products_into_updates
from .scan_accumulate import push_out_accumulators
from .scan_fusion import fuse_scan_bodies
from .scan_hoist import hoist_scan_work
from .simplify import simplify
from .stability import stabilize


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable[[Graph], Graph]
    doc: str = ""


PIPELINE: list[Pass] = [
    Pass("fold", fold_constants, "evaluate nodes whose inputs are constants"),
    Pass("simplify", simplify, "local algebraic rules (x*1, identity casts, ...)"),
    Pass("stability", stabilize, "numerically stable forms (log_softmax, softplus, ...)"),
    Pass("cse", eliminate_common_subexpressions, "merge equal nodes and constants"),
    Pass("dce", eliminate_dead_code, "drop no-op updates and what only they read"),
    # Later passes (fusion, ...) are appended here, in order.
    Pass("scan_hoist", hoist_scan_work, "loop work that reads no carry, before the loop"),
    Pass("scan_accumulate", push_out_accumulators, "summing carries (BPTT's dW) after the loop"),
    Pass("matmul_update", fold_products_into_updates, "SGD weight updates as one GEMM"),
    Pass("decompose", decompose, "nn macro ops as elementwise ops and reductions"),
    Pass("fusion", fuse_elementwise, "regions of elementwise work and reductions as fused nodes"),
    Pass("scan_fusion", fuse_scan_bodies, "decomposition and fusion inside loop bodies"),
]


def known_pass_names() -> list[str]:
    return [p.name for p in PIPELINE]


def select_passes(spec: str | None) -> list[Pass]:
    """The passes a spec keeps: None or "default" for all, "none", or "-a,-b" to drop some."""
    if spec is None or spec == "default":
        return list(PIPELINE)
    if not isinstance(spec, str):
        raise ValueError(f"passes must be a string such as 'none' or '-fusion,-cse', "
                         f"got {spec!r}; known passes: {known_pass_names()}")
    if spec.strip() == "none":
        return []
    known = set(known_pass_names())
    dropped = set()
    for item in spec.split(","):
        item = item.strip()
        if not item.startswith("-") or item[1:] not in known:
            raise ValueError(f"unknown pass spec {item!r} in passes={spec!r}; known passes: "
                             f"{known_pass_names()} (write '-name' to switch one off, "
                             "or 'none')")
        dropped.add(item[1:])
    return [p for p in PIPELINE if p.name not in dropped]


def run_pipeline(graph: Graph, spec: str | None = None, check: bool = False,
                 trace: Callable[[str, Graph, float], None] | None = None) -> Graph:
    """Run the selected passes in order; `trace(name, graph, seconds)` sees each result."""
    with _cyclic_gc_paused():
        return _run(graph, select_passes(spec), check, trace)


def _run(graph: Graph, passes: list, check: bool, trace) -> Graph:
    for compiler_pass in passes:
        start = time.perf_counter()
        graph = compiler_pass.run(graph)
        elapsed = time.perf_counter() - start
        if check:
            verify(graph)
        if trace is not None:
            trace(compiler_pass.name, graph, elapsed)
    return graph


@contextlib.contextmanager
def _cyclic_gc_paused():
    """Every node and its output values form a reference cycle, so Python's full
    collections, triggered every few thousand new nodes, re-walk the whole heap: with
    the collector on, pass time per node grows with graph size (100k-node chains: 2-5x).
    The cycles left behind are collected once it is back on. Re-enabled only if it was on
    (a concurrent compile may have paused it; at worst it comes back on early)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()

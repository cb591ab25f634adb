"""Scan body fusion: the loop body gets the top-level graph's decomposition and fusion.

Before fusing, `x + a @ b` in a body becomes one matmul_update (GEMM with
beta = 1, passes/matmul_update.py): an RNN step's `xw_t + h @ U` is then a
copy and a GEMM, and only its activation is left to run elementwise.

The pipeline's passes rewrite the graph they are given; a scan's body is a
graph held in an attribute, which they leave as it is. Run once per step,
the body is where fusion pays most: the elementwise tail of an RNN step
(add, add, tanh; or BPTT's add, 1 - h*h, mul) is one kernel call per step
instead of one per op, and the LLVM lowering compiles it to native code.
"""
from __future__ import annotations

from ..ir.graph import Graph
from .decompose import decompose
from .fusion import fuse_elementwise
from .matmul_update import fold_products_into_sums
from .scan_parts import rewrite_scans


def fuse_scan_bodies(graph: Graph) -> Graph:
    """`graph` with every scan body (nested ones too) decomposed and fused."""
    return rewrite_scans(graph, body_pass=_optimize_body)


def _optimize_body(body: Graph) -> Graph:
    return fuse_elementwise(fold_products_into_sums(decompose(body)))


__all__ = ["fuse_scan_bodies"]

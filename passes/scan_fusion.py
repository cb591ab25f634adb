"""Scan body fusion: the loop body gets the top-level graph's decomposition and fusion.

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
from .scan_parts import rewrite_scans


def fuse_scan_bodies(graph: Graph) -> Graph:
    """`graph` with every scan body (nested ones too) decomposed and fused."""
    return rewrite_scans(graph, body_pass=lambda body: fuse_elementwise(decompose(body)))


__all__ = ["fuse_scan_bodies"]

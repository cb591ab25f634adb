"""Compile time: a 100-layer tanh MLP with gradients, and chains of 1k/10k/100k nodes.

Prints the build and compile times of the MLP (K.gradients wrt every weight,
K.function with the whole pipeline, and with passes="none"), then, for
chains of n elementwise nodes, each pass's CPU time per node: if the passes
are linear the per-node time stays flat as n grows by 10x and 100x. CPU time
(time.process_time) is printed beside wall time: on a loaded machine wall time
overstates what compiling costs.

Run: python benchmarks/bench_compile_time.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from graphk import backend as K
from graphk.ir.graph import Graph
from graphk.passes.pipeline import _cyclic_gc_paused, select_passes


def mlp_compile_seconds(layers: int, width: int, passes) -> tuple:
    """(build seconds, compile seconds, nodes before, nodes after, CPU seconds of both) of
    one SGD step. CPU time is printed too: on a loaded machine wall time overstates."""
    cpu = time.process_time()
    start = time.perf_counter()
    x = K.placeholder((None, width))
    weights = [K.variable(np.full((width, width), 0.01, np.float32)) for _ in range(layers)]
    h = x
    for w in weights:
        h = K.tanh(K.dot(h, w))
    loss = K.mean(K.square(h))
    grads = K.gradients(loss, weights)
    updates = [K.update_sub(w, 0.01 * g) for w, g in zip(weights, grads)]
    built = time.perf_counter()
    fn = K.function([x], [loss], updates=updates, passes=passes)
    done = time.perf_counter()
    records = fn._report.records
    before = records[0].nodes_before if records else len(fn.ir.nodes)
    return built - start, done - built, before, len(fn.ir.nodes), time.process_time() - cpu


def chain_graph(n: int) -> Graph:
    """A chain of about n elementwise nodes (tanh(y * 1), exp(-y), alternating)."""
    x = K.placeholder((None, 4))
    y = x
    one = K.constant(1.0)
    for i in range(n // 2):
        y = K.tanh(y * one) if i % 2 else K.exp(-y)
    return Graph([x], [y])


def chain_report(n: int, passes=None) -> dict:
    """CPU seconds of each selected pass on an n-node chain (cyclic GC paused, as in
    run_pipeline)."""
    graph = chain_graph(n)
    _ = graph.nodes  # the topological order is cached: compute it before timing
    seconds = {}
    with _cyclic_gc_paused():
        for compiler_pass in select_passes(passes):
            start = time.process_time()
            graph = compiler_pass.run(graph)
            _ = graph.nodes  # a pass's result counts with its order
            seconds[compiler_pass.name] = time.process_time() - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--passes", default=None,
                        help="pass spec for the chains, e.g. '-fusion' (default: all)")
    args = parser.parse_args()
    print("100-layer tanh MLP (width 32), gradients wrt every W, SGD updates:")
    for passes in (None, "none"):
        runs = [mlp_compile_seconds(100, 32, passes) for _ in range(args.repeat)]
        build = statistics.median(r[0] for r in runs)
        compile_ = statistics.median(r[1] for r in runs)
        cpu = statistics.median(r[4] for r in runs)
        label = "whole pipeline" if passes is None else "passes='none'"
        print(f"  {label:15s} build {build:.3f} s + compile {compile_:.3f} s = "
              f"{build + compile_:.3f} s wall, {cpu:.3f} s CPU (nodes {runs[0][2]} -> "
              f"{runs[0][3]}, median of {args.repeat})", flush=True)
    print(f"chains of n nodes (passes={args.passes or 'all'}): CPU microseconds per node "
          "for each pass (flat as n grows 10x and 100x means linear)", flush=True)
    for n in (1_000, 10_000, 100_000):
        repeat = args.repeat if n < 100_000 else 1
        runs = [chain_report(n, args.passes) for _ in range(repeat)]
        per_pass = {name: statistics.median(r[name] for r in runs) for name in runs[0]}
        total = sum(per_pass.values())
        cells = "  ".join(f"{name} {sec / n * 1e6:.2f}" for name, sec in per_pass.items())
        print(f"  n={n:>7,}: all passes {total:.3f} s CPU ({total / n * 1e6:.1f} us/node); "
              f"{cells}", flush=True)


if __name__ == "__main__":
    main()

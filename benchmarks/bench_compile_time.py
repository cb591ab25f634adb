"""Compile time: a 100-layer tanh MLP with gradients, and chains of 1k/10k/100k nodes.

Prints the build and compile times of the MLP (K.gradients wrt every weight,
K.function with the whole pipeline, and with passes="none"), then, for
chains of n elementwise nodes, each pass's time per node: if the passes are
linear the per-node time stays flat as n grows by 10x and 100x.

Run: python benchmarks/bench_compile_time.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from graphk import backend as K


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


def chain_report(n: int, passes=None) -> tuple[float, dict]:
    """Compile a chain of about n nodes; (total compile seconds, pass -> seconds)."""
    x = K.placeholder((None, 4))
    y = x
    one = K.constant(1.0)
    for i in range(n // 2):
        y = K.tanh(y * one) if i % 2 else K.exp(-y)
    start = time.perf_counter()
    fn = K.function([x], [y], passes=passes)
    total = time.perf_counter() - start
    return total, {r.name: r.seconds for r in fn._report.records}


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
    print(f"chains of n nodes (passes={args.passes or 'all'}): compile seconds, then "
          "microseconds per node for each pass", flush=True)
    for n in (1_000, 10_000, 100_000):
        repeat = max(1, args.repeat if n < 100_000 else 1)
        runs = [chain_report(n, args.passes) for _ in range(repeat)]
        total = statistics.median(r[0] for r in runs)
        per_pass = {name: statistics.median(r[1][name] for r in runs) for name in runs[0][1]}
        cells = "  ".join(f"{name} {seconds / n * 1e6:.2f}" for name, seconds in per_pass.items())
        print(f"  n={n:>7,}: compile {total:.3f} s ({total / n * 1e6:.1f} us/node); {cells}",
              flush=True)


if __name__ == "__main__":
    main()

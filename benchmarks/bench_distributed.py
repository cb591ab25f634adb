"""Data-parallel training on this machine: Keras digits steps on 1 and 2 workers, and
allreduce throughput for 1-64 MB against memory bandwidth.

Run: python benchmarks/bench_distributed.py [--workers 1 2] [--rounds 7] [--statistic min]
(needs pip install -e '.[test,distributed]'; it launches itself with the venv's mpiexec).

Step times: `model.train_on_batch` of examples/distributed_digits.py's MLP and CNN
with DistributedOptimizer, per-worker batch 64 (weak scaling: N workers step
through N times the examples) and global batch 64 split over the workers (strong
scaling). Allreduce: the summed buffer per second through the kernel (copy into
one buffer, MPI in place, views out) and MPI alone; "bus" bandwidth is that times
2(N-1)/N, what a ring allreduce moves per worker, comparable to np.copyto's
bytes/s of the same size (read + write, one core). Figures are medians over
interleaved rounds (--statistic min: the fastest round, steadier on a busy
machine), timed on rank 0 after a barrier. Every worker runs BLAS on one thread
(OMP_NUM_THREADS=1), so 1 and 2 workers compare core for core.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
SIZES_MB = (1, 4, 16, 64)
STATISTIC = {"median": statistics.median, "min": min}
chosen = [statistics.median]  # set from --statistic


def round_ms(fn, rounds: int, repeat: int, sync) -> float:
    times = []
    for _ in range(rounds):
        sync()
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        times.append((time.perf_counter() - start) / repeat * 1e3)
    return chosen[0](times)


def step_times(rounds: int) -> dict:
    sys.path.insert(0, str(HERE.parent.parent / "examples"))
    from distributed_digits import build_model, digits  # installs the Keras shims first

    import keras

    import graphk.distributed as gd

    size, results = gd.size(), {}
    for kind in ("mlp", "cnn"):
        x, y, _, _ = digits(kind)
        model = build_model(kind)
        model.compile(gd.DistributedOptimizer(keras.optimizers.SGD(lr=0.05)),
                      loss="categorical_crossentropy")
        gd.broadcast_variables(model.weights)
        gradient_mb = model.count_params() * 4 / 2**20
        gradients = np.ones(model.count_params(), np.float32)
        allreduce_ms = round_ms(partial(gd.allreduce_arrays, [gradients]), rounds, 20,
                                gd.barrier)
        for scaling, batch in (("weak", 64), ("strong", 64 // size)):
            xb, yb = x[:batch], y[:batch]
            model.train_on_batch(xb, yb)  # compile outside the timing
            ms = round_ms(partial(model.train_on_batch, xb, yb), rounds, 20, gd.barrier)
            results[f"{kind} step, {scaling} scaling"] = {
                "ms": ms, "examples_per_s": batch * size / ms * 1e3, "gradient_mb": gradient_mb,
                "batch": batch, "allreduce_ms": allreduce_ms}
    return results


def allreduce_times(rounds: int) -> dict:
    import graphk.distributed as gd

    transport, size, results = gd.collective.current_transport("bench"), gd.size(), {}
    for mb in SIZES_MB:
        data = np.ones(mb * 2**20 // 4, np.float32)
        target = np.empty_like(data)
        candidates = {
            "kernel": partial(gd.allreduce_arrays, [data], "sum"),
            "mpi": partial(transport.allreduce, target, None, "bench"),
            "copyto": partial(np.copyto, target, data),
        }
        repeat = max(1, 16 // mb)
        for name, fn in candidates.items():
            if size == 1 and name != "copyto":
                continue  # one worker's allreduce moves nothing
            ms = round_ms(fn, rounds, repeat, gd.barrier)
            gbps = data.nbytes / ms / 1e6
            factor = 2 * (size - 1) / size if name != "copyto" else 1.0
            results[f"{name} {mb} MB"] = {"ms": ms, "GB/s": gbps, "bus GB/s": gbps * factor}
    return results


def worker(rounds: int, statistic: str) -> None:
    import graphk.distributed as gd

    chosen[0] = STATISTIC[statistic]
    gd.init(quiet=True)
    results = {"steps": step_times(rounds), "allreduce": allreduce_times(rounds)}
    if gd.rank() == 0:
        print(json.dumps({"workers": gd.size(), **results}), flush=True)


def launch(workers: int, rounds: int, statistic: str) -> dict:
    mpiexec = Path(sys.executable).parent / "mpiexec"
    env = dict(os.environ, OMP_NUM_THREADS="1", KERAS_BACKEND="graphk.backend")
    done = subprocess.run([str(mpiexec), "-n", str(workers), sys.executable, str(HERE),
                           "--worker", "--rounds", str(rounds), "--statistic", statistic],
                          capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode:
        raise SystemExit(f"mpiexec -n {workers} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(runs: list) -> None:
    print("Keras digits training step (train_on_batch, DistributedOptimizer):")
    for name in runs[0]["steps"]:
        cells = [f"{r['workers']} worker(s), batch {r['steps'][name]['batch']} each: "
                 f"{r['steps'][name]['ms']:.2f} ms, "
                 f"{r['steps'][name]['examples_per_s']:.0f} examples/s" for r in runs]
        mb = runs[0]["steps"][name]["gradient_mb"]
        print(f"  {name} [{mb * 1024:.0f} KB of gradients]: " + "; ".join(cells))
    for run in runs:
        for kind in ("mlp", "cnn"):
            figures = run["steps"][f"{kind} step, weak scaling"]
            print(f"  {kind}: allreduce of its gradients alone on {run['workers']} worker(s): "
                  f"{figures['allreduce_ms']:.3f} ms")
    for run in runs:
        print(f"Allreduce of float32 on {run['workers']} worker(s):")
        for name, figures in run["allreduce"].items():
            print(f"  {name:<14} {figures['ms']:8.2f} ms  {figures['GB/s']:6.2f} GB/s"
                  + (f"  bus {figures['bus GB/s']:6.2f} GB/s"
                     if not name.startswith("copyto") else "  (memory bandwidth)"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--statistic", choices=sorted(STATISTIC), default="median")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.rounds, args.statistic)
    else:
        report([launch(n, args.rounds, args.statistic) for n in args.workers])


if __name__ == "__main__":
    main()

"""`graphk bench`: run the suite, print the tables, write the JSON, update the README."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def add_parser(commands) -> None:
    bench = commands.add_parser(
        "bench", help="run the benchmark suite W1-W8 against NumPy, JAX and PyTensor",
        description="Each implementation runs in its own worker process; rounds are "
                    "interleaved between workers; every result is checked against a NumPy "
                    "reference before timing.")
    bench.add_argument("--quick", action="store_true",
                       help="fewer, shorter rounds; W5 compiles 20 layers, W8 trains on 480 "
                            "images; PyTensor skips W5 and W7")
    bench.add_argument("--only", metavar="NAME",
                       help="workloads or cases, comma-separated (W1, W5-cold, W8-mlp, ...)")
    bench.add_argument("--threads", choices=("1", "default"), default="default",
                       help="1: pin every worker to one core with single-threaded libraries")
    bench.add_argument("--json", metavar="FILE", help="write the full record (rounds, machine)")
    bench.add_argument("--update-readme", action="store_true",
                       help="rewrite README.md's block between the bench markers")
    bench.add_argument("--peer-python", metavar="PYTHON",
                       help="interpreter for the JAX and PyTensor workers (a venv with them)")
    bench.add_argument("--from-json", metavar="FILE",
                       help="run nothing: print (and with --update-readme write) the tables "
                            "of a record an earlier --json wrote")
    bench.set_defaults(run=command_bench)


def command_bench(args) -> int:
    from . import suite
    from .report import machine, markdown, mode_line, update_readme
    from .runner import Settings, run_suite

    scale = os.environ.get("GRAPHK_BENCH_SCALE", "full")  # "tiny": the tests' size override
    if scale not in suite.SCALES:
        print(f"graphk: error: GRAPHK_BENCH_SCALE={scale!r}; known: {sorted(suite.SCALES)}",
              file=sys.stderr)
        return 2
    try:
        keys = suite.select(args.only)
    except ValueError as error:
        print(f"graphk: error: {error}", file=sys.stderr)
        return 2
    if args.from_json:
        with open(args.from_json) as handle:
            result = json.load(handle)
    else:
        settings = Settings.for_run(args.quick, args.threads, scale, args.peer_python)
        mode = mode_line({"threads": args.threads, "quick": args.quick})
        print(f"# graphk bench: {', '.join(keys)}; {mode}", flush=True)
        result = run_suite(keys, settings, progress=lambda line: print(line, flush=True))
        result["machine"] = machine()
        result["command"] = "python -m graphk " + " ".join(sys.argv[1:])
    text = markdown(result, suite.sizes(result["scale"]))
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    if args.update_readme:
        update_readme(text, Path(__file__).resolve().parents[2] / "README.md",
                      result.get("command", "python -m graphk bench"))
    failed = [key for record in result["cases"] for key in record["failed"]]
    return 1 if failed else 0

"""The `graphk` command line: work with IR text files (LLVM's `opt` conventions).

    graphk opt FILE.gkir --passes=cse,fold,fusion [--print-after-all]
    graphk run FILE.gkir --input x=x.npy [--save out.npz]
    graphk dot FILE.gkir [-o graph.dot]
    graphk bench [--quick] [--only NAME] [--threads 1|default]

`python -m graphk` is the same entry point. A malformed IR file is reported
with its line and column and exit status 2; a failed run exits with status 1.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from .ir.errors import GraphkError, ParseError

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def _read_graph(path: str):
    from .ir import parse

    with open(path) as handle:
        text = handle.read()
    try:
        return parse(text)
    except ParseError as error:
        raise SystemExit(_fail(f"{path}: {error}", EXIT_BAD_INPUT)) from None


def _fail(message: str, status: int) -> int:
    print(f"graphk: error: {message}", file=sys.stderr)
    return status


def _named_passes(spec: str | None) -> list:
    """The passes `--passes=a,b` names, in that order (all of the pipeline when omitted)."""
    from .passes.pipeline import PIPELINE

    if spec is None:
        return list(PIPELINE)
    by_name = {p.name: p for p in PIPELINE}
    chosen = []
    for name in filter(None, (item.strip() for item in spec.split(","))):
        if name not in by_name:
            known = ", ".join(by_name) or "(none registered)"
            raise SystemExit(_fail(f"unknown pass {name!r}; known passes: {known}",
                                   EXIT_BAD_INPUT))
        chosen.append(by_name[name])
    return chosen


def command_opt(args) -> int:
    """Run the named passes over an IR file and print the result."""
    from .ir.verify import verify

    graph = _read_graph(args.file)
    for compiler_pass in _named_passes(args.passes):
        graph = compiler_pass.run(graph)
        verify(graph)
        if args.print_after_all:  # to standard error, as LLVM's opt does
            print(f"# *** IR after {compiler_pass.name} ***", file=sys.stderr)
            print(graph.to_text(full_constants=args.full_constants), file=sys.stderr)
    print(graph.to_text(full_constants=args.full_constants))
    return 0


def _feeds(graph, assignments: list) -> dict:
    """`name=file.npy` pairs matched to placeholders (by name or position) and variables."""
    by_name = {}
    for position, value in enumerate(graph.inputs):
        by_name[str(position)] = value
        if value.name:
            by_name[value.name] = value
    variables = {v.name: v for v in graph.variables if v.name}
    feeds, stores = {}, {}
    for item in assignments:
        name, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(_fail(f"--input takes NAME=FILE.npy, got {item!r}", EXIT_BAD_INPUT))
        array = np.load(path)
        if name in by_name:
            feeds[by_name[name]] = array
        elif name in variables:
            stores[variables[name]] = array
        else:
            known = sorted(set(by_name) | set(variables))
            raise SystemExit(_fail(f"no input or variable named {name!r}; the graph has "
                                   f"{known}", EXIT_BAD_INPUT))
    missing = [v.name or f"input {i}" for i, v in enumerate(graph.inputs) if v not in feeds]
    if missing:
        raise SystemExit(_fail(f"missing --input for {missing}", EXIT_BAD_INPUT))
    return {"feeds": [feeds[v] for v in graph.inputs], "stores": stores}


def command_run(args) -> int:
    """Compile an IR file with K.function and run it on .npy inputs."""
    from .backend.function import function

    graph = _read_graph(args.file)
    given = _feeds(graph, args.input or [])
    try:
        for variable, array in given["stores"].items():
            variable.assign(array)
        fn = function(graph.inputs, graph.outputs, updates=graph.updates, name=graph.name,
                      passes=args.passes)
        results = fn(given["feeds"])
    except (GraphkError, ValueError, TypeError) as error:  # shape, dtype and feed errors
        return _fail(str(error), EXIT_FAILED)
    if not isinstance(results, list):
        results = [results]
    if args.save:
        np.savez(args.save, **{f"output{k}": r for k, r in enumerate(results)})
    else:
        for k, result in enumerate(results):
            print(f"output {k}: {np.asarray(result).dtype}{list(np.shape(result))}")
            print(np.array2string(np.asarray(result), threshold=args.threshold))
    return 0


def command_dot(args) -> int:
    """Write Graphviz DOT for an IR file (built through networkx)."""
    graph = _read_graph(args.file)
    text = _dot_text(graph)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text)
    else:
        print(text, end="")
    return 0


def _dot_text(graph) -> str:
    """DOT from the graph's networkx form: a box per node (op and types), an edge per use."""
    g = graph.to_networkx()
    lines = [f'digraph "{graph.name}" {{', "  node [shape=box, fontname=monospace];"]
    for vertex, data in g.nodes(data=True):
        label = f"{data['op']}\\n{', '.join(data['types'])}".replace('"', "'")
        lines.append(f'  n{vertex} [label="{label}"];')
    for source, target, data in g.edges(data=True):
        lines.append(f'  n{source} -> n{target} [label="{data["position"]}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphk", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    opt = commands.add_parser("opt", help="run passes over IR text and print the result")
    opt.add_argument("file", help="an IR text file (as print(fn.ir) writes it)")
    opt.add_argument("--passes", help="comma-separated pass names, run in this order "
                                      "(default: the whole pipeline)")
    opt.add_argument("--print-after-all", action="store_true",
                     help="print the IR after each pass")
    opt.add_argument("--full-constants", action="store_true",
                     help="print large constants in full (so the output parses back)")
    opt.set_defaults(run=command_opt)

    run = commands.add_parser("run", help="compile IR text and run it on .npy inputs")
    run.add_argument("file")
    run.add_argument("--input", action="append", metavar="NAME=FILE.npy",
                     help="a feed for a placeholder (by name or position) or a variable's "
                          "value; repeat for each")
    run.add_argument("--passes", default=None, help='pass spec as K.function takes it '
                                                    '("none", "-fusion", ...)')
    run.add_argument("--save", metavar="OUT.npz", help="write the outputs to an .npz file")
    run.add_argument("--threshold", type=int, default=1000,
                     help="print arrays with more elements in summary form")
    run.set_defaults(run=command_run)

    dot = commands.add_parser("dot", help="write Graphviz DOT of IR text")
    dot.add_argument("file")
    dot.add_argument("-o", "--output", help="write to this file instead of standard output")
    dot.set_defaults(run=command_dot)

    from .bench.command import add_parser as add_bench  # graphk/bench/command.py
    add_bench(commands)
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except FileNotFoundError as error:
        return _fail(str(error), EXIT_BAD_INPUT)


if __name__ == "__main__":
    sys.exit(main())

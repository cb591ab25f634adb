"""IR-text-in, IR-text-out checking for pass tests (imported by tests/test_pass_*.py).

`check_pass(run, before, after)` parses `before`, verifies it, runs the pass,
verifies the result and compares it with `after` up to value numbering and
symbol naming (both are printed canonically, without locations).
"""
from __future__ import annotations

import difflib
import re

import numpy as np
from graphk.codegen.numpy_backend import compile_graph
from graphk.ir import Graph, parse, verify

_VALUE = re.compile(r"%[A-Za-z0-9_.]+")
X = '%x = placeholder {name="x", default=none}'
Y = '%y = placeholder {name="y", default=none}'


def canonical(graph: Graph) -> str:
    """The text without locations, every %value renamed in order of first appearance."""
    text = graph.to_text(locations=False, full_constants=True)
    names: dict = {}
    return _VALUE.sub(lambda m: names.setdefault(m.group(0), f"%v{len(names)}"), text)


def check_pass(run, before: str, after: str) -> Graph:
    graph = parse(before)
    verify(graph)
    result = run(graph)
    verify(result)
    got, want = canonical(result), canonical(parse(after))
    if got != want:
        diff = "\n".join(difflib.unified_diff(want.splitlines(), got.splitlines(),
                                              "expected", "got", lineterm=""))
        raise AssertionError(f"pass result differs from the expected IR:\n{diff}")
    return result


def unchanged(run, text: str) -> Graph:
    return check_pass(run, text, text)


def evaluate(graph: Graph, *feeds) -> list:
    """Run a graph with the NumPy lowering (no passes)."""
    return compile_graph(graph)([np.asarray(f) for f in feeds])


def test_check_pass_compares_up_to_renaming():
    before = f"""graph @f(%x) {{
      {X} : float32[?3,2]
      %a = neg(%x) : float32[?3,2] loc("a.py:1")
      return %a
    }}"""
    after = f"""graph @f(%x) {{
      {X} : float32[?0,2]
      %7 = neg(%x) : float32[?0,2]
      return %7
    }}"""
    check_pass(lambda g: g, before, after.replace("%7", "%0"))

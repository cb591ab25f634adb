"""Fused nodes built by hand for the LLVM kernel tests, and their compiled kernels."""
from __future__ import annotations

from graphk.codegen.llvm import FunctionLowering
from graphk.ir.graph import Graph
from graphk.ir.ops.fused import fused
from graphk.ir.ops.leaf import placeholder
from graphk.ir.types import TensorType


def fused_body(build, *types):
    """(body, fused node) of `build(*placeholders)` over inputs of (dtype, shape) `types`."""
    inputs = [placeholder(TensorType(dtype, shape)) for dtype, shape in types]
    outputs = build(*inputs)
    body = Graph(inputs, list(outputs) if isinstance(outputs, tuple) else [outputs],
                 name="fused")
    return body, fused(inputs, body)[0].node


def llvm_kernel(node):
    """The node's LLVM kernel at every size (no small calls on NumPy), compiled now."""
    lowering = FunctionLowering(small_on_numpy=False)
    kernel = lowering(node)
    lowering.finish()
    assert lowering.decisions[node][0] == "llvm", lowering.decisions[node]
    return kernel


def assert_loads_at_first_call(module: str, build: str, call: str) -> None:
    """In a fresh Python process: after `build` (code making a K.function `fn`) the native
    library of graphk.codegen.llvm.<module> is not loaded, after `call` it is (from the
    disk cache the calling test filled)."""
    import os
    import subprocess
    import sys

    child = "\n".join([
        "import numpy as np", "from graphk import backend as K",
        f"from graphk.codegen.llvm import {module} as native", build,
        "assert 'functions' not in native._LIBRARY.record", call,
        "assert 'functions' in native._LIBRARY.record", "print(native.library_state())"])
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr
    assert "at their first call" in done.stdout

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

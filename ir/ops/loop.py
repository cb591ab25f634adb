"""Symbolic loops: the `scan` op, one node whose body is a subgraph run once per step.

    finals..., = scan(sequences..., initial carries..., captured...) {body=graph @body(...)}

The body is a closed Graph (it reads nothing but its inputs) taking, per
step, one slice of each sequence (axis 0 is time), the current carries and
the captured values (weights a step function closes over, made explicit so
their gradient can be accumulated), and returning the per-step outputs,
then the new carries. With `reverse` the steps visit positions T-1 .. 0;
outputs are always stored at the position that produced them.

The node's outputs are: each per-step output stacked over time, (T, ...);
the final carries; and each carry at the T+1 step boundaries, (T+1, ...)
(boundary 0 holds the initial carry going forward, boundary T going in
reverse). The last group is what backpropagation through time reads: the
gradient of a scan is a reverse scan whose body is the forward body's
gradient, built by the autodiff pass (the op is `grad_uses_autodiff`),
with the captured values' cotangents accumulated as extra carries. Codegen
computes only the outputs a graph uses, so a forward-only function never
stores the carries.

`scan(step, sequences, initial_carries)` traces a Python step function into
a body: it calls it on fresh placeholders and turns whatever the step read
from outside (variables, outer tensors; not constants) into captured inputs.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..dtypes import DTypeError, is_floating
from ..graph import Graph, Value, topological_order
from ..shapes import ShapeError, SymDim, format_shape, merge_dim
from ..types import TensorType
from .elementwise import add, dot_placeholder_free_tanh_body  # noqa: F401  (see _sample_body)
from .indexing import getitem, take_slice
from .leaf import placeholder
from .registry import (REQUIRED, VARIADIC, OpDef, Sample, apply, make_node, register,
                       substituting)
from .shape import full_like

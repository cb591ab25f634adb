"""Values of one loop point of a region's stage (kernel.py): each body value computed on
demand from its inputs through the op's scalar rule, loaded where it lives in memory (an
input, a constant array, a reduction's result), and memoized for the point."""
from __future__ import annotations

from ...ir.dtypes import DTypeError
from .plan import Unsupported
from .scalar_llvm import Scalar


def _python_number(array, dtype: str):
    item = array.reshape(()).item()
    return bool(item) if dtype == "bool" else item


class Element:
    """Values of one stage at one loop point, computed on demand and memoized."""

    def __init__(self, emitter, address):  # emitter: kernel.Emitter
        self.emitter = emitter
        self.address = address  # slot -> pointer to this point's element
        self.memo: dict = {}

    def value(self, v) -> Scalar:
        stack = [v]
        while stack:  # iterative: long chains need no deep recursion
            top = stack[-1]
            if top in self.memo:
                stack.pop()
                continue
            pending = self._pending_inputs(top)
            if pending:
                stack.extend(pending)
                continue
            self.memo[top] = self._compute(top)
            stack.pop()
        return self.memo[v]

    def _pending_inputs(self, v) -> list:
        if v in self.emitter.plan.slot_of or v.node.op.name == "constant":
            return []
        return [u for u in v.node.inputs if u not in self.memo]

    def _compute(self, v) -> Scalar:
        e = self.emitter
        node = v.node
        if v in e.plan.slot_of:
            return e.load(self.address(e.plan.slot_of[v]), v)
        if node.op.name == "constant":
            return e.sb.const(_python_number(node.attrs["value"], v.type.dtype), v.type.dtype)
        args = [self.memo[u] for u in node.inputs]
        try:
            result = node.op.scalar(e.sb, *args, **node.attrs)
        except DTypeError as error:  # a rule that does not cover these dtypes
            dtypes = ", ".join(u.type.dtype for u in node.inputs)
            raise Unsupported(f"{node.op.name} (built at {node.location}): its scalar rule "
                              f"fails for ({dtypes}): {error}") from None
        if result.dtype != v.type.dtype:
            raise Unsupported(f"{node.op.name} (built at {node.location}): its scalar rule gives "
                              f"{result.dtype}, the node's type is {v.type.dtype}")
        return result

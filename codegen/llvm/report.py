"""The "lowering" section of fn.report(): which lowering runs each node, and why."""
from __future__ import annotations

from collections import Counter

from .batch_norm_native import OPS as BATCH_NORM_OPS
from .batch_norm_native import library_state as batch_norm_library_state
from .compiler import STATS
from .random_native import library_state as random_library_state
from .windows import OPS as WINDOW_OPS
from .windows import library_state


def lowering_section(fn) -> str | None:
    """The section for a compiled K.function `fn` (None for objects without a lowering)."""
    if not hasattr(fn, "lowering") or not hasattr(fn, "_executable"):
        return None
    return lowering_text(getattr(fn, "_backend", "numpy"), fn.lowering,
                         fn._executable.lowerings)


def _label(chosen: str, lowering) -> str:
    if chosen == "llvm" and lowering is not None and lowering.small_on_numpy:
        return "llvm where the cost model says so, per input shapes, else numpy"
    return chosen


def lowering_text(backend: str, lowering, lowerings: dict) -> str:
    """Text for one compiled function.

    `lowering` is its FunctionLowering (None for backend="numpy"), `lowerings`
    the executable's node -> lowering name map (codegen/numpy_backend.py)."""
    lines = [f"lowering (backend={backend!r})"]
    decisions = lowering.decisions if lowering is not None else {}
    others: Counter = Counter()
    for node, name in lowerings.items():
        if node.op.name != "fused":
            if node in decisions:  # an op offered to a native kernel library
                chosen, reason = decisions[node]
                lines.append(f"  {node.op.name} at {node.location}: {chosen}: {reason}")
            else:
                others[node.op.name] += 1
            continue
        if node in decisions:
            chosen, reason = decisions[node]
        elif backend == "numpy":
            chosen, reason = "numpy", "backend='numpy' keeps every node on NumPy"
        else:
            chosen, reason = name, "not offered to the LLVM backend"
        lines.append(f"  fused ({_size(node)} body ops) at {node.location}: "
                     f"{_label(chosen, lowering)}: {reason}")
        kernel = lowering.kernels.get(node) if lowering is not None else None
        if kernel is not None and chosen == "llvm":
            lines.append(f"    calls so far: {kernel.call_summary()}")
    for node, (chosen, reason) in decisions.items():  # nodes inside loop bodies
        if node not in lowerings and node.op.name != "fused":
            lines.append(f"  {node.op.name} (in a loop body) at {node.location}: {chosen}: "
                         f"{reason}")
        elif node not in lowerings:
            lines.append(f"  fused ({_size(node)} body ops, in a loop body) at {node.location}: "
                         f"{_label(chosen, lowering)}: {reason}")
            if chosen == "llvm":
                lines.append(f"    calls so far: {lowering.kernels[node].call_summary()}")
    if others:
        listed = ", ".join(f"{count} {op}" for op, count in sorted(others.items()))
        lines.append(f"  numpy (ops outside fused regions run their NumPy kernels): {listed}")
    if lowering is not None:
        lines.append(f"  LLVM code of this function: {lowering.compile_state()}")
        native = {node.op.name for node, (chosen, _) in decisions.items()
                  if node.op.name != "fused" and chosen == "llvm"}
        if native & set(WINDOW_OPS):
            lines.append(f"  LLVM window kernels (one library per process): {library_state()}")
        if native & set(BATCH_NORM_OPS):
            lines.append("  LLVM batch normalization kernels (one library per process): "
                         f"{batch_norm_library_state()}")
        if "random_binomial" in native:
            lines.append("  LLVM random kernels (one library per process): "
                         f"{random_library_state()}")
        lines.append(f"  LLVM modules this process: {STATS['compiled']} compiled "
                     f"({STATS['compile_seconds']:.3f} s), {STATS['from_disk']} from the disk "
                     f"cache, {STATS['from_memory']} entries from memory")
        if lowering.small_on_numpy:
            lines.append("  small calls run the fused node's NumPy kernel where its cost model "
                         "says it is faster (codegen/llvm/cost.py)")
    return "\n".join(lines)


def _size(node) -> int:
    return sum(1 for n in node.attrs["body"].nodes if n.op.name != "placeholder")

"""The LLVM lowering of fused regions: kernels, the vector math library, the runtime.

    compile_fused(node) -> FusedKernel     # one fused node, compiled now
    FunctionLowering()                     # the kernel_for hook of one compiled function:
                                           # every fused node into one LLVM module,
                                           # compiled at the first native call

A FusedKernel is `kernel(*input_arrays) -> array or tuple`, like the node's
NumPy kernel; it checks run-time shapes itself and specializes on the
broadcast/contiguity pattern (runtime.py). Modules: target.py (host, pass
pipeline, object code), scalar_llvm.py (the scalar builder in LLVM IR),
plan.py (stages of a region), kernel.py (loop nests), compiler.py (modules
and caches), cache.py (keys, memory and disk caches), runtime.py (the call).
"""
from __future__ import annotations

from .batch_norm_native import OPS as BATCH_NORM_OPS
from .batch_norm_native import batch_norm_kernel
from .compiler import ModuleBuilder, Region
from .plan import Unsupported
from .random_native import random_kernel
from .runtime import FusedKernel
from .windows import OPS as WINDOW_OPS
from .windows import window_kernel

__all__ = ["BACKENDS", "compile_fused", "lowering_for", "FunctionLowering", "FusedKernel",
           "Unsupported"]


def compile_fused(node, small_on_numpy: bool = True) -> FusedKernel:
    """The LLVM kernel of one fused node, compiled now (raises Unsupported with the reason).

    With `small_on_numpy`, calls on few elements run the blocked NumPy kernel
    (cost.py, numpy_is_faster)."""
    region = Region(node.attrs["body"])
    builder = ModuleBuilder()
    builder.request(region, region.expected_variant)
    builder.finish()
    region.entry(region.expected_variant)  # raises Unsupported if its code failed
    return FusedKernel(node, region, small_on_numpy)


# op name -> its native kernel's maker: (kernel, reason) or (None, why NumPy runs)
_NATIVE_KERNELS = {**dict.fromkeys(WINDOW_OPS, window_kernel),
                   **dict.fromkeys(BATCH_NORM_OPS, batch_norm_kernel),
                   "random_binomial": random_kernel}


class FunctionLowering:
    """`kernel_for(node)` for one compiled function: fused nodes to LLVM, one module.

    Every fused node it accepts is emitted into a shared module that is compiled
    (or loaded from the caches) by `finish()`. K.function does not call it: the
    first call that runs a fused node natively does (Region.entry), so building
    a function costs no LLVM work and a function never called compiles nothing.
    `decisions` records, per node, which lowering runs it and why (for fn.report()).
    """

    def __init__(self, small_on_numpy: bool = True):
        self.builder = ModuleBuilder()
        self.small_on_numpy = small_on_numpy
        self._decisions: dict = {}  # node -> (lowering, reason), as decided when offered
        self.regions: dict = {}  # node -> Region, for nodes handed to LLVM
        self.kernels: dict = {}  # node -> its FusedKernel
        self._by_body: dict = {}  # id(body) -> Region: fusion gives equal regions one body

    def __call__(self, node):
        if node.op.name != "fused":
            return self._window_kernel(node)
        body = node.attrs["body"]
        region = self._by_body.get(id(body))
        if region is None or region.body is not body:
            try:
                region = Region(body)
            except NotImplementedError as error:
                self._decisions[node] = ("numpy", f"LLVM: {error}")
                return None
            self._by_body[id(body)] = region
            self.builder.request(region, region.expected_variant)
        self.regions[node] = region
        self._decisions[node] = ("llvm", f"{region.expected_variant} entry, "
                                         f"{len(region.plan.stages)} loop nest(s), "
                                         f"{region.plan.depth} shared loop(s)")
        kernel = self.kernels[node] = FusedKernel(node, region, self.small_on_numpy)
        return kernel

    def _window_kernel(self, node):
        """A window op's native kernel (windows.py: im2col, col2im, max pooling and its
        gradient), a batch normalization op's in training (batch_norm_native.py) or
        random_binomial's (random_native.py: Dropout's masks), or None; they are faster
        than NumPy's at every size, so "auto" takes them too."""
        native = _NATIVE_KERNELS.get(node.op.name)
        if native is None:
            return None
        kernel, reason = native(node)
        self._decisions[node] = ("llvm" if kernel is not None else "numpy", reason)
        return kernel

    def finish(self) -> None:
        """Compile the module holding every accepted node's entry point now, rather than
        at the first native call; a node whose code could not be generated runs its
        NumPy kernel, and `decisions` says why."""
        self.builder.finish()

    @property
    def decisions(self) -> dict:
        """node -> (lowering, reason), with the failures the compile found (if it ran)."""
        decisions = dict(self._decisions)
        for node, region in self.regions.items():
            reason = region.failures.get(region.expected_variant)
            if reason is not None:
                decisions[node] = ("numpy", f"LLVM: {reason}")
        return decisions

    @property
    def code_source(self) -> str | None:
        """How this function's module got its code: "compiled", "disk" (the disk cache) or
        "memory" (every entry already loaded); None while the compile is pending."""
        if self.builder.outcome is not None:
            return self.builder.outcome[0]
        return None if self.builder.pending else "memory"

    def compile_state(self) -> str:
        """Whether this function's module is compiled yet, and how it got its code."""
        outcome = self.builder.outcome
        if not self.regions:
            return "no fused node for LLVM: nothing to compile"
        if outcome is None and self.builder.pending:
            return ("compile pending: the module is compiled (or loaded from the disk cache) "
                    "at the first call that runs a fused node natively")
        kind, seconds = outcome or ("memory", 0.0)
        if kind == "memory":
            return "every entry point was already loaded in this process (memory cache)"
        how = "compiled" if kind == "compiled" else "loaded from the disk cache"
        return f"module {how} at the first native call, in {seconds * 1e3:.1f} ms"

    def report_lines(self) -> list:
        """One line per fused node: the lowering that runs it and why."""
        return [f"{node.op.name} at {node.location}: {lowering} ({reason})"
                for node, (lowering, reason) in self.decisions.items()]


BACKENDS = ("auto", "llvm", "numpy")


def lowering_for(backend: str) -> FunctionLowering | None:
    """The kernel_for hook of K.function's `backend`: None for "numpy"; "llvm" compiles
    every fused node it supports at every size; "auto" also lets small calls run on
    NumPy (cost.py, numpy_is_faster). Unsupported regions run on NumPy either way, and the
    hook's `decisions` say so."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; available: {list(BACKENDS)}")
    if backend == "numpy":
        return None
    return FunctionLowering(small_on_numpy=backend == "auto")

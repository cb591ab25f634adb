"""From fused bodies to loaded native entry points, one LLVM module per batch.

A `Region` is a fused body prepared for LLVM (its plan, layout and
canonical key). A `ModuleBuilder` collects the entry points a compiled
function needs, emits all of them into one LLVM module and compiles it
once (so a function with many fused nodes pays one optimization and one
code generation run), going through the caches: an entry point already in
memory is not emitted at all, and a module whose object code is on disk is
loaded, not compiled.
"""
from __future__ import annotations

import hashlib
import threading
import time

from .cache import MEMORY, disk_cache, kernel_key, region_key
from .kernel import Emitter, Layout, flat_slots_ok, inner_strides
from .plan import make_plan
from .target import compile_ir, load_object, new_module

# Counters for reports and tests: modules compiled, loaded from disk, entries from memory.
STATS = {"compiled": 0, "from_disk": 0, "from_memory": 0, "compile_seconds": 0.0}
_lock = threading.RLock()


class Region:
    """A fused body prepared for LLVM: plan, layout, key and its loaded entry points."""

    def __init__(self, body):
        self.body = body
        self.plan = make_plan(body)  # raises Unsupported
        self.layout = Layout(self.plan)
        self.key = region_key(body)
        self.name = "gk_" + hashlib.sha256(self.key.encode()).hexdigest()[:20]
        self.flat = self.plan.flat_eligible() and flat_slots_ok(self.plan)
        self.inner = inner_strides(self.plan)  # what the specialized nest assumes
        self.entries: dict = {}  # variant -> address
        self._owners: list = []  # loaded objects: the code lives as long as they do
        self.pending_builder = None  # a ModuleBuilder that will compile this region

    @property
    def expected_variant(self) -> str:
        """The entry compiled up front: flat when the static types allow it."""
        return "flat" if self.flat else f"nest{self.plan.depth}"

    def entry(self, variant: str) -> int:
        """The address of an entry point, compiled on first need (its own module)."""
        address = self.entries.get(variant)
        if address is None and self.pending_builder is not None:
            self.pending_builder.finish()  # compile the whole function's module now
            address = self.entries.get(variant)
        if address is None:
            builder = ModuleBuilder()
            builder.request(self, variant)
            builder.finish()
            address = self.entries[variant]
        return address

    def bind(self, variant: str, loaded, symbol: str) -> None:
        self.entries[variant] = loaded.address(symbol)
        self._owners.append(loaded)


class ModuleBuilder:
    """Entry points wanted by one compiled function, built as one module."""

    def __init__(self):
        self.texts: list = []  # LLVM IR of each emitted entry point
        self.pending: list = []  # (region, variant, kernel key, symbol)
        self._emitted: dict = {}  # kernel key -> symbol

    def request(self, region: Region, variant: str) -> None:
        """Emit (unless cached) one entry point; errors leave the batch as it was."""
        key = kernel_key(region.key, variant)
        hit = MEMORY.get(key)
        if hit is not None:
            STATS["from_memory"] += 1
            region.bind(variant, *hit)
            return
        symbol = self._emitted.get(key)
        if symbol is None:
            # each entry in a module of its own, linked at finish(): a region that fails
            # half-way through emission leaves nothing behind in the batch
            module = new_module(region.name)
            emitter = Emitter(module, region.plan, region.name)
            if variant == "flat":
                symbol = emitter.emit_flat()
            else:  # "nest<depth>" or "nest<depth>g" (generic strides)
                symbol = emitter.emit_nest(int(variant[4:].rstrip("g")), variant.endswith("g"))
            self.texts.append(str(module))
            self._emitted[key] = symbol
        self.pending.append((region, variant, key, symbol))

    def finish(self) -> None:
        """Compile (or load from disk) the module and bind every pending entry."""
        if not self.pending:
            return
        module_key = hashlib.sha256(
            "\n".join(sorted(self._emitted)).encode()).hexdigest()
        disk = disk_cache()
        with _lock:
            obj = disk.load(module_key)
            if obj is None:
                start = time.perf_counter()
                obj = compile_ir(self.texts)
                STATS["compile_seconds"] += time.perf_counter() - start
                STATS["compiled"] += 1
                disk.store(module_key, obj)
            else:
                STATS["from_disk"] += 1
            loaded = load_object(obj)
        for region, variant, key, symbol in self.pending:
            MEMORY.put(key, (loaded, symbol))
            region.bind(variant, loaded, symbol)
        self.pending = []
        self.texts = []
        self._emitted = {}

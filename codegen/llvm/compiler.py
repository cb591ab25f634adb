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
from .kernel import Emitter
from .layout import Layout, flat_slots_ok, inner_strides
from .plan import Unsupported, make_plan
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
        self.failures: dict = {}  # variant -> why its code could not be generated

    @property
    def expected_variant(self) -> str:
        """The entry compiled up front: flat when the static types allow it."""
        return "flat" if self.flat else f"nest{self.plan.depth}"

    def entry(self, variant: str) -> int:
        """The address of an entry point, compiled on first need (its own module);
        Unsupported when its code could not be generated (a scalar rule's dtype gap)."""
        address = self.entries.get(variant)
        if address is None and self.pending_builder is not None:
            self.pending_builder.finish()  # compile the whole function's module now
            address = self.entries.get(variant)
        if address is None and variant not in self.failures:
            builder = ModuleBuilder()
            builder.request(self, variant)
            builder.finish()
            address = self.entries.get(variant)
        if address is None:
            raise Unsupported(self.failures[variant])
        return address

    def bind(self, variant: str, loaded, symbol: str) -> None:
        try:
            self.entries[variant] = loaded.address(symbol)
        except KeyError:  # an object that does not hold it (never stored that way)
            self.failures[variant] = f"compiled object lacks {symbol}"
            return
        self._owners.append(loaded)

    def symbol(self, variant: str) -> str:
        return f"{self.name}.{variant}"

    def emit(self, variant: str) -> str:
        """LLVM IR text of one entry point in a module of its own."""
        module = new_module(self.name)
        emitter = Emitter(module, self.plan, self.name)
        if variant == "flat":
            emitter.emit_flat()
        else:  # "nest<depth>" or "nest<depth>g" (generic strides)
            emitter.emit_nest(int(variant[4:].rstrip("g")), variant.endswith("g"))
        return str(module)


class ModuleBuilder:
    """Entry points wanted by one compiled function, built as one module.

    Nothing is emitted until `finish()`, and nothing at all when the module's object
    code is on disk: a second process pays for loading, not for generating IR. K.function
    leaves finish() to the first call that runs native code (Region.entry), so a function
    that is built but never called, or only on sizes NumPy runs faster, compiles nothing."""

    def __init__(self):
        self.pending: list = []  # (region, variant, kernel key)
        # What the last finish() did, for fn.report(): None until then, else
        # ("compiled" | "disk" | "memory", seconds it took).
        self.outcome: tuple | None = None

    def request(self, region: Region, variant: str) -> None:
        key = kernel_key(region.key, variant)
        hit = MEMORY.get(key)
        if hit is not None:
            STATS["from_memory"] += 1
            region.bind(variant, *hit)
            return
        region.pending_builder = self
        self.pending.append((region, variant, key))

    def finish(self) -> None:
        """Compile (or load from disk) the module and bind every pending entry; an entry
        whose IR cannot be generated is recorded on its region as a failure."""
        started = time.perf_counter()
        with _lock:  # a second thread's first call waits for this compile, not a module of its own
            pending, self.pending = self.pending, []
            if pending:
                self.outcome = (self._finish(pending), time.perf_counter() - started)
            elif self.outcome is None:
                self.outcome = ("memory", 0.0)

    def _finish(self, pending: list) -> str:
        unique = {key: (region, variant) for region, variant, key in pending}
        module_key = hashlib.sha256("\n".join(sorted(unique)).encode()).hexdigest()
        disk = disk_cache()
        failed: dict = {}
        obj = disk.load(module_key)
        outcome = "disk"
        if obj is None:
            outcome = "compiled"
            obj = self._compile(unique, failed)
            if obj is not None and not failed:
                disk.store(module_key, obj)
        else:
            STATS["from_disk"] += 1
        loaded = load_object(obj) if obj is not None else None
        for region, variant, key in pending:
            if key in failed:
                region.failures[variant] = failed[key]
            else:
                symbol = region.symbol(variant)
                MEMORY.put(key, (loaded, symbol))
                region.bind(variant, loaded, symbol)
            region.pending_builder = None  # last: Region.entry reads it without the lock
        return outcome

    @staticmethod
    def _compile(unique: dict, failed: dict):
        texts = []
        for key, (region, variant) in unique.items():
            try:
                texts.append(region.emit(variant))
            except NotImplementedError as error:  # Unsupported, or a math function missing
                failed[key] = str(error)
        if not texts:
            return None
        start = time.perf_counter()
        try:
            obj = compile_ir(texts)
        except RuntimeError as error:  # LLVM rejected the module: a bug here, named in the report
            for key in unique:
                failed.setdefault(key, f"LLVM could not compile the module: {error}")
            return None
        STATS["compile_seconds"] += time.perf_counter() - start
        STATS["compiled"] += 1
        return obj

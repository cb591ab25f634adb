"""A fixed library of native kernels: one LLVM module, compiled or read from the disk cache
at its first use in the process, then kept loaded.

The window kernels (windows.py) and the batch normalization kernels
(batch_norm_native.py) are such libraries: every size comes in at run time,
so one module serves every graph and shape. Loading one is deferred to the
first call of any of its kernels, never done at import or when a function is
built.

    LIBRARY = NativeLibrary("window kernels", library_text, symbols, signature)
    LIBRARY.functions()[symbol](...)   # loads it at the first call
    LIBRARY.state()                    # for fn.report()

The disk key hashes the library's name, the host and the code generator's
sources (code_fingerprint covers every module of this package), which decide
the module's text: on a disk hit the IR text is never generated.
"""
from __future__ import annotations

import hashlib
import threading
import time
from typing import Callable, Iterable

import numpy as np

from .cache import code_fingerprint, disk_cache
from .target import compile_ir, host_key, load_object

__all__ = ["NativeLibrary", "NativeOpKernel"]


class NativeLibrary:
    """One module of native kernels, loaded lazily; `record` holds, once loaded,
    "functions" (symbol -> ctypes function), "owner" (the loaded object the code lives
    in), "source" ("compiled" or "disk") and "seconds" (the time the load took)."""

    def __init__(self, name: str, text: Callable[[], str], symbols: Iterable[str],
                 signature):
        self.name = name
        self._text = text  # generates the module's IR text: only called to compile it
        self.symbols = tuple(symbols)
        self._signature = signature
        self._lock = threading.Lock()
        self.record: dict = {}

    def functions(self) -> dict:
        """symbol -> callable of every kernel, compiled (or read from the disk cache) on
        first need."""
        functions = self.record.get("functions")
        if functions is not None:
            return functions
        with self._lock:
            if "functions" not in self.record:
                self._load()
            return self.record["functions"]

    def _load(self) -> None:
        started = time.perf_counter()
        key = hashlib.sha256(f"{self.name}\n{host_key()}\n{code_fingerprint()}".encode()
                             ).hexdigest()
        disk = disk_cache()
        obj = disk.load(key)
        source = "disk"
        if obj is None:
            obj, source = compile_ir(self._text()), "compiled"
            disk.store(key, obj)
        owner = load_object(obj)  # the code lives as long as this object
        functions = {name: self._signature(owner.address(name)) for name in self.symbols}
        self.record.update(functions=functions, owner=owner, source=source,
                           seconds=time.perf_counter() - started)

    def state(self) -> str:
        """How this process got the library's code, for fn.report()."""
        if "functions" not in self.record:
            return "not loaded yet (compiled or read from the disk cache at their first call)"
        how = "compiled" if self.record["source"] == "compiled" else "loaded from the disk cache"
        return f"{how} at their first call, in {self.record['seconds'] * 1e3:.1f} ms"


class NativeOpKernel:
    """One node's kernel from a NativeLibrary, called like its NumPy kernel
    (`kernel(*input_arrays)`); subclasses define `library` and the call."""

    lowering = "llvm"
    library: NativeLibrary

    def __init__(self, node, dtype: str, symbol: str):
        self.op = node.op.name
        self.attrs = node.attrs
        self.dtype = np.dtype(dtype)
        self.dtype_name = dtype
        self.symbol = symbol
        self._op = node.op
        self._numpy = None
        self._function = None  # the library is loaded at the first call

    @property
    def numpy_kernel(self):
        """The node's NumPy kernel, made on first need (a random op's would take a seed
        from NumPy's global RNG, which the native kernel already took)."""
        if self._numpy is None:
            self._numpy = self._op.bound_kernel(self.attrs)
        return self._numpy

    def native(self):
        function = self._function
        if function is None:
            function = self._function = self.library.functions()[self.symbol]
        return function

    def ready(self, array):
        """`array` as native code reads it (C-contiguous and aligned), or None when it is
        not an ndarray of the kernel's dtype."""
        if array.__class__ is not np.ndarray or array.dtype is not self.dtype:
            return None
        flags = array.flags
        if flags.c_contiguous and flags.aligned:
            return array
        return np.array(array, order="C")  # a fresh copy is both

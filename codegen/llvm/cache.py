"""Kernel caches: canonical region keys, loaded objects in memory, object code on disk.

- `region_key(body)` is the canonical text of a fused body: op names,
  attributes, input positions and types with symbolic dims renumbered by
  first appearance. No locations, no value or graph names, never a Graph
  object, so equal regions built anywhere (in this process or another) get
  one key.
- In memory, `MEMORY` maps a kernel key (region key, entry variant, host) to
  the loaded object and symbol that implement it: compiling the same region
  twice costs a dictionary lookup. It is bounded (least recently used go).
- On disk, object code lives in GRAPHK_CACHE_DIR (default ~/.cache/graphk) as
  `<sha256 of the module key>.o` behind a header holding a magic string, the
  sha256 of the host key (CPU, features, versions), the payload length and
  its sha256: a truncated, corrupted or foreign-CPU file is detected and
  recompiled. Nothing is ever unpickled. A directory that cannot be
  created or written turns the disk cache off for the process (not an error).
"""
from __future__ import annotations

import glob
import hashlib
import os
import tempfile
import threading
import time
from collections import OrderedDict

import numpy as np

from .pointers import DATA_OFFSET
from .target import host_key

MAGIC = b"graphk-llvm-object-v2\n"
# A temporary file this old is a killed writer's leftover (a live one renames it at once).
STALE_SECONDS = 600
MEMORY_ENTRIES = 512


def _dims(shape, names: dict) -> str:
    parts = []
    for d in shape:
        if isinstance(d, int):
            parts.append(str(d))
        else:
            parts.append("?" + str(names.setdefault(d.root(), len(names))))
    return "(" + ",".join(parts) + ")"


def _attr_text(value) -> str:
    if isinstance(value, np.ndarray):
        digest = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
        return f"array[{value.dtype.name}{value.shape}:{digest}]"
    if isinstance(value, float):
        return float.hex(value)
    return repr(value)


def region_key(body) -> str:
    """The canonical text of a fused body (see the module docstring)."""
    names: dict = {}
    numbers: dict = {}
    lines = []
    for value in body.inputs:
        numbers[value] = len(numbers)
        lines.append(f"in {value.type.dtype}{_dims(value.type.shape, names)}")
    for node in body.nodes:
        if node.op.name == "placeholder":
            continue
        attrs = ",".join(f"{k}={_attr_text(v)}" for k, v in sorted(node.attrs.items()))
        args = ",".join(str(numbers[v]) for v in node.inputs)
        types = ",".join(f"{v.type.dtype}{_dims(v.type.shape, names)}" for v in node.outputs)
        for value in node.outputs:
            numbers[value] = len(numbers)
        lines.append(f"{node.op.name}({args}){{{attrs}}}->{types}")
    lines.append("out " + ",".join(str(numbers[v]) for v in body.outputs))
    return "\n".join(lines)


_fingerprint: str | None = None


def code_fingerprint() -> str:
    """A hash of the sources that decide what code a region becomes (this package, the
    math library, the scalar rules), so object code from other sources is never reused,
    even under one graphk version number."""
    global _fingerprint
    if _fingerprint is None:
        here = os.path.dirname(os.path.abspath(__file__))
        root = os.path.dirname(os.path.dirname(here))
        files = sorted(glob.glob(os.path.join(here, "*.py")) +
                       glob.glob(os.path.join(here, "mathlib", "*.py")) +
                       [os.path.join(root, "ir", "scalar.py"),
                        os.path.join(root, "ir", "ops", "elementwise.py")])
        digest = hashlib.sha256()
        for path in files:
            try:
                with open(path, "rb") as handle:
                    digest.update(handle.read())
            except OSError:  # an installed layout without one of them: its absence counts
                digest.update(path.encode())
        _fingerprint = digest.hexdigest()
    return _fingerprint


def kernel_key(region: str, variant: str) -> str:
    """The key of one compiled entry point: its region, its variant, the host, the
    code generator's sources and how entries find data pointers (pointers.py)."""
    text = f"{region}\n{variant}\n{host_key()}\n{code_fingerprint()}\n{DATA_OFFSET}"
    return hashlib.sha256(text.encode()).hexdigest()


class MemoryCache:
    """kernel key -> (loaded object, symbol), least recently used first out."""

    def __init__(self, entries: int = MEMORY_ENTRIES):
        self.entries = entries
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str):
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: str, item) -> None:
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


MEMORY = MemoryCache()


def _host_digest() -> bytes:
    """The host key's sha256: the file name already depends on it, the header repeats
    it so a file copied from another machine under a matching name is never run."""
    return hashlib.sha256(host_key().encode()).digest()


class DiskCache:
    """Object files under `directory`, each behind a checksum header."""

    def __init__(self, directory: str | None = None):
        self.directory = directory or os.environ.get("GRAPHK_CACHE_DIR") or os.path.join(
            os.path.expanduser("~"), ".cache", "graphk")
        self.enabled = True
        self.disabled_because: str | None = None
        self._swept = False  # stale temporary files removed (once per process, at a store)

    def _sweep(self) -> None:
        """Remove temporary files a killed writer left (older than STALE_SECONDS: a live
        writer renames its file within moments), so they do not pile up."""
        self._swept = True
        cutoff = time.time() - STALE_SECONDS
        try:
            entries = list(os.scandir(self.directory))
        except OSError:  # not listable: storing may still work, so leave it at that
            return
        for entry in entries:
            try:
                if entry.name.endswith(".tmp") and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:  # another process removed or renamed it first
                continue

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, f"{key}.o")

    def load(self, key: str) -> bytes | None:
        """The object code stored for `key`, or None (missing, truncated or corrupted)."""
        if not self.enabled:
            return None
        try:
            with open(self._path(key), "rb") as handle:
                data = handle.read()
        except OSError:
            return None
        host = _host_digest()
        header_size = len(MAGIC) + 32 + 8 + 32
        if len(data) < header_size or not data.startswith(MAGIC + host):
            return None  # short, another format, or code for another CPU (a copied file)
        length = int.from_bytes(data[len(MAGIC) + 32:len(MAGIC) + 40], "little")
        digest = data[len(MAGIC) + 40:header_size]
        payload = data[header_size:]
        if len(payload) != length or hashlib.sha256(payload).digest() != digest:
            return None
        return payload

    def store(self, key: str, obj: bytes) -> None:
        """Write atomically (temporary file, then rename); a failure turns the cache off."""
        if not self.enabled:
            return
        header = (MAGIC + _host_digest() + len(obj).to_bytes(8, "little") +
                  hashlib.sha256(obj).digest())
        try:
            os.makedirs(self.directory, exist_ok=True)
            if not self._swept:
                self._sweep()
            fd, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                handle.write(header + obj)
            os.replace(temporary, self._path(key))
        except OSError as error:
            self.enabled = False
            self.disabled_because = f"{self.directory}: {error.strerror or error}"


_disk: DiskCache | None = None


def disk_cache() -> DiskCache:
    """The process's disk cache (GRAPHK_CACHE_DIR read when first used)."""
    global _disk
    if _disk is None:
        _disk = DiskCache()
    return _disk


def set_disk_cache(directory: str | None) -> DiskCache:
    """Point the disk cache somewhere else (tests); None reads GRAPHK_CACHE_DIR again."""
    global _disk
    _disk = DiskCache(directory)
    return _disk

"""Keep freed kernel buffers in the process: glibc's malloc thresholds, set once at import.

A training step allocates and frees the same few hundred-kilobyte arrays on
every call (NumPy temporaries, kernel results). glibc serves each one above
its mmap threshold (128 KiB at start) with a fresh mmap, or trims the top of
its heap back to the system once more than the trim threshold is free, so
the next step faults every page in again: measured on the Keras digits CNN
with batch normalization, a quarter of the epoch went to page faults
(0.20 s against 0.15 s per epoch pinned to one core). Raising both
thresholds keeps that memory for reuse, as allocators built for numeric
work (jemalloc, TensorFlow's BFC allocator) do. The cost is resident memory:
up to TRIM_THRESHOLD bytes freed at the top of the heap stay with the
process.

Nothing is changed when the user tuned malloc already (MALLOC_*_ environment
variables or GLIBC_TUNABLES), when `GRAPHK_MALLOC=system`, or off glibc.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

MMAP_THRESHOLD = 32 * 2 ** 20  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 128 * 2 ** 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
                  "GLIBC_TUNABLES")


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (see the module doc); True if they were set."""
    if os.environ.get("GRAPHK_MALLOC", "").lower() == "system":
        return False
    if any(name in os.environ for name in _USER_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


__all__: list = []

"""Data addresses of NumPy arrays, cheaply: the part of a native call's cost that is pointers.

`array.ctypes.data` builds a helper object per call (about 3 us on the
development machine, more than a small kernel's loop); a fused node passes
several buffers per call. An ndarray's C struct holds its data pointer right
after the object header (NumPy's `PyArrayObject_fields.data`, the same in
NumPy 1 and 2), and CPython's `id()` is the object's address, so the pointer
is one word read at `id(array) + offset`. The offset is found once at import
by checking it against `ctypes.data` on arrays whose addresses are known; if
it cannot be confirmed (another Python implementation or layout),
`data_address` is `ctypes.data` itself, slower but always right.

Only ever call it on a live `np.ndarray` (or subclass) the caller holds; the same holds
for the object addresses fused kernels read the pointer from (`buffer_word`).
"""
from __future__ import annotations

import ctypes

import numpy as np

_WORD = ctypes.c_void_p


def _slow(array) -> int:
    return array.ctypes.data


def _find_offset() -> int | None:
    """The byte offset of the data pointer in an ndarray object, if it can be confirmed."""
    probes = [np.empty(n, np.uint8) for n in (1, 7, 64, 4096)]
    probes += [np.arange(12.0).reshape(3, 4)[1:], np.zeros((2, 3), np.float32).T]
    for offset in (16, 24, 32):  # PyObject_HEAD: 16 bytes in CPython's usual builds
        if all(_WORD.from_address(id(a) + offset).value == a.ctypes.data for a in probes):
            return offset
    return None


# Where an ndarray object keeps its data pointer (bytes from the object's address), or
# None when that cannot be confirmed. Native fused kernels then take the arrays' object
# addresses (`id`, about 0.07 us) and read the data pointer themselves, where Python would
# pay about 0.4 us an array for data_address (an Adam update passes ~50 buffers).
DATA_OFFSET = _find_offset() if hasattr(ctypes, "pythonapi") else None  # not CPython: id()
                                                                          # need not be one


def _make():
    if DATA_OFFSET is None:
        return _slow
    read, offset = _WORD.from_address, DATA_OFFSET

    def data_address(array) -> int:
        return read(id(array) + offset).value or 0  # .value is None for a null pointer
    return data_address


data_address = _make()
# What a fused kernel's entry takes for each buffer (kernel.py `_entry`): the array
# object's address where DATA_OFFSET is known, else its data pointer.
buffer_word = id if DATA_OFFSET is not None else data_address

__all__ = ["data_address", "buffer_word", "DATA_OFFSET"]

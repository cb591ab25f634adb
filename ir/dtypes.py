"""The dtypes graphk knows, and the rules that name and promote them.

A dtype is carried through the IR as its canonical NumPy name ("float32"),
so types print, parse and compare as plain strings.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

FLOAT_DTYPES = ("float16", "float32", "float64")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8")
DTYPES = FLOAT_DTYPES + INT_DTYPES + ("bool",)


class DTypeError(TypeError):
    """A dtype graphk does not support, or one that does not fit."""


def as_dtype(dtype) -> str:
    """Canonical name of `dtype` (a name, a NumPy dtype or a Python type)."""
    if isinstance(dtype, str) and dtype in DTYPES:
        return dtype
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise DTypeError(f"unknown dtype {dtype!r}; graphk supports {', '.join(DTYPES)}") from None
    if name not in DTYPES:
        raise DTypeError(f"unsupported dtype {name!r}; graphk supports {', '.join(DTYPES)}")
    return name


def is_floating(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def is_integer(dtype: str) -> bool:
    return dtype in INT_DTYPES


@lru_cache(maxsize=None)
def numpy_dtype(dtype: str) -> np.dtype:
    return np.dtype(dtype)


@lru_cache(maxsize=None)
def promote(*dtypes: str) -> str:
    """The dtype NumPy gives when arrays of these dtypes meet."""
    return as_dtype(np.result_type(*[numpy_dtype(d) for d in dtypes]))


def can_feed(given, expected: str) -> bool:
    """Whether an array of dtype `given` may be cast to `expected` for a feed.

    Numbers move within their kind or up to a wider kind (ints to floats,
    bools to anything); a float is never silently truncated to an int.
    """
    return bool(np.can_cast(given, numpy_dtype(expected), casting="same_kind"))

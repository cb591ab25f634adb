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


def require_float(dtype: str, what: str, kind: str = "tensor") -> str:
    """`dtype` if it is a float dtype, else a DTypeError: "{what} must be a float {kind}"."""
    if not is_floating(dtype):
        raise DTypeError(f"{what} must be a float {kind}, got {dtype}, which is not a float "
                         "dtype")
    return dtype


def require_integer(dtype: str, what: str, kind: str = "tensor") -> str:
    """`dtype` if it is an integer dtype, else a DTypeError: "{what} must be an int {kind}"."""
    if not is_integer(dtype):
        raise DTypeError(f"{what} must be an int {kind}, got {dtype}, which does not hold "
                         "integers")
    return dtype


def require_numeric(dtype: str, what: str, kind: str = "tensor") -> str:
    """`dtype` if it holds numbers (a float or an int, not bool), else a DTypeError."""
    if not (is_floating(dtype) or is_integer(dtype)):
        raise DTypeError(f"{what} must be a numeric {kind}, got {dtype}; cast it first "
                         "(K.cast(x, 'int32') or K.cast(x, K.floatx()))")
    return dtype


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

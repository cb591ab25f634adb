"""The dtypes graphk knows, and the rules that name and promote them.

A dtype is carried through the IR as its canonical NumPy name ("float32"),
so types print, parse and compare as plain strings.

`result_type` is the promotion policy of elementwise ops (JAX-like; see
ir/ops/elementwise.py for how each op family uses it): bool < ints < floats;
floats meeting ints keep the float dtype, so float32 is never widened to
float64 by an int or a bool; two floats give the wider; ints among
themselves promote as NumPy does (int8 and uint8 give int16). `promote` is
NumPy's own rule, used by the non-elementwise ops (dot, sparse products).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

FLOAT_DTYPES = ("float16", "float32", "float64")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8")
DTYPES = FLOAT_DTYPES + INT_DTYPES + ("bool",)


class DTypeError(TypeError):
    """A dtype graphk does not support, or one that does not fit."""


_NAMES: dict = {}  # NumPy dtypes and Python types seen -> name (np.dtype().name is slow)


def as_dtype(dtype) -> str:
    """Canonical name of `dtype` (a name, a NumPy dtype or a Python type)."""
    if isinstance(dtype, str) and dtype in DTYPES:
        return dtype
    if isinstance(dtype, (np.dtype, type)) and dtype in _NAMES:
        return _NAMES[dtype]
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise DTypeError(f"unknown dtype {dtype!r}; graphk supports {', '.join(DTYPES)}") from None
    if name not in DTYPES:
        raise DTypeError(f"unsupported dtype {name!r}; graphk supports {', '.join(DTYPES)}")
    if isinstance(dtype, (np.dtype, type)):
        _NAMES[dtype] = name
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


def result_type(*dtypes: str) -> str:
    """The dtype elementwise operands of these dtypes meet in (the module's policy)."""
    if len(dtypes) == 1 or (len(dtypes) == 2 and dtypes[0] == dtypes[1]):
        return dtypes[0]  # one dtype meets itself (most ops)
    floats = [d for d in dtypes if d in FLOAT_DTYPES]
    if floats:
        return max(floats, key=FLOAT_DTYPES.index)
    ints = [d for d in dtypes if d in INT_DTYPES]
    if ints:
        return promote(*ints)
    return "bool"


def compute_dtype(dtype: str) -> str:
    """The dtype arithmetic is done in for values stored as `dtype`: float16 is a storage
    type, computed in float32 and rounded on store; every other dtype computes as itself."""
    return "float32" if dtype == "float16" else dtype


def can_feed(given, expected: str) -> bool:
    """Whether an array of dtype `given` may be cast to `expected` for a feed.

    Numbers move within their kind or up to a wider kind (ints to floats,
    bools to anything); a float is never silently truncated to an int.
    """
    return bool(np.can_cast(given, numpy_dtype(expected), casting="same_kind"))


# --- elementwise dtype rules: (dtypes, attrs) -> (output dtype, compute dtype per input) ---
# The policy is stated in ir/ops/elementwise.py's docstring; each op names its rule.

_CAST_HINT = "cast first: K.cast(x, 'int32') or K.cast(x, K.floatx())"


def numeric_rule(dtypes, attrs):
    """Arithmetic: the operands' result_type; bools alone are an error."""
    if "bool" in dtypes and all(d == "bool" for d in dtypes):
        raise DTypeError(f"arithmetic is not defined on bool tensors (given "
                         f"{', '.join(dtypes)}); {_CAST_HINT}")
    out = result_type(*dtypes)
    return out, (compute_dtype(out),) * len(dtypes)


def float_rule(dtypes, attrs):
    """Float functions and true division: result_type, or float32 for ints and bools."""
    out = result_type(*dtypes)
    out = out if is_floating(out) else "float32"
    return out, (compute_dtype(out),) * len(dtypes)


def comparison_rule(dtypes, attrs):
    return "bool", (compute_dtype(result_type(*dtypes)),) * len(dtypes)


def logical_rule(dtypes, attrs):
    if any(d != "bool" for d in dtypes):
        raise DTypeError(f"logical ops take bool tensors, got {', '.join(dtypes)}; compare "
                         "first (K.not_equal(x, 0)) or K.cast(x, 'bool')")
    return "bool", tuple(dtypes)


def switch_rule(dtypes, attrs):
    if dtypes[0] != "bool":
        raise DTypeError(f"switch's condition must be bool, got {dtypes[0]}")
    out = result_type(*dtypes[1:])
    return out, ("bool", out, out)


def cast_rule(dtypes, attrs):
    return attrs["dtype"], tuple(dtypes)

"""Process-wide Keras state: uids, name scopes, the learning phase, clear_session."""
from __future__ import annotations

import contextlib
from collections import defaultdict

from ..ir.ops import leaf
from ..ir.types import TensorType

_uids: defaultdict = defaultdict(int)
_name_scopes: list[str] = []
_learning_phase_placeholder = None
_learning_phase_value: int | None = None


def get_uid(prefix: str = "") -> int:
    """1, 2, 3, ... per prefix: Keras names layers with it (dense_1, dense_2)."""
    _uids[prefix] += 1
    return _uids[prefix]


def reset_uids() -> None:
    _uids.clear()


def clear_session() -> None:
    """Forget uids and the learning phase; existing tensors stay valid but unnamed anew."""
    global _learning_phase_placeholder, _learning_phase_value
    reset_uids()
    _name_scopes.clear()
    _learning_phase_placeholder = None
    _learning_phase_value = None


@contextlib.contextmanager
def name_scope(name: str):
    """Prefix the names of variables created inside with `name/`."""
    _name_scopes.append(str(name))
    try:
        yield "/".join(_name_scopes)
    finally:
        _name_scopes.pop()


def scoped_name(name: str | None) -> str | None:
    if name is None or not _name_scopes:
        return name
    return "/".join(_name_scopes + [name])


def learning_phase():
    """0/1 if set with set_learning_phase, else a scalar placeholder that defaults to 0 (test)."""
    global _learning_phase_placeholder
    if _learning_phase_value is not None:
        return _learning_phase_value
    if _learning_phase_placeholder is None:
        _learning_phase_placeholder = leaf.placeholder(
            TensorType("uint8", ()), name="keras_learning_phase", default=0)
        _learning_phase_placeholder._uses_learning_phase = False
        _learning_phase_placeholder._keras_shape = ()
    return _learning_phase_placeholder


def set_learning_phase(value: int) -> None:
    global _learning_phase_value
    if value not in {0, 1}:
        raise ValueError(f"Expected learning phase to be 0 or 1, got {value!r}")
    _learning_phase_value = int(value)


def manual_variable_initialization(value: bool) -> None:
    """Accepted for Keras, and ignored: graphk variables always hold their value from creation."""


def symbolic(func):
    """Keras 2.3.1 marks graph-only functions with this; graphk is always symbolic."""
    return func


def eager(func):
    """Keras 2.3.1 marks eager-only functions with this; graphk runs them as they are."""
    return func


__all__ = ["get_uid", "reset_uids", "clear_session", "name_scope", "learning_phase",
           "set_learning_phase", "manual_variable_initialization", "symbolic", "eager"]

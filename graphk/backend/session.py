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
    """1, 2, 3, ... per prefix: Keras names layers with it (dense_1, dense_2).

    Arguments:
        prefix: the counter's name.

    Returns:
        An int, one more than the last for that prefix.

    Example:
        >>> K.get_uid("dense"), K.get_uid("dense")
        (1, 2)
    """
    _uids[prefix] += 1
    return _uids[prefix]


def reset_uids() -> None:
    """Restart every K.get_uid counter at 1."""
    _uids.clear()


def clear_session() -> None:
    """Forget uids, name scopes and the learning phase.

    Tensors and compiled functions made before stay valid; names made after
    start again from 1.
    """
    global _learning_phase_placeholder, _learning_phase_value
    reset_uids()
    _name_scopes.clear()
    _learning_phase_placeholder = None
    _learning_phase_value = None


@contextlib.contextmanager
def name_scope(name: str):
    """A context in which variables get names prefixed with `name/`.

    Arguments:
        name: the scope's name.

    Returns:
        A context manager, yielding the full scope path.

    Example:
        >>> with K.name_scope("block"):
        ...     v = K.variable(0.0, name="w")
        >>> v.name
        'block/w'
    """
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
    """The learning phase: 0 (test) or 1 (train).

    Returns:
        The value given to set_learning_phase, or else a uint8 scalar
        placeholder that defaults to 0 (test): feed it to a K.function to
        choose the phase per call.
    """
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
    """Fix the learning phase for everything built from now on.

    Arguments:
        value: 0 (test) or 1 (train).

    Raises:
        ValueError: value is neither 0 nor 1.
    """
    global _learning_phase_value
    if value not in {0, 1}:
        raise ValueError(f"Expected learning phase to be 0 or 1, got {value!r}")
    _learning_phase_value = int(value)


def manual_variable_initialization(value: bool) -> None:
    """Accepted for Keras, and ignored: graphk variables hold their value from creation.

    Arguments:
        value: a bool (ignored).
    """


def symbolic(func):
    """Keras 2.3.1 marks graph-only functions with this; graphk is always symbolic.

    Arguments:
        func: a function.

    Returns:
        func unchanged.
    """
    return func


def eager(func):
    """Keras 2.3.1 marks eager-only functions with this; graphk runs them as they are.

    Arguments:
        func: a function.

    Returns:
        func unchanged.
    """
    return func


__all__ = ["get_uid", "reset_uids", "clear_session", "name_scope", "learning_phase",
           "set_learning_phase", "manual_variable_initialization", "symbolic", "eager"]

"""Where in the user's code a node was built.

Every node records the file:line of the first stack frame outside graphk
itself, so errors and IR dumps point at the user's `K.*` call rather than at
graphk internals.
"""
from __future__ import annotations

import os
import sys

_internal_dirs: list[str] = [os.path.dirname(os.path.abspath(__file__))]


def register_internal_dir(path: str) -> None:
    """Treat frames from files under `path` as graphk's own (not the user's)."""
    path = os.path.dirname(os.path.abspath(path)) if os.path.isfile(path) else os.path.abspath(path)
    if path not in _internal_dirs:
        _internal_dirs.append(path)
        _internal_cache.clear()


_internal_cache: dict[str, bool] = {}


def _is_internal(filename: str) -> bool:
    known = _internal_cache.get(filename)
    if known is None:
        path = os.path.abspath(filename)
        known = path.startswith(tuple(_internal_dirs)) or filename.startswith("<frozen")
        _internal_cache[filename] = known
    return known


_display_cache: dict = {}  # (working directory, file name) -> shown name: every node asks


def _display(filename: str) -> str:
    key = (os.getcwd(), filename)
    shown = _display_cache.get(key)
    if shown is None:
        try:
            rel = os.path.relpath(filename)
        except ValueError:  # another drive on Windows
            rel = ".."
        shown = _display_cache[key] = filename if rel.startswith("..") else rel
    return shown


_overrides: list = []


class location_override:  # noqa: N801 (used as a function: `with location_override(...)`)
    """Attribute nodes built inside to `location` (autodiff: the forward op's line).

    A class rather than a generator-based context manager: autodiff enters one
    per differentiated node, and contextlib's machinery cost more than the work."""

    __slots__ = ("location",)

    def __init__(self, location: str | None):
        self.location = location

    def __enter__(self) -> None:
        _overrides.append(self.location)

    def __exit__(self, *exc_info) -> None:
        _overrides.pop()


def user_location() -> str | None:
    """`file:line` of the innermost frame that is not graphk's own code."""
    if _overrides and _overrides[-1] is not None:
        return _overrides[-1]
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not _is_internal(filename):
            return f"{_display(filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return None

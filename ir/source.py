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


def _is_internal(filename: str) -> bool:
    return filename.startswith(tuple(_internal_dirs)) or filename.startswith("<frozen")


def _display(filename: str) -> str:
    try:
        rel = os.path.relpath(filename)
    except ValueError:  # another drive on Windows
        return filename
    return filename if rel.startswith("..") else rel


def user_location() -> str | None:
    """`file:line` of the innermost frame that is not graphk's own code."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not _is_internal(os.path.abspath(filename)):
            return f"{_display(filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return None

"""Errors graphk raises, each meant to be read by the person who wrote the call."""
from __future__ import annotations

from .dtypes import DTypeError
from .shapes import ShapeError


class GraphkError(Exception):
    """Base of graphk's own errors that are not shape or dtype errors."""


class FeedError(GraphkError, ValueError):
    """A compiled function was called with feeds that do not fit its inputs."""


class ParseError(GraphkError, ValueError):
    """Malformed IR text; the message gives line and column."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(f"line {line}, column {column}: {message}")
        self.line = line
        self.column = column


class VerifyError(GraphkError, AssertionError):
    """A graph whose recorded types disagree with its ops' type rules."""


def located(error: Exception, op_name: str, location: str | None, detail: str = "") -> Exception:
    """The same kind of error, its message prefixed with op and user location."""
    if getattr(error, "graphk_located", False):  # already names its op (a loop body's error)
        return error
    where = f" at {location}" if location else ""
    message = f"{op_name}{where}: {error}{detail}"
    try:
        result = type(error)(message)
    except TypeError:  # an error class with a different constructor
        result = GraphkError(message)
    result.graphk_located = True
    return result


__all__ = ["GraphkError", "FeedError", "ParseError", "VerifyError", "ShapeError", "DTypeError",
           "located"]

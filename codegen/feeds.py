"""The feed checks of a generated program: its first lines, and the slow path behind them.

`emit_feeds` writes the checks every call runs (the feed count, each feed's
class, dtype and shape, symbolic dims shared between feeds) as single
comparisons; only a feed that is not already exactly right reaches
`FeedChecker`, which converts it or raises a FeedError naming the input.
A loop body's program trusts its feeds (`emit_trusted_feeds`).
"""
from __future__ import annotations

import numpy as np

from ..ir.dtypes import can_feed, numpy_dtype
from ..ir.errors import FeedError
from ..ir.graph import Graph
from ..ir.shapes import format_shape


def emit_feeds(program) -> None:
    """The checks every call runs on its feeds (codegen/numpy_backend.py's `_Program`)."""
    graph = program.graph
    checker = FeedChecker(graph)
    program.env["_checker"] = checker
    # A bare array is not a list of feeds, even when its length happens to match.
    program.emit(f"if feeds.__class__ is _ndarray or len(feeds) != {len(graph.inputs)}: "
                 "_checker.wrong_count(feeds)")
    first_seen: dict = {}  # symbolic dim root -> (input index, axis)
    for i, value in enumerate(graph.inputs):
        name = f"f{i}"
        program.names[value] = name
        dtype = program.bind("_dt", numpy_dtype(value.type.dtype))
        program.emit(f"{name} = feeds[{i}]")
        program.emit(f"if {name}.__class__ is not _ndarray or {name}.dtype is not {dtype}: "
                     f"{name} = _checker.coerce({i}, {name})")
        program.emit(f"s{i} = {name}.shape")
        shape = value.type.shape
        if all(isinstance(d, int) for d in shape):
            program.emit(f"if s{i} != {tuple(shape)!r}: _checker.bad_shape({i}, {name})")
            continue
        known = [f"s{i}[{axis}] != {d}" for axis, d in enumerate(shape) if isinstance(d, int)]
        program.emit(f"if len(s{i}) != {len(shape)}"
                     + "".join(f" or {c}" for c in known) + f": _checker.bad_shape({i}, {name})")
        for axis, d in enumerate(shape):
            if isinstance(d, int):
                continue
            root = d.root()
            if root in first_seen:
                j, other_axis = first_seen[root]
                program.emit(f"if s{i}[{axis}] != s{j}[{other_axis}]: "
                             f"_checker.inconsistent({i}, {axis}, {j}, {other_axis}, feeds)")
            else:
                first_seen[root] = (i, axis)


def emit_trusted_feeds(program) -> None:
    """A loop body's feeds, unpacked unchecked (the loop made them)."""
    names = [f"f{i}" for i in range(len(program.graph.inputs))]
    program.names.update(zip(program.graph.inputs, names))
    if names:
        program.emit(f"{', '.join(names)}, = feeds")


class FeedChecker:
    """Slow-path feed handling: only runs when a feed is not already exactly right."""

    def __init__(self, graph: Graph):
        self.graph = graph

    def _describe(self, index: int) -> str:
        value = self.graph.inputs[index]
        label = f" ({value.name!r})" if value.name else ""
        return f"function {self.graph.name!r}: input {index}{label}"

    def wrong_count(self, feeds):
        names = [v.name or f"input {i}" for i, v in enumerate(self.graph.inputs)]
        if isinstance(feeds, np.ndarray):
            raise FeedError(f"function {self.graph.name!r} expects a list of {len(names)} "
                            f"arrays for {names}, got a single array of shape "
                            f"{format_shape(feeds.shape)}; call it as f([array])")
        try:
            given = len(feeds)
        except TypeError:
            raise FeedError(f"function {self.graph.name!r} expects a list of "
                            f"{len(names)} arrays for {names}, "
                            f"got {type(feeds).__name__}") from None
        raise FeedError(f"function {self.graph.name!r} expects {len(names)} feeds {names}, "
                        f"got {given}")

    def coerce(self, index: int, array):
        expected = self.graph.inputs[index].type
        array = np.asarray(array)
        if array.dtype == numpy_dtype(expected.dtype):
            return array
        if _narrows_integers(array.dtype, expected.dtype):
            if not _fits(array, expected.dtype):  # astype would wrap the values silently
                raise FeedError(f"{self._describe(index)} expects dtype {expected.dtype}, got "
                                f"{array.dtype} values outside {expected.dtype}'s range "
                                f"[{_int_range(expected.dtype)[0]}, "
                                f"{_int_range(expected.dtype)[1]}]")
        elif not can_feed(array.dtype, expected.dtype) and not _fits(array, expected.dtype):
            raise FeedError(f"{self._describe(index)} expects dtype {expected.dtype}, got "
                            f"{array.dtype} (which does not cast safely to it)")
        return array.astype(expected.dtype)

    def bad_shape(self, index: int, array):
        expected = self.graph.inputs[index].type
        raise FeedError(f"{self._describe(index)} expects shape {format_shape(expected.shape)} "
                        f"({expected.dtype}), got shape {format_shape(array.shape)}")

    def inconsistent(self, i, axis, j, other_axis, feeds):
        first, second = self._describe(j).split(": ")[1], self._describe(i).split(": ")[1]
        raise FeedError(
            f"function {self.graph.name!r}: {first} and {second} share an unknown dimension, "
            f"but {first} has {np.shape(feeds[j])[other_axis]} on axis {other_axis} and "
            f"{second} has {np.shape(feeds[i])[axis]} on axis {axis}")


def _narrows_integers(given: np.dtype, expected: str) -> bool:
    """An integer feed for an integer (or bool) input that cannot hold every value of it."""
    return (given.kind in "iu" and numpy_dtype(expected).kind in "iub"
            and not np.can_cast(given, numpy_dtype(expected), casting="safe"))


def _int_range(dtype: str) -> tuple:
    return (0, 1) if dtype == "bool" else (np.iinfo(dtype).min, np.iinfo(dtype).max)


def _fits(array, dtype: str) -> bool:
    """Integers fed to a narrower or unsigned integer (or bool) input whose values all fit."""
    if array.dtype.kind not in "iub" or numpy_dtype(dtype).kind not in "iub":
        return False
    if array.size == 0:
        return True
    low, high = _int_range(dtype)
    return bool(low <= array.min() and array.max() <= high)

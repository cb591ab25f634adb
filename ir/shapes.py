"""Shapes whose dimensions are ints or symbols, and the rules that combine them.

A `None` in a placeholder's shape becomes a `SymDim`: a named unknown size
(`?0`). Shape rules unify symbols that must be equal (adding (?0,3) to
(?1,3) makes ?0 and ?1 one symbol), with a union-find so that every shape
holding either symbol sees the merge.

A symbol that must equal a known size (`merge_dim(?1, 10)`: a loss's target
against logits of width 10) is *bound* to it: its union-find root records the
size, and every TensorType holding the symbol reads it as 10 from then on
(`TensorType.shape` resolves bound symbols lazily, keyed by `BINDINGS`), so
int_shape, later type rules and the compiled feed checks all see it.
Broadcasting never binds (a symbol beside 10 may still be 1 at run time).
Unification and binding are process-wide and cannot be undone.
"""
from __future__ import annotations

import itertools
from collections import Counter

import numpy as np

_fresh_ids = itertools.count()


class ShapeError(ValueError):
    """Shapes that cannot meet; the op constructor adds op name and location."""


# BINDINGS[0] counts the bindings made so far: a type whose shape was resolved at an older
# count resolves again (a one-element list so importers share the live count).
BINDINGS = [0]


class SymDim:
    """An unknown dimension size. Symbols compare equal once unified."""

    __slots__ = ("name", "_parent", "_size")

    def __init__(self, name: str | None = None):
        self.name = name if name is not None else f"?{next(_fresh_ids)}"
        self._parent: SymDim | None = None
        self._size: int | None = None  # on a root: the known size it was bound to

    @property
    def size(self) -> int | None:
        """The known size this symbol was bound to, or None."""
        return self.root()._size

    def root(self) -> SymDim:
        node = self
        while node._parent is not None:
            node = node._parent
        # Path compression keeps later lookups O(1).
        walk = self
        while walk._parent is not None and walk._parent is not node:
            walk._parent, walk = node, walk._parent
        return node

    def __eq__(self, other) -> bool:
        return isinstance(other, SymDim) and self.root() is other.root()

    def __hash__(self) -> int:
        # Unions change the root, so the hash cannot depend on it.
        return 0x5D1

    def __repr__(self) -> str:
        return self.root().name


Dim = int | SymDim
Shape = tuple  # tuple[Dim, ...]


def unify(a: SymDim, b: SymDim) -> None:
    """Record that two symbolic dims are the same size (a bound size carries over)."""
    ra, rb = a.root(), b.root()
    if ra is rb:
        return
    if ra._size is not None and rb._size is not None and ra._size != rb._size:
        raise ShapeError(f"dimensions {ra._size} and {rb._size} differ")
    rb._parent = ra
    if ra._size is None and rb._size is not None:
        ra._size = rb._size
        BINDINGS[0] += 1


def bind(dim: SymDim, size: int) -> None:
    """Record that a symbolic dim is the known size `size` (ShapeError if bound otherwise)."""
    root = dim.root()
    if root._size is None:
        root._size = int(size)
        BINDINGS[0] += 1
    elif root._size != size:
        raise ShapeError(f"dimensions {root._size} and {size} differ")


def resolve_dim(dim):
    """A bound symbol as its size; ints and unbound symbols as they are."""
    if isinstance(dim, SymDim):
        size = dim.root()._size
        return dim if size is None else size
    return dim


def resolve_shape(shape: Shape) -> tuple[Shape, bool]:
    """(shape with bound symbols as ints, whether any symbol is left)."""
    dims = []
    symbolic = False
    for d in shape:  # a loop, not generators: every new type with a symbol comes here once
        if d.__class__ is SymDim:
            size = d.root()._size
            if size is None:
                symbolic = True
            else:
                d = size
        dims.append(d)
    return tuple(dims), symbolic


def same_dim(a, b) -> bool:
    if a is b:
        return True
    if a.__class__ is int and b.__class__ is int:
        return a == b
    a, b = resolve_dim(a), resolve_dim(b)
    if isinstance(a, int) or isinstance(b, int):
        return a == b if isinstance(a, int) and isinstance(b, int) else False
    return a.root() is b.root()


def same_shape(a: Shape, b: Shape) -> bool:
    if a is b:
        return True
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):  # a loop, not all(generator): types are compared very often
        if x is not y and not same_dim(x, y):
            return False
    return True


def format_shape(shape: Shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def from_user(shape, what: str = "shape") -> Shape:
    """A shape from user terms: ints stay, `None` becomes a fresh symbol."""
    dims = []
    for d in shape:
        if d is None or isinstance(d, SymDim):
            dims.append(d if d is not None else SymDim())
        else:
            try:
                size = int(d)
            except (TypeError, ValueError):
                raise ShapeError(f"{what} {tuple(shape)!r} has a dimension {d!r} "
                                 "that is neither an int nor None") from None
            if size < 0:
                raise ShapeError(f"{what} {tuple(shape)!r} has a negative dimension {size}")
            dims.append(size)
    return tuple(dims)


def to_user(shape: Shape) -> tuple:
    """Keras' int_shape: known sizes as ints (bound symbols too), unknown ones as None."""
    dims = (resolve_dim(d) for d in shape)
    return tuple(d if isinstance(d, int) else None for d in dims)


def broadcast_dim(a, b):
    """The size two dims broadcast to, or raise ShapeError."""
    if isinstance(a, int) and isinstance(b, int):
        if a == b or b == 1:
            return a
        if a == 1:
            return b
        raise ShapeError(f"dimensions {a} and {b} do not broadcast")
    if isinstance(a, int):
        return b if a == 1 else a
    if isinstance(b, int):
        return a if b == 1 else b
    unify(a, b)
    return a


def broadcast_shapes(*shapes: Shape) -> Shape:
    """NumPy broadcasting over symbolic shapes."""
    if shapes:
        first = shapes[0]
        for shape in shapes:
            if shape is not first and shape != first:
                break
        else:  # one shape, or equal ones (symbols already one): the same shape back
            return tuple(first)
    ndim = max((len(s) for s in shapes), default=0)
    result = [1] * ndim
    for shape in shapes:
        offset = ndim - len(shape)
        for i, d in enumerate(shape):
            try:
                result[offset + i] = broadcast_dim(result[offset + i], d)
            except ShapeError:
                raise ShapeError("shapes " + " and ".join(format_shape(s) for s in shapes)
                                 + " do not broadcast") from None
    return tuple(result)


def merge_dim(a, b, what: str = "dimensions"):
    """Two dims that must be equal (no broadcasting): the more known one.

    A symbol merged with a known size is bound to it (see the module doc).
    """
    a, b = resolve_dim(a), resolve_dim(b)
    if isinstance(a, int) and isinstance(b, int):
        if a != b:
            raise ShapeError(f"{what} {a} and {b} differ")
        return a
    if isinstance(a, int):
        bind(b, a)
        return a
    if isinstance(b, int):
        bind(a, b)
        return b
    unify(a, b)
    return a


def merge_shapes(a: Shape, b: Shape, what: str, except_axis: int | None = None) -> Shape:
    """Two shapes that must be equal: the more known dim at each axis, symbols unified.

    `what` names the two shapes, in order ("target and output"); a mismatch in
    rank or in a dim raises a ShapeError naming both. The dims at `except_axis`
    (concatenation's axis) are not compared; a's is kept.
    """
    if len(a) != len(b):
        raise ShapeError(f"{what}: shapes {format_shape(a)} and {format_shape(b)} "
                         "differ in rank")
    dims = []
    for axis, (x, y) in enumerate(zip(a, b)):
        if axis == except_axis:
            dims.append(x)
            continue
        try:
            dims.append(merge_dim(x, y))
        except ShapeError:
            raise ShapeError(f"{what}: shapes {format_shape(a)} and {format_shape(b)} "
                             f"differ on axis {axis}") from None
    return tuple(dims)


def scaled_dim(dim, factor: int, offset: int = 0):
    """dim * factor + offset: known when dim is, dim's own symbol when that leaves it
    unchanged (factor 1, offset 0), else a fresh symbol."""
    if isinstance(dim, int):
        return dim * factor + offset
    return dim if factor == 1 and offset == 0 else SymDim()


class SymbolicSize:
    """A product of known sizes and symbols: the element count of a shape."""

    __slots__ = ("factor", "symbols")

    def __init__(self, shape: Shape):
        self.factor = 1
        self.symbols = Counter()
        for d in shape:
            if isinstance(d, int):
                self.factor *= d
            else:
                self.symbols[d.root()] += 1

    def divide(self, other: SymbolicSize):
        """self / other as a single dim if that is expressible, else None."""
        remaining = self.symbols - other.symbols
        if other.symbols - self.symbols:
            return None
        if other.factor == 0:
            return None
        if self.factor % other.factor:
            return None
        quotient = self.factor // other.factor
        total = sum(remaining.values())
        if total == 0:
            return quotient
        if total == 1 and quotient == 1:
            return next(iter(remaining))
        return None


def normalize_axis(axis: int, ndim: int, what: str = "axis") -> int:
    if not -ndim <= axis < max(ndim, 1):
        raise ShapeError(f"{what} {axis} is out of range for rank {ndim}")
    return axis % ndim if ndim else 0


def normalize_axes(axis, ndim: int) -> tuple[int, ...]:
    """Keras' axis argument (None, int or list, negatives allowed) as sorted ints."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    axes = sorted({normalize_axis(int(a), ndim) for a in axis})
    return tuple(axes)

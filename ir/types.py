"""TensorType: a dtype and a shape (ints and symbolic dims)."""
from __future__ import annotations

from .dtypes import as_dtype
from .shapes import BINDINGS, Shape, resolve_shape, same_shape, to_user


class Typed:
    """Keras-facing views of an object's `type`: `.shape` (int_shape), `.ndim`, `.dtype`."""

    type: TensorType

    @property
    def shape(self) -> tuple:
        return self.type.int_shape

    @property
    def ndim(self) -> int:
        return self.type.ndim

    @property
    def dtype(self) -> str:
        return self.type.dtype


class TensorType:
    __slots__ = ("dtype", "_shape", "_resolved_at")

    def __init__(self, dtype, shape: Shape):
        self.dtype = as_dtype(dtype)
        self._shape = shape = tuple(shape)
        # BINDINGS count when last resolved; None once all static (ints: nothing to resolve)
        self._resolved_at = None
        for d in shape:
            if d.__class__ is not int:
                self._resolved_at = -1
                break

    @property
    def shape(self) -> Shape:
        """The dims, with symbols bound to a known size since (ir/shapes.py) as that size."""
        seen = self._resolved_at
        if seen is not None and seen != BINDINGS[0]:
            self._shape, symbolic = resolve_shape(self._shape)
            self._resolved_at = BINDINGS[0] if symbolic else None
        return self._shape

    @property
    def ndim(self) -> int:
        return len(self._shape)  # resolving binds sizes, never changes the rank

    @property
    def int_shape(self) -> tuple:
        return to_user(self.shape)

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        return (isinstance(other, TensorType) and self.dtype == other.dtype
                and same_shape(self.shape, other.shape))

    def __hash__(self) -> int:
        return hash((self.dtype, len(self.shape)))

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(str(d) for d in self.shape)}]"

    __repr__ = __str__

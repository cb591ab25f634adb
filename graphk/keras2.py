"""Opt-in shims that let Keras 2.3.1 run on Python >= 3.10, NumPy 2 and h5py 3.

Keras 2.3.1 predates these: it uses `collections.Mapping` (moved to
`collections.abc` and removed from `collections` in Python 3.10), its
weight loading calls `.decode('utf8')` on HDF5 attributes that h5py 3 returns
as `str` rather than `bytes`, and its HDF5 code compares with `np.string_`
and its callbacks start from `np.Inf` (both removed in NumPy 2, which spells
them `np.bytes_` and `np.inf`). Nothing here runs when graphk is imported; call
`install_shims()` before importing keras:

    import graphk.keras2
    graphk.keras2.install_shims()
    import keras

Each shim only adds what is missing, so installing twice is harmless.
"""
from __future__ import annotations

import collections
import collections.abc

import numpy as np

_ABC_NAMES = ("Mapping", "MutableMapping", "Sequence", "MutableSequence", "Iterable",
              "Iterator", "Callable", "Set", "MutableSet", "Hashable", "Sized", "Container")


class _DecodableStr(str):
    """A str that also answers `.decode()`, as the bytes h5py 2 returned did."""

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return str(self)


def _decodable(value):
    """str (and arrays of str) from h5py 3, made to answer `.decode()` as bytes did."""
    if isinstance(value, str):
        return _DecodableStr(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "OU":
        items = [_DecodableStr(v) if isinstance(v, str) else v for v in value.flat]
        result = np.empty(len(items), dtype=object)
        result[:] = items
        return result.reshape(value.shape)
    return value


def _install_collections_aliases() -> None:
    for name in _ABC_NAMES:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))


def _install_h5py_str_attributes() -> None:
    try:
        from h5py._hl.attrs import AttributeManager
    except ImportError:  # h5py absent: Keras cannot save weights anyway
        return
    if getattr(AttributeManager.__getitem__, "_graphk_shim", False):
        return
    original = AttributeManager.__getitem__

    def __getitem__(self, name):
        return _decodable(original(self, name))

    __getitem__._graphk_shim = True
    AttributeManager.__getitem__ = __getitem__


# Names NumPy 2 removed that Keras 2.3.1 and keras_preprocessing still use (np.Inf in
# callbacks' EarlyStopping, ModelCheckpoint and ReduceLROnPlateau), with what replaced them.
_NUMPY_ALIASES = {"string_": np.bytes_, "unicode_": np.str_, "Inf": np.inf}


def _install_numpy_aliases() -> None:
    for name, value in _NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, value)


def install_shims() -> None:
    """Install every shim Keras 2.3.1 needs here (idempotent)."""
    _install_collections_aliases()
    _install_h5py_str_attributes()
    _install_numpy_aliases()

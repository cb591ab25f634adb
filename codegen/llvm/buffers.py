"""The buffers of one native call: where every slot of a region's pointer array comes from.

A fused kernel's entry takes one array of machine words, a buffer address per
plan slot (plan.py). For one input pattern (runtime.Prepared) most of those
words never change between calls:
- constants live as long as the kernel;
- scratch (the partial results of reductions) is private to the call, so it
  sits in one arena allocated once per pattern and reset to the reductions'
  identities by a single copy from a template, instead of one np.full per
  reduction per call (a crossentropy region has six: ~8 us of its ~15);
- a view reads its alias's buffer (the kernel uses the alias's word anyway).
Only the inputs' and outputs' words are written per call: their object addresses,
from which the kernel's entry reads the data pointers (pointers.py `buffer_word`). An arena and its
word array form one `Entry`; calls take an entry from a pool and give it back,
so two threads running the same kernel at once never share scratch (a second
entry is made when the pool is empty: list.pop and append are atomic).
"""
from __future__ import annotations

from array import array

import numpy as np

from .pointers import buffer_word, data_address

ALIGNMENT = 64  # each scratch buffer starts on a cache line (and a full AVX-512 vector)


class Entry:
    """One call's scratch arena, a view of it per scratch slot, and the word array holding
    every slot's buffer word (pointers.py `buffer_word`)."""

    __slots__ = ("arena", "scratch", "views", "words", "address")

    def __init__(self, size: int, slots: int):
        self.arena = np.empty(size + ALIGNMENT, np.uint8)
        start = -data_address(self.arena) % ALIGNMENT
        self.scratch = self.arena[start:start + size]  # template.size bytes, aligned
        self.views: list = []  # kept alive with the entry: the words may be their addresses
        self.words = array(WORD, bytes(slots * array(WORD).itemsize))
        self.address = self.words.buffer_info()[0]


WORD = next(code for code in "QLI" if array(code).itemsize == np.dtype(np.intp).itemsize)


class CallBuffers:
    """How each call of one input pattern gets its buffers (see the module docstring).

    `inputs`: (slot, input position); `outputs`: (slot, shape, dtype, fill or None,
    donor input position or None); `scratch`: (slot, shape, dtype, identity);
    `constants`: slot -> array; `views`: (slot, alias slot)."""

    def __init__(self, slots: int, inputs, outputs, scratch, constants: dict, views):
        self.slots = slots
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.views = tuple(views)
        self.constants = constants
        self._offsets, size = [], 0
        for slot, shape, dtype, _ in scratch:
            self._offsets.append((slot, size))
            size += -(-int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
                      // ALIGNMENT) * ALIGNMENT
        self.template = np.empty(size, np.uint8)
        for (_, offset), (_, shape, dtype, identity) in zip(self._offsets, scratch):
            count = int(np.prod(shape, dtype=np.int64))
            self.template[offset:offset + count * np.dtype(dtype).itemsize].view(dtype)[:] = \
                identity
        self._pool: list = []
        # outputs written whole (no fill, no donor): the common case, made with np.empty
        self._plain = all(fill is None and donor is None for _, _, _, fill, donor in outputs)

    def take(self) -> Entry:
        """An entry for one call (give it back with `give`)."""
        try:
            return self._pool.pop()  # atomic: two threads never get the same entry
        except IndexError:  # none free (or another thread took the last one just now)
            pass
        entry = Entry(self.template.size, self.slots)
        for slot, offset in self._offsets:
            view = entry.scratch[offset:]  # starts at the slot's buffer (its end is unread)
            entry.views.append(view)
            entry.words[slot] = buffer_word(view)
        for slot, constant in self.constants.items():
            entry.words[slot] = buffer_word(constant)
        return entry

    def give(self, entry: Entry) -> None:
        self._pool.append(entry)

    def fill(self, entry: Entry, arrays) -> list:
        """Write this call's input and output addresses into `entry` (scratch reset to the
        identities); returns the output arrays, in slot order."""
        words = entry.words
        if self.template.size:
            np.copyto(entry.scratch, self.template)
        for slot, position in self.inputs:
            words[slot] = buffer_word(arrays[position])
        if self._plain:
            made = [np.empty(shape, dtype) for _, shape, dtype, _, _ in self.outputs]
        else:
            made = [self._output(arrays, shape, dtype, fill, donor)
                    for _, shape, dtype, fill, donor in self.outputs]
        for (slot, _, _, _, _), buffer in zip(self.outputs, made):
            words[slot] = buffer_word(buffer)
        for slot, alias in self.views:
            words[slot] = words[alias]
        return made

    @staticmethod
    def _output(arrays, shape, dtype, fill, donor) -> np.ndarray:
        if donor is not None:  # read-only (a caller's frozen array): fresh memory instead
            array_ = arrays[donor]
            return array_ if array_.flags.writeable else np.empty(shape, dtype)
        buffer = np.empty(shape, dtype)
        if fill is not None:
            buffer.fill(fill)
        return buffer


__all__ = ["CallBuffers", "Entry"]

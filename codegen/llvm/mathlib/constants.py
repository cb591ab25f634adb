"""Exact constants for range reduction, computed with Python integers.

Cody-Waite reduction needs ln2 and pi/2 split into pieces whose products with the
reduction's integer are exact; the trigonometric reduction needs 2/pi to ~1200 bits.
Computing them here (Machin's formula, the series of ln 2) keeps every digit derivable
instead of pasted.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction


def _atan_inverse(n: int, bits: int) -> int:
    """floor(atan(1/n) * 2^bits) (to within a few units), by the alternating series."""
    one = 1 << (bits + 16)
    total, power, k, sign = 0, one // n, 1, 1
    while power:
        total += sign * (power // k)
        power //= n * n
        k += 2
        sign = -sign
    return total >> 16


@functools.lru_cache(maxsize=None)
def pi_scaled(bits: int) -> int:
    """pi * 2^bits, truncated (Machin: pi = 16 atan(1/5) - 4 atan(1/239))."""
    guard = bits + 32
    return (16 * _atan_inverse(5, guard) - 4 * _atan_inverse(239, guard)) >> 32


@functools.lru_cache(maxsize=None)
def ln2_scaled(bits: int) -> int:
    """ln 2 * 2^bits, truncated (ln 2 = sum_k 1 / (k 2^k))."""
    guard = bits + 32
    total, k = 0, 1
    while True:
        term = (1 << guard) // (k << k)
        if term == 0:
            break
        total += term
        k += 1
    return total >> 32


def fraction(scaled: int, bits: int) -> Fraction:
    return Fraction(scaled, 1 << bits)


PI = fraction(pi_scaled(256), 256)
LN2 = fraction(ln2_scaled(256), 256)
PI_2 = PI / 2
TWO_OVER_PI = Fraction(2 << 1400, pi_scaled(1400))  # relative error below 2^-1390


def split(value: Fraction, parts: int, bits: int) -> list[float]:
    """value as `parts` floats of at most `bits` significant bits each, every part the
    truncation of what remains (so the parts do not overlap); the last part is rounded
    to a full float64 instead."""
    out = []
    rest = value
    for i in range(parts):
        if rest == 0:
            out.append(0.0)
            continue
        exponent = math.floor(math.log2(abs(rest)))
        width = bits if i < parts - 1 else 53
        scale = Fraction(2) ** (width - 1 - exponent)
        if i < parts - 1:
            piece = Fraction(math.floor(rest * scale)) / scale
        else:
            piece = Fraction(round(rest * scale)) / scale
        out.append(float(piece))
        rest -= piece
    return out


def chunk_integers(value: Fraction, count: int, bits: int) -> list[int]:
    """value's binary fraction cut at fixed positions: integer j holds the bits of
    weight 2^-(bits*j + 1) ... 2^-(bits*(j+1)), so value is sum_j C_j 2^-(bits*(j+1))
    truncated to bits*count binary places."""
    scaled = math.floor(value * (1 << (bits * count)))
    mask = (1 << bits) - 1
    return [(scaled >> (bits * (count - 1 - j))) & mask for j in range(count)]


def chunks(value: Fraction, count: int, bits: int) -> list[float]:
    """The chunks of chunk_integers as floats C_j 2^-(bits*(j+1)) (for small count)."""
    return [math.ldexp(float(integer), -bits * (j + 1))
            for j, integer in enumerate(chunk_integers(value, count, bits))]

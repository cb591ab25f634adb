"""sin and cos with an exact argument reduction over the whole float range.

|x| (2/pi) = n + F, |F| <= 1/2, is computed exactly enough for any finite x: 2/pi is
cut into chunks c_j of 26-28 bits, each product x*c_j is exact in float64, each is
reduced mod 4 exactly (p - 4 rint(p/4)), and the reduced terms are summed as a
double-word. Chunks whose product is a multiple of 4 contribute nothing, so only a
window of them matters:
- float32: x has 24 bits and exponent <= 127, so 7 chunks of 28 bits (196 bits of
  2/pi) cover every input; all are used, with no table.
- float64: x is split into halves of 27 and 26 bits; the window of 8 chunks of 26 bits
  starts where x's exponent puts it (a gather from a constant table of 46 chunks).
Then y = F pi/2 as a double-word, sin/cos of y by fitted polynomials in float64
(fdlibm's kernel arrangement), and the quadrant n mod 4 picks and signs the result.
float32 computes all of this in float64 and rounds once.
"""
from __future__ import annotations

import llvmlite.ir as ir

from .constants import PI_2, TWO_OVER_PI, chunk_integers, chunks, split
from .emit import Emitter

F32_CHUNKS = chunks(TWO_OVER_PI, 7, 28)
F64_CHUNK_BITS, F64_WINDOW, F64_TABLE = 26, 8, 46
TABLE_NAME = "graphk.two_over_pi_chunks"
TINY = 2.0 ** -27  # below it sin(x) rounds to x and cos(x) to 1 in float64


def _accumulate(d: Emitter, products, words: int):
    """Sum the exact products mod 4; returns (F_hi, F_lo, n_int) with the sum = n + F.
    `products` holds (product, may_exceed_2) pairs: only those that may be 2 or more
    need the reduction mod 4.

    The running sum is kept as `words` words (each two_sum exact, only the last word
    rounds). float32 needs F to 2^-60 absolute (a float32 comes no closer than ~2^-30 to
    a multiple of pi/2): two words. float64 keeps three, so massive cancellation -- x
    within 2^-60 of a multiple of pi/2 -- still leaves F accurate below its own ulp."""
    acc, err, err2 = d.c(0.0), d.c(0.0), d.c(0.0)
    for p, large in products:
        if large:
            p = d.fma(d.c(-4.0), d.rint(d.mul(p, d.c(0.25))), p)     # exact
        acc, e = d.two_sum(acc, p)
        if words == 3:
            err, e2 = d.two_sum(err, e)
            err2 = d.add(err2, e2)
        else:
            err = d.add(err, e)
    n_float, n_int = d.round_to_int(acc)
    f_hi, f_lo = d.two_sum(d.sub(acc, n_float), err)                 # acc - n exact
    if words == 3:
        f_hi, f_lo = d.fast_two_sum(f_hi, d.add(f_lo, err2))
    return f_hi, f_lo, n_int


def _reduce_f32(d: Emitter, ax):
    # |x| < 2^128 and chunk j < 2^(-28 j)
    products = [(d.mul(ax, d.c(c)), 128 - 28 * j > 1) for j, c in enumerate(F32_CHUNKS)]
    return _accumulate(d, products, words=2)


def _chunk_table(module: ir.Module) -> ir.GlobalVariable:
    """The integers C_j (26 bits each) with 2/pi = sum_j C_j 2^(-26 (j+1))."""
    existing = module.globals.get(TABLE_NAME)
    if existing is not None:
        return existing
    values = [float(c) for c in chunk_integers(TWO_OVER_PI, F64_TABLE, F64_CHUNK_BITS)]
    array_type = ir.ArrayType(ir.DoubleType(), len(values))
    table = ir.GlobalVariable(module, array_type, TABLE_NAME)
    table.initializer = ir.Constant(array_type, values)
    table.global_constant = True
    table.linkage = "internal"
    return table


def _reduce_f64(d: Emitter, ax):
    b = d.b
    bits = d.bits(ax)
    # x's ulp exponent; chunks below j0 give multiples of 4 and are skipped
    biased = b.lshr(bits, d.ci(52))
    ulp_exponent = d.sub(d.int_to_float(biased), d.c(1075.0))
    start = d.floor(d.mul(d.add(ulp_exponent, d.c(-1.5)), d.c(1.0 / F64_CHUNK_BITS)))
    start = d.clamp(start, 0.0, F64_TABLE - F64_WINDOW)
    _, start_int = d.round_to_int(start)
    # x * 2^(-26 j0) keeps products in range; high part keeps 27 bits, low part 26
    scaled = d.mul(ax, d.pow2(b.mul(start_int, d.ci(-F64_CHUNK_BITS))))
    high = d.from_bits(b.and_(d.bits(scaled), d.ci(-(1 << 26))))
    low = d.sub(scaled, high)
    table = _chunk_table(d.module)
    products = []
    for k in range(F64_WINDOW):
        index = b.add(start_int, d.ci(k))
        entry = b.load(b.gep(table, [ir.Constant(ir.IntType(64), 0), index]))
        chunk = d.mul(entry, d.c(2.0 ** (-F64_CHUNK_BITS * (k + 1))))
        large = 81 - F64_CHUNK_BITS * k > 1          # scaled x < 2^81, chunk k < 2^(-26 k)
        products += [(d.mul(high, chunk), large), (d.mul(low, chunk), large)]
    return _accumulate(d, products, words=3)


def _kernels(d: Emitter, f_hi, f_lo, for_float32: bool):
    """(sin y, cos y) for y = F pi/2, |y| <= pi/4, F given as a double-word.
    float32 results need neither F's low word nor the full float64 polynomials."""
    if for_float32:
        y, y_lo = d.mul(f_hi, d.c(float(PI_2))), None
        sin_key, cos_key = "sin_wide", "cos_wide"
    else:
        pio2_hi, pio2_lo = split(PI_2, 2, 53)
        y, y_lo = d.dd_mul(f_hi, f_lo, d.c(pio2_hi), d.c(pio2_lo))
        sin_key, cos_key = "sin", "cos"
    z = d.mul(y, y)
    half_z = d.mul(z, d.c(0.5))
    # sin(y + e) = y + y^3 S(y^2) + e (1 - y^2/2)
    sin_tail = d.mul(d.mul(y, z), d.fitted(sin_key, y, "float64"))
    if y_lo is not None:
        sin_tail = d.add(sin_tail, d.fma(d.neg(y_lo), half_z, y_lo))
    sine = d.add(y, sin_tail)
    # cos(y + e) = 1 - y^2/2 + y^4 C(y^2) - e y, with 1 - y^2/2 rounded as w and its
    # rounding error carried (fdlibm's __kernel_cos)
    w = d.sub(d.c(1.0), half_z)
    correction = d.mul(d.mul(z, z), d.fitted(cos_key, y, "float64"))
    if y_lo is not None:
        correction = d.sub(correction, d.mul(y, y_lo))
    cosine = d.add(w, d.add(d.sub(d.sub(d.c(1.0), w), half_z), correction))
    return sine, cosine


def _sin_cos(em: Emitter, x, want_cos: bool):
    d = em.other("float64")
    ax = em.abs(x)
    wide = d.ext_from(ax) if em.dtype == "float32" else ax
    if em.dtype == "float32":
        f_hi, f_lo, n = _reduce_f32(d, wide)
    else:
        f_hi, f_lo, n = _reduce_f64(d, wide)
    sine, cosine = _kernels(d, f_hi, f_lo, em.dtype == "float32")
    b = d.b
    quadrant = b.add(n, d.ci(1)) if want_cos else n   # cos(y + n pi/2) = sin(y + (n+1) pi/2)
    swap = b.icmp_unsigned("!=", b.and_(quadrant, d.ci(1)), d.ci(0))
    negate = b.icmp_unsigned("!=", b.and_(quadrant, d.ci(2)), d.ci(0))
    if not want_cos:   # sin is odd: the sign bit (so -0 too) flips the result
        negate = b.xor(negate, em.b.icmp_signed("<", em.bits(x), em.ci(0)))
    value = d.select(swap, cosine, sine)
    value = d.select(negate, d.neg(value), value)
    if em.dtype == "float32":
        value = em.trunc_from(value)
    else:
        tiny = em.cmp("<", ax, em.c(TINY))
        value = em.select(tiny, em.c(1.0) if want_cos else x, value)
    # sin(-0) = -0 (float32: the sign survives the reduction of 0); inf and NaN give NaN
    finite = em.cmp("<", ax, em.c(float("inf")))
    return em.select(finite, value, em.c(float("nan")))


def sin(em: Emitter, x):
    return _sin_cos(em, x, want_cos=False)


def cos(em: Emitter, x):
    return _sin_cos(em, x, want_cos=True)

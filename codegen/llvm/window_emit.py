"""LLVM IR of the native window kernels: im2col, col2im, max pooling and its gradient.

The kernels are a fixed library, not generated per graph: every size comes in at
run time, so one module serves every shape and is compiled once per process
(windows.py loads it). Each kernel is

    void graphk_window_<op>_<dtype>(i64* params, i64* taps, ptr first, ptr second,
                                    ptr third, ptr padding, ptr out, ptr scratch,
                                    i8* flags)

with `params` laid out as PARAMS. The window geometry (any number of spatial
axes, strides, dilation, padding) is folded by the Python side into the `taps`
table: for window position o and tap t (both row-major), taps[o * window + t]
is the flat spatial index of the input row that tap reads, or -1 in the
padding. The kernels then loop over batch, positions and taps, with the
channels innermost and contiguous, so LLVM vectorizes them (buffer arguments
are `noalias`). Nests this shallow keep O3's compile time small: an earlier
version with one loop per spatial axis (seven deep) took seconds, the unswitcher
copying the nest for every invariant loop guard.

A tap in the padding reads `padding` (one row of channels: zeros, or -inf for a
max) instead of the input, and writes into `scratch` instead of the output: row
addresses are selected, not branched on. Native code stays inside its buffers
as long as every table entry is below the input's rows per image and the sizes
match the arrays, which windows.py checks before it calls.
"""
from __future__ import annotations

import re

import llvmlite.ir as ir

from .loops import for_range, loop_hints
from .target import new_module

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I64 = ir.IntType(64)
PTR = ir.PointerType()
ZERO = ir.Constant(I64, 0)
ONE = ir.Constant(I64, 1)

# batch; input rows (spatial elements) per image; window positions per image; taps per
# window; channels; an op-specific mode (max_pool_grad: 1 when NumPy would use its tiled
# kernel).
PARAMS = ("batch", "rows", "positions", "window", "channels", "mode")
OPS = ("extract_patches", "scatter_patches", "max_pool", "max_pool_grad")
FLOAT_TYPES = {"float32": ir.FloatType(), "float64": ir.DoubleType()}
SIGNATURE = ir.FunctionType(ir.VoidType(), [PTR] * 9)


def symbol(op: str, dtype: str) -> str:
    return f"graphk_window_{op}_{dtype}"


# Each kernel function's definition line gets this string attribute (llvmlite.ir prints
# only enumerated ones): LLVM's loop idiom pass would turn every row copy into a memcpy
# call, which costs several times a 32-channel row's two vector moves.
_NO_MEMCPY = ' "no-builtin-memcpy"'
_DEFINE_LINE = re.compile(r"^(define [^\n]*?)(\s*\{?)$", re.MULTILINE)


def library_text() -> str:
    """The LLVM IR text of the window library module."""
    module = new_module("graphk_windows")
    emit_library(module)
    return _DEFINE_LINE.sub(lambda m: m.group(1) + _NO_MEMCPY + m.group(2), str(module))


def emit_library(module: ir.Module) -> None:
    """Every window kernel, for every float dtype, into `module`."""
    emitters = {"extract_patches": _extract_patches, "scatter_patches": _scatter_patches,
                "max_pool": _max_pool, "max_pool_grad": _max_pool_grad}
    for op in OPS:
        for dtype in FLOAT_TYPES:
            kernel = _Kernel(module, op, dtype)
            emitters[op](kernel)
            kernel.b.ret_void()


class _Kernel:
    """One kernel function being emitted, and the loop and row helpers its op needs."""

    def __init__(self, module: ir.Module, op: str, dtype: str):
        self.fn = ir.Function(module, SIGNATURE, symbol(op, dtype))
        self.fn.attributes.add("nounwind")
        for arg in self.fn.args:  # distinct buffers (outputs and scratch are fresh arrays)
            arg.add_attribute("noalias")
            arg.add_attribute("nofree")
        (params, self.taps, self.first, self.second, self.third, self.padding, self.out,
         self.scratch, self.flags) = self.fn.args
        self.b = ir.IRBuilder(self.fn.append_basic_block("entry"))
        self.float = FLOAT_TYPES[dtype]
        self.p = {name: self.b.load(self.b.gep(params, [ir.Constant(I64, k)],
                                               source_etype=I64), typ=I64)
                  for k, name in enumerate(PARAMS)}
        self.channels = self.p["channels"]

    # --- loops ----------------------------------------------------------------------------
    def loop(self, stop, body, hints=None) -> None:
        """for i in [0, stop): body(i) (what body returns is dropped: for_range would take
        it for carried values)."""
        def step(index, _):
            body(index)
        for_range(self.b, ZERO, stop, step, hints=hints)

    def each_channel(self, body) -> None:
        """body(c) for every channel. One channel gets straight-line code: a loop over one
        element would become a memcpy call per row (LLVM's idiom recognition)."""
        single = self.b.icmp_signed("==", self.channels, ONE)
        with self.b.if_else(single) as (one, many):
            with one:
                body(ZERO)
            with many:
                # one vector per step: rows are short (32 channels are two AVX-512
                # vectors), and interleaved steps would leave such rows to the scalar tail
                self.loop(self.channels, body, hints=loop_hints(self.fn.module, 1))

    def fill(self, buffer, count, value) -> None:
        """buffer[0:count] = value (LLVM turns it into a memset)."""
        self.loop(count, lambda i: self.b.store(value, self.b.gep(buffer, [i],
                                                                  source_etype=value.type)))

    # --- addresses ------------------------------------------------------------------------
    def row(self, buffer, row_index):
        """The address of the channel row `row_index` of a channels-last buffer."""
        return self.b.gep(buffer, [self.b.mul(row_index, self.channels)],
                          source_etype=self.float)

    def tap_entry(self, position, tap):
        """taps[position * window + tap]: the input row the tap reads, -1 in the padding."""
        index = self.b.add(self.b.mul(position, self.p["window"]), tap)
        return self.b.load(self.b.gep(self.taps, [index], source_etype=I64), typ=I64)

    def image_row(self, buffer, batch, entry):
        """Row `entry` of image `batch` of an input-shaped buffer."""
        return self.row(buffer, self.b.add(self.b.mul(batch, self.p["rows"]), entry))

    def source_row(self, buffer, batch, entry):
        """The row a tap reads: the input's, or the padding row."""
        inside = self.b.icmp_signed(">=", entry, ZERO)
        return self.b.select(inside, self.image_row(buffer, batch, entry), self.padding)

    def target_row(self, batch, entry):
        """The row a tap writes in an input-shaped output, or the scratch row (padding)."""
        inside = self.b.icmp_signed(">=", entry, ZERO)
        return self.b.select(inside, self.image_row(self.out, batch, entry), self.scratch)

    def pooled_row(self, buffer, batch, position):
        """Row `position` of image `batch` of a (batch, positions, channels) buffer."""
        return self.row(buffer, self.b.add(self.b.mul(batch, self.p["positions"]), position))

    # --- elements -------------------------------------------------------------------------
    def load(self, row, c):
        return self.b.load(self.b.gep(row, [c], source_etype=self.float), typ=self.float)

    def store(self, value, row, c) -> None:
        self.b.store(value, self.b.gep(row, [c], source_etype=self.float))

    def constant(self, value: float):
        return ir.Constant(self.float, value)

    def maximum(self, a, b):
        """np.maximum(a, b) bit for bit (measured on NumPy 2): a if a is NaN, else a if
        a > b, else b (so b on a tie of +0 and -0, and b when only b is NaN)."""
        larger = self.b.select(self.b.fcmp_ordered(">", a, b), a, b)
        return self.b.select(self.b.fcmp_unordered("uno", a, a), a, larger)

    def elements(self, *names: str):
        """The product of params `names` times the channels: a buffer's element count."""
        count = self.channels
        for name in names:
            count = self.b.mul(count, self.p[name])
        return count


def _extract_patches(k: _Kernel) -> None:
    """out[b, o, t, :] = the input row of tap t of window o (zeros in the padding: the
    padding row). `first` is x; out is (batch, positions, window, channels)."""
    p = k.p

    def tap(batch, position, t) -> None:
        patch = k.b.add(k.b.mul(k.b.add(k.b.mul(batch, p["positions"]), position),
                                p["window"]), t)
        target = k.row(k.out, patch)
        source = k.source_row(k.first, batch, k.tap_entry(position, t))
        k.each_channel(lambda c: k.store(k.load(source, c), target, c))
    k.loop(p["batch"], lambda b: k.loop(p["positions"], lambda o: k.loop(
        p["window"], lambda t: tap(b, o, t))))


def _scatter_patches(k: _Kernel) -> None:
    """col2im: out = 0, then out[b, row of tap t of window o, :] += patches[b, o, t, :]
    (into the scratch row when that is in the padding). Taps loop outside positions
    (inside the batch), so every element sums its taps in row-major window order from +0,
    as the NumPy kernel does (one whole-array add per tap): the same bits. Within one tap
    no two positions read one row. `first` is the patches."""
    p = k.p
    k.fill(k.out, k.elements("batch", "rows"), k.constant(0.0))

    def add(batch, t, position) -> None:
        target = k.target_row(batch, k.tap_entry(position, t))
        patch = k.b.add(k.b.mul(k.b.add(k.b.mul(batch, p["positions"]), position),
                                p["window"]), t)
        source = k.row(k.first, patch)
        k.each_channel(lambda c: k.store(k.b.fadd(k.load(target, c), k.load(source, c)),
                                         target, c))
    k.loop(p["batch"], lambda b: k.loop(p["window"], lambda t: k.loop(
        p["positions"], lambda o: add(b, t, o))))


def _max_pool(k: _Kernel) -> None:
    """out[b, o, :] = the NumPy kernel's fold: tap 0 (-inf in the padding: the padding row
    is -inf), then np.maximum with every tap. Folding tap 0 in again and folding padded
    taps changes no bit: np.maximum(a, a) and np.maximum(a, -inf) are a for every a (NaN
    included). `first` is x."""
    p = k.p

    def window(batch, position) -> None:
        target = k.pooled_row(k.out, batch, position)
        first_tap = k.source_row(k.first, batch, k.tap_entry(position, ZERO))
        k.each_channel(lambda c: k.store(k.load(first_tap, c), target, c))

        def tap(t) -> None:
            source = k.source_row(k.first, batch, k.tap_entry(position, t))
            k.each_channel(lambda c: k.store(k.maximum(k.load(target, c), k.load(source, c)),
                                             target, c))
        k.loop(p["window"], tap)
    k.loop(p["batch"], lambda b: k.loop(p["positions"], lambda o: window(b, o)))


def _all_finite(k: _Kernel, buffer, count):
    """Whether buffer[0:count] holds no inf or NaN (v - v is 0 exactly for finite v)."""
    def step(i, carried):
        value = k.load(buffer, i)
        finite = k.b.fcmp_ordered("==", k.b.fsub(value, value), k.constant(0.0))
        return [k.b.and_(carried[0], finite)]
    return for_range(k.b, ZERO, count, step, carried=[ir.Constant(I1, 1)])[0]


def _max_pool_grad(k: _Kernel) -> None:
    """g sent to the first tap (row-major) of each window whose x equals y, for windows
    that never overlap (windows.py checks stride >= pool size): each element of x is
    written by one window at most, so stores need no accumulation. `first` is g, `second`
    x, `third` y (g and y pooled-shaped), `padding` a row of -inf: when a padded tap is
    the first maximum its gradient goes to the scratch row (lost), as NumPy's
    padded-then-cropped buffer loses it. `flags` holds one byte per channel: whether this
    window's maximum was found yet (a buffer of its own: sharing one with the scratch row
    the stores may go to would keep LLVM from vectorizing the channel loop).

    The bits follow NumPy's two kernels: the general one adds g * hit to a zeroed buffer
    (a hit gets 0 + g, every other element +0); the tiled one (mode 1: stride = pool size,
    no padding) multiplies g by the 0/1 mask when every g is finite (a hit gets g, the
    others g * 0, so -0 under a negative g) and falls back to the general one otherwise."""
    p = k.p
    k.fill(k.out, k.elements("batch", "rows"), k.constant(0.0))
    tiled_mode = k.b.icmp_signed("!=", p["mode"], ZERO)
    # g's finiteness only matters when tiled: check no element otherwise
    checked = k.b.select(tiled_mode, k.elements("batch", "positions"), ZERO)
    tiled = k.b.and_(tiled_mode, _all_finite(k, k.first, checked))
    found = k.flags

    def window(batch, position) -> None:
        rows = (k.pooled_row(k.first, batch, position), k.pooled_row(k.third, batch, position))
        k.fill(found, k.channels, ir.Constant(I8, 0))

        def tap(t) -> None:
            entry = k.tap_entry(position, t)
            x_row, target = k.source_row(k.second, batch, entry), k.target_row(batch, entry)
            k.each_channel(lambda c: _send(k, c, x_row, rows, target, found, tiled))
        k.loop(p["window"], tap)
    k.loop(p["batch"], lambda b: k.loop(p["positions"], lambda o: window(b, o)))


def _send(k: _Kernel, c, x_row, rows: tuple, target, found, tiled) -> None:
    """One tap of one channel of a window: a hit if x equals y and no earlier tap hit;
    the tap's element gets g on a hit, else a zero (see _max_pool_grad)."""
    g_row, y_row = rows
    zero = k.constant(0.0)
    slot = k.b.gep(found, [c], source_etype=I8)
    earlier = k.b.icmp_signed("!=", k.b.load(slot, typ=I8), ir.Constant(I8, 0))
    equal = k.b.fcmp_ordered("==", k.load(x_row, c), k.load(y_row, c))
    hit = k.b.and_(equal, k.b.not_(earlier))
    k.b.store(k.b.zext(k.b.or_(earlier, equal), I8), slot)
    g = k.load(g_row, c)
    on_hit = k.b.select(tiled, g, k.b.fadd(zero, g))
    on_miss = k.b.select(tiled, k.b.fmul(g, zero), zero)
    k.store(k.b.select(hit, on_hit, on_miss), target, c)

"""LLVM IR of the native batch normalization kernels (training): the forward op and its
gradient, for float32 and float64.

Like the window kernels (window_emit.py) they form a fixed library: every size
comes in at run time, so one module serves every shape (batch_norm_native.py
loads it). x is a C-contiguous (rows, channels) matrix: the reduced axes lead
(channels last) and "channels" is the product of the kept axes. Each kernel is

    void graphk_<op>_<dtype>(i64 rows, i64 channels, double epsilon,
                             ptr in0, ptr in1, ptr in2, ptr in3, ptr in4,
                             ptr out0, ptr out1, ptr out2)

    batch_norm_train:      in = x, gamma, beta;          out = y, mean, var
    batch_norm_train_grad: in = gy, x, gamma, mean, var;  out = dx, dgamma, dbeta

An absent gamma comes as a row of ones and an absent beta as a row of -0.0
(batch_norm_native.py passes them): x * 1 and x + -0.0 are x for every x, NaN
and signed zeros included, so one code path serves every scale/center case.

The channels go in blocks of LANES, written as explicit vectors (masked loads
and stores for the last, partial block); for each block, every pass runs down
the rows with the per-channel sums carried in registers, and the per-channel
math between passes is vector code on the block. A first version looped rows
outside and channels inside, accumulating in a memory row: every row then
waited on the previous row's (masked) store of the sums, about 25 cycles a row
and pass. Each channel's sum still adds its rows in order, in double (for
float32: as accurate as NumPy's blocked BLAS sums, more where the data sit far
from zero); the elementwise math is in the data's dtype and the NumPy kernel's
order of operations (ir/ops/batch_norm_kernels.py), so only the sums' rounding
differs from it. Lanes past the last channel are masked off: they read and
write nothing, so native code stays inside its buffers as long as the sizes
match the arrays, which batch_norm_native.py checks before it calls.
"""
from __future__ import annotations

import llvmlite.ir as ir

from .loops import for_range
from .target import new_module

I1 = ir.IntType(1)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
DOUBLE = ir.DoubleType()
PTR = ir.PointerType()
ZERO = ir.Constant(I64, 0)

OPS = ("batch_norm_train", "batch_norm_train_grad")
FLOAT_TYPES = {"float32": ir.FloatType(), "float64": DOUBLE}
SIGNATURE = ir.FunctionType(ir.VoidType(), [I64, I64, DOUBLE] + [PTR] * 8)
# Channels per block: 32 float32 are two AVX-512 registers, their double sums four, so each
# pass has four independent add chains per row (an add's latency is four cycles)
LANES = 32


def symbol(op: str, dtype: str) -> str:
    return f"graphk_{op}_{dtype}"


def library_text() -> str:
    """The LLVM IR text of the batch normalization library module."""
    module = new_module("graphk_batch_norm")
    emitters = {"batch_norm_train": _train, "batch_norm_train_grad": _train_grad}
    for op in OPS:
        for dtype in FLOAT_TYPES:
            _emit(_Kernel(module, op, dtype), emitters[op])
    return str(module)


def _emit(kernel: "_Kernel", emitter) -> None:
    """The kernel's body: `emitter(kernel, first channel, lane mask)` for every block."""
    kernel.each_block(lambda start, mask: emitter(kernel, start, mask))
    kernel.b.ret_void()


def _intrinsic(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    """The declaration of an intrinsic over vector types (llvmlite's declare_intrinsic
    cannot name those)."""
    if name in module.globals:
        return module.globals[name]
    return ir.Function(module, fnty, name)


class _Kernel:
    """One kernel function being emitted: its arguments, loops and vector helpers."""

    def __init__(self, module: ir.Module, op: str, dtype: str):
        self.module = module
        self.fn = ir.Function(module, SIGNATURE, symbol(op, dtype))
        self.fn.attributes.add("nounwind")
        self.rows, self.channels, epsilon = self.fn.args[:3]
        self.inputs, self.outputs = self.fn.args[3:8], self.fn.args[8:11]
        for arg in self.fn.args[3:]:  # distinct buffers (outputs are fresh arrays)
            arg.add_attribute("noalias")
            arg.add_attribute("nofree")
        self.b = ir.IRBuilder(self.fn.append_basic_block("entry"))
        self.float = FLOAT_TYPES[dtype]
        self.itemsize = 4 if dtype == "float32" else 8
        self.vector = ir.VectorType(self.float, LANES)
        self.wide = ir.VectorType(DOUBLE, LANES)
        self.mask_type = ir.VectorType(I1, LANES)
        # NumPy adds epsilon and divides by the count in the data's dtype
        self.epsilon = self.splat(self.narrow(epsilon))
        self.count = self.splat(self.b.sitofp(self.rows, self.float))
        self.wide_count = self.splat(self.b.sitofp(self.rows, DOUBLE))

    # --- loops ----------------------------------------------------------------------------
    def each_block(self, body) -> None:
        """body(first channel, lane mask) for every block of LANES channels; the mask keeps
        the lanes of existing channels."""
        b = self.b
        lanes = ir.Constant(ir.VectorType(I64, LANES), list(range(LANES)))
        blocks = b.udiv(b.add(self.channels, ir.Constant(I64, LANES - 1)),
                        ir.Constant(I64, LANES))

        def block(index, _):
            start = b.mul(index, ir.Constant(I64, LANES))
            left = self.splat(b.sub(self.channels, start))
            body(start, b.icmp_unsigned("<", lanes, left))
        for_range(b, ZERO, blocks, block)

    def each_row(self, start, body, sums=()):
        """sums = body(index of the block's first element in row r, sums) for every row;
        returns the sums after the last row."""
        def row(r, carried):
            return body(self.b.add(self.b.mul(r, self.channels), start), carried)
        return for_range(self.b, ZERO, self.rows, row, carried=sums)

    # --- vectors --------------------------------------------------------------------------
    def splat(self, scalar):
        """A vector of LANES copies of `scalar`."""
        vector_type = ir.VectorType(scalar.type, LANES)
        one = self.b.insert_element(ir.Constant(vector_type, None), scalar, ZERO)
        return self.b.shuffle_vector(one, ir.Constant(vector_type, None),
                                     ir.Constant(ir.VectorType(I32, LANES), [0] * LANES))

    def constant(self, value: float):
        return ir.Constant(self.vector, [ir.Constant(self.float, value)] * LANES)

    def load(self, buffer, index, mask, passthru: float = 0.0):
        """The block's elements at buffer[index:], masked-off lanes reading nothing."""
        fnty = ir.FunctionType(self.vector, [PTR, I32, self.mask_type, self.vector])
        load = _intrinsic(self.module, f"llvm.masked.load.v{LANES}{self._suffix}.p0", fnty)
        address = self.b.gep(buffer, [index], source_etype=self.float)
        return self.b.call(load, [address, ir.Constant(I32, self.itemsize), mask,
                                  self.constant(passthru)])

    def store(self, value, buffer, index, mask) -> None:
        fnty = ir.FunctionType(ir.VoidType(), [self.vector, PTR, I32, self.mask_type])
        store = _intrinsic(self.module, f"llvm.masked.store.v{LANES}{self._suffix}.p0", fnty)
        address = self.b.gep(buffer, [index], source_etype=self.float)
        self.b.call(store, [value, address, ir.Constant(I32, self.itemsize), mask])

    @property
    def _suffix(self) -> str:
        return "f32" if self.itemsize == 4 else "f64"

    def widen(self, value):
        return value if self.float is DOUBLE else self.b.fpext(value, self.wide)

    def narrow(self, value):
        if self.float is DOUBLE:
            return value
        return self.b.fptrunc(value, self.vector if isinstance(value.type, ir.VectorType)
                              else self.float)

    def zero_sum(self):
        return ir.Constant(self.wide, [ir.Constant(DOUBLE, 0.0)] * LANES)

    def mean(self, total):
        """A double sum over the rows divided by their count, in the data's dtype."""
        return self.narrow(self.b.fdiv(total, self.wide_count))

    def inverse_deviation(self, var):
        """1 / sqrt(var + epsilon), as NumPy computes it (IEEE sqrt and division)."""
        sqrt = _intrinsic(self.module, f"llvm.sqrt.v{LANES}{self._suffix}",
                          ir.FunctionType(self.vector, [self.vector]))
        root = self.b.call(sqrt, [self.b.fadd(var, self.epsilon)])
        return self.b.fdiv(self.constant(1.0), root)


def _train(k: _Kernel, start, mask) -> None:
    """One block of channels: mean = sum(x) / n; var = sum((x - mean)^2) / n (two passes:
    exact for data far from zero, where sum(x^2) - n mean^2 cancels); y = (x - mean) *
    factor + beta, factor = 1 / sqrt(var + epsilon) * gamma. Three passes over x."""
    x, gamma, beta = k.inputs[:3]
    y, mean_out, var_out = k.outputs
    b = k.b
    total = k.each_row(start, lambda i, s: [b.fadd(s[0], k.widen(k.load(x, i, mask)))],
                       [k.zero_sum()])[0]
    mean = k.mean(total)
    k.store(mean, mean_out, start, mask)

    def square(i, s):
        centered = b.fsub(k.load(x, i, mask), mean)
        return [b.fadd(s[0], k.widen(b.fmul(centered, centered)))]
    var = k.mean(k.each_row(start, square, [k.zero_sum()])[0])
    k.store(var, var_out, start, mask)
    factor = b.fmul(k.inverse_deviation(var), k.load(gamma, start, mask))
    shift = k.load(beta, start, mask)

    def normalize(i, _):
        scaled = b.fmul(b.fsub(k.load(x, i, mask), mean), factor)
        k.store(b.fadd(scaled, shift), y, i, mask)
    k.each_row(start, normalize)


def _train_grad(k: _Kernel, start, mask) -> None:
    """One block of channels: dbeta = sum(gy); dgamma = sum(gy * (x - mean)) * inv,
    inv = 1 / sqrt(var + eps); gain = inv * gamma; dx = gy * gain - (x - mean) *
    (gain * inv * dgamma / n) - gain * dbeta / n. One pass for both sums, one for dx."""
    gy, x, gamma, mean_in, var_in = k.inputs
    dx, dgamma_out, dbeta_out = k.outputs
    b = k.b
    mean = k.load(mean_in, start, mask)

    def sums(i, s):
        g = k.load(gy, i, mask)
        product = b.fmul(g, b.fsub(k.load(x, i, mask), mean))
        return [b.fadd(s[0], k.widen(g)), b.fadd(s[1], k.widen(product))]
    beta_sum, gamma_sum = k.each_row(start, sums, [k.zero_sum(), k.zero_sum()])
    inv = k.inverse_deviation(k.load(var_in, start, mask, passthru=1.0))
    dbeta = k.narrow(beta_sum)
    dgamma = b.fmul(k.narrow(gamma_sum), inv)
    k.store(dbeta, dbeta_out, start, mask)
    k.store(dgamma, dgamma_out, start, mask)
    gain = b.fmul(inv, k.load(gamma, start, mask))
    centered_scale = b.fdiv(b.fmul(b.fmul(gain, inv), dgamma), k.count)
    shift = b.fdiv(b.fmul(gain, dbeta), k.count)

    def gradient(i, _):
        centered = b.fsub(k.load(x, i, mask), mean)
        value = b.fsub(b.fmul(k.load(gy, i, mask), gain), b.fmul(centered, centered_scale))
        k.store(b.fsub(value, shift), dx, i, mask)
    k.each_row(start, gradient)

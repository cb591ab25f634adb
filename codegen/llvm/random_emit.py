"""LLVM IR of the native Bernoulli sampler: NumPy's PCG64 stream, four words at a time.

`random_binomial` (Keras' Dropout draws one per activation every training step)
is, on NumPy, `(32-bit draws < threshold).astype(dtype)` where the draws are the
PCG64 generator's raw 64-bit words split into their low and high halves
(ir/ops/random.py `_binomial`). This kernel produces the same numbers and leaves
the generator in the same state, working on the generator's own state in place
(random_native.py passes `bit_generator.ctypes.state`):

    void graphk_pcg64_bernoulli_<dtype>(ptr state, i64 count, i64 threshold, ptr out)

PCG64 is a 128-bit LCG, s' = s * M + inc, whose output word is the xor of the
state's halves rotated right by its top six bits. One step waits for the last
(a 128-bit multiply: several cycles), which is what bounds NumPy's own loop;
here four chains run side by side, each jumping four steps at a time
(s'''' = s * M^4 + inc * (M^3 + M^2 + M + 1)), so the words come out in the
same order at several times the rate. random_native.py checks the stream
against NumPy's once per process before using it.
"""
from __future__ import annotations

import llvmlite.ir as ir

from .loops import for_range
from .target import new_module

I32 = ir.IntType(32)
I64 = ir.IntType(64)
I128 = ir.IntType(128)
PTR = ir.PointerType()
MASK = (1 << 128) - 1
MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341  # PCG's default 128-bit one
CHAINS = 4
FLOAT_TYPES = {"float32": ir.FloatType(), "float64": ir.DoubleType()}
SIGNATURE = ir.FunctionType(ir.VoidType(), [PTR, I64, I64, PTR])


def symbol(dtype: str) -> str:
    return f"graphk_pcg64_bernoulli_{dtype}"


def library_text() -> str:
    module = new_module("graphk_random")
    for dtype in FLOAT_TYPES:
        _Sampler(module, dtype).emit()
    return str(module)


def _jump() -> tuple[int, int]:
    """(M^CHAINS, M^(CHAINS-1) + ... + M + 1), mod 2^128: CHAINS steps as one."""
    power, total = 1, 0
    for _ in range(CHAINS):
        total = (total + power) & MASK
        power = (power * MULTIPLIER) & MASK
    return power, total


class _Sampler:
    """One kernel: its arguments, the chains' steps and the stores of one word."""

    def __init__(self, module: ir.Module, dtype: str):
        self.module = module
        self.float = FLOAT_TYPES[dtype]
        self.function = ir.Function(module, SIGNATURE, symbol(dtype))
        self.function.attributes.add("nounwind")
        self.b = ir.IRBuilder(self.function.append_basic_block("entry"))
        self.state, self.count, self.threshold, self.out = self.function.args
        self.out.add_attribute("noalias")
        # rotate right: a funnel shift of a word with itself (declared by hand: llvmlite's
        # declare_intrinsic gives llvm.fshr the wrong arity)
        self.rotate = module.globals.get("llvm.fshr.i64") or ir.Function(
            module, ir.FunctionType(I64, [I64, I64, I64]), "llvm.fshr.i64")

    def emit(self) -> None:
        b = self.b
        generator = b.load(self.state, typ=PTR)  # pcg64_state.pcg_state: {state, inc}
        inc_at = b.gep(generator, [ir.Constant(I64, 2)], source_etype=I64)
        start, inc = b.load(generator, typ=I128, align=8), b.load(inc_at, typ=I128, align=8)
        step = lambda s: b.add(b.mul(s, ir.Constant(I128, MULTIPLIER)), inc)  # noqa: E731
        chains = [step(start)]
        for _ in range(CHAINS - 1):
            chains.append(step(chains[-1]))
        power, total = _jump()
        jump_add = b.mul(inc, ir.Constant(I128, total))
        pairs = b.sdiv(self.count, ir.Constant(I64, 2))  # words whose two halves are both used
        blocks = b.sdiv(pairs, ir.Constant(I64, CHAINS))

        def block(k, carried):
            first = b.mul(k, ir.Constant(I64, CHAINS))
            for j, state in enumerate(carried[:CHAINS]):
                self.store_word(b.add(first, ir.Constant(I64, j)), state, both=True)
            moved = [b.add(b.mul(s, ir.Constant(I128, power)), jump_add)
                     for s in carried[:CHAINS]]
            return moved + [carried[CHAINS - 1]]  # the last word used: the state to keep
        carried = for_range(b, ir.Constant(I64, 0), blocks, block, chains + [start])
        chains, last = carried[:CHAINS], carried[CHAINS]
        done = b.mul(blocks, ir.Constant(I64, CHAINS))
        words = b.sdiv(b.add(self.count, ir.Constant(I64, 1)), ir.Constant(I64, 2))
        final = last
        for j, state in enumerate(chains):  # at most CHAINS words are left
            word = b.add(done, ir.Constant(I64, j))
            used = b.icmp_signed("<", word, words)
            with b.if_then(used):
                self.store_word(word, state, both=False)
            final = b.select(used, state, final)
        b.store(final, generator, align=8)
        b.ret_void()

    def store_word(self, word, state, both: bool) -> None:
        """Outputs 2*word and, when inside `count` (always if `both`), 2*word + 1."""
        b = self.b
        high = b.trunc(b.lshr(state, ir.Constant(I128, 64)), I64)
        turn = b.trunc(b.lshr(state, ir.Constant(I128, 122)), I64)
        bits = b.call(self.rotate, [b.xor(high, b.trunc(state, I64))] * 2 + [turn])
        index = b.mul(word, ir.Constant(I64, 2))
        self.store_half(index, b.and_(bits, ir.Constant(I64, 0xFFFFFFFF)))
        following = b.add(index, ir.Constant(I64, 1))
        upper = b.lshr(bits, ir.Constant(I64, 32))
        if both:
            self.store_half(following, upper)
        else:
            with b.if_then(b.icmp_signed("<", following, self.count)):
                self.store_half(following, upper)

    def store_half(self, index, half) -> None:
        b = self.b
        hit = b.icmp_unsigned("<", half, self.threshold)
        value = b.uitofp(b.zext(hit, I32), self.float)
        b.store(value, b.gep(self.out, [index], source_etype=self.float))

"""Every elementwise op's scalar rule, run on the NumPy scalar builder, equals its NumPy
kernel: bitwise for ints, bools and ops built from the same ufuncs, within a few ulp where
the kernel and the math library compute a function differently. Inputs include the
specials (inf, -inf, nan, -0.0, huge, denormal, int min/max) for every dtype accepted."""
import numpy as np
import pytest

from graphk.ir.dtypes import DTYPES, DTypeError
from graphk.ir.ops.elementwise import DTYPE_RULES
from graphk.ir.ops.registry import REGISTRY
from graphk.ir.scalar import NumpyScalarBuilder

BUILDER = NumpyScalarBuilder()
# ulp allowed between kernel and scalar rule, where they are not the same ufunc calls
ULPS = {"sigmoid": 4, "softplus": 2, "erf": 1}
MIXED = [("int32", "float32"), ("float16", "float64"), ("bool", "int8"), ("uint8", "int8"),
         ("int64", "float16"), ("float32", "bool")]


def _float_specials(dtype):
    info = np.finfo(dtype)
    values = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 3.7, -15.0, -40.0, 20.0, 88.5, 710.0,
              -745.0, 1e-7, 6.0, 0.25, np.inf, -np.inf, np.nan, float(info.max), -float(info.max),
              float(info.tiny) / 4, -float(info.tiny) / 4, float(info.tiny)]
    spread = np.geomspace(1e-3, 3e2, 7) * np.array([1, -1, 1, -1, 1, -1, 1])  # ordinary values
    return np.concatenate([values, spread]).astype(dtype)


def _int_specials(dtype):
    info = np.iinfo(dtype)
    values = [0, 1, -1, 2, -2, 3, -7, 7, 100, -100, info.min, info.max, info.min + 1,
              info.max - 1, 64, 31]
    return np.array([v for v in values if info.min <= v <= info.max], dtype=np.int64).astype(dtype)


def specials(dtype):
    if dtype == "bool":
        return np.array([False, True])
    return _float_specials(dtype) if dtype.startswith("float") else _int_specials(dtype)


def _inputs(dtypes):
    """Every combination of specials: input i varies along axis i (broadcasting)."""
    arity = len(dtypes)
    arrays = []
    for i, dtype in enumerate(dtypes):
        values = specials(dtype)
        if arity == 3 and i > 0:  # clip bounds and switch branches: a few values each
            values = values[::3]
        shape = [1] * arity
        shape[i] = values.size
        arrays.append(values.reshape(shape))
    return arrays


def _ordered(a):
    """Float bits as integers ordered like the floats (for ulp distances)."""
    bits = a.view({2: np.int16, 4: np.int32, 8: np.int64}[a.dtype.itemsize]).astype(np.int64)
    return np.where(bits < 0, np.iinfo(a.dtype.str.replace("f", "i")).min - bits, bits)


def assert_same(got, want, ulps, context):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (context, got.dtype, want.dtype)
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=str(context))
        return
    nan = np.isnan(want)
    assert (np.isnan(got) == nan).all(), (context, got[np.isnan(got) != nan])
    if ulps == 0:
        same_bits = got.view(f"u{got.itemsize}") == want.view(f"u{want.itemsize}")
        bad = ~nan & ~same_bits
    else:
        bad = ~nan & (np.abs(_ordered(got) - _ordered(want)) > ulps)
    assert not bad.any(), (context, got[bad][:5], want[bad][:5])


def _attr_variants(op):
    if op.name == "cast":
        return [{"dtype": d} for d in DTYPES]
    variants = [dict(s.attrs) for s in op.samples]
    return [v for i, v in enumerate(variants) if v not in variants[:i]]


def _accepted(name, attrs):
    op = REGISTRY[name]
    arity = len(op.samples[0].shapes)
    rule = DTYPE_RULES[name]
    candidates = [(d,) * arity for d in DTYPES] + [m[:arity] for m in MIXED if arity == 2]
    if name == "switch":
        candidates = [("bool", d, d) for d in DTYPES] + [("bool",) + m for m in MIXED]
    result = []
    for dtypes in candidates:
        try:
            rule(dtypes, op.complete_attrs(attrs))
        except DTypeError:
            continue
        result.append(dtypes)
    return result


CASES = [(name, attrs) for name in sorted(DTYPE_RULES)
         for attrs in _attr_variants(REGISTRY[name])]


def test_every_elementwise_op_has_a_scalar_rule():
    missing = [op.name for op in REGISTRY.values() if op.elementwise and op.scalar is None]
    assert not missing, f"elementwise ops without OpDef.scalar: {missing}"


@pytest.mark.parametrize("name, attrs", CASES, ids=[f"{n}-{a}" for n, a in CASES])
def test_scalar_rule_equals_the_kernel(name, attrs):
    op = REGISTRY[name]
    attrs = op.complete_attrs(attrs)
    accepted = _accepted(name, attrs)
    assert accepted, f"{name} accepts no dtype"
    for dtypes in accepted:
        arrays = _inputs(dtypes)
        with np.errstate(all="ignore"):
            want = op.kernel(*arrays, **attrs)
            got = op.scalar(BUILDER, *arrays, **attrs)
        assert_same(got, want, ULPS.get(name, 0), (name, dtypes, attrs))

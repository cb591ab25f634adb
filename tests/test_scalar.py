"""The NumPy scalar builder: the documented semantics hold, element by element."""
import numpy as np
import pytest

from graphk.ir.dtypes import DTypeError
from graphk.ir.scalar import MATH_FUNCTIONS, NumpyScalarBuilder

b = NumpyScalarBuilder()
SPECIALS = [np.nan, np.inf, -np.inf, 1e20, -1e20, 3e9, -3e9, 300.7, -300.7, 200.5, -129.5,
            65536.0, 2.0**31, 2.0**63, -2.0**31 - 0.5, -0.0, 2.0**31 - 1, -44.5]


def _documented_float_to_int(x: float, dtype: str) -> int:
    """ScalarBuilder.cast's rule for float -> int, written out in Python."""
    bits = 64 if dtype == "int64" else 32
    low, high = -2 ** (bits - 1), 2 ** (bits - 1)
    wide = math_trunc(x)
    wide = wide if wide is not None and low <= wide < high else low
    info = np.iinfo(dtype)
    span = info.max - info.min + 1
    return (wide - info.min) % span + info.min


def math_trunc(x):
    return None if not np.isfinite(x) else int(x)


@pytest.mark.parametrize("source", ["float16", "float32", "float64"])
@pytest.mark.parametrize("target", ["int8", "int16", "int32", "int64", "uint8"])
def test_float_to_int_casts_follow_the_documented_rule(source, target):
    values = np.array(SPECIALS * 40, dtype=source)  # long enough for NumPy's SIMD loops
    got = b.cast(values, target)
    want = [_documented_float_to_int(float(v), target) for v in values]
    assert got.dtype == target
    np.testing.assert_array_equal(got, np.array(want, dtype=target))


def test_float_to_bool_and_int_wraparound():
    assert b.cast(np.array([np.nan, -0.0, 0.5]), "bool").tolist() == [True, False, True]
    assert b.cast(np.array([300, -1], np.int32), "uint8").tolist() == [44, 255]
    assert b.cast(np.array([65519, 65520], np.int32), "float16").tolist() == [65504, np.inf]


def test_integer_division_and_modulo_by_zero_and_overflow():
    a = np.array([5, -5, -128, -128, 7, -7], np.int8)
    d = np.array([0, 0, -1, 3, -3, 2], np.int8)
    assert b.floordiv(a, d).tolist() == [0, 0, -128, -43, -3, -4]
    assert b.mod(a, d).tolist() == [0, 0, 0, 1, -2, 1]


def test_float_division_and_modulo_specials():
    a = np.array([5, -5, 0, 5, -5, np.inf, -0.0, 0.0], np.float32)
    d = np.array([0, 0, 0, -0.0, np.inf, 2, 3, -3], np.float32)
    np.testing.assert_array_equal(b.floordiv(a, d), [np.inf, -np.inf, np.nan, -np.inf, -1,
                                                     np.nan, -0.0, -0.0])
    mod = b.mod(a, d)
    np.testing.assert_array_equal(mod, [np.nan, np.nan, np.nan, np.nan, np.inf, np.nan, 0, -0.0])
    assert np.signbit(mod[-1]) and not np.signbit(mod[-2])


def test_maximum_minimum_propagate_nan_and_ties_give_the_second_operand():
    x = np.array([-0.0, 0.0, np.nan, 1.0], np.float32)
    y = np.array([0.0, -0.0, 1.0, np.nan], np.float32)
    for fn in (b.maximum, b.minimum):
        r = fn(x, y)
        assert np.isnan(r[2:]).all()
        assert np.signbit(r[:2]).tolist() == [False, True]


def test_sign_round_and_ints():
    s = b.sign(np.array([-0.0, 0.0, np.nan, -3.0, 2.0]))
    assert not np.signbit(s[0]) and np.isnan(s[2]) and s[3:].tolist() == [-1, 1]
    assert b.sign(np.array([-128, 0, 5], np.int8)).tolist() == [-1, 0, 1]
    r = b.round_half_even(np.array([-0.5, 0.5, 1.5, 2.5], np.float32))
    assert r.tolist() == [0, 0, 2, 2] and np.signbit(r[0])
    assert b.abs(np.array([-128], np.int8)).tolist() == [-128]
    assert b.add(np.array([127], np.int8), np.array([1], np.int8)).tolist() == [-128]


def test_math_specials():
    x = np.array([-np.inf, -800, -0.0, np.inf, np.nan], np.float64)
    sig = b.math("sigmoid", x)
    np.testing.assert_array_equal(sig, [0, 0, 0.5, 1, np.nan])
    np.testing.assert_array_equal(b.math("softplus", x)[[0, 3, 4]], [0, np.inf, np.nan])
    assert b.math("sigmoid", np.array([-15.0], np.float32))[0] == np.float32(1 / (1 + np.exp(15)))
    assert sorted(MATH_FUNCTIONS) == sorted(["exp", "expm1", "log", "log1p", "tanh", "sigmoid",
                                             "softplus", "pow", "sin", "cos", "erf"])


def test_dtype_discipline():
    f32, f64 = np.ones(2, np.float32), np.ones(2, np.float64)
    with pytest.raises(DTypeError, match="one dtype"):
        b.add(f32, f64)
    with pytest.raises(DTypeError, match="float16"):
        b.add(f32.astype(np.float16), f32.astype(np.float16))
    with pytest.raises(DTypeError, match="bool"):
        b.add(f32 > 0, f32 > 0)
    with pytest.raises(DTypeError):
        b.div(np.ones(2, np.int32), np.ones(2, np.int32))
    with pytest.raises(DTypeError, match="range"):
        b.const(300, "int8")
    assert b.bitcast(np.array([1.0], np.float32), "int32").tolist() == [0x3F800000]
    assert b.select(f32 > 0, f32.astype(np.float16), f32.astype(np.float16)).dtype == "float16"

"""Elementwise dtype rules: the stated policy (ir/ops/elementwise.py), the kernels obey it,
and every place it departs from NumPy's own promotion is one the policy explains."""
import itertools

import numpy as np
import pytest

from graphk import backend as K
from graphk.ir.dtypes import DTYPES, FLOAT_DTYPES, INT_DTYPES, DTypeError
from graphk.ir.ops import elementwise as ew
from graphk.ir.ops.elementwise import DTYPE_RULES
from graphk.ir.ops.registry import REGISTRY

NAMES = sorted(DTYPE_RULES)


def _attrs_for(name):
    op = REGISTRY[name]
    variants = [op.complete_attrs({})]
    if name == "cast":
        variants = [op.complete_attrs({"dtype": d}) for d in DTYPES]
    return variants


def _array(dtype, shape=(3,)):
    return (np.arange(1, 4).reshape(shape) % 2 == 1) if dtype == "bool" else \
        np.arange(1, 4).reshape(shape).astype(dtype)


def _probe(name, dtypes, attrs):
    """NumPy's own answer: the raw kernel on empty arrays (the old type rule)."""
    try:
        with np.errstate(all="ignore"):
            result = REGISTRY[name].kernel.raw(*[np.empty(0, d) for d in dtypes], **attrs)
    except (TypeError, ValueError):
        return None
    return np.asarray(result).dtype.name


def _why_different(name, dtypes, rule_out, numpy_out):
    """The clause of the policy explaining a difference from NumPy, or None."""
    floats = [d for d in dtypes if d in FLOAT_DTYPES]
    if rule_out is None:
        if all(d == "bool" for d in dtypes):
            return "arithmetic on bools alone is an error"
        if name == "switch" and dtypes[0] != "bool":
            return "switch's condition must be bool"
        if name in ("logical_and", "logical_or", "logical_not"):
            return "logical ops take bool only"
        if name in ("relu", "relu_grad"):
            return "relu with attributes needs floats"
        return None
    if name == "relu_grad" and rule_out is not None:
        return "g and x meet in their result_type (the raw kernel assumes one dtype)"
    if numpy_out is None:
        return "NumPy rejects what the policy defines" if rule_out in DTYPES else None
    if rule_out in FLOAT_DTYPES and numpy_out in FLOAT_DTYPES:
        if floats and rule_out == max(floats, key=FLOAT_DTYPES.index):
            return "ints never widen a float"
        if not floats and rule_out == "float32":
            return "float functions of ints and bools give float32"
    if numpy_out in INT_DTYPES + ("bool",) and rule_out == "float32" and not floats:
        return "true division of ints gives float32"
    if set(dtypes) <= {"bool"} | set(INT_DTYPES) and name == "sign" and rule_out in INT_DTYPES:
        return "sign of ints keeps the int dtype"
    return None


def _cases():
    for name in NAMES:
        arity = len(REGISTRY[name].samples[0].shapes)
        for dtypes in itertools.product(DTYPES, repeat=arity):
            for attrs in _attrs_for(name):
                yield name, dtypes, attrs


def test_rules_against_the_kernels_and_the_numpy_probe():
    unexplained, wrong_kernel = [], []
    for name, dtypes, attrs in _cases():
        try:
            rule_out = REGISTRY[name].infer(*[_Type(d) for d in dtypes], **attrs).dtype
        except DTypeError:
            rule_out = None
        numpy_out = _probe(name, dtypes, attrs)
        if rule_out != numpy_out and _why_different(name, dtypes, rule_out, numpy_out) is None:
            unexplained.append((name, dtypes, rule_out, numpy_out))
        if rule_out is not None:
            with np.errstate(all="ignore"):
                got = REGISTRY[name].kernel(*[_array(d) for d in dtypes], **attrs)
            if np.asarray(got).dtype.name != rule_out:
                wrong_kernel.append((name, dtypes, rule_out, np.asarray(got).dtype.name))
    assert not wrong_kernel, wrong_kernel[:20]
    assert not unexplained, unexplained[:20]


class _Type:
    """Just enough of a TensorType for a type rule."""

    def __init__(self, dtype):
        self.dtype, self.shape = dtype, (3,)


def test_policy_examples_through_the_front_end():
    f32 = K.placeholder((None, 3), dtype="float32")
    i32 = K.placeholder((None, 3), dtype="int32")
    u8 = K.placeholder((None, 3), dtype="uint8")
    i64 = K.placeholder((None, 3), dtype="int64")
    f16 = K.placeholder((None, 3), dtype="float16")
    assert (i32 * f32).dtype == "float32"
    assert (i64 + f16).dtype == "float16"
    assert K.exp(i32).dtype == "float32" and K.tanh(u8).dtype == "float32"
    assert (i32 / i32).dtype == "float32"
    assert (i32 // i32).dtype == "int32" and (u8 + K.cast(u8, "int8")).dtype == "int16"
    assert K.greater(i32, f32).dtype == "bool"
    assert K.sqrt(f16).dtype == "float16"


@pytest.mark.parametrize("build, name", [
    (lambda b: b + b, "add"), (lambda b: K.square(b), "square"), (lambda b: b * b, "mul"),
    (lambda b: K.maximum(b, b), "maximum"), (lambda b: -b, "neg")])
def test_arithmetic_on_bools_is_an_error_naming_the_op_and_the_cure(build, name):
    b = K.placeholder((2,), dtype="bool")
    with pytest.raises(DTypeError) as info:
        build(b)
    message = str(info.value)
    assert name in message and "bool" in message and "K.cast" in message
    assert "test_dtype_rules.py" in message


def test_logical_ops_need_bools():
    x = K.placeholder((2,), dtype="float32")
    with pytest.raises(DTypeError, match="logical_and.*bool"):
        ew.logical_and(x, x)
    with pytest.raises(DTypeError, match="switch.*bool"):
        ew.switch(x, x, x)


def test_mixed_kernels_compute_in_the_rule_dtype():
    """int64 + float32 computes in float32 (NumPy alone would widen to float64)."""
    x, y = np.array([2**40 + 1]), np.array([0.5], np.float32)
    got = REGISTRY["add"].kernel(x, y)
    assert got.dtype == np.float32 and got[0] == np.float32(2**40 + 1) + np.float32(0.5)


def test_float16_computes_in_float32_and_rounds_on_store():
    x = np.linspace(-12, 12, 97).astype(np.float16)
    for name in ("sigmoid", "softplus", "elu", "tanh"):
        got = REGISTRY[name].kernel(x, **REGISTRY[name].complete_attrs({}))
        want = REGISTRY[name].kernel(x.astype(np.float32),
                                     **REGISTRY[name].complete_attrs({})).astype(np.float16)
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got, want)

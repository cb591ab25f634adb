"""codegen/numpy_backend.py: what the generated program shares and inlines, and its results."""
from __future__ import annotations

import re

import numpy as np
import pytest
from graphk import backend as K
from graphk.ir.rewrite import attrs_key


def _kernel_names(source: str) -> list:
    return re.findall(r"\b(k_\w+?_\d+)\(", source)


def test_nodes_alike_call_one_kernel_and_different_attributes_their_own():
    x = K.placeholder((2, 3), name="x")
    ws = [K.variable(np.eye(3, dtype=np.float32) * (k + 1)) for k in range(3)]
    h = x
    for w in ws:
        h = K.dot(h, w)
    low, high = K.relu(h, threshold=0.5), K.relu(h, threshold=7.0)
    fn = K.function([x], [low, high], passes="none", backend="numpy")
    names = _kernel_names(fn.source)
    dots = [n for n in names if n.startswith("k_dot_")]
    relus = [n for n in names if n.startswith("k_relu_")]
    assert len(dots) == 3 and len(set(dots)) == 1
    assert len(relus) == 2 and len(set(relus)) == 2
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    product = data * 6
    got_low, got_high = fn([data])
    np.testing.assert_array_equal(got_low, np.where(product > 0.5, product, 0))
    np.testing.assert_array_equal(got_high, np.where(product > 7.0, product, 0))


def test_attribute_keys_tell_signed_zeros_bools_and_ints_apart():
    assert attrs_key({"a": 0.0}) != attrs_key({"a": -0.0})
    assert attrs_key({"a": True}) != attrs_key({"a": 1})
    assert attrs_key({"a": float("nan")}) == attrs_key({"a": float("nan")})
    assert attrs_key({"a": (1, 2.0)}) == attrs_key({"a": (1, 2.0)}) != attrs_key({"a": (1, 2)})
    assert attrs_key({"a": np.zeros(2, np.float32)}) != attrs_key({"a": np.zeros(2)})
    assert attrs_key({"a": object()}) is None


def test_a_variable_read_once_is_read_where_it_is_used_and_updates_still_come_after():
    x = K.placeholder((3,), name="x")
    once = K.variable(np.full(3, 2.0, np.float32), name="once")
    state = K.variable(np.zeros(3, np.float32), name="state")
    fn = K.function([x], [x * once, state * 1.0], updates=[K.update(state, x + 1.0)],
                    passes="none", backend="numpy")
    assert re.search(r"\(f0, var\d+\.storage\)", fn.source)  # `once` read in its only use
    data = np.arange(3, dtype=np.float32)
    first = fn([data])
    np.testing.assert_array_equal(first[0], data * 2)
    np.testing.assert_array_equal(first[1], np.zeros(3))  # the value before the update
    K.set_value(once, np.full(3, 5.0, np.float32))
    second = fn([data])
    np.testing.assert_array_equal(second[0], data * 5)
    np.testing.assert_array_equal(second[1], data + 1)
    returned = fn([data])[1]
    returned[0] = 42.0  # a returned value is the caller's own array
    assert K.get_value(state)[0] != 42.0


def test_an_error_in_a_node_reading_an_inlined_variable_names_its_line():
    x = K.placeholder((None,), name="x")
    w = K.variable(np.ones(4, np.float32), name="w")
    y = x * w  # x may be 1 or 4 at run time; 3 does not broadcast
    fn = K.function([x], [y], passes="none", backend="numpy")
    with pytest.raises(Exception, match=r"mul at .*test_codegen_program.py:\d+"):
        fn([np.ones(3, np.float32)])


def test_a_call_nested_in_its_readers_call_names_its_own_line_when_it_fails():
    x = K.placeholder((None,), name="x")
    w = K.variable(np.ones(4, np.float32), name="w")
    product = x * w  # x may be 1 or 4 at run time; 3 does not broadcast
    y = K.exp(K.abs(product))
    fn = K.function([x], [y], passes="none", backend="numpy")
    assert re.search(r"= k_exp_\d+\(\n\s+k_abs_\d+\(\n\s+k_mul_\d+\(", fn.source), fn.source
    np.testing.assert_allclose(fn([np.full(4, -2.0, np.float32)])[0], np.exp(2.0), rtol=1e-6)
    np.testing.assert_allclose(fn([np.full(1, 3.0, np.float32)])[0], np.exp(3.0), rtol=1e-6)
    with pytest.raises(Exception, match=r"mul at .*test_codegen_program.py:\d+") as info:
        fn([np.ones(3, np.float32)])
    line = int(re.search(r"test_codegen_program.py:(\d+)", str(info.value)).group(1))
    assert "product = x * w" in open(__file__).read().splitlines()[line - 1]


def test_values_read_twice_returned_or_multi_output_are_not_nested():
    x = K.placeholder((3,), name="x")
    twice = K.exp(x)
    returned = K.abs(x)
    fn = K.function([x], [twice * twice + 1.0, K.sqrt(returned), returned], passes="none",
                    backend="numpy")
    source = fn.source
    assert re.search(r"v\d+ = k_exp_\d+\(f0\)", source)  # read twice: a name of its own
    assert re.search(r"v\d+ = k_abs_\d+\(f0\)", source)  # also returned
    data = np.array([1.0, 4.0, 9.0], np.float32)
    a, b, c = fn([data])
    np.testing.assert_allclose(a, np.exp(data) ** 2 + 1, rtol=1e-6)
    np.testing.assert_allclose(b, np.sqrt(data), rtol=1e-6)
    np.testing.assert_array_equal(c, data)

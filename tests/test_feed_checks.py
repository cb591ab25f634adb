"""Feed checks that guard every call: values that would wrap, and feeds that are not a list."""
import numpy as np
import pytest

from graphk import backend as K
from graphk.ir.errors import FeedError


def _int32_function():
    x = K.placeholder(shape=(None,), dtype="int32", name="ids")
    return K.function([x], [x + 1])


@pytest.mark.parametrize("value", [2**31 + 5, 2**40, -2**31 - 1])
def test_int64_values_outside_int32_are_rejected_not_wrapped(value):
    f = _int32_function()
    with pytest.raises(FeedError, match=r"int64 values outside int32's range"):
        f([np.array([1, value], dtype=np.int64)])


def test_int64_values_that_fit_int32_are_accepted():
    f = _int32_function()
    out, = f([np.array([1, 2**31 - 2], dtype=np.int64)])
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [2, 2**31 - 1])


def test_negative_values_for_an_unsigned_input_are_rejected():
    x = K.placeholder(shape=(2,), dtype="uint8")
    f = K.function([x], [x])
    with pytest.raises(FeedError, match=r"outside uint8's range \[0, 255\]"):
        f([np.array([-1, 3])])
    np.testing.assert_array_equal(f([np.array([0, 255])])[0], [0, 255])


@pytest.mark.parametrize("shape", [(2, 2), (1, 3)])
def test_a_bare_array_is_not_a_list_of_feeds(shape):
    x = K.placeholder(shape=(3,))
    f = K.function([x], [x * 2])
    with pytest.raises(FeedError, match=r"expects a list of 1 arrays .* got a single array "
                                        r"of shape .* call it as f\(\[array\]\)"):
        f(np.ones(shape))

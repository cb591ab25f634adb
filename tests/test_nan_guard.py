"""K.function(..., nan_guard=True) names the first op producing NaN/Inf and its source line."""
import numpy as np
import pytest

from graphk import backend as K
from graphk.nan_guard import NonFiniteError


def _line_of(marker: str) -> int:
    with open(__file__) as handle:
        for number, line in enumerate(handle, 1):
            if marker in line and "_line_of" not in line:
                return number
    raise AssertionError(marker)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_names_the_op_inside_a_fused_kernel(backend):
    x = K.placeholder((None, 4))
    shifted = x * 2.0 - 1.0
    bad = K.log(shifted)  # GUARD-LOG
    y = K.tanh(bad) + 1.0
    f = K.function([x], [y], nan_guard=True, backend=backend)
    assert np.isfinite(f([np.ones((2, 4), "float32")])).all()
    with pytest.raises(NonFiniteError) as caught:
        f([np.zeros((2, 4), "float32")])  # log(-1) is NaN
    message = str(caught.value)
    assert "log at" in message and f"test_nan_guard.py:{_line_of('GUARD-LOG')}" in message
    assert "NaN" in message


def test_a_nan_feed_is_named_as_the_source():
    x = K.placeholder((3,), name="pixels")
    f = K.function([x], [K.exp(x) * 2.0], nan_guard=True)
    with pytest.raises(NonFiniteError, match=r"read NaN in its input 0, which comes from "
                                             r"placeholder pixels \(a feed\)"):
        f([np.array([1.0, np.nan, 0.0], "float32")])


def test_a_failed_guarded_call_changes_no_variable():
    v = K.variable(np.ones(3), name="v")
    x = K.placeholder((3,))
    f = K.function([x], [K.log(x)], updates=[K.update_add(v, K.log(x))], nan_guard=True)
    with pytest.raises(NonFiniteError, match="log"):
        f([np.array([1.0, -1.0, 4.0], "float32")])
    np.testing.assert_array_equal(K.get_value(v), np.ones(3))
    f([np.array([1.0, 1.0, np.e], "float32")])
    np.testing.assert_allclose(K.get_value(v), [1.0, 1.0, 2.0], rtol=1e-6)


def test_inf_is_reported_too_and_unguarded_functions_do_not_check():
    x = K.placeholder((2,))
    y = K.exp(x * 100.0)
    with pytest.raises(NonFiniteError, match="produced Inf"):
        K.function([x], [y], nan_guard=True)([np.array([10.0, 0.0], "float32")])
    out, = K.function([x], [y])([np.array([10.0, 0.0], "float32")])
    assert np.isinf(out[0])


def test_nan_guard_and_profile_together():
    x = K.placeholder((2,))
    f = K.function([x], [K.log(x)], nan_guard=True, profile=True)
    f([np.array([1.0, 2.0], "float32")])
    assert "log" in f.profile(show=False)
    with pytest.raises(NonFiniteError):
        f([np.array([-1.0, 2.0], "float32")])

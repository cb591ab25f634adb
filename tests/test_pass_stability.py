"""passes/stability.py: each rule as IR text, and finite results where the naive graph
overflows (compiled with passes="none" against the default pipeline)."""
from __future__ import annotations

import numpy as np
import pytest
from graphk import backend as K
from graphk.ir.ops import elementwise as ew
from graphk.ir.ops import nn
from graphk.ir.ops.registry import REGISTRY
from graphk.passes.stability import stabilize
from test_pass_helpers import X, check_pass

F = "float32[?0,3]"


def _graph(body: str, out: str = "%r") -> str:
    return f"graph @f(%x) {{\n  {X} : {F}\n{body}\n  return {out}\n}}"


def test_log_of_softmax_is_log_softmax():
    check_pass(stabilize,
               _graph(f"  %s = softmax(%x) {{axis=1}} : {F}\n  %r = log(%s) : {F}"),
               _graph(f"  %r = log_softmax(%x) {{axis=1}} : {F}"))


def test_log_of_sigmoid_is_minus_softplus_of_minus_x():
    check_pass(stabilize,
               _graph(f"  %s = sigmoid(%x) : {F}\n  %r = log(%s) : {F}"),
               _graph(f"  %n = neg(%x) : {F}\n  %p = softplus(%n) : {F}\n  %r = neg(%p) : {F}"))


def test_log_of_one_minus_sigmoid_is_minus_softplus():
    check_pass(stabilize,
               _graph(f"""  %s = sigmoid(%x) : {F}
  %one = constant {{value=dense<float32[]>1.0}} : float32[]
  %d = sub(%one, %s) : {F}
  %r = log(%d) : {F}"""),
               _graph(f"  %p = softplus(%x) : {F}\n  %r = neg(%p) : {F}"))


def test_crossentropy_of_a_softmax_uses_the_logits():
    t = '%t = placeholder {name="t", default=none} : float32[?0,3]'
    head = f"graph @f(%x, %t) {{\n  {X} : {F}\n  {t}\n"
    check_pass(stabilize,
               head + f"""  %s = softmax(%x) {{axis=1}} : {F}
  %r = categorical_crossentropy(%t, %s) {{axis=1, epsilon=1e-07}} : float32[?0]
  return %r\n}}""",
               head + "  %r = softmax_cross_entropy(%t, %x) {axis=1} : float32[?0]\n"
                      "  return %r\n}")


def _compare(build, *arrays):
    """(naive results, stabilized results) of build(*placeholders)."""
    inputs = [K.placeholder(a.shape, dtype=str(a.dtype)) for a in arrays]
    output = build(*inputs)
    naive = K.function(inputs, [output], passes="none")(list(arrays))[0]
    stable = K.function(inputs, [output])(list(arrays))[0]
    return naive, stable


def test_log_softmax_is_finite_where_log_of_softmax_is_not():
    x = np.array([[0.0, -200.0, 200.0]], np.float32)
    naive, stable = _compare(lambda v: ew.log(nn.softmax(v, 1)), x)
    assert not np.all(np.isfinite(naive))
    np.testing.assert_allclose(stable, [[-200.0, -400.0, 0.0]], rtol=1e-6)


@pytest.mark.parametrize("x, expected", [(-200.0, -200.0), (-30.0, -30.0), (0.0, -np.log(2))])
def test_log_sigmoid_is_finite_and_accurate(x, expected):
    naive, stable = _compare(lambda v: ew.log(ew.sigmoid(v)), np.array([x], np.float32))
    if x == -200.0:
        assert not np.isfinite(naive[0])
    np.testing.assert_allclose(stable, [expected], rtol=1e-6)


def test_log_one_minus_sigmoid_is_finite():
    x = np.array([200.0], np.float32)
    naive, stable = _compare(lambda v: ew.log(ew.sub(1.0, ew.sigmoid(v))), x)
    assert not np.isfinite(naive[0])
    np.testing.assert_allclose(stable, [-200.0], rtol=1e-6)


def test_crossentropy_of_softmax_is_exact_where_clipping_caps_it():
    logits = np.array([[0.0, -1000.0]], np.float32)
    target = np.array([[0.0, 1.0]], np.float32)
    naive, stable = _compare(
        lambda t, z: nn.categorical_crossentropy(t, nn.softmax(z, 1), 1, 1e-7), target, logits)
    assert naive[0] < 20  # the clipped probability caps the naive loss at -log(1e-7)
    np.testing.assert_allclose(stable, [1000.0], rtol=1e-6)


@pytest.mark.skipif("log1p" not in REGISTRY or "expm1" not in REGISTRY,
                    reason="graphk has no log1p/expm1 op; those two rules are off")
def test_log1p_and_expm1_keep_small_values():
    x = np.array([1e-10], np.float32)
    _, stable = _compare(lambda v: ew.log(ew.add(1.0, v)), x)
    np.testing.assert_allclose(stable, x, rtol=1e-5)
    _, stable = _compare(lambda v: ew.sub(ew.exp(v), 1.0), x)
    np.testing.assert_allclose(stable, x, rtol=1e-5)

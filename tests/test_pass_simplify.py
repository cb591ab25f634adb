"""passes/simplify.py: one IR-in/IR-out case per rule, and the IEEE cases no rule may touch."""
from __future__ import annotations

import numpy as np
import pytest
from graphk.passes.simplify import RULES, simplify
from test_pass_helpers import X, Y, check_pass, evaluate, unchanged

F = "float32[?0,3]"


def _graph(lines: str, out: str = "%r", inputs: str = "%x", x_type: str = F,
           y_type: str | None = None) -> str:
    y = f"\n  {Y} : {y_type}" if y_type else ""
    return f"graph @f({inputs}) {{\n  {X} : {x_type}{y}\n{lines}\n  return {out}\n}}"


def _const(name: str, text: str, dtype: str = "float32", shape: str = "") -> str:
    return f"  %{name} = constant {{value=dense<{dtype}[{shape}]>{text}}} : {dtype}[{shape}]"


CASES = {
    "identity cast": (
        "  %r = cast(%x) {dtype=\"float32\"} : " + F, "%x"),
    "reduction over no axes": (
        "  %r = reduce_sum(%x) {axes=(), keepdims=false} : " + F, "%x"),
    "unreduce over no axes": (
        "  %r = unreduce(%x, %x) {axes=(), keepdims=false} : " + F, "%x"),
    "x * 1": (_const("c", "1.0") + "\n  %r = mul(%x, %c) : " + F, "%x"),
    "1 * x": (_const("c", "1.0") + "\n  %r = mul(%c, %x) : " + F, "%x"),
    "x + -0.0": (_const("c", "-0.0") + "\n  %r = add(%x, %c) : " + F, "%x"),
    "x - 0": (_const("c", "0.0") + "\n  %r = sub(%x, %c) : " + F, "%x"),
    "x / 1": (_const("c", "1.0") + "\n  %r = div(%x, %c) : " + F, "%x"),
    "neg of neg": ("  %a = neg(%x) : " + F + "\n  %r = neg(%a) : " + F, "%x"),
    "stop_gradient": ("  %r = stop_gradient(%x) : " + F, "%x"),
    "squeeze of expand_dims": (
        "  %a = expand_dims(%x) {axis=1} : float32[?0,1,3]\n"
        "  %r = squeeze(%a) {axis=1} : " + F, "%x"),
    "reshape round trip": (
        "  %a = reshape(%x) {shape=(-1,)} : float32[?1]\n"
        "  %r = reshape_like(%a, %x) : " + F, "%x"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_reduces_to_x(name):
    lines, expected = CASES[name]
    check_pass(simplify, _graph(lines), _graph("", out=expected))


def test_integer_x_plus_zero_is_x():
    body = _const("c", "0", dtype="int32") + "\n  %r = add(%x, %c) : int32[?0,3]"
    check_pass(simplify, _graph(body, x_type="int32[?0,3]"),
               _graph("", out="%x", x_type="int32[?0,3]"))


def test_transpose_of_transpose_composes_and_cancels():
    x_type = "float32[2,3,4]"
    composed = _graph("  %a = transpose(%x) {perm=(2, 0, 1)} : float32[4,2,3]\n"
                      "  %r = transpose(%a) {perm=(2, 0, 1)} : float32[3,4,2]", x_type=x_type)
    check_pass(simplify, composed,
               _graph("  %r = transpose(%x) {perm=(1, 2, 0)} : float32[3,4,2]", x_type=x_type))
    cancelled = _graph("  %a = transpose(%x) {perm=(2, 0, 1)} : float32[4,2,3]\n"
                       "  %r = transpose(%a) {perm=(1, 2, 0)} : float32[2,3,4]", x_type=x_type)
    check_pass(simplify, cancelled, _graph("", out="%x", x_type=x_type))


def test_reshape_of_reshape_is_one_reshape():
    x_type = "float32[2,6]"
    check_pass(simplify,
               _graph("  %a = reshape(%x) {shape=(3, 4)} : float32[3,4]\n"
                      "  %r = reshape(%a) {shape=(4, -1)} : float32[4,3]", x_type=x_type),
               _graph("  %r = reshape(%x) {shape=(4, -1)} : float32[4,3]", x_type=x_type))


def test_sum_to_over_leading_axes_is_a_reduce_sum():
    check_pass(simplify,
               _graph("  %r = sum_to(%x, %y) : float32[3]", inputs="%x, %y",
                      y_type="float32[3]"),
               _graph("  %r = reduce_sum(%x) {axes=(0,), keepdims=false} : float32[3]",
                      inputs="%x, %y", y_type="float32[3]"))


def test_sum_to_a_size_one_axis_stays():
    unchanged(simplify, _graph("  %r = sum_to(%x, %y) : float32[1,3]", inputs="%x, %y",
                               y_type="float32[1,3]"))


@pytest.mark.parametrize("exponent, lines", [
    ("2.0", "  %r = square(%x) : " + F),
    ("3.0", "  %s = square(%x) : " + F + "\n  %r = mul(%s, %x) : " + F),
    ("0.5", "  %r = sqrt(%x) : " + F),
    ("-1.0", _const("one", "1.0") + "\n  %r = div(%one, %x) : " + F),
    ("1.0", None),
])
def test_small_integer_powers(exponent, lines):
    before = _graph(_const("e", exponent) + "\n  %r = pow(%x, %e) : " + F)
    after = _graph(lines) if lines else _graph("", out="%x")
    result = check_pass(simplify, before, after)
    x = np.array([[0.5, 2.0, 3.0]], np.float32)
    from graphk.ir import parse
    np.testing.assert_allclose(evaluate(result, x)[0], evaluate(parse(before), x)[0], rtol=1e-6)


def test_uniform_vector_constant_becomes_a_scalar():
    check_pass(simplify,
               _graph(_const("c", "[0.25, 0.25, 0.25]", shape="3") + "\n  %r = mul(%x, %c) : " + F),
               _graph(_const("c", "0.25") + "\n  %r = mul(%x, %c) : " + F))


def test_a_broadcast_seed_of_one_disappears():
    """autodiff's cotangent of sum(x * y) is unreduce(1.0, x) * y (broadcast_like(1.0, x)
    * y after decomposition): that is y."""
    check_pass(simplify,
               _graph(_const("c", "1.0") + "\n  %b = broadcast_like(%c, %x) : " + F
                      + "\n  %r = mul(%b, %y) : " + F, inputs="%x, %y", y_type=F),
               _graph("", out="%y", inputs="%x, %y", y_type=F))
    check_pass(simplify,
               _graph(_const("c", "1.0") + "\n  %b = unreduce(%c, %x) {axes=(0, 1), "
                      "keepdims=false} : " + F + "\n  %r = mul(%b, %y) : " + F,
                      inputs="%x, %y", y_type=F),
               _graph("", out="%y", inputs="%x, %y", y_type=F))
    unchanged(simplify,  # the broadcast sets the shape: it stays
              _graph(_const("c", "1.0") + "\n  %b = broadcast_like(%c, %x) : " + F
                     + "\n  %r = mul(%b, %y) : " + F, inputs="%x, %y", y_type="float32[3]"))


def test_uniform_constant_that_sets_the_shape_stays():
    unchanged(simplify, _graph(_const("c", "[0.25, 0.25, 0.25]", shape="3")
                               + "\n  %r = mul(%x, %c) : float32[3]", x_type="float32[]"))


def test_dot_of_matrices_is_matmul():
    check_pass(simplify,
               _graph("  %r = dot(%x, %y) : float32[?0,4]", inputs="%x, %y", y_type="float32[3,4]"),
               _graph("  %r = matmul(%x, %y) {transpose_a=false, transpose_b=false} : "
                      "float32[?0,4]", inputs="%x, %y", y_type="float32[3,4]"))


@pytest.mark.parametrize("subscripts, args, ta, tb, y_type, out", [
    ("ij,jk->ik", "%x, %y", "false", "false", "float32[3,4]", "float32[?0,4]"),
    ("ij,kj->ik", "%x, %y", "false", "true", "float32[4,3]", "float32[?0,4]"),
    ("ji,jk->ik", "%x, %y", "true", "false", "float32[?0,4]", "float32[3,4]"),
    ("ij,jk->ki", "%y, %x", "true", "true", "float32[3,4]", "float32[4,?0]"),
])
def test_matrix_contractions_are_matmul(subscripts, args, ta, tb, y_type, out):
    before = _graph(f'  %r = contract(%x, %y) {{subscripts="{subscripts}"}} : {out}',
                    inputs="%x, %y", y_type=y_type)
    after = _graph(f"  %r = matmul({args}) {{transpose_a={ta}, transpose_b={tb}}} : {out}",
                   inputs="%x, %y", y_type=y_type)
    result = check_pass(simplify, before, after)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    y = rng.normal(size=(4, 3) if subscripts == "ij,kj->ik" else (3, 4)).astype(np.float32)
    if subscripts == "ji,jk->ik":
        x, y = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 4)).astype(
            np.float32)
    from graphk.ir import parse
    np.testing.assert_allclose(evaluate(result, x, y)[0], evaluate(parse(before), x, y)[0],
                               rtol=1e-5)


def test_relu_grad_reads_the_relu_output():
    attrs = "{alpha=0.0, max_value=none, threshold=0.0}"
    before = _graph(f"  %h = relu(%x) {attrs} : {F}\n  %r = relu_grad(%y, %x) {attrs} : {F}",
                    out="%h, %r", inputs="%x, %y", y_type=F.replace("?0", "?0"))
    after = _graph(f"  %h = relu(%x) {attrs} : {F}\n  %r = relu_grad(%y, %h) {attrs} : {F}",
                   out="%h, %r", inputs="%x, %y", y_type=F)
    check_pass(simplify, before, after)


@pytest.mark.parametrize("lines, x_type", [
    (_const("c", "0.0") + "\n  %r = mul(%x, %c) : " + F, F),  # x * 0 is NaN for x = inf, NaN
    ("  %r = sub(%x, %x) : " + F, F),  # x - x is NaN for x = inf or NaN
    (_const("c", "0.0") + "\n  %r = add(%x, %c) : " + F, F),  # -0.0 + 0.0 is 0.0, not -0.0
    ("  %r = cast(%x) {dtype=\"float64\"} : float64[?0,3]", F),
    # x * ones(3) with x of width 1: the constant sets the result's shape, so it stays
    (_const("c", "[1.0, 1.0, 1.0]", shape="3") + "\n  %r = mul(%x, %c) : float32[?0,3]",
     "float32[?0,1]"),
])
def test_ieee_and_broadcasting_cases_are_left_alone(lines, x_type):
    unchanged(simplify, _graph(lines, x_type=x_type))


def test_every_rule_has_a_docstring_and_a_name():
    for rule in RULES:
        assert rule.name and rule.rewrite.__doc__, rule

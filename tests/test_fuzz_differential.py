"""A fixed-seed differential fuzzing campaign (tests/fuzz_graphs.py) and its regressions."""
import numpy as np

from fuzz_graphs import campaign, interpret

from graphk import backend as K
from graphk.ir import parse


def test_fixed_seed_campaign_finds_nothing():
    done, failures = campaign(seed=20261129, count=150)
    assert done == 150
    assert not failures, "\n".join(f"{error}\n  {case}" for case, error in failures[:5])


def test_interpret_runs_each_kernel_of_the_unoptimized_graph():
    x = K.placeholder((None, 3), dtype="float64")
    y = K.softmax(x * 2.0)
    from graphk.ir.graph import Graph

    feed = np.arange(6, dtype="float64").reshape(2, 3)
    e = np.exp(2 * feed - (2 * feed).max(axis=1, keepdims=True))
    np.testing.assert_allclose(interpret(Graph([x], [y]), [feed])[0],
                               e / e.sum(axis=1, keepdims=True))


# Regression found by the campaign: the checker's own finite differences wrote into a copy
# when a feed was Fortran-ordered (reshape(-1) of a non-C array copies), so the gradient of
# min(hard_sigmoid(x)) looked wrong. Kept as IR text so the graph itself stays covered.
_MIN_OF_HARD_SIGMOID = """
graph @regression(%0) {
  %0 = placeholder {name=none, default=none} : float64[16,5,1]
  %1 = hard_sigmoid(%0) : float64[16,5,1]
  %2 = reduce_min(%1) {axes=(1,), keepdims=true} : float64[16,1,1]
  return %2, %1
}
"""


def test_min_of_hard_sigmoid_on_a_fortran_ordered_feed():
    graph = parse(_MIN_OF_HARD_SIGMOID)
    feed = np.asfortranarray(np.random.default_rng(0).uniform(-2, 2, (16, 5, 1)))
    want = interpret(graph, [feed])
    for backend in ("numpy", "llvm"):
        got = K.function(graph.inputs, graph.outputs, backend=backend)([feed])
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12)

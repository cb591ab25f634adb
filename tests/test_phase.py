"""graphk/backend/phase.py: K.function and K.gradients specialized on the learning phase,
and the `switch on a constant condition` rule (passes/simplify.py) they rely on."""
from __future__ import annotations

import numpy as np
import pytest
from graphk.passes.simplify import simplify
from test_pass_helpers import X, check_pass, unchanged

from graphk import backend as K
from graphk.backend.phase import PhaseFunction, phase_key

F = "float32[?0,3]"


def _switch_graph(condition: str, shape: str = "") -> str:
    return ("graph @f(%x, %y) {\n"
            f"  {X} : {F}\n  %y = placeholder {{name=\"y\", default=none}} : {F}\n"
            f"  %c = constant {{value=dense<bool[{shape}]>{condition}}} : bool[{shape}]\n"
            f"  %r = switch(%c, %x, %y) : {F}\n  return %r\n}}")


def _branch_graph(out: str) -> str:
    return ("graph @f(%x, %y) {\n"
            f"  {X} : {F}\n  %y = placeholder {{name=\"y\", default=none}} : {F}\n"
            f"  return {out}\n}}")


@pytest.mark.parametrize("condition, shape, taken", [
    ("true", "", "%x"), ("false", "", "%y"), ("[true, true, true]", "3", "%x"),
    ("[false, false, false]", "3", "%y")])
def test_switch_on_a_uniform_constant_condition_is_its_branch(condition, shape, taken):
    check_pass(simplify, _switch_graph(condition, shape), _branch_graph(taken))


def test_switch_on_a_mixed_condition_stays():
    unchanged(simplify, _switch_graph("[true, false, true]", "3"))


def _dropout_net(seed=None):
    K.clear_session()
    x = K.placeholder((None, 4), name="x")
    w = K.variable(np.linspace(-1.0, 1.0, 4).astype(np.float32), name="w")
    h = x * w
    y = K.in_train_phase(lambda: K.dropout(h, 0.5, seed=seed), h * 3.0)
    return x, w, K.sum(K.square(y))


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_each_phase_computes_only_its_branch_and_matches_numpy(backend):
    x, w, loss = _dropout_net(seed=3)
    grad, = K.gradients(loss, [w])
    f = K.function([x, K.learning_phase()], [loss, grad], backend=backend)
    assert isinstance(f, PhaseFunction)
    data = np.arange(1.0, 9.0, dtype=np.float32).reshape(2, 4)
    weights = np.linspace(-1.0, 1.0, 4).astype(np.float32)
    test_loss, test_grad = f([data, 0])
    np.testing.assert_allclose(test_loss, np.sum((data * weights * 3.0) ** 2), rtol=1e-5)
    np.testing.assert_allclose(test_grad, np.sum(18.0 * data * data * weights, axis=0), rtol=1e-5)
    assert "random_" not in str(f.ir) and "switch" not in str(f.ir)
    row = data[:1]
    train_loss, train_grad = f([row, 1])
    assert "switch" not in str(f.ir) and str(f.ir).count("random_binomial") == 1
    # d/dw sum((2 m x w)^2) = 8 m x^2 w for one row: the mask m the loss saw is the one
    # differentiated, and nothing of the test branch (h * 3) is
    mask = train_grad / (8.0 * row[0] ** 2 * weights)
    np.testing.assert_allclose(mask, np.round(mask), atol=1e-5)
    assert set(np.round(mask)) <= {0.0, 1.0}
    np.testing.assert_allclose(train_loss, np.sum(4.0 * np.round(mask) * (row[0] * weights) ** 2),
                               rtol=1e-5)


def test_specialized_and_unspecialized_graphs_agree():
    x, w, loss = _dropout_net(seed=5)  # a given seed: every graph draws the same samples
    grad, = K.gradients(loss, [w])
    data = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    special = K.function([x, K.learning_phase()], [loss, grad])
    plain = K.function([x, K.learning_phase()], [loss, grad]).specialization(None)
    assert "switch" in str(plain.ir)
    for phase in (1, 1, 0):  # (the unspecialized graph draws in test too)
        ours, theirs = special([data, phase]), plain([data, phase])
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-6)


def test_unseeded_samples_follow_numpys_seed_at_k_function():
    results = []
    for _ in range(2):
        x, w, loss = _dropout_net()
        np.random.seed(7)
        f = K.function([x, K.learning_phase()], [loss])
        np.random.rand(3)  # drawn after K.function: the function's samples do not change
        results.append([f([np.ones((2, 4), np.float32), 1])[0] for _ in range(3)])
    assert results[0] == results[1] and len(set(results[0])) > 1


def test_a_phase_other_than_zero_or_one_runs_the_unspecialized_graph():
    x, w, loss = _dropout_net(seed=1)
    f = K.function([x, K.learning_phase()], [loss])
    data = np.ones((2, 4), np.float32)
    f([data, np.uint8(2)])  # 2 is true (training), but not a value specialized on
    f([data, 1])
    assert sorted(map(str, f._compiled)) == ["1", "None"]
    with pytest.raises(Exception, match="keras_learning_phase|feed|dtype|shape"):
        f([data, np.ones(3)])


def test_a_phase_read_but_not_fed_is_compiled_as_test():
    x, w, loss = _dropout_net()
    f = K.function([x], [loss])
    assert "random_" not in str(f.ir) and "switch" not in str(f.ir)
    data = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(f([data])[0], np.sum((data * np.linspace(-1, 1, 4) * 3) ** 2),
                               rtol=1e-5)


@pytest.mark.parametrize("feed, key", [(0, 0), (1, 1), (1.0, 1), (True, 1), (np.uint8(0), 0),
                                       (np.array(1), 1), (2, None), (0.5, None),
                                       (np.zeros(2), None), ("1", None)])
def test_phase_key(feed, key):
    assert phase_key(feed) == key


def test_gradient_of_a_parameter_only_one_phase_reads_is_zero_in_the_other():
    K.clear_session()
    x = K.placeholder((None, 2))
    a = K.variable(np.ones(2, np.float32))
    b = K.variable(np.full(2, 2.0, np.float32))
    loss = K.sum(K.in_train_phase(x * a, x * b))
    ga, gb = K.gradients(loss, [a, b])
    f = K.function([x, K.learning_phase()], [ga, gb])
    data = np.ones((3, 2), np.float32)
    train, test = f([data, 1]), f([data, 0])
    assert train[0].tolist() == [3, 3] and train[1].tolist() == [0, 0]
    assert test[0].tolist() == [0, 0] and test[1].tolist() == [3, 3]

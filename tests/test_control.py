"""Learning-phase selection, control dependencies, print_tensor, sessions."""
import numpy as np
import pytest

from graphk import backend as K


def test_in_train_phase_follows_the_fed_learning_phase():
    K.clear_session()
    x = K.placeholder((None, 2))
    out = K.in_train_phase(x * 2.0, lambda: x * 3.0)
    assert out._uses_learning_phase
    phase = K.learning_phase()
    f = K.function([x, phase], [out])
    data = np.ones((1, 2), np.float32)
    assert f([data, 1])[0].tolist() == [[2, 2]]
    assert f([data, 0])[0].tolist() == [[3, 3]]
    assert K.function([x], [out])([data])[0].tolist() == [[3, 3]]  # defaults to test
    assert K.in_test_phase(x, x * 5.0, training=1) is not x
    assert K.in_train_phase(x, x * 5.0, training=1) is x


def test_control_dependencies_make_outputs_see_updates_applied_once():
    total = K.variable(0.0, name="total")
    count = K.variable(0.0, name="count")
    values = K.placeholder((None,), name="values")
    updates = [K.update_add(total, K.sum(values)),
               K.update_add(count, K.cast(K.shape(values)[0], "float32"))]
    with K.control_dependencies(updates):
        mean_so_far = total / count
    f = K.function([values], [mean_so_far], updates=updates)
    assert float(f([np.array([1.0, 3.0], np.float32)])[0]) == 2.0
    assert float(f([np.array([8.0], np.float32)])[0]) == 4.0
    assert float(K.get_value(total)) == 12.0 and float(K.get_value(count)) == 3.0


def test_print_tensor_prints_when_run_and_returns_its_input(capsys):
    x = K.placeholder((2,))
    y = K.print_tensor(x * 2.0, message="doubled: ")
    (out,) = K.function([x], [y + 1.0])([np.array([1.0, 2.0], np.float32)])
    assert out.tolist() == [3.0, 5.0]
    assert "doubled: [2. 4.]" in capsys.readouterr().out


def test_pattern_broadcast_checks_marked_axes():
    x = K.placeholder((None, 1, 3))
    assert K.pattern_broadcast(x, [False, True, False]) is x
    with pytest.raises(ValueError, match="axis 2"):
        K.pattern_broadcast(x, [False, False, True])


def test_session_run_evaluates_with_feeds():
    x = K.placeholder((2,))
    assert K.get_session().run(x * 2.0, {x: np.array([1.0, 2.0])}).tolist() == [2.0, 4.0]

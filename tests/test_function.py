"""K.function: feeds, updates (Theano semantics), atomicity, errors, IR access, scale."""
import numpy as np
import pytest

from graphk import backend as K
from graphk.ir import FeedError, Graph, topological_order


def test_feeds_cast_safely_and_results_are_arrays():
    x = K.placeholder((None, 2), name="x")
    f = K.function([x], [x * 2.0])
    (out,) = f([np.array([[1, 2]], dtype=np.int64)])
    assert out.dtype == np.float32 and out.tolist() == [[2.0, 4.0]]
    (out,) = f([[[1.5, 2.5]]])  # nested lists are fed too
    assert out.tolist() == [[3.0, 5.0]]


def test_float_feed_into_int_placeholder_is_rejected():
    x = K.placeholder((3,), dtype="int32", name="labels")
    f = K.function([x], [x + 1])
    with pytest.raises(FeedError, match="'labels'.*int32.*float64"):
        f([np.ones(3)])


def test_wrong_count_names_the_inputs():
    x = K.placeholder((2,), name="x")
    y = K.placeholder((2,), name="y")
    f = K.function([x, y], [x + y])
    with pytest.raises(FeedError, match=r"expects 2 feeds \['x', 'y'\], got 1"):
        f([np.ones(2)])


def test_wrong_shape_names_placeholder_expected_and_given():
    x = K.placeholder((None, 784), name="images")
    f = K.function([x], [x * 1.0])
    with pytest.raises(FeedError) as info:
        f([np.ones((5, 700), dtype=np.float32)])
    message = str(info.value)
    assert "'images'" in message and "784" in message and "(5, 700)" in message


def test_symbolic_dims_must_agree_across_feeds():
    x = K.placeholder((None, 3), name="x")
    y = K.placeholder((None, 3), name="y")
    f = K.function([x, y], [x + y])
    f([np.ones((4, 3)), np.ones((4, 3))])
    with pytest.raises(FeedError, match="'x'.*4.*'y'.*5"):
        f([np.ones((4, 3)), np.ones((5, 3))])


def test_placeholder_missing_from_inputs_is_a_compile_error():
    x = K.placeholder((2,), name="x")
    y = K.placeholder((2,), name="forgotten")
    with pytest.raises(FeedError, match="forgotten"):
        K.function([x], [x + y])


def test_unknown_keyword_and_backend_are_errors():
    x = K.placeholder((2,))
    with pytest.raises(ValueError, match="bogus"):
        K.function([x], [x], bogus=1)
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        K.function([x], [x], backend="cuda")


def test_updates_use_values_from_before_the_call():
    a = K.variable(1.0, name="a")
    b = K.variable(10.0, name="b")
    f = K.function([], [a + b], updates=[K.update(a, b), K.update(b, a)])
    (total,) = f([])
    assert float(total) == 11.0  # outputs see the values before the updates
    assert K.get_value(a) == 10.0 and K.get_value(b) == 1.0  # a swap: both read old values


def test_set_value_between_calls_is_seen():
    w = K.variable(np.ones(3), name="w")
    f = K.function([], [w * 2.0])
    assert f([])[0].tolist() == [2, 2, 2]
    K.set_value(w, np.array([1.0, 2.0, 3.0]))
    assert f([])[0].tolist() == [2, 4, 6]


def test_returned_variable_is_a_copy():
    w = K.variable(np.ones(2), name="w")
    (out,) = K.function([], [w])([])
    out[0] = 5.0
    assert K.get_value(w).tolist() == [1.0, 1.0]


def test_failed_call_leaves_every_variable_unchanged():
    x = K.placeholder((None,), name="x")
    a = K.variable(np.zeros(3), name="a")
    b = K.variable(np.zeros(3), name="b")
    # The second update's value has the batch's shape, which must be (3,) at run time.
    f = K.function([x], [x], updates=[K.update_add(a, 1.0), K.update(b, x)])
    f([np.ones(3)])
    assert K.get_value(a).tolist() == [1, 1, 1]
    with pytest.raises(FeedError, match="'b'"):
        f([np.ones(4)])
    assert K.get_value(a).tolist() == [1, 1, 1]  # the first update was not applied either
    assert K.get_value(b).tolist() == [1, 1, 1]


def test_two_updates_of_one_variable_are_an_error_and_a_repeat_is_applied_once():
    v = K.variable(0.0, name="v")
    with pytest.raises(ValueError, match="two different updates"):
        K.function([], [], updates=[K.update_add(v, 1.0), K.update_add(v, 2.0)])
    increment = K.update_add(v, 1.0)
    f = K.function([], [], updates=[increment, [increment]])
    f([])
    assert float(K.get_value(v)) == 1.0


def test_update_with_wrong_static_shape_is_a_build_error():
    v = K.variable(np.zeros(3), name="v")
    with pytest.raises(ValueError, match="'v'.*\\(4,\\)"):
        K.function([], [], updates=[K.update(v, K.constant(np.zeros(4)))])


def test_runtime_kernel_error_names_op_and_user_line():
    x = K.placeholder((None,), dtype="int32", name="x")
    y = K.placeholder((None,), dtype="int32", name="y")
    f = K.function([x, y], [x // y])
    with pytest.raises(Exception) as info, np.errstate(all="raise"):
        f([np.ones(2, np.int32), np.zeros(2, np.int32)])
    assert "floordiv" in str(info.value) and "test_function.py" in str(info.value)


def test_ir_text_and_dump_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHK_DUMP_DIR", str(tmp_path))
    x = K.placeholder((None, 3), name="x")
    f = K.function([x], [K.exp(x)], name="dumped")
    text = str(f.ir)
    assert "placeholder" in text and "exp(" in text and "float32[?0,3]" in text
    (directory,) = tmp_path.glob("dumped.*")  # one per compiled function (passes/report.py)
    last = sorted(directory.glob("*.gkir"))[-1]
    assert last.read_text() == text + "\n"


def test_chain_of_100000_nodes_sorts_prints_and_runs():
    x = K.placeholder((2,), name="x")
    y = x
    from graphk.ir.ops.registry import apply
    one = K.constant(1.0)
    for _ in range(100_000):
        y = apply("add", [y, one], location="chain")
    assert len(topological_order([y])) == 100_002
    graph = Graph([x], [y])
    assert len(str(graph).splitlines()) > 100_000
    f = K.function([x], [y])
    assert f([np.zeros(2, np.float32)])[0].tolist() == [100_000.0, 100_000.0]


def test_results_are_writable_and_own_their_memory():
    x = K.placeholder((2, 3), name="x")
    (grad,) = K.gradients(K.sum(x), [x])  # a broadcast of the seed: a read-only view inside
    w = K.variable(np.ones((2, 3)), name="w")
    out_grad, out_view = K.function([x], [grad, K.reshape(w, (-1,))])([np.ones((2, 3))])
    out_grad[0, 0] = 5.0
    out_view[0] = 5.0
    assert K.get_value(w)[0, 0] == 1.0


def test_an_update_value_that_is_also_an_output_is_not_shared():
    v = K.variable(np.zeros(3), name="v")
    w = K.variable(np.zeros(3), name="w")
    new = v + 1.0
    (out,) = K.function([], [new], updates=[(v, new), (w, new)])([])
    out[:] = 42.0
    assert K.get_value(v).tolist() == [1, 1, 1] and K.get_value(w).tolist() == [1, 1, 1]
    K.set_value(v, np.zeros(3))
    assert K.get_value(w).tolist() == [1, 1, 1]


def test_resize_by_one_does_not_hand_out_the_variable():
    v = K.variable(np.arange(8.0).reshape(1, 2, 2, 2), name="v")
    (out,) = K.function([], [K.resize_images(v, 1, 1, "channels_last", "bilinear")])([])
    out += 100
    assert K.get_value(v).max() == 7.0

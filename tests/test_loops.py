"""Symbolic loops: K.rnn, K.map_fn, K.foldl, K.foldr and the scan op behind them.

Results are checked against NumPy loops with Keras' semantics (the TensorFlow
backend's masking: a masked step keeps the previous output and states),
gradients against central differences (backpropagation through time with
respect to inputs, initial states and captured weights), and the IR text
of graphs holding loops is round-tripped.
"""
import numpy as np
import pytest

from graphk import backend as K
from graphk.ir import Graph, ShapeError, VerifyError, parse, verify
from graphk.ir.ops import REGISTRY
from graphk.ir.ops.registry import apply
from graphk.passes.autodiff import gradients

from harness import check_gradients, check_op

RNG = np.random.default_rng(0)


def _uniform(*shape, scale=1.0):
    return RNG.uniform(-scale, scale, shape)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# --- NumPy references ---------------------------------------------------------------------

def numpy_rnn(step, x, states, go_backwards=False, mask=None, constants=()):
    """Keras' rnn: (last_output, outputs (batch, time, ...), states)."""
    order = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    outputs = []
    for t in order:
        output, new_states = step(x[:, t], list(states) + list(constants))
        if mask is not None:
            keep = mask[:, t].astype(bool)
            previous = outputs[-1] if outputs else np.zeros_like(output)
            output = np.where(_expand(keep, output), output, previous)
            new_states = [np.where(_expand(keep, n), n, s) for n, s in zip(new_states, states)]
        outputs.append(output)
        states = new_states
    return outputs[-1], np.stack(outputs, axis=1), states


def _expand(mask, like):
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))


def simple_step(lib, W, U, b):
    """SimpleRNN's cell: h = tanh(x W + h U + b); output h."""
    def step(x, states):
        h = lib.tanh(lib.dot(x, W) + lib.dot(states[0], U) + b)
        return h, [h]
    return step


def lstm_step(lib, W, U, sigmoid):
    """An LSTM cell with states [h, c]; the gates come from one product each."""
    units = UNITS

    def step(x, states):
        h, c = states[0], states[1]
        z = lib.dot(x, W) + lib.dot(h, U)
        i, f = sigmoid(z[:, :units]), sigmoid(z[:, units:2 * units])
        g, o = lib.tanh(z[:, 2 * units:3 * units]), sigmoid(z[:, 3 * units:])
        c = f * c + i * g
        h = o * lib.tanh(c)
        return h, [h, c]
    return step


# --- K.rnn forward ------------------------------------------------------------------------

BATCH, TIME, FEATURES, UNITS = 3, 5, 4, 6
W, U, B = _uniform(FEATURES, UNITS), _uniform(UNITS, UNITS, scale=0.5), _uniform(UNITS)
X, H0 = _uniform(BATCH, TIME, FEATURES), _uniform(BATCH, UNITS)
MASK = RNG.random((BATCH, TIME)) < 0.6


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("unroll", [False, True])
def test_simple_rnn_matches_numpy(go_backwards, unroll):
    expected = numpy_rnn(simple_step(np, W, U, B), X, [H0], go_backwards)

    def build(x, h0):
        last, outputs, states = K.rnn(simple_step(K, K.constant(W, "float64"),
                                                  K.constant(U, "float64"), B),
                                      x, [h0], go_backwards=go_backwards, unroll=unroll)
        return [last, outputs, states[0]]

    check_op(build, [X, H0], [expected[0], expected[1], expected[2][0]])


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("unroll", [False, True])
def test_lstm_with_mask_matches_numpy(go_backwards, unroll):
    w, u = _uniform(FEATURES, 4 * UNITS), _uniform(UNITS, 4 * UNITS, scale=0.5)
    c0 = _uniform(BATCH, UNITS)
    expected = numpy_rnn(lstm_step(np, w, u, _sigmoid), X, [H0, c0], go_backwards,
                         mask=MASK)

    def build(x, h0, c0, mask):
        step = lstm_step(K, K.constant(w, "float64"), K.constant(u, "float64"), K.sigmoid)
        last, outputs, (h, c) = K.rnn(step, x, [h0, c0], go_backwards=go_backwards, mask=mask,
                                      unroll=unroll)
        return [last, outputs, h, c]

    check_op(build, [X, H0, c0, MASK],
             [expected[0], expected[1], expected[2][0], expected[2][1]], rtol=1e-6)


def test_masked_first_steps_output_zeros_then_carry_forward():
    """With the first steps masked the outputs are zeros (Keras' initial previous output)."""
    mask = np.array([[0, 0, 1, 0, 1]] * BATCH, dtype="float64")  # a float mask is cast
    expected = numpy_rnn(simple_step(np, W, U, B), X, [H0], mask=mask)
    assert not expected[1][:, :2].any()

    def build(x, h0, mask):
        step = simple_step(K, K.constant(W, "float64"), K.constant(U, "float64"), B)
        last, outputs, states = K.rnn(step, x, [h0], mask=mask)
        return [last, outputs, states[0]]

    check_op(build, [X, H0, mask], [expected[0], expected[1], expected[2][0]])


def test_constants_are_passed_after_the_states():
    scale = _uniform(UNITS)

    def numpy_step(x, states):
        h = np.tanh(x @ W + states[0] @ U) * states[1]
        return h, [h]

    expected = numpy_rnn(numpy_step, X, [H0], constants=[scale])

    def build(x, h0, scale):
        def step(x_t, states):
            assert len(states) == 2
            h = K.tanh(K.dot(x_t, K.constant(W, "float64")) +
                       K.dot(states[0], K.constant(U, "float64"))) * states[1]
            return h, [h]
        last, outputs, states = K.rnn(step, x, [h0], constants=[scale])
        return [last, outputs, states[0]]

    check_op(build, [X, H0, scale], [expected[0], expected[1], expected[2][0]])


def test_unknown_batch_and_time_and_one_loop_node_whatever_the_length():
    x = K.placeholder((None, None, FEATURES), dtype="float64")
    h0 = K.placeholder((None, UNITS), dtype="float64")
    step = simple_step(K, K.constant(W, "float64"), K.constant(U, "float64"), B)
    last, outputs, states = K.rnn(step, x, [h0])
    assert K.int_shape(outputs) == (None, None, UNITS)
    assert K.int_shape(last) == K.int_shape(states[0]) == (None, UNITS)
    fn = K.function([x, h0], [last, outputs])
    assert sum(node.op.name == "scan" for node in fn.ir.nodes) == 1
    for time in (1, 7, 30):
        xs = _uniform(2, time, FEATURES)
        h = _uniform(2, UNITS)
        want = numpy_rnn(simple_step(np, W, U, B), xs, [h])
        got = fn([xs, h])
        np.testing.assert_allclose(got[0], want[0], rtol=1e-10)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-10)


def test_a_list_of_inputs_reaches_the_step_as_a_list():
    other = _uniform(BATCH, TIME, UNITS)

    def numpy_step(xs, states):
        h = np.tanh(xs[0] @ W + xs[1] + states[0] @ U)
        return h, [h]

    expected = numpy_rnn(lambda x, s: numpy_step([x[:, :FEATURES], x[:, FEATURES:]], s),
                         np.concatenate([X, other], axis=2), [H0])

    def build(x, y, h0):
        def step(xs, states):
            h = K.tanh(K.dot(xs[0], K.constant(W, "float64")) + xs[1] +
                       K.dot(states[0], K.constant(U, "float64")))
            return h, [h]
        return list(K.rnn(step, [x, y], [h0])[:2])

    check_op(build, [X, other, H0], [expected[0], expected[1]])


def test_mask_with_an_output_unlike_the_states_and_no_states_at_all():
    """The masked loop's first previous output is zeros of the step output's own shape."""
    def numpy_step(x, states):
        h = np.tanh(x @ W + states[0] @ U)
        return np.concatenate([h, x], axis=1), [h]

    expected = numpy_rnn(numpy_step, X, [H0], mask=MASK)
    stateless = numpy_rnn(lambda x, s: (np.tanh(x @ W), []), X, [], mask=MASK)

    def build(x, h0, mask):
        def step(x_t, states):
            h = K.tanh(K.dot(x_t, K.constant(W, "float64")) +
                       K.dot(states[0], K.constant(U, "float64")))
            return K.concatenate([h, x_t]), [h]
        last, outputs, states = K.rnn(step, x, [h0], mask=mask)
        no_states = K.rnn(lambda x_t, s: (K.tanh(K.dot(x_t, K.constant(W, "float64"))), []),
                          x, [], mask=mask)
        assert no_states[2] == []
        return [last, outputs, states[0], no_states[1]]

    check_op(build, [X, H0, MASK], [expected[0], expected[1], expected[2][0], stateless[1]])


def test_rnn_errors_name_the_problem():
    x = K.placeholder((None, None, FEATURES))
    h0 = K.placeholder((None, UNITS))
    step = simple_step(K, K.variable(W), K.variable(U), K.variable(B))
    with pytest.raises(ValueError, match="Unrolling requires a fixed number of timesteps"):
        K.rnn(step, x, [h0], unroll=True)
    with pytest.raises(ValueError, match="at least 3D"):
        K.rnn(step, K.placeholder((None, FEATURES)), [h0])
    wrong = K.variable(_uniform(UNITS, 2 * UNITS))
    with pytest.raises(ShapeError, match="carry 0 .* must keep its dtype and shape"):
        K.rnn(lambda x_t, s: (x_t, [K.dot(s[0], wrong)]), x, [h0])
    with pytest.raises(ValueError, match="1 new states for 2 initial states"):
        K.rnn(lambda x_t, s: (x_t, [s[0]]), x, [h0, h0])


def test_a_step_whose_state_changes_shape_at_run_time_is_reported():
    x = K.placeholder((None, None, 2))
    h0 = K.placeholder((None, None))
    # Broadcasting against x_t makes the new state (batch, 2) from a (batch, 1) initial state.
    last, outputs, states = K.rnn(lambda x_t, s: (x_t, [s[0] + x_t]), x, [h0])
    fn = K.function([x, h0], [states[0]])
    # A carry keeps its shape, so h0's width is bound to 2 when the graph is built
    # (ir/shapes.py): the feed check reports the (3, 1) state before the loop runs.
    assert K.int_shape(h0) == (None, 2)
    with pytest.raises(ValueError, match=r"input 1 .*expects shape \(\?\d+, 2\)"):
        fn([np.ones((3, 4, 2)), np.ones((3, 1))])


# --- map_fn and folds -----------------------------------------------------------------------

def test_map_fn_maps_over_axis_0():
    elems = _uniform(4, 3, 2)
    check_op(lambda e: K.map_fn(lambda x: K.sum(x * x, axis=-1), e),
             [elems], (elems ** 2).sum(-1))


def test_map_fn_tuples_dtype_and_closures():
    a, b = _uniform(5, 3), _uniform(5, 3)
    scale = _uniform(3)
    check_op(lambda a, b, s: K.map_fn(lambda pair: pair[0] * s - pair[1], (a, b),
                                      dtype="float32"),
             [a, b, scale], (a * scale - b).astype("float32"))


@pytest.mark.parametrize("fold, order", [(K.foldl, 1), (K.foldr, -1)])
def test_folds_match_python_reduce(fold, order):
    elems = _uniform(6, 3)
    init = _uniform(3)

    def combine(acc, x):
        return acc * 0.5 + x

    def reference(start, items):
        acc = start
        for item in items:
            acc = combine(acc, item)
        return acc

    ordered = elems[::order]
    check_op(lambda e, i: fold(combine, e, initializer=i), [elems, init],
             reference(init, ordered))
    check_op(lambda e: fold(combine, e), [elems], reference(ordered[0], ordered[1:]))


def test_foldl_of_a_sum_and_gradient():
    elems = _uniform(5, 2, 3)
    check_op(lambda e: K.foldl(lambda acc, x: acc + x, e), [elems], elems.sum(0))
    check_gradients(lambda e, w: K.foldl(lambda acc, x: acc * w + x, e), [elems, _uniform(3)])


# --- gradients: backpropagation through time --------------------------------------------

@pytest.mark.parametrize("go_backwards", [False, True])
def test_simple_rnn_gradients_wrt_inputs_state_and_captured_weights(go_backwards):
    def build(x, h0, w, u, b):
        last, outputs, states = K.rnn(simple_step(K, w, u, b), x, [h0],
                                      go_backwards=go_backwards)
        return [last * 2.0, outputs]

    check_gradients(build, [X, H0, W, U * 0.5, B])


def test_lstm_gradients_with_mask():
    w, u = _uniform(FEATURES, 4 * UNITS, scale=0.5), _uniform(UNITS, 4 * UNITS, scale=0.5)
    c0 = _uniform(BATCH, UNITS)

    def build(x, h0, c0, w, u, mask):
        last, outputs, (h, c) = K.rnn(lstm_step(K, w, u, K.sigmoid), x, [h0, c0], mask=mask)
        return [outputs, c]

    check_gradients(build, [X, H0, c0, w, u, MASK], wrt=[0, 1, 2, 3, 4])


@pytest.mark.parametrize("index", [0, 1])
def test_gradient_of_every_scan_output_forward_and_reverse(index):
    """Stacked outputs, final carries and step boundaries (the registry's samples)."""
    sample = REGISTRY["scan"].samples[index]
    arrays = [RNG.uniform(-1, 1, s) for s in sample.shapes]
    check_gradients(lambda *xs: list(_apply(xs, sample.attrs)), arrays)


def _apply(inputs, attrs):
    return apply("scan", inputs, **attrs)


def test_the_gradient_reads_the_random_draws_of_the_forward_loop():
    """Dropout drawn inside the step: the reverse loop must not draw a new mask."""
    x = K.placeholder((None, None), dtype="float64")
    outputs = K.map_fn(lambda row: K.dropout(row, 0.5), x)
    (dx,) = K.gradients(K.sum(outputs), [x])
    got, grad = K.function([x], [outputs, dx])([np.ones((20, 30))])
    assert 0 < np.count_nonzero(got) < got.size
    np.testing.assert_array_equal(grad, got)  # x is ones: the output is the scaled mask


def test_weights_read_through_variables_get_accumulated_gradients():
    w, u, b = K.variable(W, "float64"), K.variable(U, "float64"), K.variable(B, "float64")
    x = K.placeholder((None, None, FEATURES), dtype="float64")
    h0 = K.placeholder((None, UNITS), dtype="float64")
    last, outputs, _ = K.rnn(simple_step(K, w, u, b), x, [h0])
    loss = K.sum(outputs * outputs)
    grads = K.function([x, h0], K.gradients(loss, [w, u, b]))([X, H0])
    expected = _numpy_bptt(X, H0)
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def _numpy_bptt(x, h0):
    """Hand-written BPTT of sum(outputs ** 2) for the SimpleRNN cell."""
    hs = [h0]
    for t in range(x.shape[1]):
        hs.append(np.tanh(x[:, t] @ W + hs[-1] @ U + B))
    dw, du, db = np.zeros_like(W), np.zeros_like(U), np.zeros_like(B)
    carry = np.zeros_like(h0)
    for t in range(x.shape[1] - 1, -1, -1):
        dh = 2 * hs[t + 1] + carry
        dpre = dh * (1 - hs[t + 1] ** 2)
        dw += x[:, t].T @ dpre
        du += hs[t].T @ dpre
        db += dpre.sum(0)
        carry = dpre @ U.T
    return dw, du, db


def test_second_order_gradient_through_the_loop():
    """d/dw of <dL/dw, v>: the reverse loop is differentiated like any other loop."""
    v = _uniform(3)

    def build(e, w):
        loss = K.sum(K.foldl(lambda acc, x: K.tanh(acc * w + x), e))
        (g,) = gradients(loss, [w])
        return K.sum(g * v)

    check_gradients(build, [_uniform(4, 2, 3), _uniform(3)], symbolic=False, rtol=1e-4)


def test_only_the_gradients_asked_for_are_computed():
    """A loss differentiated with respect to the weights only: no cotangent for x is stacked."""
    w = K.variable(W, "float64")
    x = K.placeholder((None, None, FEATURES), dtype="float64")
    h0 = K.placeholder((None, UNITS), dtype="float64")
    _, outputs, _ = K.rnn(simple_step(K, w, K.constant(U, "float64"), B), x, [h0])
    (dw,) = K.gradients(K.sum(outputs), [w])
    scans = [n for n in Graph([x, h0], [dw]).nodes if n.op.name == "scan"]
    backward = [n for n in scans if n.attrs["body"].name == "grad_body"]
    assert len(backward) == 1
    ny = len(backward[0].attrs["body"].outputs) - backward[0].attrs["num_carries"]
    assert ny == 0  # no per-step output: dx is not computed


# --- the IR text -------------------------------------------------------------------------------

def test_a_graph_with_loops_and_their_gradients_round_trips_as_text():
    x = K.placeholder((None, None, FEATURES), dtype="float64", name="x")
    h0 = K.placeholder((None, UNITS), dtype="float64", name="h0")
    w = K.variable(W, "float64", name="W")

    def step(x_t, states):  # a map_fn inside the step: a loop nested in a loop body
        h = K.tanh(K.dot(x_t, w) + K.map_fn(lambda row: row * 0.5, states[0]))
        return h, [h]

    last, outputs, _ = K.rnn(step, x, [h0])
    (dw,) = K.gradients(K.sum(outputs), [w])
    graph = Graph([x, h0], [last, dw])
    verify(graph)
    text = graph.to_text(full_constants=True)
    assert "body=graph @body(" in text and "graph @grad_body(" in text
    parsed = parse(text)
    verify(parsed)
    assert parsed == graph
    assert str(parse(str(graph))) == str(graph)
    fn, parsed_fn = K.function([x, h0], [last, dw]), K.function(parsed.inputs, parsed.outputs)
    for v in parsed.nodes:
        if v.op.name == "variable":
            v.outputs[0].storage = w.storage
    for got, want in zip(parsed_fn([X, H0]), fn([X, H0])):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_verify_requires_loop_bodies_to_be_closed():
    x = K.placeholder((None, None, 2), dtype="float64")
    w = K.variable(np.ones((2, 2)), "float64")
    outputs = K.map_fn(lambda row: K.dot(row, w), x)
    scan = outputs.node
    body = scan.attrs["body"]
    # A body that reads the variable itself instead of its captured placeholder.
    leaky = Graph(body.inputs[:1] + body.inputs[1:], [K.dot(body.inputs[0], w)], name="body")
    broken = Graph([x], [_apply(scan.inputs, dict(scan.attrs, body=leaky))[0]])
    closed = r"reads variable 'variable_\d+' float64\[2,2\].*\(a body must be closed\)"
    with pytest.raises(VerifyError, match=closed):
        verify(broken)


def test_the_interpreting_kernel_agrees_with_the_compiled_loop():
    op = REGISTRY["scan"]
    sample = op.samples[1]
    arrays = [RNG.uniform(-1, 1, s) for s in sample.shapes]
    interpreted = op.bound_kernel(sample.attrs)(*arrays)
    xs = [K.placeholder(a.shape, dtype="float64") for a in arrays]
    compiled = K.function(xs, list(_apply(xs, sample.attrs)))(arrays)
    for got, want in zip(compiled, interpreted):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_errors_inside_the_body_name_the_step_functions_line():
    x = K.placeholder((None, None, 2))
    table = K.variable(np.zeros((3, 2)))
    _, outputs, _ = K.rnn(lambda x_t, s: (K.gather(table, K.cast(x_t[:, 0], "int32")), s),
                          x, [K.placeholder((None, 2))])
    fn = K.function([x] + [v for v in Graph([x], [outputs]).placeholders if v is not x],
                    [outputs])
    with pytest.raises(Exception, match=r"gather at .*test_loops.py:\d+"):
        fn([np.full((2, 3, 2), 7.0), np.zeros((2, 2))])

"""passes/fusion.py and the fused op: golden regions, IR text in and out, results against NumPy."""
from __future__ import annotations

import numpy as np
import pytest
from graphk import backend as K
from graphk.ir import verify
from graphk.passes.decompose import decompose
from graphk.passes.fusion import fuse_elementwise
from test_pass_helpers import X, check_pass


def _ops(graph) -> list:
    return [n.op.name for n in graph.nodes if not n.op.leaf]


def _fused_nodes(graph) -> list:
    return [n for n in graph.nodes if n.op.name == "fused"]


def _body_ops(node) -> list:
    return [n.op.name for n in node.attrs["body"].nodes if not n.op.leaf]


def _w1(x):
    return K.tanh(0.5 * x + 1) * K.sigmoid(x) + 0.1 * K.exp(-x * x) - 0.3 * K.abs(x)


def _w1_numpy(x):
    return (np.tanh(0.5 * x + 1) / (1 + np.exp(-x)) + 0.1 * np.exp(-x * x) - 0.3 * np.abs(x))


# --- golden regions ------------------------------------------------------------------------------

def test_the_w1_chain_is_one_fused_node():
    x = K.placeholder((None,), name="x")
    fn = K.function([x], [_w1(x)])
    assert _ops(fn.ir) == ["fused"]
    data = np.linspace(-4, 4, 1001, dtype=np.float32)
    np.testing.assert_allclose(fn([data])[0], _w1_numpy(data), rtol=1e-5, atol=1e-6)


def test_the_w1_chain_and_its_derivative_are_one_node_with_two_outputs():
    x = K.placeholder((None,), name="x")
    y = _w1(x)
    (dy,) = K.gradients(K.sum(y), [x])
    fn = K.function([x], [y, dy])
    assert _ops(fn.ir) == ["fused"]
    assert len(fn.ir.nodes[-1].outputs) == 2
    data = np.linspace(-3, 3, 301).astype(np.float32)
    plain = K.function([x], [y, dy], passes="none")([data])
    for got, want in zip(fn([data]), plain):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _mlp_step():
    x = K.placeholder((None, 784), name="x")
    y = K.placeholder((None, 10), name="y")
    rng = np.random.default_rng(0)
    params = []
    for fan_in, fan_out in ((784, 256), (256, 256), (256, 10)):
        params += [K.variable(rng.normal(0, 0.05, (fan_in, fan_out)).astype(np.float32)),
                   K.variable(np.zeros(fan_out, np.float32))]
    h = x
    for i in range(0, 6, 2):
        h = K.dot(h, params[i]) + params[i + 1]
        h = K.relu(h) if i < 4 else h
    loss = K.mean(K.categorical_crossentropy(y, h, from_logits=True))
    grads = K.gradients(loss, params)
    updates = [K.update_sub(p, 0.01 * g) for p, g in zip(params, grads)]
    return x, y, loss, updates, params


def test_the_mlp_training_step_has_the_expected_regions():
    x, y, loss, updates, params = _mlp_step()
    fn = K.function([x, y], [loss], updates=updates)
    regions = sorted(sorted(set(_body_ops(n))) for n in _fused_nodes(fn.ir))
    assert regions == sorted([
        ["add", "relu"], ["add", "relu"],  # bias + relu after the two hidden matmuls
        # logits bias, crossentropy from logits, its mean, its gradient, the last bias update
        ["add", "broadcast_like", "div", "exp", "log", "mul", "neg", "reduce_max",
         "reduce_mean", "reduce_sum", "sub"],
        ["mul", "reduce_sum", "relu_grad", "sub"], ["mul", "reduce_sum", "relu_grad", "sub"],
        # (the weight updates are matmul_update nodes: one GEMM each, passes/matmul_update.py)
    ]) or regions == sorted([  # without the seed's broadcast (folded by an earlier pass)
        ["add", "relu"], ["add", "relu"],
        ["add", "div", "exp", "log", "mul", "neg", "reduce_max", "reduce_mean", "reduce_sum",
         "sub"],
        ["mul", "reduce_sum", "relu_grad", "sub"], ["mul", "reduce_sum", "relu_grad", "sub"]])
    assert _ops(fn.ir).count("matmul") == 5 and _ops(fn.ir).count("matmul_update") == 3
    reference = K.function([x, y], [loss], passes="none")  # no updates: compare values only
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(16, 784)).astype(np.float32)
    ys = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 16)]
    before = reference([xs, ys])[0]
    np.testing.assert_allclose(fn([xs, ys])[0], before, rtol=1e-5)
    assert reference([xs, ys])[0] < before  # the fused updates trained the same variables


# --- IR text in, IR text out -------------------------------------------------------------------

F = "float32[?0,3]"
EYE = "dense<float32[3,3]>[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]"


def test_a_path_leaving_a_region_and_coming_back_splits_it():
    """b reads the matmul of a, so a and b cannot share a node (it would be its own input)."""
    before = f"""graph @f(%x) {{
  {X} : {F}
  %w = constant {{value={EYE}}} : float32[3,3]
  %a = exp(%x) : {F}
  %a2 = tanh(%a) : {F}
  %m = matmul(%a2, %w) {{transpose_a=false, transpose_b=false}} : {F}
  %b = add(%a2, %m) : {F}
  %c = neg(%b) : {F}
  return %c
}}"""
    after = f"""graph @f(%x) {{
  {X} : {F}
  %0 = fused(%x) {{body=graph @fused(%in0) {{
    %in0 = placeholder {{name="in0", default=none}} : {F}
    %0 = exp(%in0) : {F}
    %1 = tanh(%0) : {F}
    return %1
  }}}} : {F}
  %w = constant {{value={EYE}}} : float32[3,3]
  %1 = matmul(%0, %w) {{transpose_a=false, transpose_b=false}} : {F}
  %2 = fused(%0, %1) {{body=graph @fused(%in0, %in1) {{
    %in0 = placeholder {{name="in0", default=none}} : {F}
    %in1 = placeholder {{name="in1", default=none}} : {F}
    %0 = add(%in0, %in1) : {F}
    %1 = neg(%0) : {F}
    return %1
  }}}} : {F}
  return %2
}}"""
    check_pass(fuse_elementwise, before, after)


def test_softmax_decomposes_and_fuses_into_one_node():
    before = f"""graph @f(%x) {{
  {X} : {F}
  %s = softmax(%x) {{axis=1}} : {F}
  return %s
}}"""
    after = f"""graph @f(%x) {{
  {X} : {F}
  %0 = fused(%x) {{body=graph @fused(%in0) {{
    %in0 = placeholder {{name="in0", default=none}} : {F}
    %0 = reduce_max(%in0) {{axes=(1,), keepdims=true}} : float32[?0,1]
    %1 = sub(%in0, %0) : {F}
    %2 = exp(%1) : {F}
    %3 = reduce_sum(%2) {{axes=(1,), keepdims=true}} : float32[?0,1]
    %4 = div(%2, %3) : {F}
    return %4
  }}}} : {F}
  return %0
}}"""
    check_pass(lambda g: fuse_elementwise(decompose(g)), before, after)


def test_a_single_op_and_free_ops_stay_unfused():
    before = f"""graph @f(%x) {{
  {X} : {F}
  %a = exp(%x) : {F}
  %b = stop_gradient(%a) : {F}
  return %b
}}"""
    check_pass(fuse_elementwise, before, before)


# --- fused results against NumPy ------------------------------------------------------------------

def _compare(build, reference, arrays, shapes=None, rtol=1e-6, atol=1e-6, **options):
    """build through the default pipeline (which must fuse) equals reference and passes="none"
    (`options` go to K.function, e.g. backend="numpy")."""
    inputs = [K.placeholder(shape=s if shapes is None else shapes[i], dtype=str(a.dtype))
              for i, (a, s) in enumerate(zip(arrays, [np.shape(a) for a in arrays]))]
    outputs = build(*inputs)
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    fused = K.function(inputs, outputs, **options)
    assert _fused_nodes(fused.ir), fused.ir
    verify(fused.ir)
    got, plain = fused(arrays), K.function(inputs, outputs, passes="none")(arrays)
    want = reference(*arrays)
    want = list(want) if isinstance(want, (list, tuple)) else [want]
    for g, p, w in zip(got, plain, want):
        assert g.dtype == p.dtype and g.shape == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
        np.testing.assert_allclose(g, p, rtol=rtol, atol=atol)
    return fused


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_broadcasting_negative_axes_and_unknown_dims_fed_as_one(dtype):
    rng = np.random.default_rng(0)
    tol = 2e-3 if dtype == "float16" else 1e-5
    for rows in (1, 5):
        x = rng.uniform(-2, 2, (rows, 4, 3)).astype(dtype)
        b = rng.uniform(-1, 1, (3,)).astype(dtype)

        def build(x, b):
            z = K.exp(x * b - K.max(x, axis=-1, keepdims=True))
            return z / K.sum(z, axis=-1, keepdims=True) + K.tanh(b)

        def reference(x, b):
            z = np.exp(x * b - x.max(-1, keepdims=True))
            return z / z.sum(-1, keepdims=True) + np.tanh(b)

        _compare(build, reference, [x, b], shapes=[(None, None, 3), (3,)], rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8"])
def test_integer_regions(dtype):
    x = np.arange(24, dtype=dtype).reshape(4, 6)
    _compare(lambda x: K.sum(K.square(x) + x, axis=0) * 2,
             lambda x: ((x * x + x).sum(0, dtype=dtype) * 2).astype(dtype), [x])


def test_bool_region():
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 5)) < 0.5, rng.random((5,)) < 0.5
    _compare(lambda a, b: K.cast(K.equal(a, b), "float32") * 3 + 1,
             lambda a, b: (a == b).astype(np.float32) * 3 + 1, [a, b])


def test_non_contiguous_inputs():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(64, 40)).astype(np.float32)
    x, y = base[::2, ::3], base.T[:14, :32].T  # strided and transposed views
    _compare(lambda x, y: K.relu(x * 2 + 1) - K.sigmoid(y),
             lambda x, y: np.maximum(x * 2 + 1, 0) - 1 / (1 + np.exp(-y)), [x, y], rtol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_blocked_evaluation_with_a_reduction_tail_block_and_several_outputs(backend):
    """Large enough to be split into blocks (rows not a multiple of the block) on the NumPy
    lowering, into rows (and threads) on LLVM; both give the reference."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8001, 37)).astype(np.float32)
    w = rng.normal(size=(37,)).astype(np.float32)

    def build(x, w):
        s = K.softmax(x * w)
        return [s, K.log(s + 1.0) * 2.0, K.sum(x, axis=1)]

    def reference(x, w):
        z = np.exp(x * w - (x * w).max(1, keepdims=True))
        s = z / z.sum(1, keepdims=True)
        return [s, np.log(s + 1) * 2, x.sum(1)]

    fn = _compare(build, reference, [x, w], shapes=[(None, 37), (37,)], rtol=1e-5,
                  backend=backend)
    kernels = [k for k in fn._executable.run.__globals__.values()
               if type(k).__name__ == "FusedKernel"]
    assert {k.lowering for k in kernels} == {backend}
    if backend == "numpy":  # the generated blocked program loops over blocks
        assert any("for s in range" in s for k in kernels for s in k.sources.values())


def test_regions_with_more_operands_than_a_ufunc_takes():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(3, 4)).astype(np.float32) for _ in range(40)]

    def build(*xs):
        total = xs[0]
        for x in xs[1:]:
            total = total * 0.5 + K.tanh(x)
        return total

    def reference(*xs):
        total = xs[0]
        for x in xs[1:]:
            total = total * 0.5 + np.tanh(x)
        return total

    fn = _compare(build, reference, arrays, rtol=1e-5)
    assert _ops(fn.ir) == ["fused"] and len(fn.ir.nodes[-1].inputs) == 40


def test_an_error_inside_a_fused_kernel_names_the_users_line():
    x = K.placeholder((None,), name="x")
    b = K.placeholder((4,), name="b")
    y = K.exp(x + b) * 2  # x may be 1 or 4 at run time; 3 does not broadcast
    fn = K.function([x, b], [y])
    assert _ops(fn.ir) == ["fused"]
    with pytest.raises(Exception, match=r"add at .*test_fusion.py:\d+"):
        fn([np.ones(3, np.float32), np.ones(4, np.float32)])


def test_results_are_fresh_arrays_even_when_an_output_is_an_input_or_repeated():
    x = K.placeholder((2, 3), name="x")
    y = K.exp(x) + 1
    fn = K.function([x], [y, y, K.stop_gradient(y)])
    data = np.zeros((2, 3), np.float32)
    a, b, c = fn([data])
    a[0, 0] = 7.0
    assert b[0, 0] == 2.0 and c[0, 0] == 2.0 and data[0, 0] == 0.0


def test_the_fused_op_round_trips_with_one_output():
    x = K.placeholder((None, 3), name="x")
    fn = K.function([x], [K.exp(x) * 2])
    from graphk.ir import parse
    again = parse(str(fn.ir))
    verify(again)
    assert again == fn.ir


def test_merging_regions_never_makes_a_cycle_between_fused_nodes():
    """a2 joins a1's region reading b2; merging b2's region with b1's (which reads a1 through
    a matmul) would make the two fused nodes each other's input."""
    x = K.placeholder((None, 3), name="x")
    z = K.placeholder((None, 3), name="z")
    w = K.constant(np.eye(3, dtype=np.float32) * 0.5)
    a1 = K.exp(x) * 0.5
    b1 = K.tanh(K.dot(a1, w)) * 2.0
    b2 = K.sin(z) * 3.0
    a2 = a1 * b2
    b3 = b1 + b2
    xs, zs = np.ones((2, 3), np.float32), np.full((2, 3), 0.5, np.float32)
    fn = K.function([x, z], [a2, b3])
    verify(fn.ir)
    for got, want in zip(fn([xs, zs]), K.function([x, z], [a2, b3], passes="none")([xs, zs])):
        np.testing.assert_allclose(got, want, rtol=1e-6)

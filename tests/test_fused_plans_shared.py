"""codegen/fused_numpy.py: programs shared between fused nodes of the same structure."""
from __future__ import annotations

import numpy as np
import pytest
from graphk import backend as K
from graphk.codegen.fused_numpy import structure_key


def _kernels(fn) -> list:
    return [k for k in fn._executable.run.__globals__.values()
            if type(k).__name__ == "FusedKernel"]


def _log_chain(x, scale):
    return K.log(x * scale - 1.0) + 2.0


def test_same_structure_at_two_lines_shares_one_program_and_names_each_line():
    x = K.placeholder((None, 3), name="x")
    first = K.function([x], [K.log(x * 2.0 - 1.0) + 2.0], backend="numpy")  # line A
    second = K.function([x], [K.log(x * 2.0 - 1.0) + 2.0], backend="numpy")  # line B
    data = np.full((2, 3), 3.0, np.float32)
    np.testing.assert_allclose(first([data])[0], np.log(5.0) + 2.0, rtol=1e-6)
    np.testing.assert_allclose(second([data])[0], np.log(5.0) + 2.0, rtol=1e-6)
    (a,), (b,) = _kernels(first), _kernels(second)
    key = (data.shape,)
    assert a.plans[key] is b.plans[key]  # one program compiled for both
    with np.errstate(invalid="raise"):  # log of a negative number raises inside the program
        with pytest.raises(FloatingPointError, match=r"log at .*test_fused_plans_shared.py:21"):
            first([-data])
        with pytest.raises(FloatingPointError, match=r"log at .*test_fused_plans_shared.py:22"):
            second([-data])


def test_different_constants_dtypes_or_shapes_get_programs_of_their_own():
    x = K.placeholder((None, 3), name="x")
    y = K.placeholder((None, 3), dtype="float64", name="y")
    fns = [K.function([x], [_log_chain(x, 2.0)], backend="numpy"),
           K.function([x], [_log_chain(x, 3.0)], backend="numpy"),
           K.function([y], [_log_chain(y, 2.0)], backend="numpy")]
    data = np.full((2, 3), 3.0, np.float32)
    for fn, scale, dtype in zip(fns, (2.0, 3.0, 2.0), ("float32", "float32", "float64")):
        result = fn([data.astype(dtype)])[0]
        assert result.dtype == dtype
        np.testing.assert_allclose(result, np.log(3.0 * scale - 1.0) + 2.0, rtol=1e-6)
    runs = [_kernels(fn)[0].plans[(data.shape,)] for fn in fns]
    assert len({id(run) for run in runs}) == 3
    fns[0]([np.ones((5, 3), np.float32) * 3])  # another shape: another program
    kernel = _kernels(fns[0])[0]
    assert kernel.plans[(5, 3),] is not kernel.plans[(2, 3),]


def test_structure_key_ignores_locations_and_tells_signed_zero_and_nan_apart():
    x = K.placeholder((4,), name="x")

    def body_of(value) -> object:
        fn = K.function([x], [value], backend="numpy")
        (node,) = [n for n in fn.ir.nodes if n.op.name == "fused"]
        return node.attrs["body"]

    a = body_of(K.exp(x) * 0.0)
    b = body_of(K.exp(x) * 0.0)  # another line
    c = body_of(K.exp(x) * -0.0)
    d = body_of(K.exp(x) * float("nan"))
    e = body_of(K.exp(x) * float("nan"))
    assert structure_key(a) == structure_key(b)
    assert structure_key(a) != structure_key(c)
    assert structure_key(d) == structure_key(e) != structure_key(a)


def test_equal_regions_share_one_body_object_and_regions_at_other_lines_do_not():
    x = K.placeholder((None, 8), name="x")
    rng = np.random.default_rng(0)
    arrays = [rng.normal(0, 0.3, (8, 8)).astype(np.float32) for _ in range(3)]
    ws = [K.variable(a) for a in arrays]
    h = x
    for w in ws:
        h = K.tanh(K.dot(h, w) + 1.0)  # three equal regions (one line)
    other = K.exp(K.dot(h, ws[0]) + 1.0)  # another op: a body of its own
    fn = K.function([x], [h, other], backend="numpy")
    fused = [n for n in fn.ir.nodes if n.op.name == "fused"]
    assert len(fused) == 4 and len({id(n.attrs["body"]) for n in fused}) == 2
    data = rng.normal(size=(5, 8)).astype(np.float32)
    want = data
    for a in arrays:
        want = np.tanh(want @ a + 1.0)
    got_h, got_other = fn([data])
    np.testing.assert_allclose(got_h, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_other, np.exp(want @ arrays[0] + 1.0), rtol=1e-5)

    y = K.placeholder((4, 8), name="y")
    z = K.placeholder((4, 8), name="z")
    first = K.tanh(y * 2.0)  # the same region as the next line's, but at another line
    second = K.tanh(z * 2.0)
    fn = K.function([y, z], [first, second], backend="numpy")
    fused = [n for n in fn.ir.nodes if n.op.name == "fused"]
    assert len(fused) == 2 and fused[0].attrs["body"] is not fused[1].attrs["body"]


def test_the_llvm_lowering_plans_one_region_per_shared_body():
    x = K.placeholder((None, 8), name="x")
    rng = np.random.default_rng(1)
    arrays = [rng.normal(0, 0.3, (8, 8)).astype(np.float32) for _ in range(3)]
    h = x
    for a in arrays:
        h = K.tanh(K.dot(h, K.variable(a)) + 1.0)  # three equal regions (one line)
    fn = K.function([x], [h], backend="llvm")
    regions = list(fn.lowering.regions.values())
    assert len(regions) == 3 and len({id(r) for r in regions}) == 1
    data = rng.normal(size=(300, 8)).astype(np.float32)
    want = data
    for a in arrays:
        want = np.tanh(want @ a + 1.0)
    np.testing.assert_allclose(fn([data])[0], want, rtol=2e-5, atol=2e-6)

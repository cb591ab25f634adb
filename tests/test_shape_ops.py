"""Shape ops against NumPy, on both paths, with None dims, negative axes and gradients."""
import numpy as np
import pytest
from graphk.ir.graph import Graph
from graphk.ir.ops.registry import REGISTRY, apply
from graphk.ir.parser import parse
from graphk.ir.shapes import SymDim, same_dim
from harness import check_gradients, check_op

from graphk import backend as K

rng = np.random.default_rng(0)
A = rng.uniform(-2, 2, (3, 4)).astype(np.float32)
B = rng.uniform(-2, 2, (3, 2)).astype(np.float32)
C = rng.uniform(-2, 2, (2, 3, 4)).astype(np.float32)
D = rng.uniform(-2, 2, (4, 5, 3)).astype(np.float32)
IDX = np.array([[0, 2], [4, -1], [1, 1]], dtype=np.int32)
E = rng.uniform(-2, 2, (5, 3)).astype(np.float32)
F = rng.uniform(-2, 2, (3, 2, 2, 3)).astype(np.float32)


# --- forward values --------------------------------------------------------------

FORWARD = [
    ("reshape -1", lambda x: K.reshape(x, (-1, 12)), [C], C.reshape(-1, 12)),
    ("reshape middle -1", lambda x: K.reshape(x, (2, -1, 2)), [C], C.reshape(2, -1, 2)),
    ("reshape batch entry", lambda x: K.reshape(x, (K.shape(x)[0], 3, 4)), [F],
     F.reshape(3, 3, 4)),
    ("reshape runtime entry", lambda x: K.reshape(x, (K.shape(x)[0] * 2, -1)), [C],
     C.reshape(4, 6)),
    ("reshape like", lambda x, y: K.reshape(x, K.shape(y)), [C, C.reshape(2, 12)],
     C.reshape(2, 12)),
    ("permute", lambda x: K.permute_dimensions(x, (2, 0, 1)), [C], C.transpose(2, 0, 1)),
    ("permute negative", lambda x: K.permute_dimensions(x, (0, -1, 1)), [C], C.transpose(0, 2, 1)),
    ("expand_dims default", K.expand_dims, [A], A[..., None]),
    ("expand_dims 0", lambda x: K.expand_dims(x, 0), [A], A[None]),
    ("expand_dims -2", lambda x: K.expand_dims(x, -2), [A], A[:, None]),
    ("squeeze", lambda x: K.squeeze(x, 1), [A[:, :1]], A[:, 0]),
    ("squeeze negative", lambda x: K.squeeze(x, -1), [A[:, :1]], A[:, 0]),
    ("flatten", K.flatten, [C], C.ravel()),
    ("batch_flatten", K.batch_flatten, [C], C.reshape(2, 12)),
    ("concatenate -1", lambda x, y: K.concatenate([x, y]), [A, B], np.concatenate([A, B], -1)),
    ("concatenate 0", lambda x, y: K.concatenate([x, y], axis=0), [A, A[:2]],
     np.concatenate([A, A[:2]], 0)),
    ("concatenate three", lambda x, y, z: K.concatenate([x, y, z], 1), [A, B, A],
     np.concatenate([A, B, A], 1)),
    ("stack", lambda x, y: K.stack([x, y]), [A, A * 2], np.stack([A, A * 2])),
    ("stack -1", lambda x, y: K.stack([x, y], axis=-1), [A, A * 2], np.stack([A, A * 2], -1)),
    ("tile int", lambda x: K.tile(x, 2), [A], np.tile(A, 2)),
    ("tile list", lambda x: K.tile(x, [2, 3]), [A], np.tile(A, (2, 3))),
    ("tile short", lambda x: K.tile(x, [1, 2]), [C], np.tile(C, (1, 1, 2))),
    ("repeat_elements 1", lambda x: K.repeat_elements(x, 3, 1), [A], np.repeat(A, 3, 1)),
    ("repeat_elements -1", lambda x: K.repeat_elements(x, 2, -1), [C], np.repeat(C, 2, -1)),
    ("repeat_elements batch", lambda x: K.repeat_elements(x, 2, 0), [A], np.repeat(A, 2, 0)),
    ("repeat", lambda x: K.repeat(x, 3), [A], np.repeat(A[:, None], 3, 1)),
    ("reverse int", lambda x: K.reverse(x, 0), [C], C[::-1]),
    ("reverse list", lambda x: K.reverse(x, [0, -1]), [C], C[::-1, :, ::-1]),
    ("slice", lambda x: K.slice(x, [0, 1, 1], [2, 2, -1]), [C], C[0:2, 1:3, 1:]),
    ("slice tensor start", lambda x: K.slice(x, K.constant([1, 0], "int32"), [-1, 3]), [A],
     A[1:, 0:3]),
    ("gather", lambda x, i: K.gather(x, i), [E, IDX], E[IDX]),
    ("gather list", lambda x: K.gather(x, [3, 0, 3]), [E], E[[3, 0, 3]]),
    ("one_hot", lambda i: K.one_hot(i, 5), [IDX], np.eye(5, dtype=np.float32)[IDX % 5]
     * (IDX >= 0)[..., None]),
    ("shape", lambda x: K.shape(x), [C], np.array(C.shape, np.int32)),
    ("shape element", lambda x: K.shape(x)[-1], [C], np.int32(4)),
    ("size", K.size, [C], np.int32(C.size)),
]


@pytest.mark.parametrize("name, build, arrays, expected", FORWARD, ids=[f[0] for f in FORWARD])
def test_forward_matches_numpy(name, build, arrays, expected):
    check_op(build, arrays, expected)


def test_one_hot_is_float32_with_zero_rows_out_of_range():
    indices = np.array([0, 2, 3, -1], np.int32)
    check_op(lambda i: K.one_hot(i, 3), [indices],
             np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]], np.float32))
    assert K.one_hot(K.placeholder((None,), dtype="int64"), 3).dtype == "float32"


def test_arange_follows_keras_tf():
    assert K.eval(K.arange(5)).tolist() == [0, 1, 2, 3, 4]
    assert K.arange(5).dtype == "int32"
    assert K.eval(K.arange(2, 9, 3)).tolist() == [2, 5, 8]
    assert K.eval(K.arange(-3)).tolist() == []
    half = K.arange(0.5, 2, 0.5)  # float bounds give float32 even with dtype 'int32' (Keras)
    assert half.dtype == "float32" and K.eval(half).tolist() == [0.5, 1.0, 1.5]
    assert K.eval(K.arange(3, dtype="float64")).dtype == np.float64


def test_arange_from_a_runtime_bound():
    check_op(lambda x: K.arange(K.shape(x)[0]), [C.reshape(2, 12)], np.arange(2, dtype=np.int32))
    check_op(lambda x: K.arange(1, K.shape(x)[0], 2, dtype="float32"), [np.zeros((7, 2))],
             np.arange(1, 7, 2, dtype=np.float32))


# --- indexing -----------------------------------------------------------------------

KEYS = [
    ("int", lambda x: x[1], lambda a: a[1]),
    ("negative int", lambda x: x[-1, -2], lambda a: a[-1, -2]),
    ("slice", lambda x: x[1:3], lambda a: a[1:3]),
    ("slice step", lambda x: x[:, 0:5:2], lambda a: a[:, 0:5:2]),
    ("negative step", lambda x: x[::-1, 3:0:-2], lambda a: a[::-1, 3:0:-2]),
    ("newaxis", lambda x: x[:, None, 1], lambda a: a[:, None, 1]),
    ("ellipsis", lambda x: x[..., 1], lambda a: a[..., 1]),
    ("ellipsis middle", lambda x: x[0, ..., None, 2], lambda a: a[0, ..., None, 2]),
    ("all kinds", lambda x: x[None, -2:, ..., ::-1], lambda a: a[None, -2:, ..., ::-1]),
    ("scalar", lambda x: x[1, 2, 0], lambda a: a[1, 2, 0]),
    ("nothing", lambda x: x[...], lambda a: a),
]


@pytest.mark.parametrize("name, key, np_key", KEYS, ids=[k[0] for k in KEYS])
def test_indexing_matches_numpy(name, key, np_key):
    check_op(key, [D], np_key(D))
    check_gradients(key, [D.astype(np.float64)])


def test_index_with_scalar_tensors():
    i = np.array(2, np.int32)
    check_op(lambda x, t: x[t], [D, i], D[2])
    check_op(lambda x, t: x[:, t:], [D, i], D[:, 2:])
    check_op(lambda x, t: x[t - 1, ::t], [D, i], D[1, ::2])
    check_gradients(lambda x, t: x[:, t], [D.astype(np.float64), i], wrt=[0])
    check_gradients(lambda x, t: x[t:], [D.astype(np.float64), i], wrt=[0])


def test_index_shapes_keep_symbols_where_the_size_is_kept():
    x = K.placeholder((None, 5, 4))
    assert same_dim(x[:, 1].type.shape[0], x.type.shape[0])
    assert same_dim(x[::-1].type.shape[0], x.type.shape[0])
    partial = x[1:].type.shape[0]
    assert isinstance(partial, SymDim) and not same_dim(partial, x.type.shape[0])
    assert K.int_shape(x[:, 1:4:2, None]) == (None, 2, 1, 4)
    assert K.int_shape(K.shape(x)[0]) == ()


def test_index_key_round_trips_through_the_ir_text():
    x = K.placeholder((None, 5, 4), name="x")
    t = K.placeholder((), dtype="int32", name="t")
    y = x[None, t, ..., 1:-1:2]
    graph = Graph([x, t], [y])
    assert parse(graph.to_text()) == graph


def test_index_errors_are_clear():
    x = K.placeholder((None, 5, 4))
    with pytest.raises(ValueError, match=r"getitem.*index 5 is out of range for axis 1 of size 5"):
        x[:, 5]
    with pytest.raises(ValueError, match="too many indices"):
        x[0, 0, 0, 0]
    with pytest.raises(TypeError, match="K.gather"):
        x[[0, 1]]
    with pytest.raises(ValueError, match="cannot be zero"):
        x[::0]
    with pytest.raises(TypeError, match="int scalar"):
        x[K.placeholder(())]


# --- reshape with shapes read from tensors ----------------------------------------------

def test_reshape_with_a_runtime_batch_entry_stays_static():
    x = K.placeholder((None, 28, 28))
    y = K.reshape(x, (K.shape(x)[0], 784))
    assert y.op_name == "reshape"
    assert same_dim(y.type.shape[0], x.type.shape[0]) and y.type.shape[1] == 784
    z = K.reshape(x, (-1, 784))
    assert same_dim(z.type.shape[0], x.type.shape[0])
    back = K.reshape(z, (K.shape(x)[0], 28, -1))
    assert K.int_shape(back) == (None, 28, 28)
    data = rng.uniform(size=(3, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(K.function([x], [back])([data])[0], data)


def test_reshape_to_another_tensors_unknown_dim_uses_minus_one():
    x = K.placeholder((None, 6))
    y = K.placeholder((None, 2))
    r = K.reshape(x, (K.shape(y)[0], 3, 2))
    assert r.op_name == "reshape" and r.node.attrs["shape"] == (-1, 3, 2)
    out = K.function([x, y], [r])([np.ones((4, 6)), np.ones((4, 2))])[0]
    assert out.shape == (4, 3, 2)


def test_reshape_with_computed_entries_reads_the_target_at_runtime():
    x = K.placeholder((None, 4))
    r = K.reshape(x, (K.shape(x)[0] // 2, K.shape(x)[1] * 2))
    assert r.op_name == "reshape_dynamic"
    assert K.int_shape(r) == (None, None)
    data = np.arange(24, dtype=np.float32).reshape(6, 4)
    np.testing.assert_array_equal(K.function([x], [r])([data])[0], data.reshape(3, 8))
    check_gradients(lambda v: K.reshape(v, (K.shape(v)[0] // 2, -1)), [data.astype(np.float64)])


def test_reshape_gradients_through_symbolic_shapes():
    check_gradients(lambda x: K.reshape(x, (K.shape(x)[0], -1)), [C.astype(np.float64)])
    check_gradients(lambda x: K.reshape(x, (-1,)), [C.astype(np.float64)])


def test_reshape_to_a_wrong_size_names_op_and_both_shapes():
    x = K.placeholder((None, 3, 4))
    with pytest.raises(ValueError) as info:
        K.reshape(x, (K.shape(x)[0], 5))
    message = str(info.value)
    assert "reshape" in message and "(?" in message and ", 3, 4)" in message and ", 5)" in message
    assert "test_shape_ops.py" in message
    with pytest.raises(ValueError, match=r"\(2, 5\).*\(3, -1\)"):
        K.reshape(K.placeholder((2, 5)), (3, -1))
    with pytest.raises(ValueError, match="more than one -1"):
        K.reshape(x, (-1, -1))


# --- gradients --------------------------------------------------------------------

GRADIENTS = [
    ("permute", lambda x: K.permute_dimensions(x, (2, 0, 1)), [C]),
    ("expand_dims", lambda x: K.expand_dims(x, 1), [A]),
    ("squeeze", lambda x: K.squeeze(x, -1), [A[:, :1]]),
    ("flatten", K.flatten, [C]),
    ("batch_flatten", K.batch_flatten, [C]),
    ("concatenate -1", lambda x, y: K.concatenate([x, y]), [A, B]),
    ("concatenate batch axis", lambda x, y, z: K.concatenate([x, y, z], 0), [A, A[:2], A[:1]]),
    ("stack", lambda x, y: K.stack([x, y], -1), [A, A * 2]),
    ("tile", lambda x: K.tile(x, [2, 3]), [A]),
    ("repeat_elements", lambda x: K.repeat_elements(x, 2, -1), [C]),
    ("repeat_elements batch", lambda x: K.repeat_elements(x, 3, 0), [A]),
    ("repeat", lambda x: K.repeat(x, 3), [A]),
    ("reverse", lambda x: K.reverse(x, [0, -1]), [C]),
    ("slice", lambda x: K.slice(x, [0, 1, 1], [1, 2, -1]), [C]),
    ("getitem of a sum", lambda x: (x + x)[1:, ::-2], [A]),
]


@pytest.mark.parametrize("name, build, arrays", GRADIENTS, ids=[g[0] for g in GRADIENTS])
def test_gradients_match_finite_differences(name, build, arrays):
    check_gradients(build, [a.astype(np.float64) for a in arrays])


def test_gather_gradient_adds_repeated_rows():
    check_gradients(lambda x, i: K.gather(x, i), [E.astype(np.float64), IDX], wrt=[0])
    x = K.placeholder((None, 3))
    (g,) = K.gradients(K.gather(x, [0, 0, 2]), [x])  # a non-scalar loss is summed
    out = K.function([x], [g])([np.ones((4, 3), np.float32)])[0]
    np.testing.assert_array_equal(out[:, 0], [2, 0, 1, 0])


def test_shape_ops_are_not_differentiated():
    x = K.placeholder((None, 3))
    assert K.gradients(K.cast(K.shape(x)[0], "float32"), [x]) == [None]


# --- argument errors --------------------------------------------------------------------

def test_bad_axes_name_op_and_line():
    x = K.placeholder((None, 3))
    for build, op in [(lambda: K.expand_dims(x, 3), "expand_dims"),
                      (lambda: K.squeeze(x, 2), "squeeze"),
                      (lambda: K.concatenate([x, x], axis=2), "concatenate"),
                      (lambda: K.reverse(x, -3), "reverse"),
                      (lambda: K.repeat_elements(x, 2, 5), "repeat_elements"),
                      (lambda: K.permute_dimensions(x, (0, 0)), "transpose")]:
        with pytest.raises(ValueError) as info:
            build()
        assert op in str(info.value) and "test_shape_ops.py" in str(info.value)


def test_shape_mismatches():
    x = K.placeholder((None, 3))
    with pytest.raises(ValueError, match="size is 3, not 1"):
        K.squeeze(x, 1)
    with pytest.raises(ValueError, match="differ on axis 1"):
        K.concatenate([x, K.placeholder((None, 4))], axis=0)
    with pytest.raises(ValueError, match="one rank"):
        K.stack([x, K.placeholder((3,))])
    with pytest.raises(TypeError, match="one dtype"):
        K.concatenate([x, K.placeholder((None, 3), dtype="float64")])
    with pytest.raises(ValueError, match="should match"):
        K.slice(x, [0], [1])
    with pytest.raises(ValueError, match="do not fit axis 1"):
        K.slice(x, [0, 2], [1, 2])
    with pytest.raises(ValueError, match="repeat needs a 2D"):
        K.repeat(K.placeholder((2, 3, 4)), 2)
    with pytest.raises(TypeError, match="integers"):
        K.gather(x, K.placeholder((2,)))


def test_tile_with_more_counts_than_axes_is_an_error():
    x = K.placeholder((None, 3))
    with pytest.raises(ValueError, match="3 counts for a tensor of rank 2"):
        K.tile(x, [1, 2, 3])


def test_slice_with_runtime_start_and_size():
    x = K.placeholder((None, 4))
    start = K.placeholder((2,), dtype="int32")
    size = K.placeholder((2,), dtype="int32")
    fn = K.function([x, start, size], [K.slice(x, start, size)])
    data = np.arange(20, dtype=np.float32).reshape(5, 4)
    for s, n in [([1, 0], [2, 3]), ([2, 1], [-1, 2]), ([0, 3], [5, -1])]:
        want = data[s[0]:None if n[0] == -1 else s[0] + n[0],
                    s[1]:None if n[1] == -1 else s[1] + n[1]]
        got = fn([data, np.array(s, np.int32), np.array(n, np.int32)])[0]
        np.testing.assert_array_equal(got, want)


def test_full_like_fills_the_runtime_shape():
    from graphk.ir.ops.shape import full_like

    check_op(lambda x: full_like(x, 0), [C], np.zeros_like(C))
    check_op(lambda x: full_like(x, 1, "int32"), [C], np.ones(C.shape, np.int32))
    x = K.placeholder((None, 3))
    assert K.gradients(full_like(x, 1.0) * x, [x])[0] is not None


SHAPE_OPS = [(name, i) for name, op in REGISTRY.items() if op.family == "shape"
             for i in range(len(op.samples))]


@pytest.mark.parametrize("name, index", SHAPE_OPS)
def test_samples_round_trip_through_the_ir_text(name, index):
    sample = REGISTRY[name].samples[index]
    rng = np.random.default_rng(index)
    if sample.make is not None:
        arrays = [np.asarray(a) for a in sample.make(rng)]
    else:
        dtypes = sample.dtypes or ("float64",) * len(sample.shapes)
        arrays = [np.zeros(s, d) for s, d in zip(sample.shapes, dtypes)]
    inputs = [K.placeholder(shape=(None,) * a.ndim if sample.symbolic else a.shape,
                            dtype=str(a.dtype)) for a in arrays]
    graph = Graph(inputs, [apply(name, inputs, **sample.attrs)])
    assert parse(graph.to_text()) == graph


def test_tile_with_counts_known_only_at_run_time():
    x = K.placeholder((2, 3), name="x")
    counts = K.placeholder((2,), dtype="int32", name="counts")
    y = K.placeholder((None,), name="y")
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    f = K.function([x, counts, y], [K.tile(x, counts), K.tile(x, [2, K.shape(y)[0]])])
    by_vector, by_list = f([data, np.array([3, 2], np.int32), np.zeros(4, np.float32)])
    np.testing.assert_array_equal(by_vector, np.tile(data, (3, 2)))
    np.testing.assert_array_equal(by_list, np.tile(data, (2, 4)))
    (grad,) = K.gradients(K.sum(K.tile(x, counts) * 2.0), [x])
    assert K.function([x, counts], [grad])([data, np.array([3, 2], np.int32)])[0].tolist() \
        == np.full((2, 3), 12.0).tolist()

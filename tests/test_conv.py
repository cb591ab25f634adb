"""Convolutions against direct loop-based NumPy references, on both paths, with gradients."""
import itertools

import numpy as np
import pytest

from graphk import backend as K
from graphk.ir.shapes import ShapeError

from harness import check_gradients, check_op, run_function

rng = np.random.default_rng(0)


def uniform(*shape, dtype=np.float32):
    return rng.uniform(-1, 1, shape).astype(dtype)


# --- direct references (TensorFlow's padding rule, written out independently) -------------

def tf_pads(size, window, stride, dilation, padding):
    """(positions, pad before) along one axis, as tf.nn.convolution computes them."""
    span = dilation * (window - 1) + 1
    if padding == "valid":
        return (size - span) // stride + 1, 0
    out = -(-size // stride)
    if padding == "causal":
        return out, span - 1
    return out, max((out - 1) * stride + span - size, 0) // 2


def windows(x, kernel_size, strides, padding, dilation):
    """Yield (output position, window (n, *kernel_size, c)) of a channels-last x, one by one."""
    rank = len(kernel_size)
    plan = [tf_pads(x.shape[1 + a], kernel_size[a], strides[a], dilation[a], padding)
            for a in range(rank)]
    padded = np.pad(x, [(0, 0)] + [(before, max(0, (out - 1) * s + d * (k - 1) + 1 - before - n))
                                   for (out, before), s, d, k, n in zip(
                                       plan, strides, dilation, kernel_size, x.shape[1:-1])]
                    + [(0, 0)])
    for position in itertools.product(*[range(out) for out, _ in plan]):
        index = tuple(slice(p * s, p * s + d * (k - 1) + 1, d)
                      for p, s, d, k in zip(position, strides, dilation, kernel_size))
        yield position, padded[(slice(None),) + index]


def positions_of(x, kernel_size, strides, padding, dilation):
    return tuple(tf_pads(x.shape[1 + a], kernel_size[a], strides[a], dilation[a], padding)[0]
                 for a in range(len(kernel_size)))


def to_last(x, data_format):
    return np.moveaxis(x, 1, -1) if data_format == "channels_first" else x


def from_last(y, data_format):
    return np.moveaxis(y, -1, 1) if data_format == "channels_first" else y


def ref_conv(x, kernel, strides, padding, dilation, data_format):
    x = to_last(x, data_format)
    rank = kernel.ndim - 2
    out = np.zeros((x.shape[0],) + positions_of(x, kernel.shape[:rank], strides, padding,
                                                dilation) + (kernel.shape[-1],))
    for position, window in windows(x, kernel.shape[:rank], strides, padding, dilation):
        out[(slice(None),) + position] = np.tensordot(window, kernel, rank + 1)
    return from_last(out, data_format)


def ref_depthwise(x, kernel, strides, padding, dilation, data_format):
    x = to_last(x, data_format)
    rank = kernel.ndim - 2
    c, m = kernel.shape[-2:]
    out = np.zeros((x.shape[0],) + positions_of(x, kernel.shape[:rank], strides, padding,
                                                dilation) + (c * m,))
    for position, window in windows(x, kernel.shape[:rank], strides, padding, dilation):
        taps = "ijk"[:rank]
        per_channel = np.einsum(f"n{taps}c,{taps}cm->ncm", window, kernel)
        out[(slice(None),) + position] = per_channel.reshape(x.shape[0], c * m)
    return from_last(out, data_format)


def ref_separable(x, depthwise, pointwise, strides, padding, dilation, data_format):
    middle = ref_depthwise(to_last(x, data_format), depthwise, strides, padding, dilation,
                           "channels_last")
    out = np.tensordot(middle, pointwise.reshape(pointwise.shape[-2:]), 1)
    return from_last(out, data_format)


def ref_conv_transpose(y, kernel, output_shape, strides, padding, dilation, data_format):
    """Each input element adds kernel-weighted copies of itself onto the output grid."""
    y = to_last(y, data_format)
    rank = kernel.ndim - 2
    spatial = output_shape[2:] if data_format == "channels_first" else output_shape[1:-1]
    plan = [tf_pads(n, k, s, d, padding)
            for n, k, s, d in zip(spatial, kernel.shape[:rank], strides, dilation)]
    out = np.zeros((y.shape[0],) + tuple(spatial) + (kernel.shape[-2],))
    for position in itertools.product(*[range(n) for n in y.shape[1:-1]]):
        for tap in itertools.product(*[range(k) for k in kernel.shape[:rank]]):
            at = [p * s + t * d - before for p, s, t, d, (_, before)
                  in zip(position, strides, tap, dilation, plan)]
            if all(0 <= a < n for a, n in zip(at, spatial)):
                out[(slice(None),) + tuple(at)] += y[(slice(None),) + position] @ kernel[tap].T
    return from_last(out, data_format)


def ref_local_keras(x, kernel, kernel_size, strides, output_shape, data_format):
    """Keras 2.3.1's tensorflow_backend.local_conv2d, step by step in NumPy."""
    xs = []
    for i in range(output_shape[0]):
        for j in range(output_shape[1]):
            rows = slice(i * strides[0], i * strides[0] + kernel_size[0])
            cols = slice(j * strides[1], j * strides[1] + kernel_size[1])
            window = x[:, :, rows, cols] if data_format == "channels_first" else x[:, rows, cols]
            xs.append(window.reshape(1, -1, kernel.shape[1]))
    out = np.einsum("pnf,pfo->pno", np.concatenate(xs, 0), kernel)
    out = out.reshape(output_shape[0], output_shape[1], -1, kernel.shape[-1])
    return out.transpose((2, 3, 0, 1) if data_format == "channels_first" else (2, 0, 1, 3))


def ref_local1d_keras(x, kernel, kernel_size, strides):
    """Keras 2.3.1's tensorflow_backend.local_conv1d in NumPy."""
    xs = [x[:, i * strides[0]:i * strides[0] + kernel_size[0]].reshape(1, -1, kernel.shape[1])
          for i in range(kernel.shape[0])]
    return np.einsum("pnf,pfo->pno", np.concatenate(xs, 0), kernel).transpose(1, 0, 2)


# --- dense convolutions ----------------------------------------------------------------------

CONV = {1: K.conv1d, 2: K.conv2d, 3: K.conv3d}
SPATIAL = {1: (9,), 2: (7, 6), 3: (5, 4, 5)}
CASES = [  # rank, strides, padding, dilation, data_format
    (1, (1,), "valid", (1,), "channels_last"),
    (1, (2,), "same", (1,), "channels_first"),
    (1, (1,), "causal", (2,), "channels_last"),
    (1, (3,), "causal", (1,), "channels_last"),
    (2, (1, 1), "valid", (1, 1), "channels_last"),
    (2, (2, 1), "same", (1, 1), "channels_last"),
    (2, (1, 2), "valid", (2, 1), "channels_first"),
    (2, (2, 2), "same", (1, 2), "channels_first"),
    (3, (1, 2, 1), "same", (1, 1, 1), "channels_last"),
    (3, (1, 1, 2), "valid", (1, 1, 1), "channels_first"),
]


def conv_input(rank, channels, data_format, batch=2, dtype=np.float32):
    spatial = SPATIAL[rank]
    shape = (batch, channels) + spatial if data_format == "channels_first" else \
        (batch,) + spatial + (channels,)
    return uniform(*shape, dtype=dtype)


def kernel_for(rank, c_in, c_out, dtype=np.float32, size=None):
    return uniform(*((size or (3, 2, 2)[:rank]) + (c_in, c_out)), dtype=dtype)


@pytest.mark.parametrize("rank, strides, padding, dilation, data_format", CASES)
def test_conv_matches_direct_reference(rank, strides, padding, dilation, data_format):
    x, kernel = conv_input(rank, 3, data_format), kernel_for(rank, 3, 4)
    expected = ref_conv(x, kernel, strides, padding, dilation, data_format).astype(np.float32)
    ints = strides[0] if rank == 1 else strides
    rate = dilation[0] if rank == 1 else dilation
    check_op(lambda v: CONV[rank](v, K.constant(kernel), ints, padding, data_format, rate),
             [x], expected, rtol=1e-5, atol=1e-5)


def test_conv_with_a_fed_kernel_and_single_channel():
    x, kernel = uniform(3, 8, 7, 1), uniform(3, 3, 1, 5)
    expected = ref_conv(x, kernel, (1, 1), "valid", (1, 1), "channels_last").astype(np.float32)
    check_op(lambda v, k: K.conv2d(v, k), [x, kernel], expected, rtol=1e-5, atol=1e-5,
             symbolic=False)


def test_data_format_none_reads_the_configured_format():
    x, kernel = conv_input(2, 3, "channels_first"), kernel_for(2, 3, 2)
    before = K.image_data_format()
    K.set_image_data_format("channels_first")
    try:
        y = K.conv2d(K.constant(x), K.constant(kernel), padding="same")
    finally:
        K.set_image_data_format(before)
    expected = ref_conv(x, kernel, (1, 1), "same", (1, 1), "channels_first")
    np.testing.assert_allclose(K.eval(y), expected, rtol=1e-5, atol=1e-5)


def test_unknown_spatial_dims():
    x = K.placeholder((None, None, None, 3))
    kernel = kernel_for(2, 3, 4)
    same = K.conv2d(x, K.constant(kernel), padding="same")
    strided = K.conv2d(x, K.constant(kernel), strides=(2, 2))
    assert K.int_shape(same) == (None, None, None, 4)
    assert same.type.shape[1] == x.type.shape[1]  # 'same' with stride 1 keeps the symbol
    assert strided.type.shape[1] != x.type.shape[1]
    value = uniform(2, 7, 6, 3)
    got_same, got_strided = K.function([x], [same, strided])([value])
    np.testing.assert_allclose(got_same, ref_conv(value, kernel, (1, 1), "same", (1, 1),
                                                  "channels_last"), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_strided, ref_conv(value, kernel, (2, 2), "valid", (1, 1),
                                                     "channels_last"), rtol=1e-5, atol=1e-5)


GRAD_CASES = [CASES[1], CASES[2], CASES[5], CASES[7], CASES[9]]


@pytest.mark.parametrize("rank, strides, padding, dilation, data_format", GRAD_CASES)
def test_conv_gradients(rank, strides, padding, dilation, data_format):
    x = conv_input(rank, 2, data_format, dtype=np.float64)
    kernel = kernel_for(rank, 2, 3, dtype=np.float64, size=(2, 2, 2)[:rank])
    check_gradients(lambda v, k: CONV[rank](v, k, strides, padding, data_format, dilation),
                    [x, kernel], symbolic=False)


def test_conv_gradient_with_unknown_batch():
    x, kernel = uniform(2, 5, 5, 2, dtype=np.float64), uniform(2, 2, 2, 3, dtype=np.float64)
    k = K.constant(kernel, dtype="float64")
    check_gradients(lambda v: K.conv2d(v, k, (2, 1), "same"), [x], symbolic=True)


# --- depthwise and separable ----------------------------------------------------------------

@pytest.mark.parametrize("strides, padding, dilation, data_format", [
    ((1, 1), "valid", (1, 1), "channels_last"),
    ((2, 1), "same", (1, 2), "channels_first"),
])
def test_depthwise_conv2d(strides, padding, dilation, data_format):
    x, kernel = conv_input(2, 3, data_format), uniform(3, 2, 3, 2)
    expected = ref_depthwise(x, kernel, strides, padding, dilation, data_format)
    check_op(lambda v: K.depthwise_conv2d(v, K.constant(kernel), strides, padding, data_format,
                                          dilation),
             [x], expected.astype(np.float32), rtol=1e-5, atol=1e-5)
    check_gradients(lambda v, k: K.depthwise_conv2d(v, k, strides, padding, data_format,
                                                    dilation),
                    [x.astype(np.float64), kernel.astype(np.float64)], symbolic=False)


@pytest.mark.parametrize("rank, strides, padding, dilation, data_format", [
    (2, (1, 1), "valid", (1, 1), "channels_last"),
    (2, (2, 2), "same", (1, 1), "channels_first"),
    (1, (1,), "same", (2,), "channels_last"),
    (1, (2,), "valid", (1,), "channels_first"),
])
def test_separable_conv(rank, strides, padding, dilation, data_format):
    x = conv_input(rank, 2, data_format)
    depthwise = uniform(*((3, 2)[:rank] + (2, 2)))
    pointwise = uniform(*((1,) * rank + (4, 3)))
    fn = K.separable_conv2d if rank == 2 else K.separable_conv1d
    expected = ref_separable(x, depthwise, pointwise, strides, padding, dilation, data_format)
    check_op(lambda v: fn(v, K.constant(depthwise), K.constant(pointwise), strides, padding,
                          data_format, dilation),
             [x], expected.astype(np.float32), rtol=1e-5, atol=1e-5)
    check_gradients(lambda v, d, p: fn(v, d, p, strides, padding, data_format, dilation),
                    [a.astype(np.float64) for a in (x, depthwise, pointwise)], symbolic=False)


# --- transposed convolutions -------------------------------------------------------------------

@pytest.mark.parametrize("strides, padding, dilation, data_format, spatial", [
    ((1, 1), "valid", (1, 1), "channels_last", (6, 5)),
    ((2, 2), "same", (1, 1), "channels_last", (7, 8)),
    ((2, 1), "valid", (1, 1), "channels_first", (9, 5)),
    ((1, 1), "same", (2, 2), "channels_first", (6, 6)),
])
def test_conv2d_transpose(strides, padding, dilation, data_format, spatial):
    kernel = uniform(3, 2, 4, 3)  # (rows, cols, out_channels, in_channels)
    out_like = np.zeros((2, 4) + spatial if data_format == "channels_first" else
                        (2,) + spatial + (4,))
    positions = positions_of(to_last(out_like, data_format), (3, 2), strides, padding, dilation)
    y_shape = (2, 3) + positions if data_format == "channels_first" else (2,) + positions + (3,)
    y = uniform(*y_shape)
    output_shape = (None,) + out_like.shape[1:]
    expected = ref_conv_transpose(y, kernel, out_like.shape, strides, padding, dilation,
                                  data_format)
    check_op(lambda v: K.conv2d_transpose(v, K.constant(kernel), output_shape, strides, padding,
                                          data_format, dilation),
             [y], expected.astype(np.float32), rtol=1e-5, atol=1e-5)
    check_gradients(lambda v, k: K.conv2d_transpose(v, k, output_shape, strides, padding,
                                                    data_format, dilation),
                    [y.astype(np.float64), kernel.astype(np.float64)], symbolic=False)


def test_conv_transpose_is_the_adjoint_of_conv():
    x, y = uniform(2, 7, 6, 3, dtype=np.float64), uniform(2, 4, 3, 5, dtype=np.float64)
    kernel = uniform(3, 2, 3, 5, dtype=np.float64)
    forward = K.eval(K.conv2d(K.constant(x, "float64"), K.constant(kernel, "float64"), (2, 2),
                              "same"))
    back = K.eval(K.conv2d_transpose(K.constant(y, "float64"), K.constant(kernel, "float64"),
                                     x.shape, (2, 2), "same"))
    assert np.isclose(np.sum(forward * y), np.sum(x * back))


def test_conv2d_transpose_output_shape_from_tensors():
    """Keras' Conv2DTranspose passes output_shape entries computed from K.shape(inputs)."""
    kernel = uniform(3, 3, 2, 3)
    y = K.placeholder((None, None, None, 3))
    shape = K.shape(y)
    output_shape = (shape[0], shape[1] * 2, shape[2] * 2, 2)
    out = K.conv2d_transpose(y, K.constant(kernel), output_shape, (2, 2), "same")
    assert K.int_shape(out) == (None, None, None, 2)
    value = uniform(2, 4, 3, 3)
    got = K.function([y], [out])([value])[0]
    expected = ref_conv_transpose(value, kernel, (2, 8, 6, 2), (2, 2), "same", (1, 1),
                                  "channels_last")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_conv3d_transpose():
    kernel = uniform(2, 2, 2, 2, 3)
    y = uniform(2, 3, 2, 3, 3)
    output_shape = (2, 6, 4, 6, 2)
    expected = ref_conv_transpose(y, kernel, output_shape, (2, 2, 2), "same", (1, 1, 1),
                                  "channels_last")
    check_op(lambda v: K.conv3d_transpose(v, K.constant(kernel), output_shape, (2, 2, 2), "same"),
             [y], expected.astype(np.float32), rtol=1e-5, atol=1e-5)
    check_gradients(lambda v, k: K.conv3d_transpose(v, k, output_shape, (2, 2, 2), "valid"),
                    [y.astype(np.float64), kernel.astype(np.float64)], symbolic=False)


# --- unshared weights -------------------------------------------------------------------------

@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_local_conv2d_matches_keras(data_format):
    x = conv_input(2, 3, data_format)  # spatial (7, 6)
    kernel_size, strides, output_shape = (3, 2), (2, 2), (3, 3)
    kernel = uniform(9, 3 * 2 * 3, 4)
    expected = ref_local_keras(x, kernel, kernel_size, strides, output_shape, data_format)
    check_op(lambda v: K.local_conv2d(v, K.constant(kernel), kernel_size, strides, output_shape,
                                      data_format),
             [x], expected.astype(np.float32), rtol=1e-5, atol=1e-5)
    check_gradients(lambda v, k: K.local_conv2d(v, k, kernel_size, strides, output_shape,
                                                data_format),
                    [x.astype(np.float64), kernel.astype(np.float64)], symbolic=False)


def test_local_conv1d_matches_keras():
    x, kernel = uniform(2, 9, 3), uniform(4, 2 * 3, 5)
    expected = ref_local1d_keras(x, kernel, (2,), (2,))
    check_op(lambda v: K.local_conv1d(v, K.constant(kernel), (2,), (2,)), [x],
             expected.astype(np.float32), rtol=1e-5, atol=1e-5)
    check_gradients(lambda v, k: K.local_conv1d(v, k, (2,), (2,)),
                    [x.astype(np.float64), kernel.astype(np.float64)], symbolic=False)


# --- the two ops, and errors ---------------------------------------------------------------

def test_scatter_patches_is_the_transpose_of_extract_patches():
    from graphk.ir.ops import conv
    x = uniform(2, 6, 5, 3, dtype=np.float64)
    attrs = dict(kernel_size=(3, 2), strides=(2, 1), dilation=(1, 2), padding="same")
    patches = K.eval(conv.extract_patches(K.constant(x, "float64"), **attrs))
    g = uniform(*patches.shape, dtype=np.float64)
    back = K.eval(conv.scatter_patches(K.constant(g, "float64"), (6, 5), **attrs))
    assert np.isclose(np.sum(patches * g), np.sum(x * back))


def test_op_graph_is_patches_and_contractions():
    outputs, _ = run_function(lambda v: K.conv2d(v, K.constant(kernel_for(2, 3, 2))),
                              [conv_input(2, 3, "channels_last")])
    node = outputs[0].node
    assert node.op.name == "contract"
    assert node.inputs[0].node.op.name == "extract_patches"


def test_channel_mismatch_names_the_op_and_both_shapes():
    x = K.placeholder((None, 8, 8, 3))
    with pytest.raises(ShapeError, match=r"conv2d.*3 channels.*\(\?\d+, 8, 8, 3\).*\(3, 3, 4, 5\)"):
        K.conv2d(x, K.constant(uniform(3, 3, 4, 5)))
    with pytest.raises(ShapeError, match="depthwise_conv2d"):
        K.depthwise_conv2d(x, K.constant(uniform(3, 3, 2, 1)))


def test_argument_errors():
    x = K.placeholder((None, 8, 3))
    kernel = K.constant(uniform(3, 3, 2))
    with pytest.raises(ValueError, match="Invalid padding"):
        K.conv1d(x, kernel, padding="full")
    with pytest.raises(ValueError, match="causal"):
        K.conv1d(K.placeholder((None, 3, 8)), kernel, padding="causal",
                 data_format="channels_first")
    with pytest.raises(ShapeError, match="does not fit in size"):
        K.conv1d(K.placeholder((None, 2, 3)), kernel)
    with pytest.raises(ShapeError, match="conv2d_transpose.*output_shape.*does not fit"):
        K.conv2d_transpose(K.placeholder((None, 4, 4, 3)), K.constant(uniform(3, 3, 2, 3)),
                           (None, 20, 8, 2), (2, 2), "same")
    with pytest.raises(ValueError, match=r"conv2d at .*test_conv.py:\d+: .*data_format.*"
                                         r"Received: channels_middle"):
        K.conv2d(K.placeholder((None, 8, 8, 3)), K.constant(uniform(3, 3, 3, 2)),
                 data_format="channels_middle")
    with pytest.raises(ValueError, match=r"local_conv1d at .*test_conv.py:\d+: .*data_format"):
        K.local_conv1d(x, K.constant(uniform(6, 9, 2)), (3,), (1,), data_format="nwc")
    with pytest.raises(ShapeError, match="local_conv2d.*kernel rows"):
        K.local_conv2d(K.placeholder((None, 7, 6, 3)), K.constant(uniform(8, 18, 4)), (3, 2),
                       (2, 2), (3, 3), "channels_last")

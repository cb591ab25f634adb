"""Pooling, bias_add, zero padding and resizing against loop-based NumPy references.

The references follow TensorFlow's definitions directly (window by window,
pixel by pixel), so they check the vectorized kernels' padding, count and
interpolation arithmetic independently.
"""
import numpy as np
import pytest

from graphk import backend as K
from graphk.ir.ops import pool as pool_ops

from harness import check_gradients, check_op

rng = np.random.default_rng(0)


def distinct(shape, dtype=np.float32):
    """Values 0.1 apart: no window has two maxima, even under finite differences."""
    values = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0
    return values.astype(dtype)


def to_last(x, data_format):
    return np.moveaxis(x, 1, -1) if data_format == "channels_first" else x


def from_last(x, data_format):
    return np.moveaxis(x, -1, 1) if data_format == "channels_first" else x


# --- references -----------------------------------------------------------------------------


def tf_windows(size, k, s, padding):
    """TensorFlow's windows along one axis: a list of (start, stop) over real elements."""
    if padding == "same":
        out = -(-size // s)
        before = max((out - 1) * s + k - size, 0) // 2
    else:
        out, before = (size - k) // s + 1, 0
    return [(max(o * s - before, 0), min(o * s - before + k, size)) for o in range(out)]


def ref_pool(x, pool_size, strides, padding, data_format, mode):
    x = to_last(x, data_format)
    per_axis = [tf_windows(n, k, s, padding)
                for n, k, s in zip(x.shape[1:-1], pool_size, strides)]
    out = np.zeros((x.shape[0],) + tuple(len(w) for w in per_axis) + (x.shape[-1],), x.dtype)
    spatial = tuple(range(1, x.ndim - 1))
    for index in np.ndindex(*out.shape[1:-1]):
        window = x[(slice(None),) + tuple(slice(*per_axis[a][i]) for a, i in enumerate(index))]
        reduce = np.max if mode == "max" else np.mean
        out[(slice(None),) + index] = reduce(window, axis=spatial)
    return from_last(out, data_format)


def ref_bilinear_axis(x, axis, factor):
    """TF 1.x resize_bilinear along one axis: in = o * (n / out), floor/ceil, lerp."""
    n = x.shape[axis]
    scale = np.float32(n) / np.float32(n * factor)
    out = []
    for o in range(n * factor):
        position = np.float32(o) * scale
        low = int(np.floor(position))
        high = min(int(np.ceil(position)), n - 1)
        lerp = position - low
        a, b = np.take(x, low, axis), np.take(x, high, axis)
        out.append(a + (b - a) * lerp)
    return np.stack(out, axis=axis).astype(np.float32)


# --- pooling ----------------------------------------------------------------------------------

POOL_CASES = [((2, 2), (2, 2), "valid"), ((3, 3), (1, 1), "same"), ((3, 2), (2, 1), "same"),
              ((2, 3), (2, 2), "valid"), ((3, 3), (2, 2), "same")]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("pool_size, strides, padding", POOL_CASES)
def test_pool2d_matches_tensorflow_windows(pool_size, strides, padding, mode, data_format):
    x = rng.uniform(-2, 2, (2, 5, 7, 3) if data_format == "channels_last" else (2, 3, 5, 7))
    x = x.astype(np.float32)
    expected = ref_pool(x, pool_size, strides, padding, data_format, mode)
    check_op(lambda t: K.pool2d(t, pool_size, strides, padding, data_format, mode), [x],
             expected, rtol=1e-5)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("pool_size, strides, padding",
                         [((2, 2, 2), (2, 2, 2), "valid"), ((2, 3, 2), (1, 2, 2), "same")])
def test_pool3d_matches_tensorflow_windows(pool_size, strides, padding, mode, data_format):
    shape = (2, 4, 5, 3, 2) if data_format == "channels_last" else (2, 2, 4, 5, 3)
    x = rng.uniform(-2, 2, shape).astype(np.float32)
    expected = ref_pool(x, pool_size, strides, padding, data_format, mode)
    check_op(lambda t: K.pool3d(t, pool_size, strides, padding, data_format, mode), [x],
             expected, rtol=1e-5)


def test_same_average_divides_by_the_real_elements_only():
    # tf.nn.avg_pool(1..9 as 3x3, 2x2, stride 2, SAME): padding goes after, windows shrink.
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    result = K.eval(K.pool2d(K.constant(x), (2, 2), (2, 2), "same", "channels_last", "avg"))
    np.testing.assert_allclose(result[0, :, :, 0], [[3.0, 4.5], [7.5, 9.0]])


def test_pooling_uses_the_configured_data_format_and_keeps_int_dtypes():
    x = rng.integers(-50, 50, (2, 4, 4, 3)).astype(np.int32)
    expected = ref_pool(x, (2, 2), (2, 2), "valid", "channels_last", "max")
    check_op(lambda t: K.pool2d(t, (2, 2), (2, 2)), [x], expected)
    K.set_image_data_format("channels_first")
    try:
        expected = ref_pool(x, (2, 2), (1, 1), "same", "channels_first", "max")
        check_op(lambda t: K.pool2d(t, 2, 1, padding="same"), [x], expected)
    finally:
        K.set_image_data_format("channels_last")


def test_pool_sizes_and_strides_may_be_numpy_ints():
    x = rng.uniform(-2, 2, (2, 4, 6, 3)).astype(np.float32)
    expected = ref_pool(x, (2, 2), (2, 2), "valid", "channels_last", "max")
    check_op(lambda t: K.pool2d(t, np.int64(2), np.int32(2)), [x], expected)
    check_op(lambda t: K.pool2d(t, (np.int64(2), 2), [np.int64(2), 2]), [x], expected)
    y = rng.uniform(-2, 2, (2, 4, 4, 2, 3)).astype(np.float32)
    expected = ref_pool(y, (2, 2, 2), (2, 2, 2), "valid", "channels_last", "avg")
    check_op(lambda t: K.pool3d(t, np.int64(2), np.int64(2), pool_mode="avg"), [y], expected,
             rtol=1e-5)


def test_pool_sizes_and_strides_must_be_positive_ints():
    x = K.placeholder((None, 4, 4, 3))
    with pytest.raises(ValueError, match=r"pool2d at .*test_pool_image.py:\d+: pool_size must "
                                         r"be a positive int or 2 positive ints, got 2.5"):
        K.pool2d(x, 2.5)
    with pytest.raises(ValueError, match="strides must be a positive int"):
        K.pool2d(x, (2, 2), (0, 1))
    with pytest.raises(ValueError, match=r"pool3d.*pool_size.*\(2, 2\)"):
        K.pool3d(K.placeholder((None, 4, 4, 4, 3)), (2, 2))


def test_unknown_spatial_sizes_stay_symbolic():
    x = K.placeholder((None, None, None, 3))
    y = K.pool2d(x, (2, 2), (2, 2), padding="same")
    assert K.int_shape(y) == (None, None, None, 3)
    assert K.int_shape(K.pool2d(x, (3, 3), padding="same")) == (None, None, None, 3)
    assert y.type.shape[0] == x.type.shape[0]
    array = rng.uniform(-1, 1, (2, 5, 3, 3)).astype(np.float32)
    result = K.function([x], [y])([array])[0]
    expected = ref_pool(array, (2, 2), (2, 2), "same", "channels_last", "max")
    np.testing.assert_allclose(result, expected)


GRAD_CASES = [((2, 2), (2, 2), "valid", "channels_last"),
              ((3, 2), (2, 1), "same", "channels_first"),
              ((3, 3), (2, 2), "same", "channels_last")]


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("pool_size, strides, padding, data_format", GRAD_CASES)
def test_pool_gradients_match_finite_differences(pool_size, strides, padding, data_format, mode):
    shape = (2, 5, 4, 2) if data_format == "channels_last" else (2, 2, 5, 4)
    x = distinct(shape, np.float64)
    check_gradients(lambda t: K.pool2d(t, pool_size, strides, padding, data_format, mode), [x])


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool3d_gradients_match_finite_differences(mode):
    x = distinct((1, 3, 4, 3, 2), np.float64)
    check_gradients(lambda t: K.pool3d(t, (2, 2, 2), (1, 2, 2), "same", None, mode), [x])


def test_max_pool_gradient_goes_to_the_first_maximum_of_tied_windows():
    x = K.placeholder((None, 3, 3, 1))
    loss = K.sum(K.pool2d(x, (2, 2), (1, 1)))
    grad = K.function([x], K.gradients(loss, [x]))([np.ones((1, 3, 3, 1), np.float32)])[0]
    # Windows start at (0,0), (0,1), (1,0), (1,1); each sends its 1 to its top-left element.
    np.testing.assert_array_equal(grad[0, :, :, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_max_pool_gradient_keeps_an_infinite_cotangent_at_the_maximum():
    x = np.array([[[[1.0], [3.0]], [[2.0], [0.0]]]])
    y = pool_ops._max_pool(x, (2, 2), (2, 2), "valid", "channels_last")
    g = np.array([[[[np.inf]]]])
    grad = pool_ops._max_pool_grad(g, x, y, (2, 2), (2, 2), "valid", "channels_last")
    np.testing.assert_array_equal(grad[0, :, :, 0], [[0, np.inf], [0, 0]])


def test_max_pool_second_derivative_through_the_gradient():
    """d/dw of <grad_x sum(w * max_pool(x)), v> is max_pool's selection applied to v."""
    x = distinct((1, 4, 4, 1))
    v = rng.uniform(-1, 1, x.shape).astype(np.float32)
    xs, ws, vs = K.placeholder((None, 4, 4, 1)), K.placeholder((None, 2, 2, 1)), \
        K.placeholder((None, 4, 4, 1))
    inner = K.gradients(K.sum(ws * K.pool2d(xs, (2, 2), (2, 2))), [xs])[0]
    outer = K.gradients(K.sum(inner * vs), [ws])[0]
    got = K.function([xs, ws, vs], [outer])([x, np.ones((1, 2, 2, 1), np.float32), v])[0]
    windows = x.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(2, 2, 4)
    picks = v.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(2, 2, 4)
    expected = np.take_along_axis(picks, windows.argmax(-1)[..., None], -1)[..., 0]
    np.testing.assert_allclose(got[0, :, :, 0], expected)


def test_pool_errors_name_the_problem():
    x = K.placeholder((None, 4, 4, 3))
    with pytest.raises(ValueError, match="Invalid pool_mode: min"):
        K.pool2d(x, (2, 2), pool_mode="min")
    with pytest.raises(ValueError, match="Invalid padding: full"):
        K.pool2d(x, (2, 2), padding="full")
    with pytest.raises(ValueError) as info:
        K.pool2d(x, (5, 2))
    message = str(info.value)
    assert "max_pool" in message and "larger than spatial axis 1" in message
    assert "test_pool_image.py" in message
    with pytest.raises(ValueError, match="rank 5"):
        K.pool3d(x, (2, 2, 2))
    with pytest.raises(TypeError, match="float"):
        K.pool2d(K.placeholder((None, 4, 4, 3), dtype="int32"), (2, 2), pool_mode="avg")


# --- bias_add ---------------------------------------------------------------------------------


def ref_bias_add(x, bias, data_format):
    """Keras' TensorFlow backend: a full-rank bias is *reshaped* to channels_first."""
    if bias.ndim == 1:
        shape = [1] * x.ndim
        shape[1 if data_format == "channels_first" and 3 <= x.ndim <= 5 else -1] = bias.size
        return x + bias.reshape(shape)
    if data_format == "channels_first":
        bias = bias.reshape((bias.shape[-1],) + bias.shape[:-1])
    return x + bias


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("x_shape", [(4, 5), (2, 3, 4), (2, 3, 4, 5), (2, 2, 3, 4, 5)])
@pytest.mark.parametrize("full", [False, True])
def test_bias_add_matches_keras_tensorflow(x_shape, full, data_format):
    """A vector bias sits on the channel axis; a full one is given in channels_last order."""
    first = data_format == "channels_first" and len(x_shape) > 2
    if full:
        bias_shape = x_shape[2:] + x_shape[1:2] if first else x_shape[1:]
    else:
        bias_shape = (x_shape[1],) if first else x_shape[-1:]
    x = rng.uniform(-2, 2, x_shape).astype(np.float32)
    bias = rng.uniform(-2, 2, bias_shape).astype(np.float32)
    check_op(lambda t, b: K.bias_add(t, b, data_format), [x, bias],
             ref_bias_add(x, bias, data_format), symbolic=False)
    check_op(lambda t: K.bias_add(t, K.constant(bias), data_format), [x],
             ref_bias_add(x, bias, data_format))


@pytest.mark.parametrize("x_shape, bias_shape, data_format",
                         [((2, 3, 4, 2), (2,), "channels_last"),
                          ((2, 3, 4, 2), (3,), "channels_first"),
                          ((2, 3, 2), (2, 3), "channels_first"),
                          ((2, 2, 3, 2), (2, 3, 2), "channels_last")])
def test_bias_add_gradients(x_shape, bias_shape, data_format):
    x = rng.uniform(-2, 2, x_shape)
    bias = rng.uniform(-2, 2, bias_shape)
    check_gradients(lambda t, b: K.bias_add(t, b, data_format), [x, bias], symbolic=False)
    check_gradients(lambda t: K.bias_add(t, K.constant(bias, dtype="float64"), data_format), [x])


def test_bias_add_errors():
    x = K.placeholder((None, 4, 4, 3))
    with pytest.raises(ValueError, match="Unexpected bias dimensions 2"):
        K.bias_add(x, K.placeholder((4, 3)))
    with pytest.raises(ValueError) as info:
        K.bias_add(x, K.placeholder((5,)), "channels_last")
    assert "bias_add" in str(info.value) and "(5,)" in str(info.value)
    assert "test_pool_image.py" in str(info.value)


# --- zero padding -------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", [(1, 1), (2, 0), (0, 3)])
def test_temporal_padding(padding):
    x = rng.uniform(-1, 1, (2, 3, 4)).astype(np.float32)
    check_op(lambda t: K.temporal_padding(t, padding), [x],
             np.pad(x, [(0, 0), padding, (0, 0)]))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_spatial_padding(data_format):
    x = rng.uniform(-1, 1, (2, 3, 4, 2)).astype(np.float32)
    padding = ((1, 2), (0, 1))
    spatial = [(0, 0)] + list(padding) + [(0, 0)]
    pads = spatial if data_format == "channels_last" else [(0, 0), (0, 0)] + list(padding)
    check_op(lambda t: K.spatial_2d_padding(t, padding, data_format), [x], np.pad(x, pads))
    y = rng.uniform(-1, 1, (2, 2, 3, 2, 2)).astype(np.float32)
    padding3 = ((1, 0), (0, 2), (1, 1))
    pads = ([(0, 0)] + list(padding3) + [(0, 0)] if data_format == "channels_last"
            else [(0, 0), (0, 0)] + list(padding3))
    check_op(lambda t: K.spatial_3d_padding(t, padding3, data_format), [y], np.pad(y, pads))


def test_padding_keeps_unknown_sizes_and_has_a_gradient():
    x = K.placeholder((None, None, 3))
    y = K.temporal_padding(x, (1, 2))
    assert K.int_shape(y) == (None, None, 3) and y.type.shape[0] == x.type.shape[0]
    check_gradients(lambda t: K.spatial_2d_padding(t, ((1, 0), (2, 1)), "channels_first"),
                    [rng.uniform(-1, 1, (2, 2, 3, 2))])
    check_gradients(lambda t: K.spatial_3d_padding(t, ((1, 0), (0, 1), (1, 1))),
                    [rng.uniform(-1, 1, (1, 2, 2, 2, 1))])


def test_padding_errors():
    with pytest.raises(ValueError, match="2 \\(before, after\\) pairs"):
        K.spatial_2d_padding(K.placeholder((None, 4, 4, 3)), (1, 1))
    with pytest.raises(ValueError, match="ints >= 0"):
        K.temporal_padding(K.placeholder((None, 4, 3)), (-1, 1))


# --- resizing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("factors", [(2, 3), (1, 2), (3, 1)])
def test_resize_images(factors, data_format):
    x = rng.uniform(-1, 1, (2, 3, 4, 2)).astype(np.float32)
    rows, cols = (1, 2) if data_format == "channels_last" else (2, 3)
    nearest = np.repeat(np.repeat(x, factors[0], rows), factors[1], cols)
    check_op(lambda t: K.resize_images(t, *factors, data_format), [x], nearest)
    bilinear = ref_bilinear_axis(ref_bilinear_axis(x, rows, factors[0]), cols, factors[1])
    check_op(lambda t: K.resize_images(t, *factors, data_format, interpolation="bilinear"), [x],
             bilinear, rtol=1e-5, atol=1e-6)


def test_bilinear_resizing_of_ints_gives_float32():
    x = rng.integers(0, 9, (1, 2, 3, 1)).astype(np.int32)
    expected = ref_bilinear_axis(ref_bilinear_axis(x.astype(np.float32), 1, 2), 2, 2)
    check_op(lambda t: K.resize_images(t, 2, 2, "channels_last", "bilinear"), [x], expected)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_resize_volumes(data_format):
    x = rng.uniform(-1, 1, (2, 2, 3, 2, 2)).astype(np.float32)
    axes = (1, 2, 3) if data_format == "channels_last" else (2, 3, 4)
    expected = x
    for axis, factor in zip(axes, (2, 1, 3)):
        expected = np.repeat(expected, factor, axis)
    check_op(lambda t: K.resize_volumes(t, 2, 1, 3, data_format), [x], expected)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_resize_gradients(interpolation, data_format):
    x = rng.uniform(-1, 1, (2, 3, 2, 2))
    check_gradients(lambda t: K.resize_images(t, 2, 3, data_format, interpolation), [x])


def test_resize_volumes_gradient_and_symbolic_sizes():
    check_gradients(lambda t: K.resize_volumes(t, 2, 2, 1, "channels_first"),
                    [rng.uniform(-1, 1, (1, 2, 2, 3, 2))])
    x = K.placeholder((None, None, 4, 3))
    y = K.resize_images(x, 2, 2, "channels_last", "bilinear")
    assert K.int_shape(y) == (None, None, 8, 3)


def test_resize_errors():
    x = K.placeholder((None, 4, 4, 3))
    with pytest.raises(ValueError, match='one of "nearest" or "bilinear"'):
        K.resize_images(x, 2, 2, "channels_last", "bicubic")
    with pytest.raises(ValueError, match="positive integers"):
        K.resize_images(x, 1.5, 2, "channels_last")
    with pytest.raises(ValueError, match="rank 5"):
        K.resize_volumes(x, 2, 2, 2, "channels_last")
    with pytest.raises(ValueError, match="data_format"):
        K.resize_images(x, 2, 2, "channels_middle")

"""The fast NumPy paths of the window kernels against their general forms, bit for bit.

extract_patches pads with a zero buffer (not np.pad), scatter_patches adds only the
taps' in-bounds parts into an unpadded result, and max_pool_grad of tiling windows
(stride = pool size) compares and multiplies once over the whole tensor. Each must give
exactly what the straightforward padded / tap-by-tap computation gives.
"""

import numpy as np
import pytest

from graphk.ir.ops import conv, pool
from graphk.ir.ops.windows import window_layout

CASES = [  # spatial, kernel_size, strides, dilation, padding
    ((8, 8), (3, 3), (1, 1), (1, 1), "same"),
    ((7, 5), (3, 2), (2, 1), (1, 1), "same"),
    ((7, 6), (3, 3), (2, 3), (1, 2), "same"),
    ((9, 7), (2, 3), (3, 2), (2, 1), "valid"),
    ((5, 5), (5, 5), (1, 1), (1, 1), "same"),
    ((4, 6), (1, 1), (1, 1), (1, 1), "valid"),
    ((11,), (3,), (2,), (2,), "causal"),
    ((3, 5, 4), (2, 3, 2), (2, 1, 3), (1, 1, 2), "same"),
]


def _attrs(case, data_format):
    _, kernel_size, strides, dilation, padding = case
    return dict(kernel_size=kernel_size, strides=strides, dilation=dilation, padding=padding,
                data_format=data_format)


def _shape(spatial, channels, data_format):
    return ((2, channels) + spatial if data_format == "channels_first"
            else (2,) + spatial + (channels,))


def _reference_patches(x, kernel_size, strides, dilation, padding, data_format):
    x = np.moveaxis(x, 1, -1) if data_format == "channels_first" else x
    layout = window_layout(x.shape[1:-1], kernel_size, strides, dilation, padding)
    x = np.pad(x, ((0, 0),) + layout.pads + ((0, 0),))
    patches = np.empty((x.shape[0],) + layout.positions + tuple(kernel_size) + x.shape[-1:],
                       x.dtype)
    lead = (slice(None),) * (1 + len(kernel_size))
    for tap, source in layout.taps:
        patches[lead + tap] = x[(slice(None),) + source]
    return patches


def _reference_scatter(patches, spatial, kernel_size, strides, dilation, padding, data_format):
    """The padded-buffer col2im: every tap added in window order, then cropped."""
    layout = window_layout(spatial, kernel_size, strides, dilation, padding)
    result = np.zeros((patches.shape[0],) + layout.padded_spatial + patches.shape[-1:],
                      patches.dtype)
    lead = (slice(None),) * (1 + len(kernel_size))
    for tap, target in layout.taps:
        result[(slice(None),) + target] += patches[lead + tap]
    result = result[(slice(None),) + layout.crop]
    return np.moveaxis(result, -1, 1) if data_format == "channels_first" else result


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("channels", [1, 3, 20])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_patches_and_scatter_match_the_padded_forms(case, channels, data_format):
    rng = np.random.default_rng(0)
    attrs = _attrs(case, data_format)
    x = rng.standard_normal(_shape(case[0], channels, data_format)).astype(np.float32)
    patches = conv._extract_patches_kernel(x, **attrs)
    np.testing.assert_array_equal(patches, _reference_patches(x, **attrs))
    g = rng.standard_normal(patches.shape).astype(np.float32)
    got = conv._scatter_patches_kernel(g, output_spatial=case[0], **attrs)
    want = _reference_scatter(g, case[0], **attrs)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


POOLS = [  # x shape (channels-last), pool size = strides
    ((3, 8, 8, 5), (2, 2)),
    ((2, 9, 7, 3), (2, 2)),  # a remainder row and column no window covers
    ((2, 9, 9, 4), (3, 3)),
    ((2, 6, 4, 2), (3, 1)),
    ((2, 4, 6, 4, 3), (2, 3, 2)),
]


def _general_max_pool_grad(monkeypatch, *args, **attrs):
    with monkeypatch.context() as patch:
        patch.setattr(pool, "_tiled_max_pool_grad", lambda *a: None)
        return pool._max_pool_grad(*args, **attrs)


@pytest.mark.parametrize("shape,size", POOLS)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("values", ["distinct", "ties", "nan", "inf_g", "ints"])
def test_tiled_max_pool_grad_matches_the_tap_loop(monkeypatch, shape, size, data_format,
                                                   values):
    rng = np.random.default_rng(1)
    if data_format == "channels_first":
        shape = (shape[0], shape[-1]) + shape[1:-1]
    x = rng.standard_normal(shape).astype(np.float32)
    if values == "ties":
        x = np.round(x)  # many windows with several maxima
    elif values == "nan":
        x.flat[::7] = np.nan
    elif values == "ints":
        x = rng.integers(-3, 3, shape).astype(np.int32)
    attrs = dict(pool_size=size, strides=size, padding="valid", data_format=data_format)
    y = pool._max_pool(x, **attrs)
    g = rng.standard_normal(y.shape).astype(np.float32)
    if values == "inf_g":
        g.flat[::5] = np.inf
    got = pool._max_pool_grad(g, x, y, **attrs)
    want = _general_max_pool_grad(monkeypatch, g, x, y, **attrs)
    assert got.shape == want.shape == x.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("relu", [False, True])
def test_tiled_max_pool_grad_is_taken_for_keras_pools(relu):
    """The fast path really runs for MaxPooling2D(2), also after a ReLU (all-zero windows)."""
    x = np.random.default_rng(2).standard_normal((2, 8, 8, 4))
    x = np.maximum(x - 1, 0) if relu else x
    attrs = dict(pool_size=(2, 2), strides=(2, 2), padding="valid", data_format="channels_last")
    y = pool._max_pool(x, **attrs)
    windows = pool._windows(x.shape, (2, 2), (2, 2), "valid", "channels_last")
    assert pool._tiled_max_pool_grad(np.ones_like(y), x, y, windows) is not None

"""Random tensors and dropout: statistics, shapes (static, from K.shape, runtime), fresh
samples per call, seeds, dtypes, errors, and gradients through dropout's mask."""
import numpy as np
import pytest

from graphk import backend as K

SHAPE = (400, 500)  # 200,000 samples: a mean is within ~0.01 stddev with high probability


def draw(tensor, inputs=(), feeds=()):
    return K.function(list(inputs), [tensor])(list(feeds))[0]


# --- statistics --------------------------------------------------------------------------

TRUNCATED_STD = 0.8796  # standard normal truncated to [-2, 2]

DISTRIBUTIONS = [
    (lambda: K.random_normal(SHAPE, mean=1.5, stddev=2.0, seed=1), 1.5, 2.0),
    (lambda: K.random_uniform(SHAPE, minval=-2.0, maxval=3.0, seed=2), 0.5, 5 / np.sqrt(12)),
    (lambda: K.random_binomial(SHAPE, p=0.3, seed=3), 0.3, np.sqrt(0.3 * 0.7)),
    (lambda: K.truncated_normal(SHAPE, mean=-1.0, stddev=0.5, seed=4), -1.0,
     0.5 * TRUNCATED_STD),
]


@pytest.mark.parametrize("build, mean, std", DISTRIBUTIONS)
def test_sample_mean_and_std(build, mean, std):
    samples = draw(build())
    assert samples.shape == SHAPE and samples.dtype == np.float32
    assert abs(samples.mean() - mean) < 0.02 * std + 1e-3
    assert abs(samples.std() - std) < 0.02 * std


def test_ranges():
    uniform = draw(K.random_uniform(SHAPE, minval=-2.0, maxval=3.0))
    assert uniform.min() >= -2.0 and uniform.max() < 3.0
    assert uniform.min() < -1.99 and uniform.max() > 2.99
    binomial = draw(K.random_binomial(SHAPE, p=0.3))
    assert set(np.unique(binomial)) == {0.0, 1.0}
    truncated = draw(K.truncated_normal(SHAPE, mean=-1.0, stddev=0.5))
    assert truncated.min() >= -2.0 and truncated.max() <= 0.0  # within 2 stddev of the mean
    assert truncated.min() < -1.99 and truncated.max() > -0.01


def test_binomial_extremes_are_exact():
    assert not draw(K.random_binomial((1000,), p=0.0)).any()
    assert draw(K.random_binomial((1000,), p=1.0)).all()


def test_dtypes():
    assert K.random_normal((2, 3)).dtype == K.floatx() == "float32"
    assert draw(K.random_normal((2, 3), dtype="float64")).dtype == np.float64
    half = draw(K.truncated_normal((1000,), dtype="float16"))
    assert half.dtype == np.float16 and np.abs(half).max() <= 2.0
    ints = draw(K.random_uniform((10000,), minval=-3, maxval=4, dtype="int32"))
    assert ints.dtype == np.int32 and set(np.unique(ints)) == set(range(-3, 4))
    flags = draw(K.random_binomial((100,), p=0.5, dtype="bool"))
    assert flags.dtype == np.bool_ and 0 < flags.sum() < 100


def test_floatx_is_the_default_dtype():
    K.set_floatx("float64")
    try:
        assert K.random_uniform((2,)).dtype == "float64"
        assert K.random_binomial((2,), 0.5).dtype == "float64"
    finally:
        K.set_floatx("float32")


# --- shapes ----------------------------------------------------------------------------------


def test_shape_from_k_shape_keeps_symbolic_dims():
    x = K.placeholder((None, 3))
    noise = K.random_normal(K.shape(x))
    assert K.int_shape(noise) == (None, 3)
    assert noise.type.shape[0] == x.type.shape[0]  # the same symbol, not just unknown
    fn = K.function([x], [noise + x])
    for batch in (1, 7):
        assert fn([np.zeros((batch, 3), np.float32)])[0].shape == (batch, 3)


def test_shape_mixing_ints_and_runtime_dims():
    x = K.placeholder((None, 3, None))
    noise = K.random_uniform((K.shape(x)[0], 1, K.shape(x)[-1]))
    assert K.int_shape(noise) == (None, 1, None)
    assert noise.type.shape[2] == x.type.shape[2]
    result = draw(noise, [x], [np.zeros((4, 3, 6), np.float32)])
    assert result.shape == (4, 1, 6)
    sliced = K.random_uniform(K.shape(x)[1:])
    assert K.int_shape(sliced) == (3, None)


def test_runtime_shape_tensor_gets_fresh_dims():
    shape = K.placeholder((2,), dtype="int32")
    noise = K.random_normal(shape)
    assert K.int_shape(noise) == (None, None)
    assert draw(noise, [shape], [np.array([3, 5], np.int32)]).shape == (3, 5)
    count = K.placeholder((), dtype="int64")
    column = K.random_uniform((count, 2))
    assert K.int_shape(column) == (None, 2)
    assert draw(column, [count], [np.asarray(4, np.int64)]).shape == (4, 2)


def test_constant_shape_tensor_is_static():
    noise = K.random_normal(K.constant([2, 3], dtype="int32"))
    assert K.int_shape(noise) == (2, 3)


def test_random_tensor_in_an_expression_evaluates():
    assert K.eval(K.random_uniform((2, 2)) * 0 + 1).tolist() == [[1, 1], [1, 1]]


# --- fresh samples and seeds ---------------------------------------------------------------


@pytest.mark.parametrize("make", [K.random_normal, K.random_uniform, K.truncated_normal,
                                  lambda s, seed=None: K.random_binomial(s, 0.5, seed=seed)])
def test_each_call_draws_fresh_samples(make):
    fn = K.function([], [make((50,))])
    first, second = fn([])[0], fn([])[0]
    assert not np.array_equal(first, second)


def test_same_seed_same_sequence_per_compiled_function():
    noise = K.random_normal((20,), seed=1234)
    run_a, run_b = K.function([], [noise]), K.function([], [noise])
    a = [run_a([])[0] for _ in range(3)]
    b = [run_b([])[0] for _ in range(3)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], a[1])
    other = K.function([], [K.random_normal((20,), seed=1235)])([])[0]
    assert not np.array_equal(a[0], other)


def test_unseeded_functions_follow_numpy_global_seed():
    noise = K.random_uniform((20,))
    np.random.seed(7)
    first = K.function([], [noise])([])[0]
    np.random.seed(7)
    again = K.function([], [noise])([])[0]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(K.eval(noise), K.eval(noise))


def test_two_random_ops_in_one_function_differ():
    a, b = K.random_normal((20,)), K.random_normal((20,))
    first, second = K.function([], [a, b])([])
    assert not np.array_equal(first, second)


# --- tensor parameters -----------------------------------------------------------------------


def test_tensor_mean_and_stddev_are_differentiable():
    mean, stddev = K.placeholder((3,)), K.placeholder(())
    samples = K.random_normal((1000, 3), mean=mean, stddev=stddev, seed=5)
    grad_mean, grad_std = K.gradients(K.sum(samples), [mean, stddev])
    fn = K.function([mean, stddev], [samples, grad_mean, grad_std])
    values, d_mean, d_std = fn([np.array([1.0, 2.0, 3.0], np.float32), np.asarray(0.1, np.float32)])
    np.testing.assert_allclose(values.mean(axis=0), [1, 2, 3], atol=0.02)
    np.testing.assert_allclose(d_mean, [1000, 1000, 1000])
    np.testing.assert_allclose(d_std, ((values - [1, 2, 3]) / 0.1).sum(), rtol=1e-3, atol=1e-2)


def test_tensor_bounds_and_probability():
    low, high = K.variable(2.0), K.variable(4.0)
    samples = draw(K.random_uniform((10000,), minval=low, maxval=high))
    assert samples.min() >= 2.0 and samples.max() < 4.0 and abs(samples.mean() - 3) < 0.05
    flags = draw(K.random_binomial((10000,), p=K.variable(0.25)))
    assert flags.dtype == np.float32 and abs(flags.mean() - 0.25) < 0.03


# --- errors --------------------------------------------------------------------------------------


def test_bad_shapes_are_reported():
    with pytest.raises(ValueError, match="random_normal.*negative dimension"):
        K.random_normal((2, -1))
    with pytest.raises(ValueError, match="None dimension"):
        K.random_uniform((None, 3))
    with pytest.raises(ValueError, match="not an int"):
        K.random_uniform((2.5, 3))
    with pytest.raises(ValueError, match="known length"):
        K.random_normal(K.placeholder((None,), dtype="int32"))
    with pytest.raises(ValueError, match="test_random.py"):
        K.random_normal(K.placeholder((2,)))  # a float shape tensor


def test_bad_parameters_are_reported():
    with pytest.raises(ValueError, match="0 <= p <= 1"):
        K.random_binomial((2,), p=1.5)
    with pytest.raises(TypeError, match="not a float dtype"):
        K.random_normal((2,), dtype="int32")
    with pytest.raises(TypeError, match="int bounds"):
        K.random_uniform((2,), minval=0.5, maxval=3, dtype="int32")


# --- dropout ---------------------------------------------------------------------------------


def test_dropout_keeps_and_scales():
    x = K.placeholder((None, 400))
    fn = K.function([x], [K.dropout(x, 0.25, seed=1)])
    result = fn([np.ones((500, 400), np.float32)])[0]
    kept = result != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(result[kept], 1 / 0.75, rtol=1e-6)
    assert abs(result.mean() - 1.0) < 0.02  # the expectation is unchanged


def test_dropout_noise_shape_broadcasts():
    x = K.placeholder((None, 3, 50))
    ones = np.ones((200, 3, 50), np.float32)
    rows = draw(K.dropout(x, 0.5, noise_shape=(None, 1, 50)), [x], [ones])
    assert (rows == rows[:, :1, :]).all()  # one decision per (sample, feature)
    assert 0.4 < (rows != 0).mean() < 0.6
    symbolic = K.dropout(x, 0.5, noise_shape=(K.shape(x)[0], 1, 1))
    assert K.int_shape(symbolic) == (None, 3, 50)
    whole = draw(symbolic, [x], [ones])
    assert (whole == whole[:, :1, :1]).all()


def test_dropout_gradient_is_the_mask():
    x = K.placeholder((None, 6))
    dropped = K.dropout(x, 0.5)
    (grad,) = K.gradients(K.sum(dropped * 3.0), [x])
    values = np.random.default_rng(0).uniform(1, 2, (20, 6)).astype(np.float32)
    out, g = K.function([x], [dropped, grad])([values])  # one call: one mask
    np.testing.assert_allclose(g, 3.0 * out / values, rtol=1e-6)


def test_dropout_with_a_tensor_level_and_a_seed():
    x = K.placeholder((None, 100))
    level = K.variable(0.5)
    ones = np.ones((100, 100), np.float32)
    first = draw(K.dropout(x, level, seed=3), [x], [ones])
    assert set(np.unique(first)) == {0.0, 2.0}
    again = draw(K.dropout(x, level, seed=3), [x], [ones])
    np.testing.assert_array_equal(first, again)


def test_dropout_level_checks():
    x = K.placeholder((2, 3))
    assert K.dropout(x, 0.0) is x
    for level in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"dropout.*\[0, 1\)"):
            K.dropout(x, level)
    with pytest.raises(ValueError, match="rank"):
        K.dropout(x, 0.5, noise_shape=(None,))
    with pytest.raises(ValueError, match="do not broadcast"):
        K.dropout(x, 0.5, noise_shape=(2, 4))


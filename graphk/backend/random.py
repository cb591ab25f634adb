"""Random tensors and dropout with Keras' arguments.

Every call of a compiled function draws fresh samples; a `seed` makes the
sequence reproducible, and with seed None each compiled function takes its
seed from NumPy's global RNG (see ir/ops/random.py). `shape` may be a tuple of
ints and int scalar tensors (`K.shape(x)[0]`) or a 1-D int tensor
(`K.shape(x)`); built from K.shape, the result keeps x's symbolic dims.

A mean, stddev, bound or probability given as a tensor is applied to
standard samples with elementwise ops, so gradients flow to it (the
reparameterization a VAE relies on).
"""
from __future__ import annotations

import numpy as np

from .. import config
from ..ir.dtypes import as_dtype, is_floating
from ..ir.graph import Value
from ..ir.ops import elementwise as ew
from ..ir.ops import random as ops
from ..ir.ops.leaf import as_value, constant
from .arguments import argument_error
from .tensors import _as_tensor


def _dtype(dtype) -> str:
    return as_dtype(dtype or config.floatx())


def _any_tensor(*values) -> bool:
    return any(isinstance(v, Value) for v in values)


def _affine(samples: Value, scale, offset) -> Value:
    """samples * scale + offset for tensor (or number) scale and offset."""
    return ew.add(ew.mul(samples, as_value(scale, like=samples)), as_value(offset, like=samples))


def random_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> Value:
    """A tensor of normal samples, drawn anew at each call of a compiled function.

    Arguments:
        shape: a tuple of ints and int scalar tensors, or an int vector tensor.
        mean: the mean (a number or tensor).
        stddev: the standard deviation (a number or tensor).
        dtype: the dtype; floatx when None.
        seed: an int seed; each compiled function draws its own stream (a random one
            when None).

    Returns:
        A tensor of that shape.
    """
    dtype = _dtype(dtype)
    if _any_tensor(mean, stddev):
        return _affine(ops.random_normal(shape, dtype=dtype, seed=seed), stddev, mean)
    return ops.random_normal(shape, mean, stddev, dtype=dtype, seed=seed)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> Value:
    """Normal samples; those more than two stddev from the mean are drawn again.

    Arguments:
        shape: a tuple of ints and int scalar tensors, or an int vector tensor.
        mean: the mean.
        stddev: the standard deviation before truncation.
        dtype: the dtype; floatx when None.
        seed: an int seed; each compiled function draws its own stream (a random one
            when None).

    Returns:
        A tensor of that shape.
    """
    dtype = _dtype(dtype)
    if _any_tensor(mean, stddev):
        return _affine(ops.truncated_normal(shape, dtype=dtype, seed=seed), stddev, mean)
    return ops.truncated_normal(shape, mean, stddev, dtype=dtype, seed=seed)


def random_uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None) -> Value:
    """Uniform samples in [minval, maxval) (ints in that range for an int dtype).

    Arguments:
        shape: a tuple of ints and int scalar tensors, or an int vector tensor.
        minval: the lower bound.
        maxval: the upper bound (excluded).
        dtype: the dtype; floatx when None.
        seed: an int seed; each compiled function draws its own stream (a random one
            when None).

    Returns:
        A tensor of that shape.

    Example:
        >>> K.int_shape(K.random_uniform((2, 3), seed=1))
        (2, 3)
    """
    dtype = _dtype(dtype)
    if _any_tensor(minval, maxval):
        if not is_floating(dtype):
            raise argument_error("random_uniform", "tensor bounds for an int dtype are not "
                                                   "supported; give minval and maxval as ints",
                                 NotImplementedError)
        samples = ops.random_uniform(shape, dtype=dtype, seed=seed)
        width = ew.sub(as_value(maxval, like=samples), as_value(minval, like=samples))
        return _affine(samples, width, minval)
    return ops.random_uniform(shape, minval, maxval, dtype=dtype, seed=seed)


def random_binomial(shape, p=0.0, dtype=None, seed=None) -> Value:
    """1 with probability p, else 0.

    Arguments:
        shape: a tuple of ints and int scalar tensors, or an int vector tensor.
        p: the probability of a 1.
        dtype: the dtype; floatx when None.
        seed: an int seed; each compiled function draws its own stream (a random one
            when None).

    Returns:
        A tensor of that shape.
    """
    dtype = _dtype(dtype)
    if isinstance(p, Value):
        samples = ops.random_uniform(shape, dtype=p.type.dtype, seed=seed)
        return ew.cast(ew.less(samples, p), dtype=dtype)
    return ops.random_binomial(shape, p, dtype=dtype, seed=seed)


def _check_level(level) -> float:
    level = float(level)
    if not 0.0 <= level < 1.0:
        raise argument_error("dropout", f"level (the fraction dropped) must be in [0, 1), got "
                                        f"{level}", ValueError)
    return level


def dropout(x, level, noise_shape=None, seed=None) -> Value:
    """x with entries zeroed with probability `level` and the rest scaled by 1 / (1 - level).

    As tf.nn.dropout: an entry is kept where a uniform sample is >= level.
    The result is x times the mask, so its gradient is the mask.

    Arguments:
        x: a tensor.
        level: the fraction dropped, in [0, 1).
        noise_shape: the shape of the keep mask, which broadcasts to x (None
            entries mean x's size on that axis); x's shape when None.
        seed: an int seed.

    Returns:
        A tensor of x's shape.
    """
    x = _as_tensor(x)
    if not is_floating(x.type.dtype):
        raise argument_error("dropout", f"dropout needs a float tensor, got {x.type}", TypeError)
    if not isinstance(level, Value):
        level = _check_level(level)
        if level == 0.0:
            return x
    if noise_shape is None:
        noise_shape = (None,) * x.type.ndim
    elif not isinstance(noise_shape, Value) and None in list(noise_shape) \
            and len(noise_shape) != x.type.ndim:
        raise argument_error("dropout", f"noise_shape {tuple(noise_shape)!r} has None entries, "
                                        f"so it must have x's rank {x.type.ndim}", ValueError)
    if isinstance(level, Value):
        samples = ops.random_uniform(noise_shape, dtype=x.type.dtype, seed=seed, like=x)
        keep = ew.cast(ew.greater_equal(samples, as_value(level, like=samples)), dtype=x.type.dtype)
        return ew.mul(ew.mul(x, keep), ew.div(1.0, ew.sub(1.0, level)))
    # The same mask from the same draws (u < level is drawn, u >= level kept), compared as
    # integers by random_binomial rather than through float samples: half the work.
    dropped = ops.random_binomial(noise_shape, p=level, dtype=x.type.dtype, seed=seed, like=x)
    keep = ew.sub(constant(np.ones((), x.type.dtype)), dropped)
    return ew.mul(ew.mul(x, keep), constant(np.asarray(1 / (1 - level), dtype=x.type.dtype)))


__all__ = ["random_normal", "truncated_normal", "random_uniform", "random_binomial", "dropout"]

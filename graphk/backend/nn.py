"""Softmax, l2_normalize and the crossentropy losses, with Keras 2.3.1's TensorFlow semantics.

Each maps onto one fused op of ir/ops/nn.py. The fuzz factor is `K.epsilon()`
as it is when the loss is built, as in Keras.
"""
from __future__ import annotations

import numpy as np

from .. import config
from ..ir.errors import located
from ..ir.graph import Value
from ..ir.ops import elementwise as ew
from ..ir.ops import nn
from ..ir.ops.leaf import constant
from ..ir.shapes import ShapeError, normalize_axes
from ..ir.source import user_location
from ..ir.ops.axes import user_axis
from .tensors import _as_tensor


def _scalar(value: float, like: Value) -> Value:
    return constant(np.asarray(value, dtype=like.type.dtype))


def _like_output(target: Value, output: Value) -> Value:
    """The target in the output's dtype (int one-hot targets are common)."""
    return target if target.type.dtype == output.type.dtype else \
        ew.cast(target, dtype=output.type.dtype)


def _clipped(output: Value) -> Value:
    eps = config.epsilon()
    return ew.clip(output, _scalar(eps, output), _scalar(1.0 - eps, output))


def softmax(x, axis=-1) -> Value:
    """exp(x) / sum(exp(x)) along `axis`, computed from max-shifted values."""
    x = _as_tensor(x)
    return nn.softmax(x, user_axis("softmax", x, axis))


def l2_normalize(x, axis=None) -> Value:
    """x / sqrt(max(sum(x**2, axis), 1e-12)); `axis` None means all axes (TensorFlow's rule)."""
    x = _as_tensor(x)
    try:
        axes = normalize_axes(axis, x.type.ndim)
    except ShapeError as error:
        raise located(error, "l2_normalize", user_location(), f" (given {x.type})") from None
    return nn.l2_normalize(x, axes)


def categorical_crossentropy(target, output, from_logits=False, axis=-1) -> Value:
    """-sum(target * log(p), axis), the class axis removed.

    From probabilities (from_logits False), p is output / sum(output, axis)
    clipped to [epsilon, 1 - epsilon]; from logits, p is the softmax of
    output, computed as a log-softmax without overflow.
    """
    output = _as_tensor(output)
    target = _like_output(_as_tensor(target), output)
    axis = user_axis("categorical_crossentropy", output, axis)
    if from_logits:
        return nn.softmax_cross_entropy(target, output, axis)
    return nn.categorical_crossentropy(target, output, axis, config.epsilon())


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1) -> Value:
    """Categorical crossentropy with integer class labels (or floats holding them).

    The labels are flattened to one per loss position, so (batch,) and
    (batch, 1) targets both give a (batch,) loss. From probabilities, output
    is clipped to [epsilon, 1 - epsilon] and its log taken as logits, as
    TensorFlow's backend does (so p is renormalized after clipping).
    """
    output = _as_tensor(output)
    target = _as_tensor(target)
    axis = user_axis("sparse_categorical_crossentropy", output, axis)
    logits = output if from_logits else ew.log(_clipped(output))
    return nn.sparse_softmax_cross_entropy(target, logits, axis)


def binary_crossentropy(target, output, from_logits=False) -> Value:
    """Elementwise binary crossentropy.

    From probabilities, output is clipped to [epsilon, 1 - epsilon] and turned
    into logits log(p / (1 - p)); the loss is then computed from logits as
    max(z, 0) - z * target + log1p(exp(-|z|)), which never overflows.
    """
    output = _as_tensor(output)
    target = _like_output(_as_tensor(target), output)
    if not from_logits:
        probability = _clipped(output)
        output = ew.log(ew.div(probability, ew.sub(_scalar(1.0, output), probability)))
    return nn.sigmoid_cross_entropy(target, output)


__all__ = [
    "binary_crossentropy",
    "categorical_crossentropy",
    "l2_normalize",
    "softmax",
    "sparse_categorical_crossentropy",
]

"""Softmax, l2_normalize and the crossentropy losses, with Keras 2.3.1's TensorFlow semantics.

Each maps onto one fused op of ir/ops/nn.py. The fuzz factor is `K.epsilon()`
as it is when the loss is built, as in Keras.
"""
from __future__ import annotations

import numpy as np

from .. import config
from ..ir.graph import Value
from ..ir.ops import elementwise as ew
from ..ir.ops import nn
from ..ir.ops.leaf import constant
from ..ir.shapes import ShapeError, normalize_axes
from ..ir.ops.axes import user_axis
from .arguments import argument_error
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
    """exp(x) / sum(exp(x)) along `axis`, computed from max-shifted values.

    Arguments:
        x: a tensor of logits.
        axis: the axis that sums to 1.

    Returns:
        A tensor of x's shape and dtype. The crossentropies recognize a
        softmax output and compute the loss from its logits, as tf.keras does.

    Example:
        >>> K.eval(K.softmax(K.constant([[1000.0, 1000.0]])))
        array([[0.5, 0.5]], dtype=float32)
    """
    x = _as_tensor(x)
    return nn.softmax(x, user_axis("softmax", x, axis))


def l2_normalize(x, axis=None) -> Value:
    """x / sqrt(max(sum(x ** 2, axis), 1e-12)).

    Arguments:
        x: a tensor.
        axis: an int or a list of ints; None means all axes (TensorFlow's rule).

    Returns:
        A tensor of x's shape and dtype.

    Example:
        >>> K.eval(K.l2_normalize(K.constant([3.0, 4.0]), axis=0))
        array([0.6, 0.8], dtype=float32)
    """
    x = _as_tensor(x)
    try:
        axes = normalize_axes(axis, x.type.ndim)
    except ShapeError as error:
        raise argument_error("l2_normalize", f"{error} (given {x.type})") from None
    return nn.l2_normalize(x, axes)


def _logits_behind(output: Value, op_name: str, axis: int | None = None) -> Value | None:
    """The logits `output` was computed from, if it is softmax(logits) (on `axis`) or
    sigmoid(logits).

    Keras 2.3.1's TensorFlow backend hands the crossentropies to tf.keras, which
    then computes the loss from those logits without clipping: exact, and with a
    gradient that does not vanish when the softmax saturates.
    """
    node = output.node
    if node is None or node.op.name != op_name:
        return None
    if axis is not None and node.attrs.get("axis") != axis:
        return None
    return node.inputs[0]


def categorical_crossentropy(target, output, from_logits=False, axis=-1) -> Value:
    """Categorical crossentropy: -sum(target * log(p), axis), the class axis removed.

    From probabilities (from_logits False), p is output / sum(output, axis)
    clipped to [epsilon, 1 - epsilon]; from logits, p is the softmax of
    output, computed as a log-softmax without overflow. An output that is
    softmax(logits) on `axis` is taken from its logits, as tf.keras does.

    Arguments:
        target: one-hot (or probability) targets of output's shape.
        output: probabilities, or logits when from_logits is True.
        from_logits: whether output holds logits.
        axis: the class axis.

    Returns:
        A tensor of output's shape without `axis`.

    Example:
        >>> K.eval(K.categorical_crossentropy(K.constant([[0, 1]]), K.constant([[0.5, 0.5]])))
        array([0.6931472], dtype=float32)
    """
    output = _as_tensor(output)
    target = _like_output(_as_tensor(target), output)
    axis = user_axis("categorical_crossentropy", output, axis)
    logits = output if from_logits else _logits_behind(output, "softmax", axis)
    if logits is not None:
        return nn.softmax_cross_entropy(target, logits, axis)
    return nn.categorical_crossentropy(target, output, axis, config.epsilon())


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1) -> Value:
    """Categorical crossentropy with integer class labels (or floats holding them).

    The labels are flattened to one per loss position, so (batch,) and
    (batch, 1) targets both give a (batch,) loss. From probabilities, output
    is clipped to [epsilon, 1 - epsilon] and its log taken as logits, as
    TensorFlow's backend does (so p is renormalized after clipping).

    Arguments:
        target: class indices, one per position of output without `axis`.
        output: probabilities, or logits when from_logits is True.
        from_logits: whether output holds logits.
        axis: the class axis of output.

    Returns:
        A tensor of output's shape without `axis`.
    """
    output = _as_tensor(output)
    target = _as_tensor(target)
    axis = user_axis("sparse_categorical_crossentropy", output, axis)
    logits = output if from_logits else _logits_behind(output, "softmax", axis)
    if logits is None:
        logits = ew.log(_clipped(output))
    return nn.sparse_softmax_cross_entropy(target, logits, axis)


def binary_crossentropy(target, output, from_logits=False) -> Value:
    """Elementwise binary crossentropy between a target tensor and an output tensor.

    Arguments:
        target: a tensor of the same shape as `output` (0/1 labels or probabilities).
        output: probabilities, or logits when `from_logits` is True.
        from_logits: whether `output` holds logits.

    Returns:
        A tensor of `output`'s shape and dtype.

    From probabilities, as Keras' TensorFlow backend computes it (tf.keras):
    p = clip(output, epsilon, 1 - epsilon), then
    -(target * log(p + epsilon) + (1 - target) * log(1 - p + epsilon)),
    so a saturated wrong prediction costs -log(2.2e-7) = 15.33 in float32
    (Keras' own tests expect that number). An output that is sigmoid(logits),
    and any output with from_logits, is computed from the logits as
    max(z, 0) - z * target + log1p(exp(-|z|)), which never overflows.

    Example:
        >>> K.eval(K.binary_crossentropy(K.constant([0.0]), K.constant([1.0])))
        array([15.333239], dtype=float32)
    """
    output = _as_tensor(output)
    target = _like_output(_as_tensor(target), output)
    logits = output if from_logits else _logits_behind(output, "sigmoid")
    if logits is not None:
        return nn.sigmoid_cross_entropy(target, logits)
    probability = _clipped(output)
    eps, one = _scalar(config.epsilon(), output), _scalar(1.0, output)
    positive = ew.mul(target, ew.log(ew.add(probability, eps)))
    negative = ew.mul(ew.sub(one, target),
                      ew.log(ew.add(ew.sub(one, probability), eps)))
    return ew.neg(ew.add(positive, negative))


__all__ = [
    "binary_crossentropy",
    "categorical_crossentropy",
    "l2_normalize",
    "softmax",
    "sparse_categorical_crossentropy",
]

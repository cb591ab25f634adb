"""CTC with the semantics of Keras 2.3.1's TensorFlow backend.

y_pred holds softmax outputs (batch, time, classes) whose last class is the
blank. As Keras-TF does, both the loss and the decoders read
`log(y_pred + epsilon())` as logits, and the ops normalize those with a
log-softmax over the classes (graphk/ir/ops/ctc.py). Labels may be fed as
floats (Keras' default target dtype); they are truncated to ints, as
Keras-TF's cast does.

Lengths are (batch, 1) in ctc_batch_cost and (batch,) in ctc_decode, as
Keras documents them; either form is accepted by both.
"""
from __future__ import annotations

from .. import config
from ..ir.dtypes import is_integer
from ..ir.graph import Value
from ..ir.ops import ctc as ctc_ops
from ..ir.ops import elementwise as ew
from ..ir.ops import shape as shape_ops
from ..ir.ops import sparse as sparse_ops
from ..ir.ops.leaf import as_value
from .sparse import SparseTensor
from .tensors import _as_tensor


def _integers(x) -> Value:
    """x as an int32 tensor (labels and lengths; floats are truncated, as tf.cast does)."""
    x = _as_tensor(x)
    return x if is_integer(x.type.dtype) else ew.cast(x, dtype="int32")


def _lengths(x) -> Value:
    """A (batch,) integer vector from (batch,) or (batch, 1)."""
    x = _integers(x)
    return shape_ops.squeeze(x, -1) if x.type.ndim == 2 else x


def _logits(y_pred) -> Value:
    """log(y_pred + epsilon()): Keras-TF's way from softmax outputs to CTC logits."""
    y_pred = _as_tensor(y_pred)
    return ew.log(ew.add(y_pred, as_value(config.epsilon(), like=y_pred)))


def ctc_label_dense_to_sparse(labels, label_lengths) -> SparseTensor:
    """The first label_lengths[b] labels of each row b, as a sparse tensor.

    Arguments:
        labels: (batch, max_label_length) int labels.
        label_lengths: (batch,) the number of labels of each row.

    Returns:
        A sparse tensor with int64 indices in row-major order, the labels'
        dtype, and the labels' dense shape.
    """
    labels = _as_tensor(labels)
    indices, values, dense_shape = sparse_ops.sparse_from_lengths(labels,
                                                                  _lengths(label_lengths))
    return SparseTensor(indices, values, dense_shape, labels.type.shape)


def ctc_batch_cost(y_true, y_pred, input_length, label_length) -> Value:
    """The CTC loss of each batch item.

    Arguments:
        y_true: labels (batch, max_label_length), read up to label_length.
        y_pred: softmax outputs (batch, time, classes), the blank class last,
            read up to input_length.
        input_length: (batch, 1) the number of time steps of each item.
        label_length: (batch, 1) the number of labels of each item.

    Returns:
        A (batch, 1) tensor of losses.
    """
    loss = ctc_ops.ctc_loss(_logits(y_pred), _integers(y_true), _lengths(input_length),
                            _lengths(label_length))
    return shape_ops.expand_dims(loss, 1)


def ctc_decode(y_pred, input_length, greedy=True, beam_width=100, top_paths=1,
               merge_repeated=False) -> tuple:
    """Decode softmax outputs into label sequences.

    Arguments:
        y_pred: softmax outputs (batch, time, classes), the blank class last.
        input_length: (batch,) the number of time steps of each item.
        greedy: best-path decoding if True, else beam search.
        beam_width: the beam width of the search.
        top_paths: how many paths the beam search returns.
        merge_repeated: merge equal neighbours in the paths the beam search
            returns (TensorFlow's option).

    Returns:
        (list of decoded paths, log probabilities). Each path is an int64
        tensor (batch, longest decoded length), padded with -1. Greedy gives
        one path and, as TensorFlow's greedy decoder, log probabilities
        (batch, 1) holding minus the sum of the largest logit at each step;
        beam search gives top_paths paths, most probable first, and their log
        probabilities (batch, top_paths).
    """
    logits = _logits(y_pred)
    input_length = _lengths(input_length)
    if greedy:
        decoded, log_prob = ctc_ops.ctc_greedy_decoder(logits, input_length)
        return [decoded], log_prob
    paths, log_prob = ctc_ops.ctc_beam_search_decoder(logits, input_length, beam_width,
                                                      top_paths, merge_repeated)
    return [ctc_ops.ctc_path(paths, i) for i in range(int(top_paths))], log_prob


__all__ = ["ctc_label_dense_to_sparse", "ctc_batch_cost", "ctc_decode"]

"""CTC: the loss against a brute-force sum over alignments, its gradient, the decoders
against exhaustive references, and ctc_label_dense_to_sparse."""
import importlib.util
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from graphk import backend as K

from harness import check_gradients, check_op

EPSILON = K.epsilon()


# --- references: every alignment of a tiny problem, enumerated -------------------------------


def _collapse(path, blank):
    """The labelling of an alignment: repeats merged, then blanks dropped."""
    merged = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
    return tuple(k for k in merged if k != blank)


def _class_probabilities(y_pred_item):
    """softmax(log(y + epsilon)) per step: what Keras-TF's CTC reads from softmax outputs."""
    shifted = y_pred_item + EPSILON
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _labelling_probabilities(probs):
    """P(labelling) for every labelling of a (time, classes) distribution."""
    time, classes = probs.shape
    result = {}
    for path in itertools.product(range(classes), repeat=time):
        labelling = _collapse(path, classes - 1)
        result[labelling] = result.get(labelling, 0.0) + np.prod(probs[np.arange(time), path])
    return result


def _reference_loss(y_pred, labels, input_length, label_length):
    losses = []
    for b in range(len(y_pred)):
        probs = _class_probabilities(y_pred[b, :input_length[b]])
        target = tuple(int(k) for k in labels[b, :label_length[b]])
        losses.append(-np.log(_labelling_probabilities(probs).get(target, 0.0)))
    return np.array(losses)[:, None]


def _softmax_outputs(rng, shape, low=0.05):
    y = rng.uniform(low, 1.0, shape)
    return y / y.sum(axis=-1, keepdims=True)


def _loss_case(rng, dtype="float32"):
    """Repeated labels, an empty labelling, a short input, and padding that must be ignored."""
    y_pred = _softmax_outputs(rng, (4, 5, 4)).astype(dtype)
    labels = np.array([[1, 1, -1], [0, 2, 1], [2, 2, 2], [0, 0, 0]], dtype="float32")
    input_length = np.array([[5], [4], [5], [3]], dtype="int64")
    label_length = np.array([[2], [3], [0], [1]], dtype="int64")
    return [labels, y_pred, input_length, label_length]


# --- the loss -------------------------------------------------------------------------------------


def test_ctc_batch_cost_matches_the_sum_over_all_alignments():
    arrays = _loss_case(np.random.default_rng(0))
    labels, y_pred, input_length, label_length = arrays
    expected = _reference_loss(y_pred.astype(np.float64), labels, input_length[:, 0],
                               label_length[:, 0])
    check_op(K.ctc_batch_cost, arrays, expected, rtol=1e-5, atol=1e-5)


def test_ctc_batch_cost_is_finite_for_long_sequences():
    """Log space: probabilities of order 1e-300 and below neither underflow nor give nan."""
    rng = np.random.default_rng(1)
    y_pred = _softmax_outputs(rng, (2, 400, 6), low=1e-3).astype("float32")
    labels = rng.integers(0, 5, (2, 30)).astype("float32")
    inputs = [K.placeholder((None, 30)), K.placeholder((None, 400, 6)),
              K.placeholder((None, 1), dtype="int32"), K.placeholder((None, 1), dtype="int32")]
    f = K.function(inputs, [K.ctc_batch_cost(*inputs)])
    loss = f([labels, y_pred, np.array([[400], [250]]), np.array([[30], [12]])])[0]
    assert loss.shape == (2, 1) and np.all(np.isfinite(loss)) and np.all(loss > 300)


def test_ctc_batch_cost_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    labels, _, input_length, label_length = _loss_case(rng)
    y_pred = rng.uniform(0.2, 1.0, (4, 5, 4))  # need not sum to one: log_softmax normalizes
    check_gradients(K.ctc_batch_cost, [labels, y_pred, input_length, label_length], wrt=[1],
                    rtol=1e-5, atol=1e-7)


def test_ctc_gradient_is_zero_past_input_length_and_sums_to_zero_over_classes():
    """d loss / d logits = softmax - posterior: both sum to one over classes at each live step."""
    from graphk.ir.ops import ctc as ctc_ops
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 6, 5))
    labels = np.array([[1, 3], [2, 2]], dtype=np.int32)
    grad = ctc_ops._loss_grad_kernel(logits, labels, np.array([6, 4]), np.array([2, 2]),
                                     np.ones(2))
    np.testing.assert_allclose(grad.sum(axis=2), 0.0, atol=1e-12)
    assert np.all(grad[1, 4:] == 0)


def test_ctc_batch_cost_errors_name_the_batch_item():
    inputs = [K.placeholder((None, 2)), K.placeholder((None, 3, 3)),
              K.placeholder((None, 1), dtype="int32"), K.placeholder((None, 1), dtype="int32")]
    f = K.function(inputs, [K.ctc_batch_cost(*inputs)])
    y_pred = np.full((2, 3, 3), 1 / 3, dtype="float32")
    with pytest.raises(ValueError, match="not enough time steps for the labels of batch item 1"):
        f([np.array([[0, 1], [1, 1]]), y_pred, np.array([[3], [2]]), np.array([[2], [2]])])
    with pytest.raises(ValueError, match=r"label 2 of batch item 0 is not a class in \[0, 2\)"):
        f([np.array([[0, 2], [1, 1]]), y_pred, np.array([[3], [3]]), np.array([[2], [1]])])
    with pytest.raises(ValueError, match="batch sizes"):
        K.ctc_batch_cost(K.placeholder((3, 2)), K.placeholder((4, 3, 3)),
                         K.placeholder((4, 1), dtype="int32"),
                         K.placeholder((4, 1), dtype="int32"))


# --- decoding ----------------------------------------------------------------------------------


def _decode_function(greedy=True, **options):
    y_pred = K.placeholder((None, None, None))
    input_length = K.placeholder((None,), dtype="int32")
    decoded, log_prob = K.ctc_decode(y_pred, input_length, greedy=greedy, **options)
    return K.function([y_pred, input_length], decoded + [log_prob])


def _pad(sequences):
    width = max((len(s) for s in sequences), default=0)
    return np.array([list(s) + [-1] * (width - len(s)) for s in sequences],
                    dtype=np.int64).reshape(len(sequences), width)


def test_greedy_decoding_merges_repeats_and_drops_blanks():
    blank = 3
    best = np.array([[0, 0, blank, 0, 1, 1], [blank, 2, 2, blank, blank, 1],
                     [1, blank, 1, 1, 2, 2]])
    y_pred = np.full((3, 6, 4), 0.1, dtype="float32")
    np.put_along_axis(y_pred, best[..., None], 0.7, axis=2)
    input_length = np.array([6, 4, 0], dtype="int32")
    decoded, log_prob = _decode_function()([y_pred, input_length])
    np.testing.assert_array_equal(decoded, _pad([(0, 0, 1), (2,), ()]))
    expected = -np.log(0.7 + EPSILON) * input_length[:, None]
    np.testing.assert_allclose(log_prob, expected, rtol=1e-6)


def test_greedy_decoding_matches_keras_numpy_reference():
    rng = np.random.default_rng(4)
    y_pred = _softmax_outputs(rng, (5, 7, 4)).astype("float32")
    input_length = np.array([7, 3, 5, 1, 7], dtype="int32")
    decoded, log_prob = _decode_function()([y_pred, input_length])
    sequences, log_probs = [], []
    for b in range(5):
        best = np.argmax(y_pred[b, :input_length[b]], axis=-1)
        sequences.append(_collapse(tuple(best), 3))
        log_probs.append(-np.sum(np.log(np.max(y_pred[b, :input_length[b]], axis=-1) + EPSILON)))
    np.testing.assert_array_equal(decoded, _pad(sequences))
    np.testing.assert_allclose(log_prob[:, 0], log_probs, rtol=1e-5)


def _exhaustive_top_paths(y_pred, input_length, top_paths):
    """The most probable labellings and their log probabilities, from every alignment."""
    paths, scores = [], []
    for b in range(len(y_pred)):
        table = _labelling_probabilities(_class_probabilities(y_pred[b, :input_length[b]]))
        ranked = sorted(table.items(), key=lambda item: -item[1])[:top_paths]
        paths.append([labelling for labelling, _ in ranked])
        scores.append([np.log(p) for _, p in ranked])
    return paths, np.array(scores)


def test_beam_search_with_a_wide_beam_is_exhaustive_search():
    rng = np.random.default_rng(5)
    y_pred = _softmax_outputs(rng, (3, 5, 3), low=0.02).astype("float32")
    input_length = np.array([5, 4, 2], dtype="int32")
    *decoded, log_prob = _decode_function(greedy=False, beam_width=100, top_paths=3)(
        [y_pred, input_length])
    paths, scores = _exhaustive_top_paths(y_pred, input_length, 3)
    for j in range(3):
        np.testing.assert_array_equal(decoded[j], _pad([paths[b][j] for b in range(3)]))
    np.testing.assert_allclose(log_prob, scores, rtol=1e-6)


def test_beam_search_merge_repeated_and_a_narrow_beam():
    rng = np.random.default_rng(6)
    y_pred = _softmax_outputs(rng, (2, 6, 3)).astype("float32")
    input_length = np.array([6, 6], dtype="int32")
    *wide, _ = _decode_function(greedy=False, beam_width=200, top_paths=2)([y_pred, input_length])
    *merged, _ = _decode_function(greedy=False, beam_width=200, top_paths=2,
                                  merge_repeated=True)([y_pred, input_length])
    for full, collapsed in zip(wide, merged):
        for row, merged_row in zip(full, collapsed):
            kept = [k for k in row if k >= 0]
            expected = [k for i, k in enumerate(kept) if i == 0 or k != kept[i - 1]]
            assert [k for k in merged_row if k >= 0] == expected
    narrow, log_prob = _decode_function(greedy=False, beam_width=1)([y_pred, input_length])
    assert narrow.ndim == 2 and log_prob.shape == (2, 1) and np.all(log_prob < 0)


def test_beam_search_rejects_more_paths_than_the_beam():
    with pytest.raises(ValueError, match="top_paths <= beam_width"):
        K.ctc_decode(K.placeholder((2, 4, 3)), K.placeholder((2,), dtype="int32"), greedy=False,
                     beam_width=2, top_paths=3)


# --- ctc_label_dense_to_sparse ---------------------------------------------------------------


def test_ctc_label_dense_to_sparse():
    labels = K.placeholder((None, 4), dtype="int32")
    lengths = K.placeholder((None,), dtype="int32")
    sparse = K.ctc_label_dense_to_sparse(labels, lengths)
    assert K.is_sparse(sparse) and K.int_shape(sparse) == (None, 4) and K.dtype(sparse) == "int32"
    f = K.function([labels, lengths], [sparse, K.to_dense(sparse)])
    dense = np.array([[5, 6, 7, 8], [1, 2, 3, 4], [9, 9, 9, 9]], dtype="int32")
    value, densified = f([dense, np.array([2, 0, 4], dtype="int32")])
    np.testing.assert_array_equal(value.indices, [[0, 0], [0, 1], [2, 0], [2, 1], [2, 2], [2, 3]])
    assert value.indices.dtype == np.int64 and value.dense_shape.dtype == np.int64
    np.testing.assert_array_equal(value.values, [5, 6, 9, 9, 9, 9])
    np.testing.assert_array_equal(value.dense_shape, [3, 4])
    np.testing.assert_array_equal(densified, [[5, 6, 0, 0], [0, 0, 0, 0], [9, 9, 9, 9]])


# --- under Keras ------------------------------------------------------------------------------

KERAS_CTC_MODEL = """
import graphk.keras2
graphk.keras2.install_shims()
import keras
import numpy as np
from keras import backend as K, layers
time, classes, max_labels = 10, 5, 3
features = layers.Input(shape=(time, 8))
y_pred = layers.Dense(classes, activation="softmax")(layers.Dense(16, activation="tanh")(features))
labels = layers.Input(shape=[max_labels])
input_length = layers.Input(shape=[1], dtype="int64")
label_length = layers.Input(shape=[1], dtype="int64")
loss = layers.Lambda(lambda args: K.ctc_batch_cost(*args), output_shape=(1,), name="ctc")(
    [labels, y_pred, input_length, label_length])
model = keras.models.Model([features, labels, input_length, label_length], loss)
model.compile(loss={"ctc": lambda y_true, y_pred: y_pred}, optimizer="adam")
rng = np.random.RandomState(0)
x = rng.normal(size=(32, time, 8)).astype("float32")
y = rng.randint(0, classes - 1, (32, max_labels)).astype("float32")
history = model.fit([x, y, np.full((32, 1), time), rng.randint(1, 4, (32, 1))], np.zeros(32),
                    epochs=4, batch_size=8, verbose=0)
assert history.history["loss"][-1] < history.history["loss"][0]
lengths = K.placeholder((None,), dtype="int32")
decoded, log_prob = K.ctc_decode(y_pred, lengths, greedy=False, beam_width=8, top_paths=2)
paths = K.function([features, lengths], decoded + [log_prob])([x[:4], np.full(4, time)])
assert len(paths) == 3 and paths[2].shape == (4, 2)
print("ok")
"""


def run_under_keras(code: str, tmp_path) -> None:
    """Run `code` in a fresh interpreter with Keras on graphk (skipped without keras)."""
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    env = dict(os.environ, KERAS_BACKEND="graphk.backend", KERAS_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr


def test_keras_trains_a_model_with_a_ctc_loss(tmp_path):
    run_under_keras(KERAS_CTC_MODEL, tmp_path)

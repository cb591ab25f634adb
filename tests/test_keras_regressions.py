"""Regressions found by running Keras 2.3.1's own test suite on graphk (issue 10).

Each test pins one behaviour Keras (on TensorFlow) has and its tests rely on;
tools/keras_suite/run.py runs the Keras suite itself.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from graphk import backend as K


# --- updates run when evaluated ------------------------------------------------------------


def test_eval_of_an_update_applies_it_and_returns_the_new_value():
    v = K.variable(np.ones((2, 2)))
    new = K.eval(K.update_add(v, 0.5))
    np.testing.assert_array_equal(new, np.full((2, 2), 1.5, np.float32))
    np.testing.assert_array_equal(K.eval(v), np.full((2, 2), 1.5, np.float32))
    K.eval(K.update_sub(v, 1.0))
    np.testing.assert_array_equal(K.eval(v), np.full((2, 2), 0.5, np.float32))


def test_an_output_built_under_control_dependencies_runs_their_updates():
    total = K.variable(0.0)
    count = K.variable(0.0)
    updates = [K.update_add(total, 6.0), K.update_add(count, 2.0)]
    with K.control_dependencies(updates):
        mean = K.identity(total / count)
    assert K.eval(mean) == 3.0  # reads the updated values
    assert K.eval(total) == 6.0 and K.eval(count) == 2.0  # and stored them
    assert K.eval(mean) == 3.0 and K.eval(total) == 12.0  # once per evaluation
    # Listed as updates as well (as Keras' training functions do): still applied once.
    f = K.function([], [mean], updates=updates)
    f([])
    assert K.eval(total) == 18.0 and K.eval(count) == 6.0


def test_an_output_reading_no_updated_value_runs_no_update():
    v = K.variable(1.0)
    w = K.variable(5.0)
    with K.control_dependencies([K.update_add(v, 1.0)]):
        pass
    assert K.eval(w * 2.0) == 10.0 and K.eval(v) == 1.0


# --- sparse variables, trainable flag, get_variable_shape ----------------------------------


def test_variable_of_a_scipy_sparse_matrix_is_sparse_and_evaluates_dense():
    sparse = pytest.importorskip("scipy.sparse")
    matrix = sparse.csr_matrix((np.array([1.0, 7.0, 2.0], np.float32),
                                (np.array([0, 2, 2]), np.array([4, 3, 2]))), shape=(4, 5))
    v = K.variable(matrix)
    assert K.is_sparse(v) and K.int_shape(v) == (4, 5)
    np.testing.assert_array_equal(K.eval(v), matrix.toarray())
    w = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.testing.assert_allclose(K.eval(K.dot(v, K.variable(w))), matrix.toarray() @ w)
    joined = K.concatenate([v, v], axis=0)
    assert K.is_sparse(joined)
    np.testing.assert_array_equal(K.eval(joined), np.vstack([matrix.toarray()] * 2))


def test_variables_are_trainable_and_have_a_variable_shape():
    v = K.variable(np.zeros((2, 3)))
    assert v.trainable is True
    assert K.get_variable_shape(v) == (2, 3)
    assert K.get_variable_shape(K.placeholder((None, 4))) == (None, 4)


# --- shapes --------------------------------------------------------------------------------


def test_repeat_elements_along_an_unknown_axis_sets_keras_shape():
    x = K.placeholder((2, None, 3))
    y = K.repeat_elements(x, 2, axis=1)
    assert y._keras_shape == (2, None, 3) == K.int_shape(y)
    out = K.function([x], [y])([np.arange(12, dtype=np.float32).reshape(2, 2, 3)])[0]
    np.testing.assert_array_equal(out, np.repeat(np.arange(12).reshape(2, 2, 3), 2, axis=1))


def test_slice_with_known_sizes_has_them_in_its_static_shape():
    x = K.placeholder((None, 5))
    y = K.slice(x, [1, 1], [2, 3])
    assert K.int_shape(y) == (2, 3)
    assert K.int_shape(K.slice(x, [0, 1], [-1, 3])) == (None, 3)
    data = np.arange(20, dtype=np.float32).reshape(4, 5)
    np.testing.assert_array_equal(K.function([x], [y])([data])[0], data[1:3, 1:4])
    with pytest.raises(ValueError, match="reshape"):  # past the end: an error, as tf.slice
        K.function([x], [y])([data[:2]])


def test_tile_with_constant_counts_has_a_static_shape():
    x = K.placeholder((None, 4))
    assert K.int_shape(K.tile(x, K.constant([1, 3], dtype="int32"))) == (None, 12)
    computed = K.cast(K.constant(2), "int32") + 1
    assert K.int_shape(K.tile(x, [1, computed])) == (None, 12)
    mixed = K.tile(x, [K.shape(x)[0], 2])  # the batch count is known only at run time
    assert K.int_shape(mixed) == (None, 8)
    assert K.function([x], [mixed])([np.ones((3, 4), np.float32)])[0].shape == (9, 8)


# --- numerics and errors -------------------------------------------------------------------


def test_binary_crossentropy_of_saturated_probabilities_matches_keras_tensorflow():
    target = K.constant([[1.0, 0.0], [1.0, 0.0]])
    output = K.constant([[1.0, 1.0], [1.0, 0.0]])
    loss = K.eval(K.binary_crossentropy(target, output))
    # -log(1 - clip(1) + eps) = -log(2.19e-7) in float32, as tf.keras computes it
    np.testing.assert_allclose(loss, [[0.0, 15.3332], [0.0, 0.0]], atol=1e-3)
    assert np.isclose(K.eval(K.mean(K.binary_crossentropy(target, output))), 3.833, atol=1e-3)


def test_gradients_with_respect_to_an_array_is_a_type_error_naming_it():
    w = K.variable(np.ones(2))
    with pytest.raises(TypeError, match=r"variables\[1\].*numpy.ndarray"):
        K.gradients(K.sum(w), [w, np.ones(2)])
    with pytest.raises(TypeError, match="`loss`"):
        K.gradients(np.float32(1.0), [w])


def test_scalar_outputs_are_numpy_scalars_as_a_tensorflow_session_returns():
    x = K.placeholder((None,))
    total, doubled = K.function([x], [K.sum(x), x * 2.0])([np.ones(3, np.float32)])
    assert type(total) is np.float32 and total == 3.0
    assert isinstance(doubled, np.ndarray) and doubled.shape == (3,)
    assert type(K.eval(K.variable(2.0))) is np.float32
    assert type(K.eval(K.constant(2.0) * 3.0)) is np.float32


KERAS_CHECKS = """
import numpy as np, graphk.keras2; graphk.keras2.install_shims()
import keras
from keras import backend as K

# A stateful metric accumulates when its result is evaluated (control dependencies).
m = keras.metrics.Mean()
print(K.eval(m(np.array([1.0, 3.0], np.float32))), K.eval(m(np.array([8.0], np.float32))))
print(K.eval(m.total), K.eval(m.count))

# A variable set as a layer attribute is tracked as trainable (Layer.__setattr__).
class Scale(keras.layers.Layer):
    def build(self, input_shape):
        self.scale = K.variable(2.0)
        super().build(input_shape)
    def call(self, x):
        return x * self.scale
layer = Scale()
layer.build((None, 3))
print(len(layer.trainable_weights), len(layer.non_trainable_weights))

# fit's history holds NumPy scalars, as on TensorFlow.
model = keras.models.Sequential([keras.layers.Dense(1, input_shape=(3,))])
model.compile("sgd", "mse", metrics=["mae"])
history = model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=2, verbose=0)
print(sorted({type(v).__name__ for vs in history.history.values() for v in vs}))
"""


def test_keras_metrics_layers_and_history_behave_as_on_tensorflow(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="graphk.backend", KERAS_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", KERAS_CHECKS], env=env, capture_output=True,
                          text=True, timeout=120)
    if "No module named 'keras'" in done.stderr:
        pytest.skip("keras is not installed")
    assert done.returncode == 0, done.stderr
    # Keras 2.3.1 itself prints "tracking <variable> <name>" when it tracks an attribute.
    lines = [line for line in done.stdout.splitlines() if not line.startswith("tracking ")]
    assert lines == ["2.0 4.0", "12.0 3.0", "1 0", "['float32']"]


def test_shims_restore_the_numpy_names_keras_callbacks_use():
    from graphk import keras2

    keras2.install_shims()
    assert np.Inf == np.inf and np.unicode_ is np.str_ and np.string_ is np.bytes_


def test_only_values_built_under_control_dependencies_carry_their_updates():
    source = K.variable(4.0)
    target = K.variable(0.0)
    with K.control_dependencies([K.update(target, source)]):
        copied = target + 0.0
    assert K.eval(source * 1.0) == 4.0 and K.eval(target) == 0.0  # source alone: no update
    assert K.eval(copied) == 4.0 and K.eval(target) == 4.0

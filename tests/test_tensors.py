"""Creating and inspecting tensors, config, session state."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from graphk import backend as K


def test_placeholder_carries_keras_attributes():
    x = K.placeholder(shape=(None, 784), name="images")
    assert x.shape == (None, 784) and K.int_shape(x) == (None, 784)
    assert x._keras_shape == (None, 784) and x._uses_learning_phase is False
    assert K.ndim(x) == 2 and K.dtype(x) == "float32" and x.name == "images"
    assert K.is_placeholder(x) and K.is_tensor(x) and not K.is_variable(x)
    assert K.int_shape(K.placeholder(ndim=3)) == (None, None, None)
    x.anything = 1  # Keras sets its own attributes on tensors


def test_tensors_compare_by_identity_in_containers():
    x, y = K.placeholder((2,)), K.placeholder((2,))
    assert x in [y, x] and (x == x) and not (x == y)
    assert {x: 1}[x] == 1


def test_variable_value_dtype_and_set_value():
    v = K.variable([[1, 2], [3, 4]], name="v")
    assert K.dtype(v) == "float32" and K.is_variable(v) and K.count_params(v) == 4
    np.testing.assert_array_equal(K.get_value(v), [[1, 2], [3, 4]])
    K.set_value(v, np.zeros((2, 2)))
    assert K.eval(v).sum() == 0
    with pytest.raises(ValueError, match="shape"):
        K.set_value(v, np.zeros(3))
    K.batch_set_value([(v, np.ones((2, 2)))])
    assert K.batch_get_value([v])[0].sum() == 4


def test_variable_from_symbolic_initial_value():
    init = K.constant(np.full((2, 3), 0.5)) * 2.0
    v = K.variable(init)
    np.testing.assert_array_equal(K.get_value(v), np.ones((2, 3)))


def test_zeros_ones_eye_are_variables():
    for v in (K.zeros((2, 3)), K.ones((2, 3), dtype="float64"), K.eye(3)):
        assert K.is_variable(v)
    assert K.get_value(K.ones((2,), dtype="float64")).dtype == np.float64
    np.testing.assert_array_equal(K.eval(K.eye(3)), np.eye(3))


def test_constant_with_shape_and_cast():
    c = K.constant(2, shape=(2, 2))
    assert K.eval(c).tolist() == [[2.0, 2.0], [2.0, 2.0]]
    assert K.dtype(K.cast(c, "int32")) == "int32"


def test_random_variables_are_seeded():
    a = K.random_uniform_variable((3, 4), 0, 1, seed=7)
    b = K.random_uniform_variable((3, 4), 0, 1, seed=7)
    np.testing.assert_array_equal(K.get_value(a), K.get_value(b))
    n = K.get_value(K.random_normal_variable((1000,), 2.0, 0.5, seed=1))
    assert abs(n.mean() - 2.0) < 0.1 and abs(n.std() - 0.5) < 0.1


def test_name_scope_prefixes_variable_names():
    with K.name_scope("dense_1"):
        v = K.variable(1.0, name="kernel")
    assert v.name == "dense_1/kernel"


def test_uids_and_clear_session():
    K.reset_uids()
    assert K.get_uid("dense") == 1 and K.get_uid("dense") == 2
    K.clear_session()
    assert K.get_uid("dense") == 1


def test_learning_phase_defaults_to_test_and_can_be_fed():
    K.clear_session()
    phase = K.learning_phase()
    assert K.is_placeholder(phase)
    x = K.placeholder((2,))
    out = x * K.cast(phase, "float32")
    assert K.function([x], [out])([np.ones(2)])[0].tolist() == [0, 0]
    assert K.function([x, phase], [out])([np.ones(2), 1])[0].tolist() == [1, 1]
    K.set_learning_phase(1)
    assert K.learning_phase() == 1
    with pytest.raises(ValueError):
        K.set_learning_phase(2)
    K.clear_session()


def test_config_functions():
    assert K.backend() == "graphk" and K.floatx() == "float32" and K.epsilon() == 1e-7
    K.set_floatx("float64")
    try:
        assert K.dtype(K.variable(1.0)) == "float64"
        assert K.cast_to_floatx([1]).dtype == np.float64
    finally:
        K.set_floatx("float32")
    assert K.normalize_data_format(None) == "channels_last"
    with pytest.raises(ValueError):
        K.normalize_data_format("nchw")
    with pytest.raises(ValueError):
        K.set_floatx("int8")


def test_keras_json_and_keras_backend_variable(tmp_path):
    (tmp_path / "keras.json").write_text(json.dumps(
        {"floatx": "float64", "epsilon": 1e-5, "image_data_format": "channels_first",
         "backend": "graphk.backend"}))
    code = ("from graphk import backend as K, config;"
            "print(K.floatx(), K.epsilon(), K.image_data_format(), config.configured_backend())")
    env = dict(os.environ, KERAS_HOME=str(tmp_path))
    env.pop("KERAS_BACKEND", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["float64", "1e-05", "channels_first", "graphk.backend"]
    env["KERAS_BACKEND"] = "theano"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[-1] == "theano"


def test_constant_fills_or_reshapes_as_tf_constant():
    assert K.eval(K.constant([1, 2, 3, 4], shape=(2, 2))).tolist() == [[1, 2], [3, 4]]
    assert K.eval(K.constant(7, shape=(2,))).tolist() == [7, 7]
    with pytest.raises(ValueError, match="cannot fill"):
        K.constant([1, 2, 3], shape=(2, 2))


def test_zeros_like_and_ones_like_default_to_floatx():
    counts = K.placeholder((3,), dtype="int32")
    assert K.dtype(K.zeros_like(counts)) == "float32"
    assert K.dtype(K.ones_like(counts, dtype="int32")) == "int32"


def test_numpy_numbers_take_the_tensor_dtype_and_mixed_lists_pack():
    x = K.placeholder((None, 3))
    assert K.dtype(K.maximum(x, np.float64(0.5))) == "float32"
    assert K.dtype(x * np.ones(3)) == "float32" and K.dtype(np.ones(3) + x) == "float32"
    assert int(K.eval(K.sum([K.constant(3, dtype="int32"), 2]))) == 5
    np.testing.assert_array_equal(K.eval(K.eye(np.int64(2))), np.eye(2))

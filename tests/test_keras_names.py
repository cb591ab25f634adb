"""graphk.backend has every name Keras 2.3.1's keras.backend imports from its backend module.

The list is read from the installed keras package when it is there, and from
the copy below otherwise (keras is in the test extra from the Keras surface on).
"""
import ast
import importlib.util
import os

from graphk import backend as K

# The names keras/backend/__init__.py (2.3.1) imports from load_backend, in order.
KERAS_2_3_1_NAMES = """
epsilon set_epsilon floatx set_floatx cast_to_floatx image_data_format set_image_data_format
reset_uids get_uid learning_phase set_learning_phase is_sparse to_dense variable is_variable
constant is_keras_tensor is_tensor placeholder is_placeholder shape int_shape ndim dtype eval
zeros ones eye zeros_like ones_like identity random_uniform_variable random_normal_variable
count_params cast update update_add update_sub moving_average_update dot batch_dot transpose
gather max min sum prod cumsum cumprod var std mean any all argmax argmin square abs sqrt exp
log logsumexp round sign pow clip equal not_equal greater greater_equal less less_equal maximum
minimum sin cos normalize_batch_in_training batch_normalization concatenate reshape
permute_dimensions resize_images resize_volumes repeat_elements repeat arange tile flatten
batch_flatten expand_dims squeeze temporal_padding spatial_2d_padding spatial_3d_padding stack
one_hot reverse slice get_value batch_get_value set_value batch_set_value print_tensor function
gradients stop_gradient rnn switch in_train_phase in_test_phase relu elu softmax softplus
softsign categorical_crossentropy sparse_categorical_crossentropy binary_crossentropy sigmoid
hard_sigmoid tanh dropout l2_normalize in_top_k conv1d separable_conv1d conv2d
separable_conv2d conv2d_transpose depthwise_conv2d conv3d conv3d_transpose pool2d pool3d
bias_add random_normal random_uniform random_binomial truncated_normal
ctc_label_dense_to_sparse ctc_batch_cost ctc_decode map_fn foldl foldr local_conv1d
local_conv2d backend normalize_data_format name_scope symbolic eager size
control_dependencies pattern_broadcast clear_session manual_variable_initialization
get_session set_session
""".split()

# Names whose issue (loops, CTC, sparse tensors) is still open: present, but they raise
# NotImplementedError naming what is missing.
NOT_YET_BUILT = {"rnn", "map_fn", "foldl", "foldr", "ctc_label_dense_to_sparse",
                 "ctc_batch_cost", "ctc_decode", "to_dense"}


def keras_backend_names() -> list:
    spec = importlib.util.find_spec("keras")
    if spec is None or spec.origin is None:
        return KERAS_2_3_1_NAMES
    path = os.path.join(os.path.dirname(spec.origin), "backend", "__init__.py")
    names = []
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and node.module == "load_backend":
            names.extend(alias.name for alias in node.names)
    return list(dict.fromkeys(names))


def test_the_copied_list_matches_the_installed_keras():
    assert set(keras_backend_names()) == set(KERAS_2_3_1_NAMES)


def test_every_keras_backend_name_exists():
    missing = [name for name in keras_backend_names() if not hasattr(K, name)]
    assert not missing, f"graphk.backend lacks {missing}"

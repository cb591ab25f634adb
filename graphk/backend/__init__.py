"""The Keras 2.3.1 backend API on graphk: `from graphk import backend as K`.

Placeholders (with `None` dimensions) and variables build a typed graph with
symbolic shapes; K.function compiles outputs and updates into a callable, and
K.gradients differentiates the graph. `KERAS_BACKEND=graphk.backend` makes
Keras 2.3.1 load this module as its backend (call graphk.keras2.install_shims()
first on Python >= 3.10). Every public name has a docstring: `help(K.conv2d)`.

The families, one module each under graphk/backend/:
    tensors        placeholder, constant, int_shape, dtype, eval, cast, ...
    variables      variable, zeros, ones, get_value, set_value, update, ...
    math           elementwise math and comparisons, relu, switch, clip, ...
    reductions     sum, mean, max, argmax, logsumexp, cumsum, ...
    shaping        shape, size, reshape, flatten, permute_dimensions, expand_dims, ...
    joining        concatenate, stack, tile, repeat_elements, repeat
    selecting      slice, gather, one_hot, arange
    linalg         dot, batch_dot, transpose
    nn             softmax, l2_normalize, the crossentropies
    conv           conv1d/2d/3d, depthwise and separable convolutions
    conv_transpose conv2d_transpose, conv3d_transpose
    local_conv     local_conv1d, local_conv2d (unshared weights)
    image          pooling, bias_add, resizing, padding
    normalization  batch normalization
    random         random tensors and dropout
    loops          rnn, map_fn, foldl, foldr
    ctc            CTC loss and decoding
    sparse         sparse tensors (to_dense)
    control        learning phase, control dependencies, print_tensor, sessions
    function       function (compile), Function, Update
    gradients      gradients, stop_gradient
    session        uids, name scopes, clear_session
Settings (floatx, epsilon, image_data_format) come from graphk.config.

Example:
    >>> x = K.placeholder(shape=(None, 3))
    >>> w = K.variable(np.ones((3, 2)))
    >>> f = K.function([x], [K.dot(x, w)])
    >>> f([np.ones((4, 3))])[0].shape
    (4, 2)

This module must never import keras (that would be a circular import under Keras).
"""
import builtins as _builtins
import sys as _sys

from ..config import (  # noqa: F401  (re-exported as the Keras API)
    backend, cast_to_floatx, epsilon, floatx, image_data_format, normalize_data_format,
    set_epsilon, set_floatx, set_image_data_format)
from ..codegen import numpy_backend as _codegen_numpy
from ..ir import source as _source
from ..passes import pipeline as _passes_pipeline
from .control import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .conv_transpose import *  # noqa: F401,F403
from .ctc import *  # noqa: F401,F403
from .function import *  # noqa: F401,F403
from .gradients import *  # noqa: F401,F403
from .image import *  # noqa: F401,F403
from .joining import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .local_conv import *  # noqa: F401,F403
from .loops import *  # noqa: F401,F403
from .math import *  # noqa: F401,F403
from .nn import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .random import *  # noqa: F401,F403
from .reductions import *  # noqa: F401,F403
from .selecting import *  # noqa: F401,F403
from .session import *  # noqa: F401,F403
from .shaping import *  # noqa: F401,F403
from .sparse import *  # noqa: F401,F403
from .tensors import *  # noqa: F401,F403
from .variables import *  # noqa: F401,F403

from .allocator import keep_freed_memory as _keep_freed_memory

_keep_freed_memory()  # training steps reuse their buffers (graphk/backend/allocator.py)

# Frames in graphk's own code are not the user's call site (in an editable install,
# passes/ and codegen/ live beside graphk/ rather than inside it).
for _module in (_source, _passes_pipeline, _codegen_numpy):
    _source.register_internal_dir(_module.__file__)
_source.register_internal_dir(__file__.rsplit("/", 2)[0])

py_all, py_any, py_sum, py_slice = _builtins.all, _builtins.any, _builtins.sum, _builtins.slice

_CONFIG_NAMES = ["backend", "cast_to_floatx", "epsilon", "floatx", "image_data_format",
                 "normalize_data_format", "set_epsilon", "set_floatx", "set_image_data_format"]
# K.function and K.gradients shadow their modules' names: the lists are read via sys.modules.
_FAMILIES = ["control", "conv", "conv_transpose", "ctc", "function", "gradients", "image",
             "joining", "linalg", "local_conv", "loops", "math", "nn", "normalization",
             "random", "reductions", "selecting", "session", "shaping", "sparse", "tensors",
             "variables"]
# Every public name (help(K) lists these): the families' own lists, the settings, and the
# builtins Keras' backends keep under py_* names.
__all__ = sorted({*_CONFIG_NAMES, "py_all", "py_any", "py_sum", "py_slice",
                  *(name for _family in _FAMILIES
                    for name in _sys.modules[f"{__name__}.{_family}"].__all__)})

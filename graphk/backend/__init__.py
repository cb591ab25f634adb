"""The Keras 2.3.1 backend API on graphk: `from graphk import backend as K`.

`KERAS_BACKEND=graphk.backend` makes Keras load this module as its backend.
It must never import keras (that would be a circular import under Keras).
"""
import builtins as _builtins

from ..config import (  # noqa: F401  (re-exported as the Keras API)
    backend, cast_to_floatx, epsilon, floatx, image_data_format, normalize_data_format,
    set_epsilon, set_floatx, set_image_data_format)
from ..codegen import numpy_backend as _codegen_numpy
from ..ir import source as _source
from ..passes import pipeline as _passes_pipeline
from .control import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .ctc import *  # noqa: F401,F403
from .function import *  # noqa: F401,F403
from .gradients import *  # noqa: F401,F403
from .image import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .loops import *  # noqa: F401,F403
from .math import *  # noqa: F401,F403
from .nn import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .random import *  # noqa: F401,F403
from .reductions import *  # noqa: F401,F403
from .session import *  # noqa: F401,F403
from .shaping import *  # noqa: F401,F403
from .sparse import *  # noqa: F401,F403
from .tensors import *  # noqa: F401,F403

# Frames in graphk's own code are not the user's call site (in an editable install,
# passes/ and codegen/ live beside graphk/ rather than inside it).
for _module in (_source, _passes_pipeline, _codegen_numpy):
    _source.register_internal_dir(_module.__file__)
_source.register_internal_dir(__file__.rsplit("/", 2)[0])

py_all, py_any, py_sum, py_slice = _builtins.all, _builtins.any, _builtins.sum, _builtins.slice

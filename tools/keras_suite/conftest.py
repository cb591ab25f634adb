"""conftest.py of the adapted copy of Keras 2.3.1's tests (written by tools/keras_suite/run.py).

It replaces Keras' own tests/conftest.py, which imports keras at its top and
clears the session only on TensorFlow and CNTK. Here the opt-in shims are
installed before anything imports keras (Keras 2.3.1 needs them on Python
>= 3.10, NumPy 2 and h5py 3), and the session is cleared after every test,
whatever the backend is called.
"""
import os

import graphk.keras2

assert os.environ.get("KERAS_BACKEND") == "graphk.backend", "run through tools/keras_suite/run.py"
graphk.keras2.install_shims()

import pytest  # noqa: E402

import graphk.backend  # noqa: E402


@pytest.fixture(autouse=True)
def clear_session_after_test():
    """keras.backend re-exports clear_session only for TensorFlow and CNTK: call graphk's."""
    yield
    graphk.backend.clear_session()

"""graphk.keras2: opt-in shims, never applied by importing graphk."""
import subprocess
import sys

import numpy as np

from graphk import keras2


def test_importing_graphk_applies_no_shim():
    code = ("import collections, numpy as np, graphk, graphk.backend, graphk.keras2;"
            "print(hasattr(collections, 'Iterable'), 'string_' in np.__dict__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


def test_install_is_idempotent_and_adds_what_keras_needs():
    keras2.install_shims()
    keras2.install_shims()
    import collections
    import collections.abc

    assert collections.Iterable is collections.abc.Iterable
    assert np.string_ is np.bytes_


def test_h5py_strings_answer_decode():
    assert keras2._decodable("adam").decode("utf8") == "adam"
    names = keras2._decodable(np.array(["dense_1", "dense_2"]))
    assert [n.decode("utf8") for n in names] == ["dense_1", "dense_2"]
    raw = np.array([b"a"])
    assert keras2._decodable(raw) is raw

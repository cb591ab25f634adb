"""Keras configuration: floatx, epsilon, image data format, keras.json and KERAS_BACKEND.

As Keras 2.3.1 does it: `$KERAS_HOME` (or `~/.keras`, falling back to
/tmp/.keras when that is not writable) holds keras.json; its values are read
once at import; the KERAS_BACKEND environment variable overrides its backend.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

_floatx = "float32"
_epsilon = 1e-7
_image_data_format = "channels_last"
_backend = "graphk"


def keras_home() -> str:
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    base = os.path.expanduser("~")
    if not os.access(base, os.W_OK):
        base = "/tmp"
    return os.path.join(base, ".keras")


def _load_keras_json() -> None:
    global _floatx, _epsilon, _image_data_format, _backend
    path = os.path.join(keras_home(), "keras.json")
    if os.path.exists(path):
        try:
            with open(path) as handle:
                config = json.load(handle)
        except ValueError:
            config = {}
        _floatx = config.get("floatx", _floatx)
        _epsilon = float(config.get("epsilon", _epsilon))
        _image_data_format = config.get("image_data_format", _image_data_format)
        _backend = config.get("backend", _backend)
    _backend = os.environ.get("KERAS_BACKEND", _backend)


def _keras_common():
    """Keras' own settings module, when Keras has loaded graphk as its backend.

    Keras 2.3.1 keeps floatx, epsilon and the image data format in
    keras.backend.common and never asks its backend for them, so while Keras
    is loaded its values are the ones in force (`keras.backend.set_floatx`
    must reach graphk). This looks the module up; it never imports keras.
    """
    return sys.modules.get("keras.backend.common")


def _in_force(name: str, own):
    """Keras' value of a setting while Keras is loaded, else graphk's own."""
    common = _keras_common()
    return getattr(common, name)() if common is not None else own


def _tell_keras(setter: str, value) -> None:
    """Mirror a setting into Keras' module, so both sides read the same value."""
    common = _keras_common()
    if common is not None:
        getattr(common, setter)(value)


def floatx() -> str:
    """The default float dtype, as a string.

    While Keras is loaded its setting is the one in force (Keras keeps it in
    its own module).

    Returns:
        'float16', 'float32' (the default) or 'float64'.
    """
    return _in_force("floatx", _floatx)


def set_floatx(value: str) -> None:
    """Set the default float dtype.

    Arguments:
        value: 'float16', 'float32' or 'float64'.

    Raises:
        ValueError: another value.
    """
    global _floatx
    if value not in {"float16", "float32", "float64"}:
        raise ValueError(f"unknown floatx type: {value!r}; expected float16, float32 or float64")
    _floatx = str(value)
    _tell_keras("set_floatx", _floatx)


def epsilon() -> float:
    """The fuzz factor used in numeric expressions (clipping in the crossentropies).

    Returns:
        A float, 1e-7 unless set.
    """
    return _in_force("epsilon", _epsilon)


def set_epsilon(value: float) -> None:
    """Set the fuzz factor used in numeric expressions.

    Arguments:
        value: a float.
    """
    global _epsilon
    _epsilon = float(value)
    _tell_keras("set_epsilon", _epsilon)


def image_data_format() -> str:
    """The default layout of image tensors.

    Returns:
        'channels_last' (the default) or 'channels_first'.
    """
    return _in_force("image_data_format", _image_data_format)


def set_image_data_format(value: str) -> None:
    """Set the default layout of image tensors.

    Arguments:
        value: 'channels_last' or 'channels_first'.

    Raises:
        ValueError: another value.
    """
    global _image_data_format
    if value not in {"channels_last", "channels_first"}:
        raise ValueError(f"unknown data_format: {value!r}; "
                         "expected 'channels_last' or 'channels_first'")
    _image_data_format = str(value)
    _tell_keras("set_image_data_format", _image_data_format)


def normalize_data_format(value: str | None) -> str:
    """A data_format argument checked, None meaning the configured format.

    Arguments:
        value: None, 'channels_last' or 'channels_first' (any case).

    Returns:
        'channels_last' or 'channels_first'.

    Raises:
        ValueError: another value.
    """
    if value is None:
        value = image_data_format()
    data_format = value.lower()
    if data_format not in {"channels_first", "channels_last"}:
        raise ValueError('The `data_format` argument must be one of "channels_first", '
                         f'"channels_last". Received: {value}')
    return data_format


def cast_to_floatx(x):
    """A NumPy array of `x` in floatx.

    Arguments:
        x: a number or an array.

    Returns:
        A NumPy array.
    """
    return np.asarray(x, dtype=_floatx)


def backend() -> str:
    """The name of this backend.

    Returns:
        'graphk'. (keras.backend.backend() answers with the module Keras loaded,
        'graphk.backend'.)
    """
    return "graphk"


def configured_backend() -> str:
    """What keras.json and KERAS_BACKEND ask Keras to load."""
    return _backend


_load_keras_json()

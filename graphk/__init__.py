"""graphk: a symbolic graph compiler behind the Keras 2.3.1 backend API."""
__version__ = "0.1.0"

"""graphk: a symbolic graph compiler behind the Keras 2.3.1 backend API."""
__version__ = "0.1.0"

from .benchmarking import benchmark  # noqa: E402  (needs nothing but the standard library)

__all__ = ["benchmark", "__version__"]

"""graphk: a symbolic graph compiler behind the Keras 2.3.1 backend API."""
__version__ = "0.1.0"

from .benchmarking import benchmark  # noqa: E402  (needs nothing but the standard library)



def set_num_threads(count):
    """Fix graphk's thread budget (BLAS and graphk's own pools) at `count`; None: automatic.

    Overrides GRAPHK_NUM_THREADS; see graphk/threads.py for the automatic budget.
    """
    from . import threads  # imports NumPy and threadpoolctl: only when asked
    threads.set_num_threads(count)


def get_num_threads() -> int:
    """graphk's thread budget now."""
    from . import threads
    return threads.get_num_threads()


__all__ = ["benchmark", "set_num_threads", "get_num_threads", "__version__"]

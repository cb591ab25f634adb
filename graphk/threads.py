"""graphk's one thread budget: how many cores BLAS, graphk's kernels and the LLVM pool may use.

Why this exists. NumPy's OpenBLAS starts a thread per core and splits every
product above a small size among them. The training steps of small Keras
models are made of small products (a batch of 32), where that split costs
more than it saves; and on a machine where other processes keep the cores
busy it is a disaster: the product waits until the scheduler gives the helper
thread a time slice (measured on the 2-core development machine shared with
other sessions: a 512x288x64 product took 0.3 ms on one thread and 17 ms on
two; with one spinning process on the other core, 512x64x288 and 1024^3
products were 1.4x and 1.6x slower on two threads than on one). So graphk
decides the thread count of every product itself:

- **The budget** (`budget()`) is how many threads graphk may run at once.
  `GRAPHK_NUM_THREADS=n` or `graphk.set_num_threads(n)` fixes it. By default
  it is the number of cores this process may use (CPU affinity and a cgroup
  CPU quota both count) that other processes leave idle: idle over the last
  half second (/proc/stat, less our own CPU time), or idle right now (nobody
  else runnable: processes taking turns with us), as cpu_load.py measures it;
  never fewer than one. That is what a user on a shared laptop or a busy server wants:
  graphk takes the cores nobody else is using and gives them back when
  somebody is, instead of fighting them.
- **Per product** (`blas_threads(m * n * k)`), a thread is worth adding only
  for `BLAS_WORK_PER_THREAD` multiply-adds or more (measured on the
  development machine), so batch-sized products run on one thread; and the
  automatic budget never exceeds the caller's own BLAS setting
  (OPENBLAS_NUM_THREADS or a threadpoolctl limit). graphk's own pools (the LLVM
  backend's) size themselves with `threads_for(work, per_thread)` from the
  same budget. graphk runs one kernel at a time, so BLAS and graphk's pools
  are never busy together; `lease` keeps concurrent callers (Python threads
  each running a compiled function) within the budget together.
- **Setting the BLAS count is cheap**: the controller of NumPy's BLAS is
  found once with threadpoolctl, the C setter is called directly, and only
  when the wanted count differs from the current one. When a compiled
  function returns, the count the caller had is put back (`give_back`), so
  NumPy code outside graphk sees its own setting.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager

import numpy as np

from .cpu_load import IDLE_SHARE, LOAD_INTERVAL, IdleCores, capacity, idle_cores  # noqa: F401

ENVIRONMENT_VARIABLE = "GRAPHK_NUM_THREADS"

# Multiply-adds (m * n * k) of a product per BLAS thread: below twice this, a
# product runs on one thread. Measured on the 2-core development machine with
# both cores ours: two threads save 10-20% from about 1e6 (512x72x64: 48 us on
# one, 40 us on two), up to 45% from about 1e7 (512x288x64: 165 us, 88 us), and
# lose by 30% on some shapes below that (128x64x256). Idle helper threads also
# spin for a while after each threaded product, taking CPU from the rest of the
# machine; so only products of a few hundred microseconds or more are split.
BLAS_WORK_PER_THREAD = 8_000_000



# --- the budget ----------------------------------------------------------------------------

def _parse_count(value, source: str) -> int:
    """A positive int count from an int or a string of digits."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1:
        return int(value)
    raise ValueError(f"{source} must be a positive int number of threads, got {value!r}")


def _from_environment() -> int | None:
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    return _parse_count(value, ENVIRONMENT_VARIABLE) if value else None


_configured: int | None = _from_environment()


def set_num_threads(count: int | None) -> None:
    """Fix graphk's thread budget at `count` threads; None returns to the automatic budget.

    Overrides GRAPHK_NUM_THREADS for this process.
    """
    global _configured
    _configured = None if count is None else _parse_count(count, "set_num_threads(count)")


def get_num_threads() -> int:
    """The thread budget now (the fixed count, or the automatic one)."""
    return budget()


def budget() -> int:
    """How many threads graphk may run at once now (at least 1)."""
    if _configured is not None:
        return _configured
    return _idle.cores()


def threads_for(work: float, per_thread: float) -> int:
    """Threads for a job of `work` units when each thread should get `per_thread` or more."""
    wanted = int(work // per_thread)
    if wanted <= 1:
        return 1
    return min(wanted, budget())


def blas_threads(work: int) -> int:
    """BLAS threads for a product of `work` multiply-adds (m * n * k, times the batch).

    The automatic budget never goes above the caller's own BLAS setting
    (OPENBLAS_NUM_THREADS, threadpoolctl limits): a user who limited BLAS meant it.
    GRAPHK_NUM_THREADS and set_num_threads are graphk's own and are followed.
    """
    count = threads_for(work, BLAS_WORK_PER_THREAD)
    if count > 1 and _configured is None:
        count = min(count, blas.callers_count() or 1)
    return count


# --- cores: ours, and how many the other processes leave idle (cpu_load.py) ---------------

_idle = IdleCores()


# --- leases: concurrent callers share the budget ------------------------------------------

_leased = 0
_lease_lock = threading.Lock()


@contextmanager
def lease(wanted: int):
    """Run a pool of up to `wanted` threads (the caller's own included): yields how many.

    Helper threads held by other leases at the same time count against the
    budget, so two concurrent pools never oversubscribe it. At least 1 (the
    caller's own thread) is always granted.
    """
    global _leased
    with _lease_lock:
        helpers = max(0, min(wanted, budget()) - 1 - _leased)
        _leased += helpers
    try:
        yield helpers + 1
    finally:
        with _lease_lock:
            _leased -= helpers


# --- NumPy's BLAS ---------------------------------------------------------------------------

def _numpy_blas_controllers() -> list:
    """threadpoolctl controllers of the BLAS NumPy calls (not others loaded beside it)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return []
    blas = ThreadpoolController().select(user_api="blas").lib_controllers
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    mine = [c for c in blas if os.path.dirname(c.filepath).startswith(numpy_dir)
            and "numpy" in os.path.basename(os.path.dirname(c.filepath))]
    return mine or blas


def _c_functions(controller):
    """(set, get) C functions of an OpenBLAS with its own pthreads pool, else None.

    Calling them directly costs well under a microsecond; threadpoolctl's own
    setter adds a lock and a controlling-thread check per call.
    """
    if getattr(controller, "internal_api", "") != "openblas" or \
            getattr(controller, "threading_layer", "") == "openmp":
        return None
    symbol = getattr(controller, "_get_symbol", None)
    if symbol is None:
        return None
    setter, getter = symbol("openblas_set_num_threads"), symbol("openblas_get_num_threads")
    return (setter, getter) if setter is not None and getter is not None else None


class BlasThreads:
    """NumPy's BLAS thread count, changed only when it differs from what is wanted.

    `owned` is False until graphk first changes the count (in a call of a
    compiled function); then `resting` is the caller's count, put back by
    `give_back`.
    """

    def __init__(self, controllers: list):
        self.controllers = controllers
        functions = [_c_functions(c) for c in controllers]
        if len(controllers) == 1 and functions[0] is not None:
            self._set, self._get = functions[0]
        else:
            self._set, self._get = self._set_all, self._get_first
        self.available = bool(controllers)
        self.owned = False
        self.current = self.resting = None

    def _set_all(self, count: int) -> None:
        for controller in self.controllers:
            controller.set_num_threads(count)

    def _get_first(self):
        return self.controllers[0].get_num_threads() if self.controllers else None

    def read(self):
        """The count the library reports now (None without a controllable BLAS)."""
        return self._get() if self.available else None

    def callers_count(self):
        """The count the caller set (before graphk changed it in this call)."""
        return self.resting if self.owned else self.read()

    def use(self, count: int) -> None:
        """Make the next BLAS call run on `count` threads."""
        if self.owned:
            if count == self.current:
                return
        elif not self._take():
            return
        if count != self.current:
            self._set(count)
            self.current = count

    def _take(self) -> bool:
        if not self.available:
            return False
        self.current = self.resting = self._get()
        self.owned = True
        return True

    def give_back(self) -> None:
        """Restore the count the caller had before graphk changed it."""
        if not self.owned:
            return
        self.owned = False
        if self.current != self.resting and self.resting is not None:
            self._set(self.resting)
        self.current = self.resting


blas = BlasThreads(_numpy_blas_controllers())


@contextmanager
def blas_limit(count: int):
    """Run the BLAS calls inside on `count` threads; the count before is restored after."""
    was_owned, before = blas.owned, blas.current
    blas.use(count)
    try:
        yield
    finally:
        if was_owned:
            blas.use(before)
        else:
            blas.give_back()


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.matmul(a, b) on as many BLAS threads as the product's size is worth.

    Written for the common case (one thread, already set): two comparisons
    and no further calls, a fraction of a microsecond per product.
    """
    if a.ndim >= 2 and b.ndim >= 2:
        # batch * m * k * n: one operand's size times the other's free dimension
        work = max(a.size * b.shape[-1], b.size * a.shape[-2])
        wanted = 1 if work < 2 * BLAS_WORK_PER_THREAD else blas_threads(work)
    else:
        wanted = 1  # a vector product is memory-bound
    if wanted != blas.current or not blas.owned:
        blas.use(wanted)
    return np.matmul(a, b)


__all__ = ["budget", "get_num_threads", "set_num_threads", "capacity", "threads_for",
           "blas_threads", "lease", "blas", "blas_limit", "matmul", "BLAS_WORK_PER_THREAD",
           "ENVIRONMENT_VARIABLE"]

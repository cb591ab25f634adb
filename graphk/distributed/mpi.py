"""The MPI transport (mpi4py): the collective kernels' buffers go to MPI in place.

mpi4py is an optional extra (`pip install -e '.[distributed]'`); it is
imported here only, when `graphk.distributed.init()` finds that an MPI
launcher started this process.

Failure handling, so that a job fails instead of hanging:
- A worker killed or exiting with an error code while others run: mpiexec
  (Hydra) kills the rest and exits with that worker's code.
- An uncaught Python exception in a worker: the hook installed by `init()`
  prints the traceback and calls MPI_Abort, which ends every worker (without
  it the others would wait in their next collective forever).
- A worker that stops taking part without dying (it left the training loop
  early, or is stuck): each collective waits at most `timeout` seconds
  (GRAPHK_DISTRIBUTED_TIMEOUT, default 300; 0 waits forever). The wait is a
  loop over a nonblocking MPI request in this thread, so no watchdog thread is
  needed; on timeout the worker prints what it waited in and calls MPI_Abort.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

TIMEOUT_VARIABLE = "GRAPHK_DISTRIBUTED_TIMEOUT"
DEFAULT_TIMEOUT = 300.0
SPIN = 50e-6  # seconds a collective busy-waits before yielding the core between tests


def import_mpi():
    """mpi4py's MPI module, or an ImportError that says how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(
            "graphk.distributed needs mpi4py and an MPI library under an MPI launcher: "
            "pip install -e '.[distributed]' (installs the mpi4py and mpich wheels), then "
            f"launch with mpiexec -n N python script.py ({error})") from None
    return MPI


def timeout_from_environment() -> float:
    text = os.environ.get(TIMEOUT_VARIABLE, "")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"{TIMEOUT_VARIABLE}={text!r} is not a number of seconds") from None
    if seconds < 0:
        raise ValueError(f"{TIMEOUT_VARIABLE}={text!r} must be >= 0 (0 waits forever)")
    return seconds


class MpiTransport:
    """Collectives on an MPI communicator, each bounded by a timeout."""

    def __init__(self, MPI, communicator, timeout: float):
        self.MPI = MPI
        self.communicator = communicator
        self.rank = communicator.Get_rank()
        self.size = communicator.Get_size()
        self.timeout = timeout
        self.calls = 0  # collectives made so far (tests and benchmarks count them)

    def allreduce(self, buffer: np.ndarray, root, what: object) -> None:
        MPI = self.MPI
        if root is None:
            request = self.communicator.Iallreduce(MPI.IN_PLACE, buffer, MPI.SUM)
        elif self.rank == root:
            request = self.communicator.Ireduce(MPI.IN_PLACE, buffer, MPI.SUM, root)
        else:
            request = self.communicator.Ireduce(buffer, None, MPI.SUM, root)
        self._wait(request, what)

    def broadcast(self, buffer: np.ndarray, root: int, what: object) -> None:
        self._wait(self.communicator.Ibcast(buffer, root), what)

    def barrier(self, what: object = "barrier") -> None:
        self._wait(self.communicator.Ibarrier(), what)

    def _wait(self, request, what: object) -> None:
        """Drive the request to completion (each Test call makes MPI progress), or abort.

        After SPIN seconds the loop yields the core between tests: with more
        workers than free cores (or other jobs), a spinning worker would take
        the time the worker it waits for needs (a 26 KB allreduce on 2 busy
        cores: 0.24 ms spinning, 0.07 ms yielding).
        """
        self.calls += 1
        if request.Test():
            return
        start = time.monotonic()
        deadline = start + self.timeout if self.timeout > 0 else float("inf")
        test, now, spin_until = request.Test, time.monotonic, start + SPIN
        while not test():
            moment = now()
            if moment > spin_until:
                os.sched_yield()
            if moment > deadline:
                self.abort(f"waited {now() - start:.1f} s in {what} (collective call "
                           f"{self.calls}) without every worker joining: a worker died, left "
                           "its training loop early or is stuck (raise "
                           f"{TIMEOUT_VARIABLE}, now {self.timeout:g} s, if it is just slow)")

    def abort(self, reason: str, code: int = 1) -> None:
        """Print why on stderr, then end every worker of the job (MPI_Abort never returns)."""
        sys.stdout.flush()
        print(f"graphk.distributed: rank {self.rank} of {self.size}: {reason}; aborting the job "
              "(MPI_Abort)", file=sys.stderr, flush=True)
        self.communicator.Abort(code)


def install_abort_on_exception(transport: MpiTransport) -> None:
    """An uncaught exception in this worker aborts the whole job after its traceback."""
    previous = sys.excepthook

    def hook(kind, value, traceback):
        previous(kind, value, traceback)
        if issubclass(kind, (KeyboardInterrupt, SystemExit)):
            reason = f"stopped by {kind.__name__}"
        else:
            reason = f"raised {kind.__name__} (traceback above)"
        transport.abort(reason)

    sys.excepthook = hook

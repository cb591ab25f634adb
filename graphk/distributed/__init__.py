"""Data-parallel training on MPI (Horovod's model): allreduce as an IR op.

    import graphk.distributed as gd
    gd.init()                        # once per worker, before running collectives
    gd.rank(), gd.size(), gd.local_rank()
    grads = gd.allreduce(grads)      # one `allreduce` node for all of them (average)
    gd.broadcast_variables(weights, root=0)

and for Keras 2.3.1 (imported on first use): `gd.DistributedOptimizer(opt)`,
`gd.BroadcastGlobalVariablesCallback(0)`, `gd.MetricAverageCallback()`.

Launch N workers with `mpiexec -n N python script.py`. Each worker runs the
same compiled graphs on its shard of the data; the collectives inside them
call MPI through mpi4py (see mpi.py for timeouts and failure handling).
Importing this package does not import mpi4py; `init()` does, when an MPI
launcher started the process. Without a launcher, `init()` notes that this
is a single worker (size 1) and the collectives are copies.
"""
from __future__ import annotations

import os
import sys

from ..ir.graph import Value
from ..ir.ops import collective
from ..ir.ops.collective import SingleProcess, launched_by_mpi

_KERAS_NAMES = ("DistributedOptimizer", "BroadcastGlobalVariablesCallback",
                "MetricAverageCallback")
_state: dict = {}  # "transport", "local_rank", "local_size" once init() has run


def init(timeout: float | None = None, quiet: bool = False) -> None:
    """Join the job: rank and size from MPI, or a single worker without a launcher.

    `timeout` bounds each collective's wait in seconds (default: the
    GRAPHK_DISTRIBUTED_TIMEOUT variable, else 300; 0 waits forever). Calling
    init() again is harmless.
    """
    if _state:
        return
    if not launched_by_mpi():
        if not quiet:
            print("graphk.distributed: not started by an MPI launcher (mpiexec -n N ...), so "
                  "this is a single worker (rank 0 of size 1); collectives are copies",
                  file=sys.stderr, flush=True)
        _state.update(transport=SingleProcess(), local_rank=0, local_size=1)
        collective.install_transport(_state["transport"])
        return
    from . import mpi

    MPI = mpi.import_mpi()
    seconds = mpi.timeout_from_environment() if timeout is None else float(timeout)
    world = MPI.COMM_WORLD.Dup()  # our own context: user MPI calls never match ours
    transport = mpi.MpiTransport(MPI, world, seconds)
    node = world.Split_type(MPI.COMM_TYPE_SHARED, key=transport.rank)  # this machine's workers
    _state.update(transport=transport, local_rank=node.Get_rank(), local_size=node.Get_size())
    node.Free()
    collective.install_transport(transport)
    if transport.size > 1:
        mpi.install_abort_on_exception(transport)
    _share_cores(_state["local_size"])


def _share_cores(workers_here: int) -> None:
    """Each of the workers on this machine gets its share of the cores for BLAS and graphk's
    pools (unless GRAPHK_NUM_THREADS says otherwise): several workers each starting a thread
    per core would fight over the cores, and every step waits for the slowest worker."""
    if workers_here <= 1 or os.environ.get("GRAPHK_NUM_THREADS"):
        return
    from .. import threads

    threads.set_num_threads(max(1, threads.capacity() // workers_here))


def _transport():
    if not _state:
        raise RuntimeError("graphk.distributed: call gd.init() first")
    return _state["transport"]


def is_initialized() -> bool:
    return bool(_state)


def rank() -> int:
    """This worker's index in the job, 0 .. size() - 1."""
    return _transport().rank


def size() -> int:
    """The number of workers in the job."""
    return _transport().size


def local_rank() -> int:
    """This worker's index among the workers on its machine."""
    _transport()
    return _state["local_rank"]


def local_size() -> int:
    _transport()
    return _state["local_size"]


def allreduce(tensors, reduction: str = "average"):
    """Tensors summed or averaged over workers: one `allreduce` node for all of them.

    A single tensor gives a tensor; a list gives a list.
    """
    if isinstance(tensors, Value):
        return collective.allreduce([tensors], reduction)[0]
    return list(collective.allreduce(list(tensors), reduction)) if tensors else []


def broadcast(tensors, root: int = 0):
    """Root worker's tensors on every worker: one `broadcast` node for all of them."""
    if isinstance(tensors, Value):
        return collective.broadcast([tensors], root)[0]
    return list(collective.broadcast(list(tensors), root)) if tensors else []


def allreduce_arrays(arrays, reduction: str = "average") -> list:
    """NumPy arrays reduced over workers now (the allreduce kernel, called eagerly)."""
    return list(collective.allreduce_arrays(arrays, reduction, None, _transport()))


def broadcast_arrays(arrays, root: int = 0) -> list:
    """Root worker's NumPy arrays on every worker, now."""
    return list(collective.broadcast_arrays(arrays, root, _transport()))


def broadcast_variables(variables, root: int = 0) -> None:
    """Set every worker's variables to root's values (one compiled broadcast node).

    Every worker must pass the same variables in the same order.
    """
    from ..backend.function import function

    unique = list({id(v): v for v in variables}.values())
    if not unique:
        return
    _transport()
    updates = list(zip(unique, broadcast(unique, root)))
    function([], [], updates=updates, name="broadcast_variables")([])


def barrier() -> None:
    """Wait until every worker gets here (an allreduce of nothing would be skipped)."""
    transport = _transport()
    if transport.size > 1:
        transport.barrier()


def __getattr__(name: str):
    """The Keras 2.3.1 pieces, imported (with Keras) on first use."""
    if name in _KERAS_NAMES:
        from . import keras

        return getattr(keras, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["init", "is_initialized", "rank", "size", "local_rank", "local_size", "allreduce",
           "broadcast", "allreduce_arrays", "broadcast_arrays", "broadcast_variables", "barrier",
           *_KERAS_NAMES]

"""Collective ops: tensors combined across the worker processes of a data-parallel job.

  %g0, %g1 = allreduce(%d0, %d1) {reduction="average", root=None}
  %w0, %w1 = broadcast(%v0, %v1) {root=0}

Each op takes any number of tensors and returns one per input, same type, so
a training step packs all its gradients into one node and the kernel makes
one MPI call per wire dtype (Horovod's tensor fusion): the tensors are copied
into one persistent contiguous buffer, reduced there in place, and copied out.

Both ops are impure (`pure=False`): a pass never folds, merges, fuses or
reorders them. Every worker must run the same collectives in the same order
with the same shapes; they do because every worker builds the same graph and
the schedule (topological order) of one graph is deterministic, and each
buffer carries a fingerprint that turns a disagreement into an error.

The kernels talk to a `Transport` installed by `graphk.distributed.init()`
(mpi4py there); `ir/` itself never imports MPI. In a process that no MPI
launcher started, an uninitialized job is one worker and the ops are copies.
"""
from __future__ import annotations

import os
import threading
import zlib
from typing import Protocol

import numpy as np

from ..dtypes import DTypeError, is_floating, require_numeric
from ..types import TensorType
from .registry import VARIADIC, OpDef, Sample, apply, register

REDUCTIONS = ("average", "sum")
# Environment variables MPI launchers set in each worker (MPICH/Hydra and PMI-based srun,
# Open MPI, PMIx, MVAPICH): their presence means "this process is one of several".
LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK",
                      "MV2_COMM_WORLD_SIZE")


class Transport(Protocol):
    """What the kernels need from a communication library (see graphk/distributed/mpi.py).

    `str(what)` describes the collective, for error messages (built only when needed).
    """

    rank: int
    size: int

    def allreduce(self, buffer: np.ndarray, root: int | None, what: object) -> None:
        """Sum `buffer` over all workers in place (only `root`'s copy if root is an int)."""

    def broadcast(self, buffer: np.ndarray, root: int, what: object) -> None:
        """Overwrite `buffer` on every worker with root's, in place."""


class SingleProcess:
    """The transport of a job with one worker: sums and broadcasts leave buffers as they are."""

    rank = 0
    size = 1

    def allreduce(self, buffer, root, what):
        pass

    def broadcast(self, buffer, root, what):
        pass


_installed: list[Transport] = []  # at most one; a list so install() needs no `global`


def install_transport(transport: Transport | None) -> None:
    """Make the kernels use `transport` (None uninstalls; for graphk.distributed and tests)."""
    _installed.clear()
    if transport is not None:
        _installed.append(transport)


def launched_by_mpi() -> bool:
    return any(name in os.environ for name in LAUNCHER_VARIABLES)


def current_transport(op_name: str) -> Transport:
    """The installed transport; a single worker when no launcher started this process."""
    if _installed:
        return _installed[0]
    if launched_by_mpi():
        found = next(name for name in LAUNCHER_VARIABLES if name in os.environ)
        raise RuntimeError(
            f"{op_name}: this process was started by an MPI launcher ({found} is set) but "
            "graphk.distributed.init() was not called; call it before running a graph with "
            "collectives, or every worker would train alone")
    return SingleProcess()


# --- packing: many tensors, one buffer per wire dtype ----------------------------------


_FLOAT32 = np.dtype(np.float32)


def wire_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a tensor is reduced in: float16 as float32 (MPI has no half-precision sum)."""
    return _FLOAT32 if dtype.char == "e" else dtype  # chars and nums: dtype names are slow


def _groups(arrays) -> dict:
    """Indices of the arrays per wire dtype, in order of first appearance."""
    groups: dict = {}
    for index, array in enumerate(arrays):
        groups.setdefault(wire_dtype(array.dtype), []).append(index)
    return groups


# Horovod's fusion buffer: one persistent buffer per wire dtype, grown to the largest
# collective. MPI registers the memory it transfers; a fresh buffer per call made a 1 MB
# allreduce on 2 workers ~10x slower (0.9 ms persistent, 9 ms fresh, on the 2-core
# development machine). Results are copied out, so the buffer is free for the next call.
_fusion: dict = {}
_fusion_lock = threading.Lock()  # two threads must not pack into one buffer at once


def _fusion_buffer(dtype: np.dtype, size: int) -> np.ndarray:
    """The first `size` elements of this dtype's persistent buffer."""
    buffer = _fusion.get(dtype)
    if buffer is None or buffer.size < size:
        buffer = _fusion[dtype] = np.empty(size, dtype)
    return buffer[:size]


def _pack(arrays, indices, dtype, extra: int = 0) -> np.ndarray:
    """The arrays one after another in the fusion buffer, `extra` elements to spare at the
    end (MPI works on the buffer in place, never on the inputs)."""
    buffer = _fusion_buffer(dtype, sum(arrays[i].size for i in indices) + extra)
    offset = 0
    for i in indices:
        size = arrays[i].size
        np.copyto(buffer[offset:offset + size], arrays[i].reshape(-1))
        offset += size
    return buffer


def _unpack(buffer, arrays, indices, results: list, divisor: int = 1) -> None:
    """Each array's slice of the buffer, copied out in its shape and dtype (and divided by
    `divisor` on the way: one pass over the memory instead of two)."""
    offset = 0
    for i in indices:
        size, like = arrays[i].size, arrays[i]
        part = buffer[offset:offset + size].reshape(like.shape)
        if divisor == 1:
            results[i] = part.astype(like.dtype)
        else:
            results[i] = np.empty(like.shape, like.dtype)
            np.divide(part, divisor, out=results[i], casting="same_kind")
        offset += size


class _Description:
    """What a worker waits in, for error messages; written out only if one is raised (a
    collective of small tensors costs tens of microseconds, and this would be several)."""

    def __init__(self, op_name: str, arrays):
        self.op_name, self.arrays = op_name, arrays

    def __str__(self) -> str:
        nbytes = sum(a.nbytes for a in self.arrays)
        dtypes = ",".join(sorted({a.dtype.name for a in self.arrays}))
        return f"{self.op_name} of {len(self.arrays)} tensor(s), {nbytes / 2**20:.2f} MB {dtypes}"


# --- the order check ----------------------------------------------------------------------
#
# Workers that ran different collectives (one took an extra step, or built its graphs
# differently) would otherwise add up unrelated tensors of equal size without a word.
# So each buffer carries one more element: a fingerprint of the collective's number in
# this worker's sequence and of its tensors' shapes. After a sum every worker must hold
# size * its own fingerprint (after a broadcast, root's bytes equal its own), else
# CollectiveMismatch. Fingerprints stay below 2**11, so sums of up to 2**13 workers are
# exact in float32. 8- and 16-bit integer buffers could overflow and carry none.

_CHECKED = {np.dtype(t) for t in ("float32", "float64", "int32", "int64")}
_sequence = [0]  # collectives this worker has run in a job of several workers


class CollectiveMismatch(RuntimeError):
    """The workers ran different collectives at the same point."""


def _fingerprint(kind: str, arrays, attrs) -> int:
    _sequence[0] += 1
    signature = f"{_sequence[0]}|{kind}|{attrs}|{[(a.dtype.num, a.shape) for a in arrays]}"
    return zlib.crc32(signature.encode()) % 2047 + 1


def _mismatch(kind: str, arrays) -> CollectiveMismatch:
    return CollectiveMismatch(
        f"the workers ran different collectives at this worker's collective number "
        f"{_sequence[0]} ({_Description(kind, arrays)}, shapes "
        f"{[a.shape for a in arrays]}): every worker must run the same graphs in the same "
        "order with the same shapes (did one worker get more batches than the others?)")


def _check_rank(op_name: str, root, transport) -> None:
    if root is not None and not 0 <= root < transport.size:
        raise ValueError(f"{op_name}: root {root} is not a worker rank "
                         f"(the job has {transport.size} worker(s))")


def allreduce_arrays(arrays, reduction: str = "average", root: int | None = None,
                     transport: Transport | None = None) -> tuple:
    """Reduce NumPy arrays across workers (the allreduce kernel; also callable eagerly).

    Returns fresh arrays; with `root`, workers other than root get zeros.
    """
    arrays = [np.asarray(a) for a in arrays]
    transport = transport or current_transport("allreduce")
    _check_rank("allreduce", root, transport)
    if transport.size == 1:  # a sum or an average over one worker
        return tuple(a.copy() for a in arrays)
    what = _Description("allreduce", arrays)
    results: list = [None] * len(arrays)
    with _fusion_lock:
        for dtype, indices in _groups(arrays).items():
            group = [arrays[i] for i in indices]
            checked = dtype in _CHECKED
            buffer = _pack(arrays, indices, dtype, extra=int(checked))
            if checked:
                mark = _fingerprint("allreduce", group, (reduction, root))
                buffer[-1] = mark
            if buffer.size:  # every worker holds the same shapes, so all skip together
                transport.allreduce(buffer, root, what)
            if checked and (root is None or transport.rank == root) and \
                    buffer[-1] != mark * transport.size:
                raise _mismatch("allreduce", group)
            if root is not None and transport.rank != root:
                buffer[...] = 0
            divisor = transport.size if reduction == "average" else 1
            _unpack(buffer, arrays, indices, results, divisor)
    return tuple(results)


def broadcast_arrays(arrays, root: int = 0, transport: Transport | None = None) -> tuple:
    """Root's arrays on every worker: all dtypes travel as the bytes of one buffer."""
    arrays = [np.asarray(a) for a in arrays]
    transport = transport or current_transport("broadcast")
    _check_rank("broadcast", root, transport)
    if transport.size == 1:
        return tuple(a.copy() for a in arrays)
    total = sum(a.nbytes for a in arrays)
    with _fusion_lock:
        buffer = _fusion_buffer(np.dtype(np.uint8), total + 4)
        offset = 0
        for a in arrays:
            np.copyto(buffer[offset:offset + a.nbytes],
                      np.ascontiguousarray(a).reshape(-1).view(np.uint8))
            offset += a.nbytes
        mark = _fingerprint("broadcast", arrays, root)
        buffer[total:] = np.array([mark], "<u4").view(np.uint8)
        transport.broadcast(buffer, root, _Description("broadcast", arrays))
        if int(buffer[total:].view("<u4")[0]) != mark:
            raise _mismatch("broadcast", arrays)
        results, offset = [], 0
        for a in arrays:
            part = buffer[offset:offset + a.nbytes].copy()
            results.append(part.view(a.dtype).reshape(a.shape))
            offset += a.nbytes
    return tuple(results)


# --- type rules and gradients ----------------------------------------------------------------


def _check_root(root) -> None:
    if root is not None and (isinstance(root, bool) or not isinstance(root, int) or root < 0):
        raise ValueError(f"root must be a worker rank (an int >= 0), got {root!r}")


def _allreduce_infer(*types: TensorType, reduction, root):
    if not types:
        raise ValueError("allreduce needs at least one tensor")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    _check_root(root)
    if root is not None and reduction != "sum":
        raise ValueError(f"a reduction to root {root} must be reduction='sum', "
                         f"got {reduction!r}")
    for k, t in enumerate(types):
        require_numeric(t.dtype, f"tensor {k} of allreduce")
        if reduction == "average" and not is_floating(t.dtype):
            raise DTypeError(f"tensor {k} of allreduce is {t.dtype}: an average of ints is not "
                             "an int; use reduction='sum' or cast to a float dtype")
    return tuple(types)


def _broadcast_infer(*types: TensorType, root):
    if not types:
        raise ValueError("broadcast needs at least one tensor")
    _check_root(root)
    if root is None:
        raise ValueError("broadcast needs a root rank, got None")
    return tuple(types)


def _collective_grad(node, cotangents, op_name: str, **attrs) -> tuple:
    """`op_name` applied to the cotangents of the float outputs, None for the others.

    Unused outputs get zeros rather than None: every worker must send the same
    tensors, and a worker cannot know whether another's loss used an output.
    """
    from .shape import full_like

    floats = [k for k, v in enumerate(node.outputs) if is_floating(v.type.dtype)]
    if not floats:
        return (None,) * len(node.inputs)
    gs = [cotangents[k] if cotangents[k] is not None else full_like(node.outputs[k], 0)
          for k in floats]
    reduced = _as_tuple(apply(op_name, gs, **attrs))
    grads: list = [None] * len(node.inputs)
    for k, g in zip(floats, reduced):
        grads[k] = g
    return tuple(grads)


def _allreduce_grad(node, cotangents):
    """d/dx_s of sum_r <g_r, y_r>: a sum has sum_r g_r, an average the average of the g_r;
    a sum to root is read on root only, so each worker's gradient is root's cotangent."""
    root = node.attrs["root"]
    if root is None:
        return _collective_grad(node, cotangents, "allreduce",
                                reduction=node.attrs["reduction"], root=None)
    return _collective_grad(node, cotangents, "broadcast", root=root)


def _broadcast_grad(node, cotangents):
    """Every worker's output is root's input, so root's input gets the sum of all cotangents
    and the other workers' inputs get none (zeros)."""
    return _collective_grad(node, cotangents, "allreduce", reduction="sum",
                            root=node.attrs["root"])


def _as_tuple(result) -> tuple:
    return result if isinstance(result, tuple) else (result,)


# Codegen binds a node with one output to one name, so a one-tensor kernel returns the array.

def _allreduce_kernel(*arrays, reduction, root):
    results = allreduce_arrays(arrays, reduction, root)
    return results if len(results) > 1 else results[0]


def _broadcast_kernel(*arrays, root):
    results = broadcast_arrays(arrays, root)
    return results if len(results) > 1 else results[0]


register(OpDef(
    "allreduce", "collective", infer=_allreduce_infer, kernel=_allreduce_kernel,
    attrs={"reduction": "average", "root": None}, num_outputs=VARIADIC,
    grad=_allreduce_grad, pure=False,
    samples=(Sample(((3, 4), (5,)), {"reduction": "average"}),
             Sample(((2, 3), (0,), ()), {"reduction": "sum"}),
             Sample(((4,), (2, 2)), {"reduction": "sum"}, dtypes=("int32", "float16"),
                    differentiable_inputs=()),  # float16 is too coarse for differences
             Sample(((3,),), {"reduction": "sum", "root": 0})),
    doc="Each tensor summed or averaged over all workers (one MPI call per wire dtype); with "
        "root, the sum lands on that worker only and the others get zeros. Impure."))

register(OpDef(
    "broadcast", "collective", infer=_broadcast_infer, kernel=_broadcast_kernel,
    attrs={"root": 0}, num_outputs=VARIADIC, grad=_broadcast_grad, pure=False,
    samples=(Sample(((3, 4), (2,)), {"root": 0}),
             Sample(((2,), (0, 3), ()), {"root": 0}, dtypes=("bool", "int64", "float16"),
                    differentiable_inputs=())),
    doc="Root worker's tensors on every worker, all dtypes in one MPI call. Impure."))


# --- constructors -----------------------------------------------------------------------------


def allreduce(values, reduction: str = "average", root: int | None = None) -> tuple:
    """One allreduce node over `values` (a tuple of values, one per input)."""
    return _as_tuple(apply("allreduce", list(values), reduction=reduction, root=root))


def broadcast(values, root: int = 0) -> tuple:
    """One broadcast node over `values` (a tuple of values, one per input)."""
    return _as_tuple(apply("broadcast", list(values), root=root))

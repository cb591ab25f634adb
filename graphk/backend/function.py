"""K.function: compile a graph once, then call it with a list of arrays."""
from __future__ import annotations

import time

from ..codegen.numpy_backend import compile_graph
from ..ir.dtypes import can_feed
from ..ir.errors import FeedError, located
from ..ir.graph import Graph, Value
from ..ir.ops import elementwise as ew
from ..ir.ops.leaf import Variable, as_value
from ..ir.shapes import ShapeError, format_shape, same_dim
from ..ir.source import user_location
from ..nan_guard import NanGuard, chain
from ..passes.pipeline import run_pipeline
from ..passes.report import CompileReport, DumpDirectory
from ..threads import blas as _blas
from .dependencies import carried_updates
from .phase import compile_function, specialize
from .session import get_uid
from .sparse import SparseSignature

BACKENDS = ("auto", "llvm", "numpy")  # see codegen/llvm/__init__.py, lowering_for


class Update(tuple):
    """What K.update returns: (variable, new value), applied by K.function."""

    def __new__(cls, variable, new_value):
        return super().__new__(cls, (variable, new_value))

    @property
    def variable(self):
        return self[0]

    @property
    def value(self):
        return self[1]


class Function:
    """A compiled graph: `fn(list_of_arrays) -> list_of_arrays`, then updates applied.

    `fn.ir` is the optimized graph (print it for the IR text) and
    `fn.source` the generated NumPy program. A sparse input is fed a
    scipy.sparse matrix or an (indices, values, dense_shape) tuple; a sparse
    output comes back as a SparseValue (see graphk/backend/sparse.py).
    """

    def __init__(self, inputs, outputs, updates=None, name=None, backend="auto", passes=None,
                 profile=False, nan_guard=False, fixed=None):
        started = time.perf_counter()  # compile_seconds: this whole constructor
        location = user_location()
        if backend not in BACKENDS:
            raise ValueError(f"K.function: unknown backend {backend!r}; "
                             f"available: {list(BACKENDS)}")
        self.name = name or f"function_{get_uid('graphk_function')}"
        inputs = list(inputs)
        self._single_output = isinstance(outputs, Value)
        sparse = SparseSignature.of(inputs, outputs, self.name)  # None when all are dense
        if sparse is not None:  # the graph sees each sparse tensor's three dense parts
            inputs, outputs = sparse.flat_inputs, sparse.flat_outputs
            self._single_output = sparse.single_output
        self.inputs = _check_inputs(inputs, self.name)
        self.outputs = _check_outputs([outputs] if isinstance(outputs, Value) else outputs)
        # Updates the outputs carry from K.control_dependencies run too (TF semantics).
        pairs = _collect_updates([updates or [], carried_updates(self.outputs)], location)
        graph = Graph(self.inputs, self.outputs, pairs, name=self.name)
        graph = specialize(graph, fixed)  # fixed placeholders and seeds (backend/phase.py)
        # A dump path that is a file fails here, before any work (passes/report.py).
        self._report = CompileReport(self.name, graph, DumpDirectory.from_environment(self.name))
        self._report.sections.append(_lowering_section)  # which lowering ran each node
        self._report.sections.append(_memory_section)  # peak intermediate bytes
        self.ir = run_pipeline(graph, passes, trace=self._report.trace)
        # backend: which lowering runs fused nodes (codegen/llvm: lowering_for says how)
        codegen_started = time.perf_counter()
        self.lowering = _lowering_for(backend)
        self._profiler = _profiler() if profile else None  # None: kernels are called directly
        self._executable = compile_graph(self.ir, kernel_for=self.lowering, wrap_kernel=chain(
            self._profiler.wrap if profile else None, NanGuard().wrap if nan_guard else None))
        # One LLVM module for every fused node, compiled at the first native call (JAX compiles
        # at the first call too): a function built but never called costs no LLVM work.
        self.codegen_seconds = time.perf_counter() - codegen_started
        self._backend = backend
        self._run = self._executable.run
        scalars = [i for i, v in enumerate(self.outputs) if v.type.ndim == 0]
        if scalars:  # only functions with rank-0 outputs pay for this
            self._run = _scalar_results(self._run, scalars)
        if sparse is not None:  # only functions with sparse inputs or outputs pay for this
            self._run = sparse.wrap(self._run)
        self.source = self._executable.source
        if self._report.dump is not None:
            self._report.dump.write_program(self.ir, self.source, self._executable._line_nodes)
        self.compile_seconds = time.perf_counter() - started

    def profile(self, show: bool = True) -> str:
        """Per-kernel time over the calls so far, sorted by time, then compile time by pass
        and code generation (graphk/bench/profiler.py); needs K.function(..., profile=True)."""
        from ..bench.profiler import profile_table

        text = profile_table(self)
        if show:
            print(text)
        return text

    def benchmark(self, feeds, **options):
        """graphk.benchmark(self, feeds, **options): first call apart, calibrated rounds,
        median, min and spread (graphk/benchmarking.py)."""
        from ..benchmarking import benchmark

        return benchmark(self, feeds, **options)

    def report(self, show: bool = True) -> str:
        """Each pass with its time and node counts before/after, then the sections other
        parts of graphk contribute (passes/report.py); printed unless `show` is False."""
        text = self._report.text(self)
        if show:
            print(text)
        return text

    def __call__(self, inputs):
        try:
            results = self._run(inputs)
        except FeedError:
            raise
        except Exception as error:
            explained = self._executable.explain(error)
            if explained is error:
                raise
            raise explained from error
        finally:
            if _blas.owned:  # the caller's BLAS thread count back (graphk/threads.py)
                _blas.give_back()
        return results[0] if self._single_output else results


def _scalar_results(run, positions: list):
    """run, its rank-0 results turned into NumPy scalars (np.float32(0.5), not array(0.5)):
    what a TensorFlow session returns, so Keras' logs and history hold scalars."""
    def run_with_scalars(feeds):
        results = run(feeds)
        for i in positions:
            results[i] = results[i][()]
        return results
    return run_with_scalars


def _profiler():
    from ..bench.profiler import Profiler

    return Profiler()


def _lowering_section(fn):
    from ..codegen.llvm.report import lowering_section

    return lowering_section(fn)


def _memory_section(fn):
    from ..codegen.memory_plan import memory_section

    return memory_section(fn)


def _lowering_for(backend: str):
    if backend == "numpy":
        return None
    from ..codegen.llvm import lowering_for  # llvmlite loads only when asked for

    return lowering_for(backend)


def function(inputs, outputs, updates=None, name=None, **kwargs) -> Function:
    """Compile `outputs` (and `updates`) as a function of the placeholders `inputs`.

    The graph is checked, run through the pass pipeline and lowered once;
    each call checks its feeds, computes the outputs, then applies every
    update from the values before the call (Theano/Keras semantics). Updates
    that the outputs carry from K.control_dependencies are applied too.

    Arguments:
        inputs: a list of placeholders (dense or sparse), fed in that order.
        outputs: a tensor or a list of tensors to compute.
        updates: a list of updates (K.update, or (variable, new value) pairs).
        name: an optional name (shown in the IR and in errors).
        **kwargs: graphk's own keywords: backend (the lowering, one of
            BACKENDS; "auto", the default, runs a fused region natively (LLVM,
            compiled at the first call that needs it) where its cost model
            says that is faster, else on NumPy; fn.report() says which), passes (None, "none" or "-name,..." to switch passes
            off), profile (True: time every kernel call; fn.profile() prints
            the table) and nan_guard (True: raise NonFiniteError at the first op,
            or the first op inside a fused kernel, whose result holds NaN or Inf,
            naming it and its source line; graphk/nan_guard.py).

    Returns:
        A Function: call it with a list of arrays; it returns a list of NumPy
        arrays (NumPy scalars for rank-0 outputs, as TensorFlow's session
        returns). `fn.ir` is the optimized graph and `fn.source` the generated
        program.

    Example:
        >>> x = K.placeholder((None, 2))
        >>> f = K.function([x], [K.sum(x, axis=1)])
        >>> f([np.ones((3, 2))])
        [array([2., 2., 2.], dtype=float32)]
    """
    allowed = {"backend", "passes", "profile", "nan_guard"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(f"K.function: unknown keyword argument(s) {unknown}; "
                         f"graphk accepts {sorted(allowed)}")
    return compile_function(Function, inputs, outputs, updates, name, kwargs)  # phase.py


def _check_inputs(inputs, name: str) -> list:
    inputs = list(inputs)
    for i, value in enumerate(inputs):
        if not isinstance(value, Value) or value.op_name != "placeholder":
            raise TypeError(f"K.function {name!r}: input {i} must be a placeholder, "
                            f"got {value!r}")
    if len(set(map(id, inputs))) != len(inputs):
        raise ValueError(f"K.function {name!r}: a placeholder is listed twice in inputs")
    return inputs


def _check_outputs(outputs) -> list:
    result = []
    for value in outputs:
        if not isinstance(value, Value):
            value = as_value(value)
        result.append(value)
    return result


def _flatten_updates(updates) -> list:
    flat = []
    stack = [updates]
    while stack:
        item = stack.pop()
        if isinstance(item, Update) or (isinstance(item, tuple) and len(item) == 2
                                        and isinstance(item[0], Variable)):
            flat.append(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        else:
            raise TypeError(f"K.function: an update must be what K.update returns or a "
                            f"(variable, new_value) pair, got {item!r}")
    return flat


def _collect_updates(updates, location) -> list:
    """(variable, new value) pairs, checked; one update listed twice is applied once."""
    seen: dict = {}
    pairs = []
    for item in _flatten_updates(updates):
        variable, new = item
        if variable in seen:
            if seen[variable] is item or seen[variable][1] is new:
                continue
            raise ValueError(f"K.function at {location}: variable {variable.name!r} has two "
                             "different updates; combine them into one (updates are applied "
                             "together from the values before the call)")
        seen[variable] = item
        pairs.append((variable, _fit_update(variable, new, location)))
    return pairs


def _fit_update(variable: Variable, new, location) -> Value:
    new = as_value(new, like=variable)
    target = variable.type
    if new.type.dtype != target.dtype:
        if not can_feed(new.type.dtype, target.dtype):
            raise TypeError(f"update of variable {variable.name!r} at {location}: new value has "
                            f"dtype {new.type.dtype}, variable has {target.dtype}")
        new = ew.cast(new, dtype=target.dtype)
    shape = new.type.shape
    if len(shape) != target.ndim or not all(
            not isinstance(d, int) or same_dim(d, t) for d, t in zip(shape, target.shape)):
        error = ShapeError(f"new value of variable {variable.name!r} has shape "
                           f"{format_shape(shape)}, expected {format_shape(target.shape)}")
        raise located(error, "update", location)
    return new


__all__ = ["function", "Function", "Update"]

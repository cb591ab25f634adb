"""The learning phase as a compile-time constant: K.function and K.gradients per phase.

Keras builds `in_train_phase(training, inference)` (Dropout, BatchNormalization)
as a switch on the learning-phase placeholder. Compiled once for both phases,
a graph computes both branches every step (the inference branch while
training, the random draws in predict), and differentiating the switch sends
the branch not taken a zero gradient (g * 0.0) that its whole backward pass
carries. But Keras' loops feed the phase a Python 0 or 1, and one function
almost always sees one value (fit feeds 1, predict and evaluate 0). So:

- K.gradients of a loss that reads the phase differentiates the loss once per
  phase, with the switch resolved, and selects the result by the phase: the
  branch not taken gets no gradient (TensorFlow's cond does the same).
- A K.function whose inputs include the placeholder compiles, on first use of
  each fed value, its graph with the placeholder replaced by that constant;
  folding and the `switch on a constant condition` rule (passes/simplify.py)
  keep only the branch taken. Both specializations are cached; a fed value
  other than 0 or 1 runs the unspecialized graph. The placeholder stays an
  input, so its feed is checked as before.
- A function that reads the placeholder without listing it sees its default
  (0, test), so it is compiled with that constant.

Seeds for unseeded random ops are drawn when K.function is called (as an
eager compile would), so `np.random.seed` before it makes a run reproducible.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir.graph import Graph, Value, topological_order
from ..ir.ops import elementwise as ew
from ..ir.ops.leaf import constant, constant_value
from ..ir.ops.random import seed_for_compile
from ..ir.rewrite import build, rebuild
from . import session
from .dependencies import carried_updates

PHASES = (0, 1)


@dataclass(frozen=True)
class Fixed:
    """What a specialization knows before it runs: placeholder -> the number it reads, and
    random node -> the seed drawn for it when K.function was called."""
    constants: dict = field(default_factory=dict)
    seeds: dict = field(default_factory=dict)


def phase_placeholder():
    """The learning-phase placeholder if one was made since the last clear_session, else None."""
    return session._learning_phase_placeholder


def specialize(graph: Graph, fixed: Fixed | None) -> Graph:
    """`graph` with each placeholder of `fixed.constants` read as that constant and each
    random node of `fixed.seeds` given that seed.

    The placeholders stay in `graph.inputs`, so their feeds are still checked.
    """
    if fixed is None:
        return graph
    constants = {placeholder: constant(np.asarray(value, dtype=placeholder.type.dtype),
                                       location=placeholder.location)
                 for placeholder, value in fixed.constants.items()}

    def read_fixed(node, inputs):
        if node.op.name == "placeholder" and node.outputs[0] in constants:
            return (constants[node.outputs[0]],)
        if node in fixed.seeds:
            return (build(node.op.name, inputs, {**node.attrs, "seed": fixed.seeds[node]},
                          node.location),)
        return None

    return rebuild(graph, read_fixed)


def draw_seeds(outputs, updates) -> dict:
    """A seed from NumPy's global RNG for each unseeded random node the function computes,
    drawn now, in graph order, as compiling now would (ir/ops/random.py): specializations
    compiled on first call do not depend on what the program drew in between."""
    roots = _values([outputs, updates, carried_updates(outputs)])
    return {node: seed_for_compile(None) for node in topological_order(roots)
            if not node.op.pure and "seed" in node.attrs and node.attrs["seed"] is None}


def _seeds_for(phase, seeds: dict) -> dict:
    """The seeds of one phase's specialization. Training (and the unspecialized graph) use
    them as drawn, so fit draws the samples it drew before specializing; the test phase
    gets streams of its own (or a function called in both phases in turn would repeat in
    one the samples of the other)."""
    if phase != 0:
        return seeds
    return {node: (seed + 0x9E3779B1) % (2 ** 31 - 1) for node, seed in seeds.items()}


def _values(items) -> list:
    """The Values in nested lists and tuples (outputs, update pairs)."""
    found, stack = [], [items]
    while stack:
        item = stack.pop()
        if isinstance(item, Value):
            found.append(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
    return found


def gradients_by_phase(loss, wrt: list, differentiate):
    """differentiate(loss, wrt) taken once per learning phase and selected by the phase, or
    None when the loss does not read the phase.

    Differentiating `switch(phase, training, inference)` as it stands sends the branch not
    taken a zero gradient (g * 0.0) that its whole backward pass then carries: the inference
    branch of BatchNormalization in every training step. Per phase, the switch is gone before
    differentiating, so each gradient is that of the loss the phase computes (TensorFlow's
    cond: the branch not taken gets no gradient), and a function specialized on the phase
    keeps only its own. Random nodes are shared by both phases (their inputs give only a
    shape), so the gradient sees the samples the loss saw.
    """
    placeholder = phase_placeholder()
    if placeholder is None or placeholder.node not in topological_order([loss]):
        return None
    by_phase = []
    for phase in PHASES:
        fixed = _at_phase([loss, *wrt], placeholder, phase)
        by_phase.append(differentiate(fixed[0], fixed[1:]))
    training = ew.cast(placeholder, dtype="bool")
    return [_select(training, g1, g0) for g0, g1 in zip(*by_phase)]


def _at_phase(values: list, placeholder, phase: int) -> list:
    """`values` computed with the learning phase read as the constant `phase`: what reads
    only the phase is evaluated now and a switch on it is replaced by its branch taken."""
    fixed = constant(np.asarray(phase, dtype=placeholder.type.dtype), location=placeholder.location)

    def read_fixed(node, inputs):
        if node is placeholder.node:
            return (fixed,)
        if not node.op.pure:  # the same samples in both phases (a random op's inputs are
            return node.outputs if "seed" in node.attrs else None  # only its shape)
        if node.op.name == "switch" and constant_value(inputs[0]) is not None:
            chosen = _branch_taken(node, inputs)
            return None if chosen is None else (chosen,)
        known = _evaluated(node, inputs)
        return None if known is None else (known,)

    return rebuild(Graph([], values), read_fixed).outputs


def _branch_taken(node, inputs):
    """The branch a switch with a constant condition takes, when that condition is uniform
    and the branch alone has the result's shape."""
    condition = constant_value(inputs[0])
    if condition.size == 0 or not (condition.all() or not condition.any()):
        return None
    chosen = inputs[1] if condition.flat[0] else inputs[2]
    return chosen if chosen.type.shape == node.outputs[0].type.shape else None


def _evaluated(node, inputs):
    """A small pure node whose inputs are all constants (the phase's cast, reshape, ...) as
    the constant it computes, else None."""
    arrays = [constant_value(v) for v in inputs]
    if (not inputs or any(a is None or a.size > 64 for a in arrays) or len(node.outputs) != 1
            or node.op.kernel is None or node.op.make_kernel is not None
            or any(isinstance(a, Graph) for a in node.attrs.values())):
        return None
    result = node.op.bound_kernel(node.attrs)(*arrays)
    result = np.asarray(result, dtype=node.outputs[0].type.dtype)
    if result.shape != node.outputs[0].type.shape:
        return None
    return constant(result, location=node.location)


def _select(training, g1, g0):
    """g1 in training, g0 otherwise; a None gradient (not reached in that phase) is zero."""
    if g1 is None and g0 is None:
        return None
    zero = constant(np.zeros((), dtype=(g1 if g1 is not None else g0).type.dtype))
    return ew.switch(training, zero if g1 is None else g1, zero if g0 is None else g0)


def phase_key(feed):
    """0 or 1 when the fed learning phase is that number (a Python or NumPy scalar, or a
    rank-0 array), else None (the unspecialized graph decides, and checks the feed)."""
    if isinstance(feed, (bool, int, float, np.generic, np.ndarray)):
        array = np.asarray(feed)
        if array.ndim == 0 and array.dtype.kind in "biuf":
            for phase in PHASES:
                if array == phase:
                    return phase
    return None


class PhaseFunction:
    """What K.function returns when the learning-phase placeholder is one of its inputs.

    Calling it picks (compiling on first use) the Function for the fed phase.
    Other attributes (`ir`, `source`, `profile()`, `report()`, ...) are those of
    the specialization called last, or of the unspecialized graph before any call.
    """

    def __init__(self, compile_for, position: int, count: int, dtype):
        self._compile_for = compile_for  # phase (0, 1 or None) -> Function
        self._position = position  # where the phase is in the feeds
        self._count = count  # how many feeds a call takes
        self._compiled: dict = {}
        self._last = None
        # A fed 0 or 1 (a Python int from Keras) is passed on as the placeholder's own
        # array: it fits any dtype, and its conversion and range check cost ~15 us a call.
        self._fed = {phase: _read_only(np.asarray(phase, dtype=dtype)) for phase in PHASES}

    def specialization(self, phase):
        """The Function for `phase` (0, 1, or None for the unspecialized graph)."""
        function = self._compiled.get(phase)
        if function is None:
            function = self._compiled[phase] = self._compile_for(phase)
        return function

    def __call__(self, inputs):
        phase = None
        if isinstance(inputs, (list, tuple)) and len(inputs) == self._count:
            phase = phase_key(inputs[self._position])
            if phase is not None:
                inputs = list(inputs)
                inputs[self._position] = self._fed[phase]
        function = self._compiled.get(phase) or self.specialization(phase)
        self._last = function
        return function(inputs)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._last or self.specialization(None), name)


def compile_function(function_class, inputs, outputs, updates, name, kwargs):
    """function_class(inputs, outputs, updates, name, **kwargs), specialized on the learning
    phase: a PhaseFunction when the phase is an input, its default fixed when it is read but
    not fed, a plain Function otherwise."""
    placeholder = phase_placeholder()
    if placeholder is None:
        return function_class(inputs, outputs, updates, name, **kwargs)
    inputs = list(inputs)
    position = next((i for i, v in enumerate(inputs) if v is placeholder), None)
    if position is None:
        return function_class(inputs, outputs, updates, name, fixed=Fixed({placeholder: 0}),
                              **kwargs)
    name = name or f"function_{session.get_uid('graphk_function')}"  # one for all phases
    seeds = draw_seeds(outputs, updates)

    def compile_for(phase):
        constants = {} if phase is None else {placeholder: phase}
        return function_class(inputs, outputs, updates, name,
                              fixed=Fixed(constants, _seeds_for(phase, seeds)), **kwargs)

    return PhaseFunction(compile_for, position, len(inputs), placeholder.type.dtype)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


__all__: list = []

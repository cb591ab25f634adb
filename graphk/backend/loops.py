"""Loops with Keras 2.3.1 semantics: K.rnn, K.map_fn, K.foldl and K.foldr.

Each is one `scan` node (ir/ops/loop.py) whose body is the traced step
function, so the graph holds the step once whatever the sequence length,
the length may be unknown until the call, and the gradient is
backpropagation through time. `K.rnn(..., unroll=True)` unrolls in Python
instead, as Keras does, when the number of steps is known.
"""
from __future__ import annotations

from ..ir.dtypes import as_dtype
from ..ir.graph import Value, topological_order
from ..ir.ops import elementwise as ew
from ..ir.ops import loop
from ..ir.ops import shape as shape_ops
from ..ir.ops.indexing import getitem, take_slice
from ..ir.shapes import same_shape
from . import session
from .arguments import argument_error
from .tensors import _as_tensor


def _flat(values, name: str, what: str) -> tuple[list, bool]:
    """(tensors, whether a single tensor was given) for a tensor or a list of them."""
    single = not isinstance(values, (list, tuple))
    items = [values] if single else list(values)
    if not items:
        raise argument_error(name, f"{what} is an empty list", ValueError)
    return [_as_tensor(v) for v in items], single


def _swap_batch_and_time(x: Value) -> Value:
    perm = (1, 0) + tuple(range(2, x.type.ndim))
    return shape_ops.transpose(x, perm)


def _expand_mask(mask_t: Value, like: Value) -> Value:
    """A (batch,) mask with trailing axes of size 1 so that it broadcasts against `like`."""
    for _ in range(like.type.ndim - mask_t.type.ndim):
        mask_t = shape_ops.expand_dims(mask_t, -1)
    return mask_t


def _step_results(result, num_states: int):
    """(output, new states) from what a step function returned, checked."""
    try:
        output, new_states = result
    except (TypeError, ValueError):
        raise argument_error("rnn", "step_function must return (output, new_states), got "
                                    f"{result!r}", TypeError) from None
    new_states = [new_states] if isinstance(new_states, Value) else list(new_states)
    if len(new_states) != num_states:
        raise argument_error("rnn", f"step_function returned {len(new_states)} new states for "
                                    f"{num_states} initial states", ValueError)
    if isinstance(output, (list, tuple)):
        raise argument_error("rnn", "step_function must return a single output tensor (nested "
                                    "outputs are not supported)", NotImplementedError)
    return _as_tensor(output), [_as_tensor(s) for s in new_states]


def _mask_tensor(mask) -> Value:
    """The mask as a (samples, time) bool tensor."""
    mask = _as_tensor(mask)
    if mask.type.ndim == 3 and mask.type.shape[2] == 1:  # (samples, time, 1), as TF accepts
        mask = shape_ops.squeeze(mask, 2)
    if mask.type.ndim != 2:
        raise argument_error("rnn", f"mask should have shape (samples, time), got {mask.type}",
                             ValueError)
    if mask.type.dtype != "bool":
        mask = ew.cast(mask, dtype="bool")
    return mask


def _zeros_for(output: Value, states: list) -> Value:
    """Zeros shaped like the step output: a state of the same type gives the shape for free."""
    for state in states:
        if state.type.dtype == output.type.dtype and same_shape(state.type.shape,
                                                                output.type.shape):
            return shape_ops.full_like(state, 0)
    return shape_ops.full_like(output, 0)  # the step on the first slice, computed for its shape


def rnn(step_function, inputs, initial_states, go_backwards=False, mask=None, constants=None,
        unroll=False, input_length=None):
    """Iterate a step function over the time axis (one symbolic loop node).

    Arguments:
        step_function: fn(inputs_t, states + constants) -> (output_t, new_states).
        inputs: (samples, time, ...), or a list of such tensors (passed to the
            step as a list).
        initial_states: a list of tensors, the states at the first step.
        go_backwards: run the steps from the end; the outputs are then in that
            (reversed) order, as in Keras.
        mask: an optional (samples, time) tensor; where it is 0 the previous
            output and states are kept.
        constants: tensors passed to every step after the states.
        unroll: build one copy of the step per time step (needs a known length).
        input_length: the number of steps, for unroll.

    Returns:
        (last_output, outputs (samples, time, ...), new_states).

    Example:
        >>> x = K.placeholder((None, 5, 3))
        >>> step = lambda x_t, states: (x_t + states[0], [x_t + states[0]])
        >>> last, outputs, states = K.rnn(step, x, [K.zeros_like(x[:, 0])])
        >>> K.int_shape(outputs)
        (None, 5, 3)
    """
    sequences, single = _flat(inputs, "rnn", "inputs")
    for x in sequences:
        if x.type.ndim < 3:
            raise argument_error("rnn", f"inputs should be at least 3D (samples, time, ...), got "
                                        f"{x.type}", ValueError)
    states = [_as_tensor(s) for s in initial_states]
    constants = [_as_tensor(c) for c in (constants or [])]
    if mask is not None:
        mask = _mask_tensor(mask)
    if unroll:
        result = _unrolled(step_function, sequences, single, states, go_backwards, mask,
                           constants, input_length)
    else:
        result = _scanned(step_function, sequences, single, states, go_backwards, mask,
                          constants)
    _mark_learning_phase(result)
    return result


def _scanned(step_function, sequences, single, states, go_backwards, mask, constants):
    """K.rnn as one scan over the time-major inputs."""
    time_major = [_swap_batch_and_time(x) for x in sequences]
    if mask is not None:
        time_major.append(shape_ops.transpose(mask, (1, 0)))
    if go_backwards:
        time_major = [shape_ops.reverse(x, 0) for x in time_major]
    num_inputs, num_states = len(sequences), len(states)

    def call(slices, current_states):
        step_input = slices[0] if single else list(slices)
        return _step_results(step_function(step_input, list(current_states) + constants),
                             num_states)

    # TensorFlow's backend calls the step once on the first time step before its loop; Keras'
    # cells rely on it to build dropout masks from outer tensors, and its output's shape gives
    # the masked loop's initial "previous output".
    first_output, _ = call([getitem(x, 0) for x in time_major[:num_inputs]], states)

    def step(slices, carries):
        output, new_states = call(slices[:num_inputs], carries[:num_states])
        if mask is None:
            return [output], new_states
        keep = slices[num_inputs]
        output = ew.switch(_expand_mask(keep, output), output, carries[num_states])
        new_states = [ew.switch(_expand_mask(keep, new), new, old)
                      for new, old in zip(new_states, carries)]
        return [output], new_states + [output]

    carries = states if mask is None else states + [_zeros_for(first_output, states)]
    (outputs,), finals, _ = loop.scan(step, time_major, carries)
    last_output = getitem(outputs, -1)
    return last_output, _swap_batch_and_time(outputs), finals[:num_states]


def _unrolled(step_function, sequences, single, states, go_backwards, mask, constants,
              input_length):
    """K.rnn unrolled in Python: one copy of the step per time step (a known count)."""
    steps = sequences[0].type.shape[1]
    if not isinstance(steps, int):
        if input_length is None:
            raise argument_error("rnn", "Unrolling requires a fixed number of timesteps.",
                                 ValueError)
        steps = int(input_length)
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    outputs: list = []
    for t in order:
        slices = [getitem(x, (slice(None), t)) for x in sequences]
        step_input = slices[0] if single else slices
        output, new_states = _step_results(step_function(step_input, list(states) + constants),
                                           len(states))
        if mask is not None:
            keep = getitem(mask, (slice(None), t))
            previous = outputs[-1] if outputs else shape_ops.full_like(output, 0)
            output = ew.switch(_expand_mask(keep, output), output, previous)
            new_states = [ew.switch(_expand_mask(keep, new), new, old)
                          for new, old in zip(new_states, states)]
        outputs.append(output)
        states = new_states
    if not outputs:
        raise argument_error("rnn", "cannot unroll over 0 time steps", ValueError)
    return outputs[-1], shape_ops.stack(outputs, axis=1), states


def _mark_learning_phase(result) -> None:
    """Keras feeds the learning phase to models whose outputs are marked as reading it."""
    phase = session._learning_phase_placeholder
    last_output = result[0]
    if phase is not None and any(phase in node.outputs
                                 for node in topological_order([last_output])):
        last_output._uses_learning_phase = True


# --- map and folds ---------------------------------------------------------------------------

def _element(slices: list, single: bool):
    return slices[0] if single else tuple(slices)


def map_fn(fn, elems, name=None, dtype=None):
    """fn applied to each element of elems along axis 0, stacked: (n, ...) -> (n, ...).

    Arguments:
        fn: a callable taking one element (a tensor, or a tuple of tensors when
            elems is a tuple) and returning a tensor.
        elems: a tensor, or a tuple of tensors of the same length.
        name: ignored (accepted for Keras).
        dtype: if given, fn's result is cast to it.

    Returns:
        The stacked results.

    Example:
        >>> K.eval(K.map_fn(lambda row: K.sum(row), K.constant([[1, 2], [3, 4]])))
        array([3., 7.], dtype=float32)
    """
    sequences, single = _flat(elems, "map_fn", "elems")

    def step(slices, carries):
        output = _as_tensor(fn(_element(slices, single)))
        if dtype is not None and output.type.dtype != as_dtype(dtype):
            output = ew.cast(output, dtype=as_dtype(dtype))
        return [output], []

    (outputs,), _, _ = loop.scan(step, sequences, [])
    return outputs


def _fold(name: str, fn, elems, initializer, reverse: bool):
    sequences, single = _flat(elems, name, "elems")
    if initializer is None:  # the first element (the last for foldr) starts the fold
        if not single:
            raise argument_error(name, "an initializer is needed when elems is a tuple of "
                                       "tensors", ValueError)
        start, rest = (-1, (None, -1)) if reverse else (0, (1, None))
        initializer = getitem(sequences[0], start)
        sequences = [take_slice(sequences[0], 0, *rest)]
    initializer = _as_tensor(initializer)

    def step(slices, carries):
        return [], [_as_tensor(fn(carries[0], _element(slices, single)))]

    _, (result,), _ = loop.scan(step, sequences, [initializer], reverse=reverse)
    return result


def foldl(fn, elems, initializer=None, name=None):
    """Reduce elems along axis 0 from the left: fn(...fn(fn(init, e0), e1)..., en-1).

    Arguments:
        fn: a callable (accumulator, element) -> new accumulator.
        elems: a tensor (or a tuple of tensors, with an initializer).
        initializer: the first accumulator; without one the fold starts from
            elems[0] over elems[1:].
        name: ignored (accepted for Keras).

    Returns:
        The last accumulator.

    Example:
        >>> K.eval(K.foldl(lambda acc, e: acc + e, K.constant([1, 2, 3])))
        np.float32(6.0)
    """
    return _fold("foldl", fn, elems, initializer, reverse=False)


def foldr(fn, elems, initializer=None, name=None):
    """Reduce elems along axis 0 from the right: fn(...fn(fn(init, en-1), en-2)..., e0).

    Arguments:
        fn: a callable (accumulator, element) -> new accumulator.
        elems: a tensor (or a tuple of tensors, with an initializer).
        initializer: the first accumulator; without one the fold starts from
            elems[-1] over elems[:-1].
        name: ignored (accepted for Keras).

    Returns:
        The last accumulator.
    """
    return _fold("foldr", fn, elems, initializer, reverse=True)


__all__ = ["rnn", "map_fn", "foldl", "foldr"]

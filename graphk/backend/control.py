"""Control: learning-phase selection, control dependencies, printing, sessions."""
from __future__ import annotations

import contextlib

from ..ir.graph import Value
from ..ir.ops import control
from ..ir.ops import elementwise as ew
from ..ir.ops.registry import substituting
from ..ir.shapes import ShapeError
from .dependencies import mark
from .function import Function, Update
from .math import branch_value, switch
from .session import learning_phase


def in_train_phase(x, alt, training=None):
    """x in the training phase, alt otherwise.

    Arguments:
        x: what to return in training: a tensor, or a callable returning one.
        alt: what to return otherwise: a tensor, or a callable returning one.
        training: None lets the learning phase decide when the function runs
            (a placeholder that defaults to 0, test); a Python 0/1 or bool, or
            a tensor, decides as given.

    Returns:
        A tensor; with the learning phase deciding, marked
        `_uses_learning_phase` for Keras. K.function compiles such a graph
        once per fed phase, keeping only the branch taken, and K.gradients
        differentiates only that branch (graphk/backend/phase.py).

    Example:
        >>> x = K.placeholder((2,))
        >>> y = K.in_train_phase(x * 2.0, x)
        >>> K.function([x, K.learning_phase()], [y])([np.ones(2), 1])[0]
        array([2., 2.], dtype=float32)
    """
    uses_learning_phase = training is None
    if training is None:
        training = learning_phase()
    if training is True or (isinstance(training, int) and training == 1):
        return branch_value(x)
    if training is False or (isinstance(training, int) and training == 0):
        return branch_value(alt)
    result = switch(training, x, alt)
    if uses_learning_phase:
        result._uses_learning_phase = True
    return result


def in_test_phase(x, alt, training=None):
    """x in the test phase, alt in training.

    Arguments:
        x: what to return in test: a tensor, or a callable returning one.
        alt: what to return in training: a tensor, or a callable returning one.
        training: as for in_train_phase.

    Returns:
        A tensor.
    """
    return in_train_phase(alt, x, training=training)


def update_closure(control_inputs) -> list:
    """The updates among `control_inputs` (nested lists too) and, recursively, the updates
    each was built under: all of them run when one does, as in TensorFlow."""
    found: list = []
    stack = list(control_inputs)[::-1]
    while stack:
        item = stack.pop()
        if isinstance(item, Update):
            if all(item is not f for f in found):
                found.append(item)
                stack.extend(getattr(item, "control_inputs", ())[::-1])
        elif isinstance(item, (list, tuple)):
            stack.extend(item[::-1])
    return found


_active_controls: list = []


@contextlib.contextmanager
def control_dependencies(control_inputs):
    """A context in which ops built run after the updates among `control_inputs`.

    graphk graphs are pure, so an update among `control_inputs` acts by
    substitution: every op built inside reads the variable's new value. A
    K.function or K.eval whose outputs are computed from such a value applies
    the block's updates (TensorFlow runs them when such a tensor is
    evaluated); listing them in K.function's `updates` as well applies each
    once. Keras' stateful metrics rely on this.

    Arguments:
        control_inputs: a list of updates (what K.update returns) and tensors;
            tensors need no ordering in a pure graph and are ignored.

    Returns:
        A context manager.

    Example:
        >>> total = K.variable(0.0)
        >>> with K.control_dependencies([K.update_add(total, 5.0)]):
        ...     doubled = total * 2.0      # reads total + 5
        >>> K.eval(doubled)                # and applies the update
        np.float32(10.0)
        >>> K.eval(total)
        np.float32(5.0)
    """
    controls = list(control_inputs or [])
    updates = update_closure(controls)
    reads = {u.variable: _carrier(u, updates) for u in reversed(updates)}  # the first wins
    _active_controls.append(controls)
    try:
        with substituting(reads):
            yield
    finally:
        _active_controls.pop()


def _carrier(update, updates: list):
    """What ops built inside read for update's variable: a copy of its new value, marked
    with the block's updates. A copy, so that only values built inside carry them: the
    new value itself may be a variable or a tensor used elsewhere."""
    value = update.value
    carrier = ew.cast(value, dtype=value.type.dtype)
    mark(carrier, updates)
    return carrier


def active_control_inputs() -> list:
    """Control inputs in force (an Update built inside depends on them)."""
    return [c for controls in _active_controls for c in controls]


def print_tensor(x, message: str = ""):
    """x, printing `message` followed by its value whenever a compiled function computes it.

    Arguments:
        x: a tensor.
        message: the text printed before the value.

    Returns:
        A tensor equal to x; use it in place of x so the print happens.
    """
    return control.print_tensor(x, message=str(message))


def pattern_broadcast(x, broadcastable):
    """x, after checking that the axes marked broadcastable have size 1 where known.

    graphk infers broadcasting from shapes, so Theano's pattern needs no mark;
    a known size other than 1 on a marked axis is an error.

    Arguments:
        x: a tensor.
        broadcastable: a bool per axis.

    Returns:
        x itself.
    """
    for axis, (flag, dim) in enumerate(zip(broadcastable, x.type.shape)):
        if flag and isinstance(dim, int) and dim != 1:
            raise ShapeError(f"pattern_broadcast: axis {axis} of {x.type} is marked "
                             f"broadcastable but has size {dim}")
    return x


class Session:
    """What K.get_session returns: `run(fetches, feed_dict)` evaluates tensors.

    graphk compiles per K.function and keeps no global session; this object
    lets TensorFlow-style code evaluate tensors with feeds.
    """

    def run(self, fetches, feed_dict=None):
        feed_dict = dict(feed_dict or {})
        single = isinstance(fetches, Value)
        outputs = [fetches] if single else list(fetches)
        placeholders = list(feed_dict)
        results = Function(placeholders, outputs, name="session_run")(
            [feed_dict[p] for p in placeholders])
        return results[0] if single else results


_session = Session()


def get_session() -> Session:
    """The session object TensorFlow-style code evaluates tensors with.

    graphk compiles per K.function and keeps no global session; the object
    returned has `run(fetches, feed_dict)`.

    Returns:
        The current Session (or the object given to set_session).

    Example:
        >>> x = K.placeholder((2,))
        >>> K.get_session().run(x * 2.0, {x: np.array([1.0, 2.0])})
        array([2., 4.], dtype=float32)
    """
    return _session


def set_session(session) -> None:
    """Use `session` for get_session.

    Arguments:
        session: an object with a `run(fetches, feed_dict)` method.

    Raises:
        TypeError: session has no run method.
    """
    global _session
    if not hasattr(session, "run"):
        raise TypeError(f"set_session: {session!r} has no run(fetches, feed_dict) method")
    _session = session


__all__ = ["in_train_phase", "in_test_phase", "control_dependencies", "print_tensor",
           "pattern_broadcast", "get_session", "set_session"]

"""Control: learning-phase selection, control dependencies, printing, sessions."""
from __future__ import annotations

import contextlib

from ..ir.graph import Value
from ..ir.ops import control
from ..ir.ops.registry import substituting
from ..ir.shapes import ShapeError
from .function import Function, Update
from .math import branch_value, switch
from .session import learning_phase


def in_train_phase(x, alt, training=None):
    """x in the training phase, alt otherwise (either may be a callable).

    With `training` None the learning phase decides at run time (a placeholder
    that defaults to 0, test); a Python 0/1 or bool decides now.
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
    """x in the test phase, alt in training."""
    return in_train_phase(alt, x, training=training)


def _update_closure(control_inputs) -> dict:
    """variable -> new value for every update among the control inputs, and their own."""
    mapping: dict = {}
    stack = list(control_inputs)
    while stack:
        item = stack.pop()
        if isinstance(item, Update):
            mapping.setdefault(item.variable, item.value)
            stack.extend(getattr(item, "control_inputs", ()))
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return mapping


_active_controls: list = []


@contextlib.contextmanager
def control_dependencies(control_inputs):
    """Ops built inside see the control inputs' updates applied.

    graphk graphs are pure, so an update among `control_inputs` acts by
    substitution: every op built inside reads the variable's new value. The
    update must still be listed in K.function's `updates` to be stored (Keras
    always lists them); listing it there again applies it once. Tensors among
    the control inputs need no ordering and are ignored.
    """
    controls = list(control_inputs or [])
    _active_controls.append(controls)
    try:
        with substituting(_update_closure(controls)):
            yield
    finally:
        _active_controls.pop()


def active_control_inputs() -> list:
    """Control inputs in force (an Update built inside depends on them)."""
    return [c for controls in _active_controls for c in controls]


def print_tensor(x, message: str = ""):
    """x, printing `message` followed by its value whenever a compiled function computes it."""
    return control.print_tensor(x, message=str(message))


def pattern_broadcast(x, broadcastable):
    """x, after checking that the axes marked broadcastable have size 1 where known.

    graphk infers broadcasting from shapes, so Theano's pattern needs no mark;
    a known size other than 1 on a marked axis is an error.
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
    return _session


def set_session(session) -> None:
    """Use `session` for get_session (it must have a `run(fetches, feed_dict)` method)."""
    global _session
    if not hasattr(session, "run"):
        raise TypeError(f"set_session: {session!r} has no run(fetches, feed_dict) method")
    _session = session


__all__ = ["in_train_phase", "in_test_phase", "control_dependencies", "print_tensor",
           "pattern_broadcast", "get_session", "set_session"]

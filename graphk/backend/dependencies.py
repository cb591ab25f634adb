"""Updates that travel with tensors: what K.control_dependencies attaches to its outputs.

In TensorFlow, evaluating a tensor built under `control_dependencies([update])`
runs the update. graphk graphs are pure, so K.control_dependencies makes ops
built inside read each updated variable's new value (by substitution, through
a copy of that value made for the block) and marks that copy with the block's
updates. Any K.function or K.eval whose outputs are computed from a marked
value applies those updates, exactly once even when they are listed in
`updates` too. Keras 2.3.1's stateful metrics
(Mean, Sum, Accuracy, Precision, ...) rely on this: `K.eval(metric(y_true,
y_pred))` must accumulate into the metric's variables.

The marks are attributes on values, so this module needs no Update class (and
graphk/backend/function.py can import it without a cycle).
"""
from __future__ import annotations

_MARK = "_graphk_control_updates"
_marked_any = False  # spares the graph walk for programs that never use control deps


def mark(value, updates) -> None:
    """Record that evaluating `value` (the block's copy of an update's new value) must
    apply `updates`."""
    global _marked_any
    known = getattr(value, _MARK, ())
    setattr(value, _MARK, known + tuple(u for u in updates if all(u is not k for k in known)))
    _marked_any = True


def carried_updates(outputs) -> list:
    """The updates attached to any value that `outputs` are computed from, in first-seen order.

    Walks the graph of dense outputs (values with a `node`); nested loop bodies
    are not entered, as they cannot read a value built outside them directly.
    """
    if not _marked_any:
        return []
    found: list = []
    seen: set = set()
    stack = [v for v in outputs if hasattr(v, "node")]
    while stack:
        value = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        for update in getattr(value, _MARK, ()):
            if all(update is not f for f in found):
                found.append(update)
        if value.node is not None:
            stack.extend(value.node.inputs)
    return found

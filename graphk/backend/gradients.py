"""K.gradients and K.stop_gradient."""
from __future__ import annotations

from ..ir.graph import Value
from ..ir.ops import control
from ..passes.autodiff import gradients as _reverse_mode
from .arguments import argument_error
from .phase import gradients_by_phase


def gradients(loss, variables) -> list:
    """Symbolic gradients of `loss` with respect to each of `variables`.

    Arguments:
        loss: a tensor; a non-scalar loss is summed first (as TensorFlow does).
        variables: a tensor or a list of tensors: variables, placeholders or
            any intermediate tensor of the graph.

    Returns:
        A list with one gradient tensor per entry of `variables`, each of that
        tensor's shape. A tensor the loss does not reach through
        differentiable ops, or of integer dtype, gets None (as in TensorFlow).
        Anything that is not a graphk tensor (a NumPy array, a number) is a
        TypeError naming it.

    Example:
        >>> w = K.variable(np.array([1.0, 2.0]))
        >>> grad, = K.gradients(K.sum(K.square(w)), [w])
        >>> K.eval(grad)
        array([2., 4.], dtype=float32)
    """
    if not isinstance(loss, Value):
        raise argument_error("gradients", f"`loss` must be a graphk tensor, got "
                                          f"{type(loss).__name__}", TypeError)
    single = isinstance(variables, Value)
    wrt = [variables] if single else list(variables)
    for i, x in enumerate(wrt):
        if not isinstance(x, Value):
            raise argument_error("gradients", f"`variables[{i}]` must be a graphk tensor (a "
                                              f"variable, placeholder or intermediate tensor), "
                                              f"got {type(x).__module__}.{type(x).__name__}",
                                 TypeError)
    by_phase = gradients_by_phase(loss, wrt, _reverse_mode)  # graphk/backend/phase.py
    return by_phase if by_phase is not None else _reverse_mode(loss, wrt)


def stop_gradient(variables):
    """The same values, with no gradient flowing back through them.

    Arguments:
        variables: a tensor, or a list of tensors.

    Returns:
        A tensor (or a list of them) equal to the input, through which
        K.gradients sees no dependence.

    Example:
        >>> x = K.variable(3.0)
        >>> K.eval(K.gradients(x * K.stop_gradient(x), [x])[0])  # d(x * c)/dx = c
        np.float32(3.0)
    """
    if isinstance(variables, (list, tuple)):
        return [control.stop_gradient(v) for v in variables]
    return control.stop_gradient(variables)


__all__ = ["gradients", "stop_gradient"]

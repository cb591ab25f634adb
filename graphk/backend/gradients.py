"""K.gradients and K.stop_gradient."""
from __future__ import annotations

from ..ir.graph import Value
from ..ir.ops import control
from ..passes.autodiff import gradients as _reverse_mode


def gradients(loss, variables) -> list:
    """Symbolic gradients of `loss` with respect to each of `variables`.

    `variables` may be variables, placeholders or any intermediate tensor.
    A non-scalar loss is summed first (as TensorFlow does). A tensor the loss
    does not reach through differentiable ops, or of integer dtype, gets None.
    """
    single = isinstance(variables, Value)
    wrt = [variables] if single else list(variables)
    return _reverse_mode(loss, wrt)


def stop_gradient(variables):
    """The same values, with no gradient flowing back through them (a tensor or a list)."""
    if isinstance(variables, (list, tuple)):
        return [control.stop_gradient(v) for v in variables]
    return control.stop_gradient(variables)


__all__ = ["gradients", "stop_gradient"]

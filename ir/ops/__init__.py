"""All op families; importing this package fills the registry."""
from . import elementwise, leaf  # noqa: F401
from .registry import NOT_DIFFERENTIABLE, REGISTRY, OpDef, Sample, apply  # noqa: F401

"""All op families; importing this package fills the registry."""
from . import broadcast, control, conv, elementwise, image, leaf, linalg, nn, normalization, pool, random, reduce, shape  # noqa: F401
from .registry import NOT_DIFFERENTIABLE, REGISTRY, OpDef, Sample, apply  # noqa: F401

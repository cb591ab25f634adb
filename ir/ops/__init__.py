"""All op families; importing this package fills the registry."""
from . import (  # noqa: F401
    broadcast, control, conv, ctc, elementwise, fused, image, indexing, labels, leaf, linalg, loop,
    nn, collective, normalization, pool, random, reduce, shape, sparse,
)
from .registry import NOT_DIFFERENTIABLE, REGISTRY, OpDef, Sample, apply  # noqa: F401

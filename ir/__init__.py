"""graphk's IR: typed values with symbolic shapes, nodes, graphs, the op registry, IR text."""
from . import operators as _operators  # noqa: F401  (installs Python operators on Value)
from . import ops
from .dtypes import DTYPES, as_dtype
from .errors import DTypeError, FeedError, GraphkError, ParseError, ShapeError, VerifyError
from .graph import Graph, Node, Value, topological_order
from .ops.leaf import Variable
from .ops.registry import NOT_DIFFERENTIABLE, REGISTRY, OpDef, Sample
from .parser import parse
from .shapes import SymDim
from .types import TensorType
from .verify import verify

__all__ = [
    "DTYPES", "as_dtype", "DTypeError", "FeedError", "GraphkError", "ParseError", "ShapeError",
    "VerifyError", "Graph", "Node", "Value", "Variable", "topological_order", "NOT_DIFFERENTIABLE",
    "REGISTRY", "OpDef", "Sample", "parse", "SymDim", "TensorType", "verify", "ops",
]

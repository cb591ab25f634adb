"""Random ops: tensors of samples, fresh on every call of a compiled function.

Each op is impure (`pure=False`: never folded or merged) and has a
`make_kernel`, called once per compiled function, that gives the function
its own NumPy Generator. So every call draws new samples, and two functions
compiled with the same `seed` draw the same sequence. A `seed` of None takes
a seed from NumPy's global RNG when the function is compiled, so
`np.random.seed(...)` before compiling makes a run reproducible.

The output shape is the attribute `shape`, one item per dimension:
  an int                  a fixed size
  ("dim", k, axis)        the runtime size of `axis` of input k (any tensor);
                          its type keeps that input's dim, symbol included
  ("value", k)            the value of input k, an int scalar tensor
  ("value", k, i)         element i of input k, an int vector tensor
so `K.random_normal(K.shape(x))` is built on x itself and keeps x's shape
exactly (the same trick as `sum_to(g, like)`), while a shape computed at run
time gets fresh symbols. `encode_shape` turns Keras' shape arguments into
this form.
"""
from __future__ import annotations

import math
import sys
from functools import partial

import numpy as np

from ..dtypes import DTypeError, as_dtype, is_floating, is_integer, require_float
from ..errors import located
from ..graph import Value
from ..shapes import ShapeError, SymDim, normalize_axis
from ..source import user_location
from ..types import TensorType
from .leaf import constant_value
from .registry import NOT_DIFFERENTIABLE, REQUIRED, OpDef, Sample, apply, register

# --- the shape attribute ---------------------------------------------------------------


def _item_dim(item, types, used: set):
    """The type-level size of one shape item, checking it against the inputs."""
    if isinstance(item, bool) or not isinstance(item, (int, tuple)):
        raise ShapeError(f"shape item {item!r} is neither an int nor a reference to an input")
    if isinstance(item, int):
        if item < 0:
            raise ShapeError(f"shape has a negative dimension {item}")
        return item
    kind, k = (item[0], item[1]) if len(item) > 1 else (None, None)
    if not isinstance(k, int) or not 0 <= k < len(types):
        raise ShapeError(f"shape item {item!r} refers to input {k!r}, but {len(types)} are given")
    used.add(k)
    source = types[k]
    if kind == "dim" and len(item) == 3:
        return source.shape[normalize_axis(item[2], source.ndim, "shape axis")]
    if kind == "value" and len(item) in (2, 3):
        if not is_integer(source.dtype):
            raise DTypeError(f"a shape tensor must hold ints, got {source}")
        if len(item) == 2 and source.ndim != 0:
            raise ShapeError(f"shape item {item!r} needs an int scalar, got {source}")
        if len(item) == 3 and (source.ndim != 1 or not isinstance(source.shape[0], int)
                               or not 0 <= item[2] < source.shape[0]):
            raise ShapeError(f"shape item {item!r} needs an int vector of known length "
                             f"longer than {item[2]}, got {source}")
        return SymDim()  # only the run knows this size
    raise ShapeError(f"shape item {item!r} is not ('dim', input, axis) or ('value', input[, i])")


def output_shape(types, shape) -> tuple:
    """The symbolic shape a `shape` attribute gives, with these input types."""
    if not isinstance(shape, tuple):
        raise ShapeError(f"shape must be a tuple, got {shape!r}")
    used: set = set()
    dims = tuple(_item_dim(item, types, used) for item in shape)
    if used != set(range(len(types))):
        raise ShapeError(f"shape {shape} uses inputs {sorted(used)} but {len(types)} are given")
    return dims


def runtime_shape(shape: tuple, inputs) -> tuple:
    """The concrete shape a `shape` attribute gives, with these input arrays."""
    return tuple(item if isinstance(item, int) else _runtime_size(item, inputs) for item in shape)


def _runtime_size(item, inputs) -> int:
    source = inputs[item[1]]
    if item[0] == "dim":
        return source.shape[item[2]]
    return int(source if len(item) == 2 else source[item[2]])


class _Encoder:
    """Collects the tensor inputs a shape refers to (each once) while encoding items."""

    def __init__(self):
        self.inputs: list[Value] = []

    def ref(self, value: Value) -> int:
        for k, known in enumerate(self.inputs):
            if known is value:
                return k
        self.inputs.append(value)
        return len(self.inputs) - 1

    def whole(self, value: Value) -> list:
        """Items for a 1-D int shape tensor: the dims of y for K.shape(y), else its elements."""
        fixed = constant_value(value)
        if fixed is not None:
            return [_size(v) for v in np.asarray(fixed).reshape(-1)]
        if value.type.ndim != 1 or not is_integer(value.type.dtype):
            raise ShapeError(f"a shape tensor must be a 1-D int tensor, got {value.type}")
        source = _shape_source(value)
        if source is not None:
            y, axes = source
            return [("dim", self.ref(y), axis) for axis in axes]
        length = value.type.shape[0]
        if not isinstance(length, int):
            raise ShapeError(f"a shape tensor must have a known length, got {value.type}")
        k = self.ref(value)
        return [("value", k, i) for i in range(length)]

    def scalar(self, value: Value):
        """The item for one scalar int tensor: ('dim', ...) for K.shape(y)[i]."""
        fixed = constant_value(value)
        if fixed is not None:
            return _size(fixed)
        if value.type.ndim != 0 or not is_integer(value.type.dtype):
            raise ShapeError(f"a shape entry must be an int or an int scalar tensor, "
                             f"got {value.type}")
        source = _shape_source(value)
        if source is not None:
            y, (axis,) = source
            return ("dim", self.ref(y), axis)
        return ("value", self.ref(value))


def _size(number) -> int:
    if isinstance(number, (bool, np.bool_)) or np.asarray(number).dtype.kind not in "iu":
        raise ShapeError(f"shape entry {number!r} is not an int")
    size = int(number)
    if size < 0:
        raise ShapeError(f"shape has a negative dimension {size}")
    return size


def _shape_source(value: Value):
    """(y, axes) if value is K.shape(y) or K.shape(y)[i] / [a:b] with static bounds, else None."""
    if value.op_name == "shape_of":
        y = value.node.inputs[0]
        return y, tuple(range(y.type.ndim))
    node = value.node
    if value.op_name != "getitem" or len(node.inputs) != 1 or node.inputs[0].op_name != "shape_of":
        return None
    y, key = node.inputs[0].node.inputs[0], node.attrs["key"]
    if len(key) != 1:
        return None
    item, axes = key[0], range(y.type.ndim)
    if isinstance(item, int):
        return y, (axes[item],)
    if isinstance(item, tuple) and item[0] == "slice" and all(
            b is None or isinstance(b, int) for b in item[1:]):
        return y, tuple(axes[slice(*item[1:])])
    return None


def encode_shape(shape, like: Value | None = None) -> tuple[tuple, list[Value]]:
    """A user's shape as (`shape` attribute, tensor inputs it refers to).

    `shape` is a tuple/list of ints, int scalar tensors (e.g. K.shape(x)[0])
    and, if `like` is given, None for "like's size on this axis"; or a 1-D int
    tensor such as K.shape(x).
    """
    encoder = _Encoder()
    if isinstance(shape, Value):
        return tuple(encoder.whole(shape)), encoder.inputs
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    items = []
    for axis, entry in enumerate(shape):
        if entry is None:
            if like is None:
                raise ShapeError(f"shape {tuple(shape)!r} has a None dimension; random tensors "
                                 "need every size (pass K.shape(x)[i] for a runtime size)")
            items.append(("dim", encoder.ref(like), axis))
        elif isinstance(entry, Value):
            items.append(encoder.scalar(entry))
        else:
            items.append(_size(entry))
    return tuple(items), encoder.inputs


# --- samplers: (rng, shape, dtype, **params) -> array ----------------------------------


def _work_dtype(dtype: np.dtype) -> np.dtype:
    """NumPy's Generator draws float32 and float64; float16 is drawn as float32 and cast."""
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)


def _affine(samples: np.ndarray, scale: float, offset: float, dtype: np.dtype) -> np.ndarray:
    """samples * scale + offset in place (Python floats keep the samples' dtype)."""
    if scale != 1.0:
        samples *= scale
    if offset != 0.0:
        samples += offset
    return samples.astype(dtype, copy=False)


def _normal(rng, shape, dtype, mean, stddev):
    samples = rng.standard_normal(shape, dtype=_work_dtype(dtype))
    return _affine(samples, stddev, mean, dtype)


def _truncated_normal(rng, shape, dtype, mean, stddev):
    """Normal samples farther than 2 stddev from the mean re-drawn until none are (TF's rule)."""
    work = _work_dtype(dtype)
    samples = rng.standard_normal(shape, dtype=work)
    outside = np.flatnonzero(np.abs(samples) > 2.0)
    flat = samples.reshape(-1)  # a view: samples is a fresh contiguous array
    while outside.size:  # each round keeps ~95% of what it draws
        flat[outside] = rng.standard_normal(outside.size, dtype=work)
        outside = outside[np.abs(flat[outside]) > 2.0]
    return _affine(samples, stddev, mean, dtype)


def _uint32_draws(rng, shape) -> np.ndarray:
    """32-bit draws, as NumPy's float32 sampler takes them: each 64-bit draw's low half, then
    its high half (a little-endian view). Drawing 64-bit words in bulk is about 2x faster
    than NumPy's per-element float32 path."""
    count = int(np.prod(shape, dtype=np.int64))
    # the generator's raw 64-bit outputs: what rng.integers(0, 2**64) returns, one per word
    # (the same numbers and state after), without its range handling
    words = rng.bit_generator.random_raw((count + 1) // 2)
    return words.view(np.uint32)[:count].reshape(shape)


def _uniform_float32(rng, shape) -> np.ndarray:
    """rng.random(shape, dtype=float32)'s own numbers, (bits >> 8) * 2^-24, twice as fast
    (Dropout draws one per activation every training step)."""
    if sys.byteorder != "little":
        return rng.random(shape, dtype=np.float32)
    bits = _uint32_draws(rng, shape)
    bits >>= 8
    samples = bits.astype(np.float32)
    samples *= np.float32(2.0 ** -24)
    return samples


def _uniform(rng, shape, dtype, minval, maxval):
    if dtype.kind in "iu":
        return rng.integers(int(minval), int(maxval), shape, dtype=dtype)
    work = _work_dtype(dtype)
    samples = _uniform_float32(rng, shape) if work == np.float32 else rng.random(shape, dtype=work)
    return _affine(samples, maxval - minval, minval, dtype)


def _binomial(rng, shape, dtype, p):
    """1 with probability p, else 0: u < p for u a float32 uniform (so p=0 and p=1 are exact),
    compared as integers: u = (bits >> 8) * 2^-24 < p  <=>  bits < ceil(p * 2^24) * 2^8."""
    threshold = math.ceil(p * 2 ** 24) << 8
    if threshold >= 2 ** 32 or threshold <= 0:  # every u < p, or none
        return np.full(shape, 1 if threshold > 0 else 0, dtype=dtype)
    return (_uint32_draws(rng, shape) < np.uint32(threshold)).astype(dtype)


def seed_for_compile(seed):
    """The given seed, or a fresh one from NumPy's global RNG (seeded by np.random.seed)."""
    return int(np.random.randint(2 ** 31 - 1)) if seed is None else seed


def _make_kernel(sample):
    """make_kernel for a sampler: one Generator per compiled function."""
    def make_kernel(shape, dtype, seed, **params):
        rng = np.random.default_rng(seed_for_compile(seed))
        draw = partial(sample, rng, dtype=np.dtype(dtype), **params)
        if all(isinstance(item, int) for item in shape):
            return lambda: draw(shape)
        return lambda *inputs: draw(runtime_shape(shape, inputs))
    return make_kernel


def _one_shot_kernel(make_kernel):
    """A plain kernel (for callers that do not keep per-function state): one fresh draw."""
    def kernel(*inputs, **attrs):
        return make_kernel(**attrs)(*inputs)
    return kernel


# --- type rules ------------------------------------------------------------------------------


def _check_seed(seed) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")


def _float_dtype(op_name: str, dtype) -> str:
    return require_float(as_dtype(dtype), f"the output of {op_name}")


def _normal_infer(op_name):
    def infer(*types, shape, mean, stddev, dtype, seed):
        _check_seed(seed)
        return TensorType(_float_dtype(op_name, dtype), output_shape(types, shape))
    return infer


def _uniform_infer(*types, shape, minval, maxval, dtype, seed):
    _check_seed(seed)
    dtype = as_dtype(dtype)
    if is_integer(dtype):
        if minval != int(minval) or maxval != int(maxval) or not minval < maxval:
            raise DTypeError(f"an int random_uniform needs int bounds minval < maxval, "
                             f"got {minval!r} and {maxval!r}")
    elif not is_floating(dtype):
        raise DTypeError(f"random_uniform draws floats or ints; dtype {dtype} is neither")
    return TensorType(dtype, output_shape(types, shape))


def _binomial_infer(*types, shape, p, dtype, seed):
    _check_seed(seed)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"random_binomial needs 0 <= p <= 1, got p={p!r}")
    return TensorType(as_dtype(dtype), output_shape(types, shape))


_SHAPE_SAMPLES = (
    Sample((), {"shape": (3, 4)}),
    Sample(((2, 5),), {"shape": (("dim", 0, 0), 3, ("dim", 0, 1))}),
    Sample(((2,), ()), {"shape": (("value", 0, 0), ("value", 1), ("value", 0, 1))},
           dtypes=("int32", "int64"), symbolic=False,
           make=lambda rng: [np.array([2, 3], np.int32), np.asarray(4, np.int64)]),
)


def _register(name: str, infer, sample, attrs: dict, doc: str, samples=_SHAPE_SAMPLES) -> None:
    make_kernel = _make_kernel(sample)
    register(OpDef(name, "random", infer=infer, kernel=_one_shot_kernel(make_kernel),
                   attrs={"shape": REQUIRED, **attrs, "dtype": "float32", "seed": None},
                   grad=NOT_DIFFERENTIABLE, samples=samples, pure=False,
                   make_kernel=make_kernel, doc=doc))


_register("random_normal", _normal_infer("random_normal"), _normal,
          {"mean": 0.0, "stddev": 1.0}, "Normal samples of the given mean and stddev.")
_register("truncated_normal", _normal_infer("truncated_normal"), _truncated_normal,
          {"mean": 0.0, "stddev": 1.0},
          "Normal samples, those beyond 2 stddev from the mean re-drawn (TensorFlow's rule).")
_register("random_uniform", _uniform_infer, _uniform, {"minval": 0.0, "maxval": 1.0},
          "Uniform samples in [minval, maxval); ints for an int dtype.",
          samples=_SHAPE_SAMPLES + (Sample((), {"shape": (5,), "minval": -3, "maxval": 4,
                                                "dtype": "int32"}),))
_register("random_binomial", _binomial_infer, _binomial, {"p": 0.0},
          "1 with probability p, else 0, in the given dtype.",
          samples=_SHAPE_SAMPLES + (Sample((), {"shape": (5,), "p": 0.5, "dtype": "bool"}),))


# --- constructors -----------------------------------------------------------------------


def _random(name: str, shape, like: Value | None = None, **attrs) -> Value:
    try:
        items, inputs = encode_shape(shape, like)
    except (ShapeError, DTypeError) as error:
        raise located(error, name, user_location(), f" (given shape {shape!r})") from None
    return apply(name, inputs, shape=items, **attrs)


def random_normal(shape, mean: float = 0.0, stddev: float = 1.0, dtype: str = "float32",
                  seed: int | None = None, like: Value | None = None) -> Value:
    return _random("random_normal", shape, like, mean=float(mean), stddev=float(stddev),
                   dtype=as_dtype(dtype), seed=seed)


def truncated_normal(shape, mean: float = 0.0, stddev: float = 1.0, dtype: str = "float32",
                     seed: int | None = None, like: Value | None = None) -> Value:
    return _random("truncated_normal", shape, like, mean=float(mean), stddev=float(stddev),
                   dtype=as_dtype(dtype), seed=seed)


def random_uniform(shape, minval: float = 0.0, maxval: float = 1.0, dtype: str = "float32",
                   seed: int | None = None, like: Value | None = None) -> Value:
    """Uniform in [minval, maxval); the bounds stay ints for an int dtype (the type rule checks)."""
    dtype = as_dtype(dtype)
    if is_floating(dtype):
        minval, maxval = float(minval), float(maxval)
    return _random("random_uniform", shape, like, minval=minval, maxval=maxval, dtype=dtype,
                   seed=seed)


def random_binomial(shape, p: float = 0.0, dtype: str = "float32", seed: int | None = None,
                    like: Value | None = None) -> Value:
    return _random("random_binomial", shape, like, p=float(p), dtype=as_dtype(dtype), seed=seed)

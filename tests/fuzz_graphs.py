"""Differential fuzzing: random well-typed graphs, compiled every way, against NumPy.

`random_case(rng)` builds a random graph through the Keras front end: one to
three placeholders whose shapes broadcast against each other (leading dims
sometimes None, fed as 1 now and then), a chain of elementwise ops,
reductions over random (also negative) axes, softmax and logsumexp rows.
`check_case` compiles it with all passes and with none on the NumPy lowering
and with all passes on the LLVM lowering, feeds non-contiguous arrays, and
compares every result with a direct interpretation of the unoptimized graph by
each op's NumPy kernel;
float64 cases also compare gradients with central differences.

The default test suite runs a fixed-seed campaign (tests/test_fuzz_differential.py);
a longer one is a command:

    .venv/bin/python tests/fuzz_graphs.py --seconds 600 --seed 1
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from graphk import backend as K
from graphk.ir.graph import Graph

# (backend, passes). With passes="none" nothing is fused, so LLVM would have nothing to
# compile: llvm with no passes is the NumPy lowering again and is not run twice.
CONFIGS = [("numpy", None), ("numpy", "none"), ("llvm", None)]
TOLERANCE = {"float32": (2e-4, 2e-5), "float64": (1e-9, 1e-11)}


@dataclass
class Case:
    """A random graph: its placeholders, outputs, feeds and the recipe that built it."""

    inputs: list
    outputs: list
    feeds: list
    dtype: str
    recipe: list = field(default_factory=list)

    def describe(self) -> str:
        shapes = [f"{v.type}" for v in self.inputs]
        fed = [f"{np.shape(a)}" for a in self.feeds]
        return f"inputs {shapes} fed {fed}; ops: {' -> '.join(self.recipe)}"


# --- the ops a case draws from: (name, arity, builder) ------------------------------------

def _positive(x):
    return K.abs(x) + 0.5


UNARY = [
    ("neg", lambda x: -x), ("abs", K.abs), ("square", K.square),
    ("sqrt", lambda x: K.sqrt(_positive(x))), ("exp", lambda x: K.exp(K.clip(x, -5.0, 5.0))),
    ("log", lambda x: K.log(_positive(x))), ("tanh", K.tanh), ("sigmoid", K.sigmoid),
    ("softplus", K.softplus), ("softsign", K.softsign), ("relu", K.relu),
    ("elu", K.elu), ("sin", K.sin), ("cos", K.cos), ("scale", lambda x: 0.5 * x + 1.0),
    ("hard_sigmoid", K.hard_sigmoid), ("pow3", lambda x: K.pow(x, 3)),
]
BINARY = [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / _positive(b)), ("maximum", K.maximum), ("minimum", K.minimum),
    ("switch", lambda a, b: K.switch(K.greater(a, b), a, b * 2.0)),
    ("pow", lambda a, b: K.pow(_positive(a), K.clip(b, -2.0, 2.0))),
]
TIES = {"maximum", "minimum", "switch", "abs", "relu"}  # kinks: no operand used twice there


def _reduce(rng, x):
    """(value, label, whether it keeps broadcasting with the inputs' full shape)."""
    ndim = x.type.ndim
    if ndim == 0:
        return x, "noreduce", True
    axis = int(rng.integers(-ndim, ndim))
    keepdims = bool(rng.integers(2))
    kind = rng.choice(["sum", "mean", "max", "min", "softmax", "logsumexp"])
    if kind == "softmax":
        return K.softmax(x, axis=axis), f"softmax({axis})", True
    if kind == "logsumexp":
        value = K.logsumexp(x, axis=axis, keepdims=keepdims)
        return value, f"logsumexp({axis},{keepdims})", keepdims
    reducer = {"sum": K.sum, "mean": K.mean, "max": K.max, "min": K.min}[kind]
    return reducer(x, axis=axis, keepdims=keepdims), f"{kind}({axis},{keepdims})", keepdims


# --- shapes and feeds ---------------------------------------------------------------------

def _shapes(rng, count: int):
    """(symbolic shape, fed shape) per input, all broadcasting to one full shape."""
    rank = int(rng.integers(1, 4))
    full = [int(rng.choice([1, 2, 3, 5, 7, 16, 33])) for _ in range(rank)]
    batch_fed_as_one = rng.random() < 0.2
    if batch_fed_as_one:
        full[0] = 1
    result = []
    for k in range(count):
        dims = list(full)
        if k > 0:  # later inputs broadcast: drop leading dims, set some dims to 1
            dims = dims[int(rng.integers(0, rank)):] if rng.random() < 0.4 else dims
            dims = [1 if rng.random() < 0.3 else d for d in dims]
        fed = tuple(dims)
        leading_is_batch = len(dims) == rank and (dims[0] == full[0])
        symbolic = tuple([None] + dims[1:]) if (leading_is_batch and dims
                                                and rng.random() < 0.6) else fed
        result.append((symbolic, fed))
    return result


def _noncontiguous(rng, array: np.ndarray) -> np.ndarray:
    """The same values as a strided or transposed view, now and then."""
    pick = rng.random()
    if array.ndim and pick < 0.3:  # every other element of a bigger buffer
        wide = np.empty(array.shape[:-1] + (array.shape[-1] * 2,), array.dtype)
        wide[..., ::2] = array
        return wide[..., ::2]
    if array.ndim >= 2 and pick < 0.5:  # Fortran order
        return np.asfortranarray(array)
    if array.ndim and pick < 0.6:  # a negative stride
        return array[..., ::-1].copy()[..., ::-1]
    return array


def random_case(rng: np.random.Generator) -> Case:
    dtype = "float64" if rng.random() < 0.35 else "float32"
    count = int(rng.integers(1, 4))
    inputs, feeds = [], []
    for symbolic, fed in _shapes(rng, count):
        inputs.append(K.placeholder(shape=symbolic, dtype=dtype))
        feeds.append(_noncontiguous(rng, rng.uniform(-2, 2, fed).astype(dtype)))
    # Every value has a family: values of one family broadcast against each other (the
    # inputs and what keeps their axes form family 0; a reduction that drops an axis
    # starts a family of its own), so binary ops pair values of one family only.
    pool, family, recipe = list(inputs), [0] * len(inputs), []
    for step in range(int(rng.integers(2, 9))):
        roll, a = rng.random(), int(rng.integers(len(pool)))
        partners = [k for k in range(len(pool)) if family[k] == family[a]]
        if roll < 0.15:
            value, label, keeps = _reduce(rng, pool[a])
            kin = family[a] if keeps else step + 1
        elif roll < 0.55 or len(partners) < 2:
            name, op = UNARY[int(rng.integers(len(UNARY)))]
            value, label, kin = op(pool[a]), name, family[a]
        else:
            name, op = BINARY[int(rng.integers(len(BINARY)))]
            others = [k for k in partners if k != a] if name in TIES else partners
            b = int(rng.choice(others))
            value, label, kin = op(pool[a], pool[b]), name, family[a]
        pool.append(value)
        family.append(kin)
        recipe.append(label)
    outputs = [pool[-1]] + ([pool[len(inputs)]] if len(pool) > len(inputs) + 1 else [])
    return Case(inputs, outputs, feeds, dtype, recipe)


# --- the reference and the comparison ----------------------------------------------------

def interpret(graph: Graph, feeds) -> list:
    """Each node's NumPy kernel applied in order: what the unoptimized graph means."""
    values = dict(zip(graph.inputs, (np.ascontiguousarray(f) for f in feeds)))
    for node in graph.nodes:
        if node.op.leaf:
            if node.outputs[0] not in values:
                values[node.outputs[0]] = (node.outputs[0].storage
                                           if node.op.name == "variable"
                                           else node.attrs.get("value",
                                                               node.attrs.get("default")))
            continue
        result = node.op.bound_kernel(node.attrs)(*[values[v] for v in node.inputs])
        results = result if len(node.outputs) > 1 else (result,)
        values.update(zip(node.outputs, results))
    return [np.asarray(values[v]) for v in graph.outputs]


def _compare(case: Case, got, want, where: str) -> None:
    rtol, atol = TOLERANCE[case.dtype]
    for k, (g, w) in enumerate(zip(got, want)):
        g = np.asarray(g)
        if g.shape != w.shape or g.dtype != w.dtype:
            raise AssertionError(f"{where}: output {k} is {g.dtype}{g.shape}, the reference "
                                 f"{w.dtype}{w.shape}; {case.describe()}")
        if not np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=True):
            worst = np.nanmax(np.abs(g - w))
            raise AssertionError(f"{where}: output {k} differs by up to {worst:.3g}; "
                                 f"{case.describe()}")


def _check_gradients(case: Case, rng) -> None:
    """Symbolic gradients of sum(w * output) agree with central differences (float64)."""
    weights = [rng.uniform(-1, 1, np.shape(r)) for r in
               K.function(case.inputs, case.outputs, passes="none")(case.feeds)]
    loss = sum(K.sum(out * K.constant(w, dtype="float64")) for out, w in
               zip(case.outputs, weights))
    grads = K.gradients(loss, case.inputs)
    present = [(i, g) for i, g in enumerate(grads) if g is not None]
    if not present:
        return
    symbolic = K.function(case.inputs, [g for _, g in present])(case.feeds)
    loss_fn = K.function(case.inputs, [loss], passes="none")
    base = [np.array(f, dtype="float64", order="C") for f in case.feeds]
    for (i, _), got in zip(present, symbolic):
        flat = base[i].reshape(-1)
        for j in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            saved, eps = flat[j], 1e-6
            flat[j] = saved + eps
            plus = float(loss_fn(base)[0])
            flat[j] = saved - eps
            minus = float(loss_fn(base)[0])
            flat[j] = saved
            numeric = (plus - minus) / (2 * eps)
            analytic = np.asarray(got).reshape(-1)[j]
            if not np.isclose(analytic, numeric, rtol=1e-4, atol=1e-6):
                raise AssertionError(f"gradient wrt input {i} element {j}: {analytic} vs "
                                     f"finite differences {numeric}; {case.describe()}")


def check_case(case: Case, rng, configs=CONFIGS, gradients: bool = True) -> None:
    want = interpret(Graph(case.inputs, case.outputs), case.feeds)
    for backend, passes in configs:
        fn = K.function(case.inputs, case.outputs, backend=backend, passes=passes)
        _compare(case, fn(case.feeds), want, f"backend={backend} passes={passes}")
    if gradients and case.dtype == "float64":
        _check_gradients(case, rng)


def campaign(seed: int, count: int | None = None, seconds: float | None = None,
             configs=CONFIGS) -> tuple[int, list]:
    """Run cases until `count` or `seconds` is reached; returns (cases run, failures)."""
    rng = np.random.default_rng(seed)
    start, done, failures = time.perf_counter(), 0, []
    while (count is None or done < count) and (seconds is None
                                              or time.perf_counter() - start < seconds):
        case = random_case(rng)
        try:
            check_case(case, rng, configs)
        except Exception as error:  # noqa: BLE001 -- every failure is a finding
            failures.append((case.describe(), f"{type(error).__name__}: {error}"))
        done += 1
        if done % 50 == 0:
            K.clear_session()
    return done, failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--count", type=int, default=None)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    done, failures = campaign(args.seed, args.count, args.seconds)
    print(f"{done} graphs in {time.perf_counter() - start:.0f} s, {len(failures)} failures")
    for description, error in failures[:20]:
        print(f"- {error}\n  {description}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""The suite's cases: one record per (workload, variant), with a builder per implementation.

A case makes its float32 inputs from a fixed seed (`make(sizes)`), computes
the NumPy reference (`reference(data)`), and builds each implementation with
`build(implementation, data, lowering) -> run`, where `run()` returns arrays
to compare with the reference (or, when it has a `state()` attribute, the
state after one call is compared: a training step returns the loss and the
updated weights). A builder raises `Unavailable` when it does not apply
(JAX not installed, no hand-written NumPy for a workload) and the table says so.

Implementations: "graphk" (with each lowering: numpy, llvm, auto), "numpy"
(written by hand, with a hand-written backward), "jax" (jax.jit) and
"pytensor" (pytensor.function). Peer libraries are imported only inside
their builders, so graphk never depends on them.

Sizes: `SCALES["full"]` are the issue's sizes; "quick" (--quick) compiles 20
layers in W5 and trains W8 on 480 images; "tiny" is a test-only override
(GRAPHK_BENCH_SCALE=tiny) that keeps every code path and shrinks the arrays.
W1, W2 (the sparse loss, and W2-onehot: the same loss written with
logsumexp and one_hot; the hand-written NumPy is the same for both) and W4
live here; training.py, compile_time.py and digits.py add theirs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

PEERS = ("numpy", "jax", "pytensor")

SCALES = {
    "full": {"W1": (4_194_304, 1024), "W2": (4096, 1000), "W3": (128, (784, 256, 256, 10)),
             "W4": (4,), "W5": (100, 64), "W6": (50, 32, 32, 64), "W7": ((32, 28, 28, 1), 32),
             "W8": None},
    "quick": {"W1": (4_194_304, 1024), "W2": (4096, 1000), "W3": (128, (784, 256, 256, 10)),
              "W4": (4,), "W5": (20, 64), "W6": (50, 32, 32, 64), "W7": ((32, 28, 28, 1), 32),
              "W8": 480},
    "tiny": {"W1": (4096, 64), "W2": (64, 10), "W3": (8, (16, 8, 8, 4)),
             "W4": (4,), "W5": (3, 4), "W6": (3, 2, 3, 4), "W7": ((2, 6, 6, 1), 2),
             "W8": 96},
}


class Unavailable(Exception):
    """This implementation does not apply here (the reason goes into the table)."""


@dataclass
class Case:
    key: str                  # "W1-4M": what --only and the JSON use
    workload: str             # "W1"
    title: str
    make: Callable            # make(sizes) -> data dict
    reference: Callable       # reference(data) -> list of arrays
    builders: dict            # implementation -> build(data, lowering) -> run
    tolerance: tuple = (2e-3, 2e-3)   # rtol, atol against the reference
    long: bool = False        # one call is one round (compile time, a training epoch)
    notes: dict = field(default_factory=dict)


CASES: dict = {}


def register(case: Case) -> Case:
    CASES[case.key] = case
    return case


def check(results, reference, tolerance) -> float:
    """The largest error relative to the tolerance; raises AssertionError when over."""
    results, reference = list(results), list(reference)
    if len(results) != len(reference):
        raise AssertionError(f"{len(results)} results, the reference has {len(reference)}")
    rtol, atol = tolerance
    worst = 0.0
    for k, (got, want) in enumerate(zip(results, reference)):
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        if got.shape != want.shape:
            raise AssertionError(f"result {k}: shape {got.shape}, reference {want.shape}")
        excess = np.abs(got - want) / (atol + rtol * np.abs(want))
        worst = max(worst, float(excess.max()) if excess.size else 0.0)
        if not np.all(np.isfinite(got)) or worst > 1.0:
            raise AssertionError(f"result {k} differs from the NumPy reference: max abs "
                                 f"error {np.abs(got - want).max():.3g} (rtol {rtol}, atol {atol})")
    return worst


def graphk_function(inputs, outputs, lowering, **options):
    """K.function with the lowering the worker runs (None: graphk's default)."""
    from graphk import backend as K

    if lowering is not None:
        options["backend"] = lowering
    return K.function(inputs, outputs, **options)


def jax_module():
    try:
        import jax
    except ImportError:
        raise Unavailable("jax is not installed (pip install 'graphk[bench]')") from None
    jax.config.update("jax_enable_x64", False)
    return jax


def pytensor_module():
    try:
        import pytensor
    except ImportError:
        raise Unavailable("pytensor is not installed (pip install 'graphk[bench]')") from None
    return pytensor


# --- W1: an elementwise chain ------------------------------------------------------------

def _chain_numpy(x):
    return np.tanh(0.5 * x + 1) * (1 / (1 + np.exp(-x))) + 0.1 * np.exp(-x * x) - 0.3 * np.abs(x)


def _w1_make(n):
    return lambda sizes: {"x": np.random.default_rng(0).standard_normal(n).astype(np.float32)}


def _w1_graphk(data, lowering):
    from graphk import backend as K

    x = K.placeholder((None,), name="x")
    y = K.tanh(0.5 * x + 1) * K.sigmoid(x) + 0.1 * K.exp(-x * x) - 0.3 * K.abs(x)
    fn = graphk_function([x], [y], lowering, name="w1_chain")
    feeds = [data["x"]]
    return lambda: fn(feeds)


def _w1_numpy(data, lowering):
    x = data["x"]
    return lambda: [_chain_numpy(x)]


def _w1_jax(data, lowering):
    jax = jax_module()
    jnp = jax.numpy

    @jax.jit
    def chain(x):
        return (jnp.tanh(0.5 * x + 1) * jax.nn.sigmoid(x) + 0.1 * jnp.exp(-x * x)
                - 0.3 * jnp.abs(x))
    x = jax.device_put(data["x"])
    return lambda: [chain(x).block_until_ready()]


def _w1_pytensor(data, lowering):
    pytensor_module()
    import pytensor
    import pytensor.tensor as pt

    x = pt.vector("x", dtype="float32")
    y = pt.tanh(0.5 * x + 1) * pt.sigmoid(x) + 0.1 * pt.exp(-x * x) - 0.3 * abs(x)
    fn = pytensor.function([x], y)
    return lambda: [fn(data["x"])]


_W1 = {"graphk": _w1_graphk, "numpy": _w1_numpy, "jax": _w1_jax, "pytensor": _w1_pytensor}
for _index, _label in ((0, "large"), (1, "small")):
    register(Case(f"W1-{_label}", "W1", "elementwise chain tanh(0.5x+1)*sigmoid(x)+0.1exp(-x^2)"
                  "-0.3|x|", make=(lambda i: lambda sizes: _w1_make(sizes["W1"][i])(sizes))(_index),
                  reference=lambda d: [_chain_numpy(d["x"].astype(np.float64))], builders=_W1,
                  tolerance=(1e-4, 1e-5)))


# --- W2: row softmax crossentropy with integer labels --------------------------------------

def _w2_make(sizes):
    rows, classes = sizes["W2"]
    rng = np.random.default_rng(0)
    return {"logits": (3 * rng.standard_normal((rows, classes))).astype(np.float32),
            "labels": rng.integers(0, classes, rows).astype(np.int32)}


def _w2_numpy_loss(logits, labels):
    peak = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - peak).sum(axis=1)) + peak[:, 0]
    return lse - logits[np.arange(len(labels)), labels]


def _w2_graphk(data, lowering):
    from graphk import backend as K

    classes = data["logits"].shape[1]
    logits = K.placeholder((None, classes), name="logits")
    labels = K.placeholder((None,), dtype="int32", name="labels")
    loss = K.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    fn = graphk_function([logits, labels], [loss], lowering, name="w2_softmax_ce")
    feeds = [data["logits"], data["labels"]]
    return lambda: fn(feeds)


def _w2_jax(data, lowering):
    jax = jax_module()

    @jax.jit
    def loss(logits, labels):
        picked = jax.numpy.take_along_axis(logits, labels[:, None], axis=1)[:, 0]
        return jax.nn.logsumexp(logits, axis=1) - picked
    logits, labels = jax.device_put(data["logits"]), jax.device_put(data["labels"])
    return lambda: [loss(logits, labels).block_until_ready()]


def _w2_pytensor(data, lowering):
    pytensor_module()
    import pytensor
    import pytensor.tensor as pt

    logits, labels = pt.matrix("logits", dtype="float32"), pt.vector("labels", dtype="int32")
    peak = pt.max(logits, axis=1, keepdims=True)
    lse = pt.log(pt.sum(pt.exp(logits - peak), axis=1)) + peak[:, 0]
    fn = pytensor.function([logits, labels], lse - logits[pt.arange(labels.shape[0]), labels])
    return lambda: [fn(data["logits"], data["labels"])]


register(Case("W2", "W2", "row softmax crossentropy, integer labels", make=_w2_make,
              reference=lambda d: [_w2_numpy_loss(d["logits"].astype(np.float64), d["labels"])],
              builders={"graphk": _w2_graphk, "jax": _w2_jax, "pytensor": _w2_pytensor,
                        "numpy": lambda d, lowering: lambda: [_w2_numpy_loss(d["logits"],
                                                                             d["labels"])]}))


# --- W2-onehot: the same loss written with logsumexp and one_hot ------------------------------

def _w2_onehot_graphk(data, lowering):
    from graphk import backend as K

    classes = data["logits"].shape[1]
    logits = K.placeholder((None, classes), name="logits")
    labels = K.placeholder((None,), dtype="int32", name="labels")
    loss = (K.logsumexp(logits, axis=1)
            - K.sum(K.one_hot(labels, classes) * logits, axis=1))
    fn = graphk_function([logits, labels], [loss], lowering, name="w2_onehot")
    feeds = [data["logits"], data["labels"]]
    return lambda: fn(feeds)


def _w2_onehot_jax(data, lowering):
    jax = jax_module()
    classes = data["logits"].shape[1]

    @jax.jit
    def loss(logits, labels):
        return (jax.nn.logsumexp(logits, axis=1)
                - jax.numpy.sum(jax.nn.one_hot(labels, classes) * logits, axis=1))
    logits, labels = jax.device_put(data["logits"]), jax.device_put(data["labels"])
    return lambda: [loss(logits, labels).block_until_ready()]


def _w2_onehot_pytensor(data, lowering):
    pytensor_module()
    import pytensor
    import pytensor.tensor as pt

    classes = data["logits"].shape[1]
    logits, labels = pt.matrix("logits", dtype="float32"), pt.vector("labels", dtype="int32")
    peak = pt.max(logits, axis=1, keepdims=True)
    lse = pt.log(pt.sum(pt.exp(logits - peak), axis=1)) + peak[:, 0]
    onehot = pt.eq(labels[:, None], pt.arange(classes)[None, :])
    fn = pytensor.function([logits, labels], lse - pt.sum(onehot * logits, axis=1))
    return lambda: [fn(data["logits"], data["labels"])]


register(Case("W2-onehot", "W2", "row softmax crossentropy as logsumexp - sum(one_hot * logits)",
              make=_w2_make,
              reference=lambda d: [_w2_numpy_loss(d["logits"].astype(np.float64), d["labels"])],
              builders={"graphk": _w2_onehot_graphk, "jax": _w2_onehot_jax,
                        "pytensor": _w2_onehot_pytensor,
                        "numpy": lambda d, lowering: lambda: [_w2_numpy_loss(d["logits"],
                                                                             d["labels"])]}))


# --- W4: call overhead ---------------------------------------------------------------------

def _w4_graphk(data, lowering):
    from graphk import backend as K

    x = K.placeholder((None,), name="x")
    fn = graphk_function([x], [x + 1], lowering, name="w4_overhead")
    feeds = [data["x"]]
    return lambda: fn(feeds)


def _w4_jax(data, lowering):
    jax = jax_module()
    add_one = jax.jit(lambda x: x + 1)
    x = jax.device_put(data["x"])
    return lambda: [add_one(x).block_until_ready()]


def _w4_pytensor(data, lowering):
    pytensor_module()
    import pytensor
    import pytensor.tensor as pt

    x = pt.vector("x", dtype="float32")
    fn = pytensor.function([x], x + 1)
    return lambda: [fn(data["x"])]


register(Case("W4", "W4", "call overhead f(x) = x + 1", make=lambda sizes: {
    "x": np.arange(sizes["W4"][0], dtype=np.float32)},
    reference=lambda d: [d["x"] + 1], builders={
        "graphk": _w4_graphk, "jax": _w4_jax, "pytensor": _w4_pytensor,
        "numpy": lambda d, lowering: (lambda x: lambda: [x + 1])(d["x"])}))

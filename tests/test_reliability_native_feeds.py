"""Hostile feeds through K.function(backend="llvm"): a clear error or NumPy's answer,
never a crash.

Dims that should be equal but are not, broadcast dims that are neither 1 nor the
other size, empty arrays, stride-0 and huge-stride views, negative strides,
misaligned and read-only buffers, Fortran order, feeds of another dtype -- on
elementwise regions (flat entries) and on reductions (loop nests). The cases
run in a child process (this file run as a script) so that a segfault in native
code fails the test, naming the case, instead of killing pytest. The kernel-level
versions of a few of these: tests/test_llvm_runtime.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback

import numpy as np
from numpy.lib.stride_tricks import as_strided

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES: dict = {}


def case(expect: str = "ok"):
    """Register a case; `expect` is "ok" or "error:<ExceptionName>:<text in message>"."""
    def register(fn):
        CASES[fn.__name__] = (fn, expect)
        return fn
    return register


# --- functions under test (fresh placeholders each: unification is process-wide) ---

def _elementwise(rows=None):
    """tanh(x) * y + 1 over x[rows, 4], y[?, ?]. The unknown row dims of x and y unify
    when both are unknown; with static `rows` y may broadcast on either axis."""
    from graphk import backend as K

    x, y = K.placeholder((rows, 4)), K.placeholder((None, None))
    fn = K.function([x, y], [K.tanh(x) * y + 1.0], backend="llvm")
    return fn, lambda a, b: np.tanh(a) * b + np.float32(1)


def _softmax_rows():
    """softmax(x * 2) and row max of x[?, ?]: a reduction region (loop nest)."""
    from graphk import backend as K

    x = K.placeholder((None, None))
    fn = K.function([x], [K.softmax(x * 2.0), K.max(x, axis=1)], backend="llvm")

    def reference(a):
        z = a * np.float32(2)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True), a.max(axis=1)

    return fn, reference


def _check(fn, reference, *feeds):
    assert ": llvm: " in fn.report(show=False), fn.report(show=False)
    kept = [np.array(f, copy=True) for f in feeds]
    got = fn(list(feeds))
    want = reference(*[np.asarray(f, dtype=np.float32) for f in kept])
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape, (g.shape, w.shape)
        np.testing.assert_allclose(g, w, rtol=2e-6, atol=1e-6)
    for f, k in zip(feeds, kept):  # feeds are never written
        np.testing.assert_array_equal(np.asarray(f), k)


def _data(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --- shapes that disagree ------------------------------------------------------

@case("error:ShapeError:do not broadcast")
def broadcast_dim_neither_one_nor_other():
    fn, ref = _elementwise()
    fn([_data(3, 4), _data(3, 3)])


@case("error:ShapeError:do not broadcast")
def broadcast_rows_neither_one_nor_other():
    fn, ref = _elementwise(rows=5)
    fn([_data(5, 4), _data(2, 4)])


@case()
def broadcast_ones_both_ways():
    fn, ref = _elementwise(rows=5)
    _check(fn, ref, _data(5, 4), _data(1, 4))
    _check(fn, ref, _data(5, 4), _data(5, 1))
    _check(fn, ref, _data(5, 4), _data(1, 1))
    fn, ref = _elementwise()
    _check(fn, ref, _data(5, 4), _data(5, 1))


@case("error:FeedError:share an unknown dimension")
def dims_that_should_be_equal_are_not():
    from graphk import backend as K

    x, y = K.placeholder((None, 4)), K.placeholder((None, 4))
    fn = K.function([x, y], [K.exp(x) * y], backend="llvm")  # unifies the two row dims
    fn([_data(3, 4), _data(5, 4)])


@case("error:FeedError:share an unknown dimension")
def square_required_but_not_square():
    from graphk import backend as K

    z = K.placeholder((None, None))
    fn = K.function([z], [K.exp(z) * K.transpose(z)], backend="llvm")
    fn([_data(3, 4)])


@case("error:FeedError:expects shape")
def static_dim_wrong():
    fn, ref = _elementwise()
    fn([_data(3, 5), _data(3, 5)])


@case("error:FeedError:got shape (3, 4, 2)")
def rank_wrong():
    fn, ref = _softmax_rows()
    fn([_data(3, 4, 2)])


# --- empty arrays -------------------------------------------------------------

@case()
def empty_rows():
    fn, ref = _elementwise()
    _check(fn, ref, _data(0, 4), _data(0, 4))
    _check(fn, ref, _data(0, 4), _data(0, 1))
    fn, ref = _elementwise(rows=0)
    _check(fn, ref, _data(0, 4), _data(1, 4))
    fn, ref = _softmax_rows()
    softmax, row_max = fn([_data(0, 6)])
    assert softmax.shape == (0, 6) and row_max.shape == (0,)


@case()
def reductions_over_an_empty_axis():
    """A maximum of nothing is -inf, as in TensorFlow (NumPy's own max refuses): the
    same on both backends."""
    fn, ref = _softmax_rows()
    softmax, row_max = fn([_data(4, 0)])
    assert softmax.shape == (4, 0)
    np.testing.assert_array_equal(row_max, np.full(4, -np.inf, np.float32))


# --- strides: zero, huge, negative ----------------------------------------------

@case()
def stride_zero_views():
    fn, ref = _elementwise()
    row = _data(4)
    rows = as_strided(row, shape=(3000, 4), strides=(0, 4), writeable=False)
    scalar = as_strided(_data(1), shape=(3000, 4), strides=(0, 0), writeable=False)
    _check(fn, ref, rows, scalar)
    _check(fn, ref, scalar, rows)
    fn, ref = _softmax_rows()
    _check(fn, ref, rows)
    _check(fn, ref, as_strided(_data(7), shape=(500, 7), strides=(0, 4), writeable=False))


@case()
def huge_strides_within_the_buffer():
    big = _data(2_000_000)  # 8 MB: rows 4 MB apart, columns 64 KB apart
    view = as_strided(big, shape=(2, 4), strides=(4_000_000, 65_536), writeable=False)
    fn, ref = _elementwise()
    _check(fn, ref, view, view)
    fn, ref = _softmax_rows()
    _check(fn, ref, view)
    # a size-1 axis may carry any stride: it is never stepped
    lone = as_strided(big, shape=(1, 4), strides=(2 ** 62, 4), writeable=False)
    _check(fn, ref, lone)
    fn, ref = _elementwise(rows=6)
    _check(fn, ref, _data(6, 4), lone)


@case()
def negative_strides():
    fn, ref = _elementwise()
    a = _data(9, 8)
    _check(fn, ref, a[::-2, ::-2], a[::-2, 1::2])
    fn, ref = _elementwise(rows=9)
    _check(fn, ref, a[::-1, :4], a[-1:, ::-2])
    fn, ref = _softmax_rows()
    _check(fn, ref, a[::-1, ::-3])
    _check(fn, ref, a.T[::-1])


# --- layouts: misaligned, read-only, Fortran, other dtypes -------------------------

def _misaligned(shape, seed=1):
    count = int(np.prod(shape))
    raw = np.zeros(count * 4 + 1, np.uint8)
    view = np.frombuffer(raw.data, dtype=np.float32, count=count, offset=1).reshape(shape)
    view[...] = _data(*shape, seed=seed)
    assert not view.flags.aligned
    return view


@case()
def misaligned_buffers():
    fn, ref = _elementwise()
    _check(fn, ref, _misaligned((33, 4)), _misaligned((33, 4), seed=2))
    fn, ref = _elementwise(rows=33)
    _check(fn, ref, _misaligned((33, 4)), _misaligned((1, 4), seed=2))
    fn, ref = _softmax_rows()
    _check(fn, ref, _misaligned((17, 9)))
    _check(fn, ref, _misaligned((18, 9))[::-2])


@case()
def read_only_buffers():
    a = _data(12, 4)
    a.setflags(write=False)
    fn, ref = _elementwise()
    _check(fn, ref, a, a)
    fn, ref = _softmax_rows()
    _check(fn, ref, a)


@case()
def fortran_order_and_float64_feeds():
    fn, ref = _elementwise()
    a = np.asfortranarray(_data(10, 4))
    _check(fn, ref, a, a.astype(np.float64))
    fn, ref = _softmax_rows()
    _check(fn, ref, np.asfortranarray(_data(10, 5)).astype(np.float64))


@case()
def repeated_hostile_layouts_reuse_nothing_stale():
    """The kernel caches per (shapes, strides) pattern: alternate patterns."""
    fn, ref = _softmax_rows()
    a = _data(20, 6)
    for view in (a, a[::-1], a[::2], as_strided(a[0], (20, 6), (0, 4)), a, _misaligned((20, 6))):
        _check(fn, ref, view)


@case("error:FeedError:complex64")
def complex_feed():
    fn, ref = _elementwise()
    fn([_data(2, 4).astype(np.complex64), _data(2, 4)])


# --- the child process and the test ---------------------------------------------

def run_cases(names) -> None:
    """Run the named cases; one JSON line per case, flushed before the next starts."""
    for name in names:
        fn, _ = CASES[name]
        print(json.dumps({"start": name}), flush=True)
        try:
            fn()
            outcome = "ok"
        except AssertionError:
            outcome = "wrong:" + traceback.format_exc(limit=3)
        except Exception as error:  # noqa: BLE001 -- the outcome is compared to `expect`
            outcome = f"error:{type(error).__name__}:{error}"
        print(json.dumps({"case": name, "outcome": outcome}), flush=True)


def test_hostile_feeds_give_clear_errors_or_numpy_answers_never_crashes(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, GRAPHK_CACHE_DIR=str(tmp_path))
    process = subprocess.run([sys.executable, os.path.abspath(__file__), *CASES], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=240)
    lines = [json.loads(line) for line in process.stdout.splitlines() if line.startswith("{")]
    started = [line["start"] for line in lines if "start" in line]
    outcomes = {line["case"]: line["outcome"] for line in lines if "case" in line}
    assert process.returncode == 0, (
        f"the child died (return code {process.returncode}) in case {started[-1:]}:\n"
        f"{process.stderr[-3000:]}")
    problems = []
    for name, (_, expect) in CASES.items():
        outcome = outcomes.get(name, "missing")
        if expect == "ok":
            good = outcome == "ok"
        else:
            _, kind, text = expect.split(":", 2)
            good = outcome.startswith(f"error:{kind}:") and text in outcome
        if not good:
            problems.append(f"{name}: expected {expect!r}, got {outcome!r}")
    assert not problems, "\n".join(problems)


if __name__ == "__main__":
    run_cases(sys.argv[1:] or list(CASES))

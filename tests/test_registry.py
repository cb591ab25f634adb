"""Registry-wide checks: every op has samples, a gradient rule or a mark, a right type
rule, and a gradient that agrees with finite differences (float64)."""
import numpy as np
import pytest

from graphk.ir.ops.registry import NOT_DIFFERENTIABLE, REGISTRY, apply

from harness import check_gradients, run_function

OPS = [op for op in REGISTRY.values() if not op.leaf]


def sample_arrays(sample, rng):
    if sample.make is not None:
        return [np.asarray(a) for a in sample.make(rng)]
    dtypes = sample.dtypes or ("float64",) * len(sample.shapes)
    arrays = []
    for shape, dtype in zip(sample.shapes, dtypes):
        if dtype == "bool":
            arrays.append(rng.random(shape) < 0.5)
        elif np.dtype(dtype).kind in "iu":
            arrays.append(rng.integers(0, 3, shape).astype(dtype))
        else:
            arrays.append(rng.uniform(sample.low, sample.high, shape).astype(dtype))
    return arrays


CASES = [(op.name, i) for op in OPS for i in range(len(op.samples))]


def test_every_op_has_a_gradient_rule_or_a_mark_and_samples():
    missing_grad = [op.name for op in OPS if op.grad is None]
    missing_samples = [op.name for op in OPS if not op.samples]
    assert not missing_grad, (
        f"ops with neither a gradient rule nor NOT_DIFFERENTIABLE: {missing_grad}")
    assert not missing_samples, f"ops without samples: {missing_samples}"


@pytest.mark.parametrize("name, index", CASES)
def test_type_rule_matches_kernel(name, index):
    sample = REGISTRY[name].samples[index]
    arrays = sample_arrays(sample, np.random.default_rng(index))
    for symbolic in (False, True) if sample.symbolic else (False,):
        run_function(lambda *xs: apply(name, xs, **sample.attrs), arrays, symbolic)


GRAD_CASES = [(n, i) for n, i in CASES if REGISTRY[n].grad is not NOT_DIFFERENTIABLE]


@pytest.mark.parametrize("name, index", GRAD_CASES)
def test_gradient_matches_finite_differences(name, index):
    sample = REGISTRY[name].samples[index]
    arrays = sample_arrays(sample, np.random.default_rng(index))
    wrt = sample.differentiable_inputs
    if wrt is None:
        wrt = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    if not wrt:
        pytest.skip("no differentiable inputs in this sample")
    check_gradients(lambda *xs: apply(name, xs, **sample.attrs), arrays, wrt=list(wrt),
                    symbolic=sample.symbolic, rtol=1e-4, atol=1e-6)


def _kernel_outputs(op, sample, arrays):
    kernel = op.bound_kernel(op.complete_attrs(sample.attrs))
    result = kernel(*arrays)
    return list(result) if isinstance(result, (tuple, list)) else [result]


@pytest.mark.parametrize("name, index", [(n, i) for n, i in CASES if not REGISTRY[n].view
                                         and REGISTRY[n].kernel is not None])
def test_kernels_not_marked_view_return_fresh_writable_arrays(name, index):
    """Codegen copies only the results of ops marked `view`; every other kernel must hand
    back memory of its own, or a caller writing into a result could change a variable."""
    op = REGISTRY[name]
    sample = op.samples[index]
    arrays = sample_arrays(sample, np.random.default_rng(index))
    for out in _kernel_outputs(op, sample, arrays):
        out = np.asarray(out)
        assert out.flags.writeable or out.ndim == 0, f"{name} returned a read-only array"
        for a in arrays:
            assert not np.shares_memory(out, a), f"{name} returned memory of an input"

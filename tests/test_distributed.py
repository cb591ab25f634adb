"""graphk.distributed in one process: the collective ops' records, packing (against a fake
transport standing for several workers), gradients, errors, and the Keras wrapper.
The 2-worker MPI runs are in test_distributed_mpi.py."""
import os
import subprocess
import sys

import numpy as np
import pytest

import graphk.distributed as gd
from graphk import backend as K
from graphk.ir import parse
from graphk.ir.dtypes import DTypeError
from graphk.ir.graph import Graph
from graphk.ir.ops import collective
from graphk.ir.ops.registry import REGISTRY, VARIADIC


class SameEverywhere:
    """A transport for `size` workers that all hold the arrays this one holds."""

    def __init__(self, size=4, rank=0):
        self.size, self.rank = size, rank
        self.buffers = []

    def allreduce(self, buffer, root, what):
        assert buffer.flags.c_contiguous and buffer.ndim == 1
        self.buffers.append((buffer.dtype, buffer.size, root))
        buffer *= self.size

    def broadcast(self, buffer, root, what):
        self.buffers.append((buffer.dtype, buffer.size, root))


@pytest.fixture
def fake():
    """Install a 4-worker fake transport; restore the previous state afterwards."""
    saved, state = list(collective._installed), dict(gd._state)
    transport = SameEverywhere()
    collective.install_transport(transport)
    gd._state.update(transport=transport, local_rank=0, local_size=1)
    yield transport
    collective.install_transport(saved[0] if saved else None)
    gd._state.clear()
    gd._state.update(state)


def count(fn, op_name) -> int:
    return sum(node.op.name == op_name for node in fn.ir.nodes)


def test_importing_graphk_never_imports_mpi4py():
    code = ("import sys, graphk, graphk.backend, graphk.distributed; "
            "print('mpi4py' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_collective_records_are_impure_and_variadic():
    for name in ("allreduce", "broadcast"):
        op = REGISTRY[name]
        assert op.pure is False and op.num_outputs == VARIADIC and op.family == "collective"


def test_ir_text_round_trips():
    x, n = K.placeholder((None, 3)), K.placeholder((), dtype="int32")
    a, b = collective.allreduce([x, n], "sum")
    c, = collective.broadcast([a], root=1)
    graph = Graph([x, n], [a, b, c])
    assert "allreduce(" in str(graph) and "root=1" in str(graph)
    assert parse(str(graph)) == graph


def test_default_passes_neither_merge_nor_fold_collectives():
    """Two allreduces of one tensor are two MPI calls every worker makes; a constant's
    allreduce is not a constant."""
    x = K.placeholder((3,))
    first, second = gd.allreduce(x), gd.allreduce(x)
    fixed = gd.allreduce(K.constant(np.ones(3)), "sum")
    fn = K.function([x], [first, second, fixed])  # default passes
    assert count(fn, "allreduce") == 3
    results = fn([np.arange(3.0)])
    np.testing.assert_array_equal(results[2], np.ones(3))


def test_one_call_per_wire_dtype_and_results_unpacked(fake):
    arrays = [np.arange(6.0).reshape(2, 3), np.ones((0, 4), np.float32),
              np.arange(4, dtype=np.float32), np.array(2, np.int32),
              np.full(3, 0.5, np.float16), np.arange(5, dtype=np.int32)]
    inputs = [K.placeholder(shape=a.shape, dtype=a.dtype.name) for a in arrays]
    results = K.function(inputs, gd.allreduce(inputs, "sum"))(arrays)
    for got, a in zip(results, arrays):
        assert got.dtype == a.dtype and got.shape == a.shape
        np.testing.assert_array_equal(got, a * 4)
        assert not np.shares_memory(got, a)
    # float16 travels in the float32 buffer (MPI has no half-precision sum); each buffer
    # carries one more element, the order check's fingerprint
    assert fake.buffers == [(np.float64, 7, None), (np.float32, 8, None), (np.int32, 7, None)]


def test_average_divides_by_the_number_of_workers(fake):
    x = np.arange(4.0, dtype=np.float32)
    average, = gd.allreduce_arrays([x])
    np.testing.assert_array_equal(average, x)
    assert average.dtype == np.float32


def test_reduce_to_root_leaves_zeros_elsewhere(fake):
    fake.rank = 1
    got, = collective.allreduce_arrays([np.ones(3)], "sum", root=0)
    np.testing.assert_array_equal(got, np.zeros(3))
    fake.rank = 0
    got, = collective.allreduce_arrays([np.ones(3)], "sum", root=0)
    np.testing.assert_array_equal(got, np.full(3, 4.0))


def test_broadcast_packs_every_dtype_into_one_byte_buffer(fake):
    arrays = [np.arange(3.0), np.array([True, False]), np.zeros((2, 0), np.int8),
              np.array(7, np.int64)]
    results = gd.broadcast_arrays(arrays, root=2)
    for got, a in zip(results, arrays):
        assert got.dtype == a.dtype and got.shape == a.shape
        np.testing.assert_array_equal(got, a)
    assert fake.buffers == [(np.uint8, 24 + 2 + 8 + 4, 2)]  # and a 4-byte fingerprint


def test_gradient_of_allreduce_is_the_allreduce_of_the_cotangent(fake):
    x = K.placeholder((3,))
    for reduction, expected in (("sum", 4.0), ("average", 1.0)):
        y = gd.allreduce(x, reduction)
        grad, = K.gradients(K.sum(y * 2.0), [x])
        fn = K.function([x], [grad])
        assert count(fn, "allreduce") == 2  # the forward's too: the sum's gradient reads its shape
        np.testing.assert_array_equal(fn([np.ones(3)])[0], np.full(3, 2.0 * expected))


def test_gradient_of_an_unused_output_still_takes_part(fake):
    """Every worker must make the same call, so an output the loss ignores sends zeros."""
    x, z = K.placeholder((2,)), K.placeholder((3,))
    y, _ = gd.allreduce([x, z])
    grad, = K.gradients(K.sum(y), [x])
    fn = K.function([x, z], [grad])
    np.testing.assert_array_equal(fn([np.ones(2), np.ones(3)])[0], np.ones(2))
    assert fake.buffers[-1] == (np.float32, 5 + 1, None)


class Disagreeing(SameEverywhere):
    """Another worker sent a different collective (its fingerprint differs by one)."""

    def allreduce(self, buffer, root, what):
        super().allreduce(buffer, root, what)
        buffer[-1] += 1

    def broadcast(self, buffer, root, what):
        buffer[-4:] = 0


@pytest.mark.parametrize("run", [lambda: gd.allreduce_arrays([np.ones(3)]),
                                 lambda: gd.broadcast_arrays([np.ones(3)])])
def test_workers_running_different_collectives_is_an_error(fake, monkeypatch, run):
    monkeypatch.setattr(collective, "_installed", [Disagreeing()])
    monkeypatch.setitem(gd._state, "transport", collective._installed[0])
    with pytest.raises(collective.CollectiveMismatch, match="same order with the same shapes"):
        run()


def test_broadcast_variables_sets_state_through_one_node(fake):
    w, b = K.variable(np.arange(4.0).reshape(2, 2)), K.variable(np.zeros(3, np.int32))
    gd.broadcast_variables([w, b, w], root=0)
    np.testing.assert_array_equal(K.get_value(w), np.arange(4.0).reshape(2, 2))
    assert len(fake.buffers) == 1


@pytest.mark.parametrize("build, message", [
    (lambda x, n: gd.allreduce(n), "an average of ints"),
    (lambda x, n: collective.allreduce([x], "average", root=0), "reduction='sum'"),
    (lambda x, n: collective.allreduce([x], "max"), "reduction must be one of"),
    (lambda x, n: collective.allreduce([K.cast(x, "bool")], "sum"), "numeric"),
    (lambda x, n: collective.allreduce([], "sum"), "at least one tensor"),
])
def test_type_errors_name_the_op_and_the_call_site(build, message):
    x, n = K.placeholder((3,)), K.placeholder((3,), dtype="int32")
    with pytest.raises((DTypeError, ValueError)) as info:
        build(x, n)
    assert message in str(info.value)
    assert "allreduce at" in str(info.value) and "test_distributed.py" in str(info.value)


def test_running_under_a_launcher_without_init_is_an_error(monkeypatch):
    monkeypatch.setattr(collective, "_installed", [])
    monkeypatch.setenv("PMI_RANK", "0")
    x = K.placeholder((3,))
    fn = K.function([x], [gd.allreduce(x)])
    with pytest.raises(RuntimeError, match=r"graphk.distributed.init\(\) was not called"):
        fn([np.ones(3)])


def test_init_without_a_launcher_is_one_worker(monkeypatch, capsys):
    for name in collective.LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(gd, "_state", {})
    monkeypatch.setattr(collective, "_installed", [])
    with pytest.raises(RuntimeError, match="init"):
        gd.rank()
    gd.init()
    assert "single worker" in capsys.readouterr().err
    assert (gd.rank(), gd.size(), gd.local_rank(), gd.local_size()) == (0, 1, 0, 1)
    gd.barrier()


def test_missing_mpi4py_says_how_to_install(monkeypatch):
    from graphk.distributed import mpi

    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[distributed\]'"):
        mpi.import_mpi()


@pytest.mark.parametrize("text", ["soon", "-1"])
def test_bad_timeout_setting(monkeypatch, text):
    from graphk.distributed import mpi

    monkeypatch.setenv(mpi.TIMEOUT_VARIABLE, text)
    with pytest.raises(ValueError, match=mpi.TIMEOUT_VARIABLE):
        mpi.timeout_from_environment()


def test_keras_optimizer_wrapper_puts_one_allreduce_in_the_training_step(fake):
    os.environ.setdefault("KERAS_BACKEND", "graphk.backend")
    import graphk.keras2

    graphk.keras2.install_shims()
    keras = pytest.importorskip("keras")
    plain = keras.optimizers.Adam(lr=0.01, clipnorm=1.0)
    optimizer = gd.DistributedOptimizer(plain)
    assert type(optimizer).__name__ == "Adam" and isinstance(optimizer, type(plain))
    assert optimizer.get_config() == plain.get_config()
    model = keras.Sequential([keras.layers.Dense(4, input_shape=(3,)), keras.layers.Dense(2)])
    model.compile(optimizer, loss="mse")
    model.fit(np.ones((8, 3)), np.ones((8, 2)), batch_size=4, verbose=0)
    assert count(model.train_function, "allreduce") == 1
    assert len(fake.buffers) == 2  # one per step: all 4 gradients in one buffer
    with pytest.raises(TypeError, match="wraps a Keras optimizer"):
        gd.DistributedOptimizer("sgd")

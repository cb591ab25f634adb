"""The LLVM disk kernel cache across processes and machines.

Two processes compiling the same function at once into one fresh
GRAPHK_CACHE_DIR both succeed and agree; a file written for another CPU is
never run (its name differs, and its header names the other host if it is
copied under ours); a file being written (or left half-written) is never loaded.
Corrupted, truncated and unwritable caches: tests/test_llvm_runtime.py.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from graphk import backend as K
from graphk.codegen.llvm import cache
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One K.function with a fused region on LLVM; prints what it computed and how it got
# its kernels. The constant 1.8125 keeps the region new to every cache but this file's.
CHILD = r"""
import json, sys
import numpy as np
from graphk import backend as K
from graphk.codegen.llvm.compiler import STATS
x = K.placeholder((None, 6))
y = K.softmax(K.tanh(x) * 1.8125) + K.square(x)
f = K.function([x], [y], backend="llvm")
data = np.linspace(-2, 2, 30, dtype="float32").reshape(5, 6)
out = f([data])[0]
print(json.dumps({"out": out.tolist(), "compiled": STATS["compiled"],
                  "from_disk": STATS["from_disk"], "report": f.report(show=False)}))
"""


def _reference(data):
    z = np.tanh(data) * np.float32(1.8125)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True) + data * data


def _data():
    return np.linspace(-2, 2, 30, dtype="float32").reshape(5, 6)


def _spawn(directory):
    env = dict(os.environ, GRAPHK_CACHE_DIR=str(directory), PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-c", CHILD], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(process, timeout=120):
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("a compiling process hung")
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _objects(directory) -> list:
    return sorted(name for name in os.listdir(directory) if name.endswith(".o"))


def test_two_processes_compiling_at_once_both_succeed_and_agree(tmp_path, monkeypatch):
    directory = tmp_path / "shared"
    first, second = _spawn(directory), _spawn(directory)
    results = [_result(first), _result(second)]
    want = _reference(_data())
    for result in results:
        assert ": llvm: " in result["report"], result["report"]
        np.testing.assert_allclose(np.array(result["out"], np.float32), want,
                                   rtol=1e-5, atol=1e-6)
        assert result["compiled"] + result["from_disk"] == 1
    assert results[0]["out"] == results[1]["out"]
    # one object file, complete, no temporaries left behind by either writer
    assert os.listdir(directory) == _objects(directory) and len(_objects(directory)) == 1
    # and a third compile (here, in this process) loads it instead of compiling
    cache.MEMORY.clear()
    cache.set_disk_cache(str(directory))
    # the code generator's fingerprint from its sources now, as the children computed it
    # (this process computed its own when the suite began; sources may differ since)
    monkeypatch.setattr(cache, "_fingerprint", None)
    try:
        namespace: dict = {}
        exec(CHILD.replace("print(", "result = ("), namespace)  # the same function
        # this function's own module, whatever else this process compiled or loaded
        assert namespace["f"].lowering.code_source == "disk"
        assert namespace["out"].tolist() == results[0]["out"]
    finally:
        cache.set_disk_cache(None)
        cache.MEMORY.clear()


@pytest.fixture
def disk(tmp_path):
    """A fresh disk cache for this process, and an empty memory cache."""
    cache.MEMORY.clear()
    yield cache.set_disk_cache(str(tmp_path / "kernels"))
    cache.set_disk_cache(None)
    cache.MEMORY.clear()


def _compile_and_check(scale):
    """Compile a new K.function with backend="llvm" (memory cache emptied first), run
    it and check it against NumPy; returns how its module was obtained: (1, 0) compiled,
    (0, 1) loaded from the disk cache (the function's own record, so other functions
    compiled in this process, by earlier tests or threads, do not count)."""
    cache.MEMORY.clear()
    x = K.placeholder((None, 6))
    f = K.function([x], [K.tanh(x) * scale + K.square(x)], backend="llvm")
    assert f.lowering.code_source is None  # compiled at the first call, not before
    data = _data()
    np.testing.assert_allclose(f([data])[0], np.tanh(data) * np.float32(scale) + data * data,
                               rtol=1e-5, atol=1e-6)
    return {"compiled": (1, 0), "disk": (0, 1)}[f.lowering.code_source]


def test_a_cache_file_for_a_foreign_cpu_is_never_loaded(disk, monkeypatch):
    real = cache.host_key()
    foreign = real.replace("cpu=", "cpu=foreign-", 1) + ",+made-up-feature"
    monkeypatch.setattr(cache, "host_key", lambda: foreign)
    assert _compile_and_check(3.375) == (1, 0)
    [foreign_file] = _objects(disk.directory)
    monkeypatch.setattr(cache, "host_key", lambda: real)
    # the host's key names another file: the foreign one is not even looked up
    assert _compile_and_check(3.375) == (1, 0)
    [own_file] = [name for name in _objects(disk.directory) if name != foreign_file]
    assert _compile_and_check(3.375) == (0, 1)
    # copied under the host's name, its header still names the other CPU
    own = os.path.join(disk.directory, own_file)
    shutil.copyfile(os.path.join(disk.directory, foreign_file), own)
    assert _compile_and_check(3.375) == (1, 0)
    assert _compile_and_check(3.375) == (0, 1)  # rewritten for this host


def test_a_tampered_host_field_is_detected(disk):
    assert _compile_and_check(4.625) == (1, 0)
    [name] = _objects(disk.directory)
    path = os.path.join(disk.directory, name)
    data = bytearray(open(path, "rb").read())
    data[len(cache.MAGIC) + 3] ^= 0xFF  # inside the host digest; payload checksum intact
    with open(path, "wb") as handle:
        handle.write(data)
    assert disk.load(name[:-2]) is None
    assert _compile_and_check(4.625) == (1, 0)


def test_a_file_being_written_is_never_loaded(disk):
    assert _compile_and_check(5.875) == (1, 0)
    [name] = _objects(disk.directory)
    path = os.path.join(disk.directory, name)
    complete = open(path, "rb").read()
    header = len(cache.MAGIC) + 32 + 8 + 32
    # another writer that writes in place (not atomically) is caught at every stage
    for cut in (0, len(cache.MAGIC) // 2, header - 1, header, header + 1,
                (header + len(complete)) // 2, len(complete) - 1):
        with open(path, "wb") as writer:
            writer.write(complete[:cut])
            writer.flush()  # still open: the rest is "in flight"
            assert disk.load(name[:-2]) is None
            assert _compile_and_check(5.875) == (1, 0)
    assert _compile_and_check(5.875) == (0, 1)
    # graphk's own writes go through a temporary file: a leftover one is ignored
    with open(os.path.join(disk.directory, "abandoned.tmp"), "wb") as stray:
        stray.write(complete[: len(complete) // 3])
    assert _compile_and_check(5.875) == (0, 1)


def test_a_killed_writers_leftover_is_swept_a_live_one_is_not(disk):
    """A temporary file older than STALE_SECONDS is a killed writer's: the next store
    removes it. A fresh one may be another process's write in flight: it stays."""
    os.makedirs(disk.directory, exist_ok=True)
    old, fresh = (os.path.join(disk.directory, name) for name in ("old.tmp", "fresh.tmp"))
    for path in (old, fresh):
        with open(path, "wb") as handle:
            handle.write(b"partial")
    past = os.path.getmtime(old) - cache.STALE_SECONDS - 60
    os.utime(old, (past, past))
    assert _compile_and_check(6.125) == (1, 0)  # compiles and stores: the sweep runs
    assert not os.path.exists(old) and os.path.exists(fresh)

"""Shared pieces of the thread and memory tests (test_concurrency_memory.py for the NumPy
lowering, test_reliability_llvm_threads.py for LLVM): a function whose softmax and row
sums of squares fuse into one region, its NumPy reference, a thread runner that reports
every thread's failure, and the process's resident memory."""
import resource
import threading

import numpy as np

from graphk import backend as K


def softmax_function(width=16, scale=2.0, **function_options):
    """softmax(tanh(x @ W) * scale + 0.5) and its row sums of squares, compiled; and W."""
    x = K.placeholder((None, width))
    W = K.variable(np.linspace(-1, 1, width * width).reshape(width, width))
    y = K.softmax(K.tanh(K.dot(x, W)) * scale + 0.5)
    return K.function([x], [y, K.sum(y * y, axis=1)], **function_options), K.get_value(W)


def softmax_reference(x, W, scale=2.0):
    z = np.tanh(x @ W) * scale + 0.5
    e = np.exp(z - z.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    return y, (y * y).sum(axis=1)


def run_threads(target, count):
    """target(k) in `count` threads at once; fails with every error any thread raised."""
    errors = []

    def guarded(k):
        try:
            target(k)
        except BaseException as error:  # noqa: BLE001 -- reported by the test
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def rss_kib() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() // 1024

"""How many cores graphk may take now (graphk/threads.py's automatic budget): those of
its CPU affinity and cgroup quota that other processes leave idle.

Two signals, taken at most every LOAD_INTERVAL seconds:
- the window: busy time on our CPUs over the last interval (/proc/stat), less our own
  CPU time (which counts our BLAS helpers too), is the other processes' load; a core
  counts as idle when they use at most IDLE_SHARE of it;
- now: other processes' threads runnable at this moment (/proc/loadavg's count less
  our own running threads). Where the window saw load but nobody else is running now,
  the cores are taken: other processes that take turns with us (a benchmark's other
  workers, a build between steps) leave the machine to us while we compute, and
  graphk should use it as JAX or TensorFlow would. A process spinning beside us is
  runnable at every sample, so it keeps its core.
"""
from __future__ import annotations

import math
import os
import threading
import time

# How long one measurement of the other processes' load is trusted (seconds).
LOAD_INTERVAL = 0.5
# A core counts as idle when other processes use at most this much of it.
IDLE_SHARE = 0.2


def _cgroup_quota() -> float | None:
    """Cores a cgroup CPU quota allows (v2 cpu.max or v1 cfs), None when there is none."""
    for path, parse in (("/sys/fs/cgroup/cpu.max", lambda t: t.split()),
                        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", lambda t: [t.strip(), None])):
        try:
            with open(path) as handle:
                quota, period = parse(handle.read())
            if period is None:
                with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as handle:
                    period = handle.read().strip()
        except (OSError, ValueError):
            continue
        if quota in ("max", "-1"):
            return None
        return max(int(quota) / int(period), 1.0)
    return None


def _our_cpus() -> list:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def capacity() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup CPU quota."""
    cores = len(_our_cpus())
    quota = _cgroup_quota()
    return max(1, min(cores, math.floor(quota))) if quota else max(1, cores)


def _busy_seconds(cpus: list) -> float | None:
    """CPU seconds all processes have spent on `cpus` since boot (None without /proc/stat)."""
    try:
        with open("/proc/stat") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    wanted = {f"cpu{c}" for c in cpus}
    ticks = 0
    for line in lines:
        fields = line.split()
        if fields and fields[0] in wanted:  # user nice system idle iowait irq softirq steal
            numbers = [int(f) for f in fields[1:9]]
            ticks += sum(numbers) - numbers[3] - numbers[4]
    return ticks / os.sysconf("SC_CLK_TCK")


class IdleCores:
    """Cores of ours that other processes leave idle, re-measured every LOAD_INTERVAL
    (see the module docstring)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._mark = self._sample()
        self._free = 1  # until the first measurement: a wrong 1 costs little, a wrong 2 much

    @staticmethod
    def _sample():
        cpus = _our_cpus()
        return time.monotonic(), _busy_seconds(cpus), time.process_time(), cpus

    def cores(self) -> int:
        if time.monotonic() - self._mark[0] >= LOAD_INTERVAL:
            self._measure()
        return self._free

    def _measure(self) -> None:
        if not self._lock.acquire(blocking=False):  # another thread is measuring
            return
        try:
            then, mark = self._mark, self._sample()
            self._mark = mark
            limit = capacity()
            if then[1] is None or mark[1] is None or then[3] != mark[3]:
                self._free = limit  # no /proc/stat, or our CPUs changed: assume idle
                return
            window = idle_cores(len(mark[3]), limit, busy=mark[1] - then[1],
                                ours=mark[2] - then[2], wall=mark[0] - then[0])
            others = _others_running()
            now = window if others is None else max(1, min(limit, len(mark[3]) - others))
            self._free = max(window, now)
        finally:
            self._lock.release()


def idle_cores(cpus: int, limit: int, busy: float, ours: float, wall: float) -> int:
    """Cores (at most `limit`) that other processes left idle over `wall` seconds, in which
    all processes together spent `busy` CPU seconds on our `cpus` and we spent `ours`."""
    others = max(0.0, busy - ours) / wall if wall > 0 else 0.0
    return max(1, min(limit, math.floor(cpus - others + IDLE_SHARE)))


def _others_running() -> int | None:
    """Threads of other processes running or waiting for a CPU right now: /proc/loadavg's
    runnable count less our own runnable threads (the caller among them); None without
    /proc. System-wide: with an affinity narrower than the machine it overcounts, which
    only ever keeps the window's answer."""
    try:
        with open("/proc/loadavg") as handle:
            runnable = int(handle.read().split()[3].split("/")[0])
        ours = 0
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/stat") as handle:
                    ours += handle.read().rsplit(")", 1)[1].split()[0] == "R"
            except OSError:  # the thread ended meanwhile
                continue
    except (OSError, ValueError, IndexError):
        return None
    return max(0, runnable - ours)

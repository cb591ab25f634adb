"""graphk's performance tools: the benchmark suite (`python -m graphk bench`) and the profiler.

    profiler.py   K.function(..., profile=True) and fn.profile()
    workloads*.py the suite's workloads W1-W8, each with its implementations
    worker.py     one implementation in its own process, timed one round at a time
    runner.py     the parent: workers started, rounds interleaved, statistics
    report.py     markdown tables, the JSON record, the machine, the README block
"""

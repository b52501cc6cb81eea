"""The benchmarks' trivial task, in Python: x -> 2x + 1, the work of the
Python baselines, so that what is measured is what a task costs the pool."""

from wasmpool_task import task


@task
def trivial(x: int) -> int:
    return x * 2 + 1

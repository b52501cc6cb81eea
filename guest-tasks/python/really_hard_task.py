"""The seed's task, in Python: draw a random number, sleep 2 s, print a
line, return the number.

    wasmpool run guest-tasks/python/really_hard_task.py \
        --inputs '[3, 5, 10, 15]' --workers 2

numpy has no build for WASI on the package registries, so the number
comes from the standard library's `random` (seeded per task by the host:
`--seed S` makes a run repeat exactly).
"""

import random
import time

from wasmpool_task import task


@task
def really_hard_task(some_parameter: int) -> float:
    result = random.random()
    time.sleep(2.0)
    print(f"finished task crunching {some_parameter} with result {result:.2f}")
    return result

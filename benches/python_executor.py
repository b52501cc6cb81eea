"""WasmPoolExecutor against ProcessPoolExecutor, side by side in one run.

    python3 benches/python_executor.py [--calls 10000] [--map 100000]

Rows (2 workers each):

- ``submit`` + ``result`` of a trivial function, ``--calls`` times: all
  submitted, then every result read. ProcessPoolExecutor, WasmPoolExecutor
  with a fresh interpreter per call, and with ``reuse_instances=1000``.
- ``map`` with ``chunksize=1000`` over ``--map`` inputs, both executors.
- The seed's cell (four calls that sleep 2 s), warm.
- The first use on a machine: building and compiling the sandboxes'
  Python, in a fresh cache directory; then a second process on that cache.

Prints a Markdown table: calls per second and the ratio to
ProcessPoolExecutor measured in the same run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import time

from wasmpool import WasmPoolExecutor

WORKERS = 2


def trivial(x):
    return x * 2 + 1


def really_hard_task(some_parameter):
    import random

    result = random.random()
    time.sleep(2.0)
    print(f"finished task crunching {some_parameter} with result {result:.2f}")
    return result


def submit_all(executor, calls: int) -> float:
    began = time.perf_counter()
    futures = [executor.submit(trivial, i) for i in range(calls)]
    assert [f.result() for f in futures] == [trivial(i) for i in range(calls)]
    return calls / (time.perf_counter() - began)


def map_chunks(executor, inputs: int) -> float:
    began = time.perf_counter()
    results = list(executor.map(trivial, range(inputs), chunksize=1000))
    assert results == [trivial(i) for i in range(inputs)]
    return inputs / (time.perf_counter() - began)


FIRST_USE = """
import time
began = time.perf_counter()
from wasmpool import WasmPoolExecutor
with WasmPoolExecutor(max_workers=1) as ex:
    assert ex.submit(abs, -1).result() == 1
print(time.perf_counter() - began)
"""


def first_use() -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, XDG_CACHE_HOME=cache)
        times = []
        for _ in range(2):
            done = subprocess.run(
                [sys.executable, "-c", FIRST_USE],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            times.append(float(done.stdout.split()[-1]))
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--map", type=int, default=100_000)
    args = parser.parse_args()

    rows = []
    with concurrent.futures.ProcessPoolExecutor(WORKERS) as ppe:
        submit_all(ppe, 100)
        ppe_submit = submit_all(ppe, args.calls)
        ppe_map = map_chunks(ppe, args.map)
    with WasmPoolExecutor(WORKERS) as fresh:
        submit_all(fresh, 10)
        fresh_submit = submit_all(fresh, args.calls)
        fresh_map = map_chunks(fresh, args.map)
        began = time.perf_counter()
        list(fresh.map(really_hard_task, [3, 5, 10, 15]))
        seed = time.perf_counter() - began
    with WasmPoolExecutor(WORKERS, reuse_instances=1000) as reuse:
        submit_all(reuse, 100)
        reuse_submit = submit_all(reuse, args.calls)
    cold, warm = first_use()

    calls, inputs = f"{args.calls:,}", f"{args.map:,}"
    rows.append((f"submit+result x{calls}", "ProcessPoolExecutor", ppe_submit, 1.0))
    rows.append(
        (f"submit+result x{calls}", "fresh", fresh_submit, fresh_submit / ppe_submit)
    )
    rows.append(
        (
            f"submit+result x{calls}",
            "reuse_instances=1000",
            reuse_submit,
            reuse_submit / ppe_submit,
        )
    )
    rows.append((f"map x{inputs}, chunksize 1000", "ProcessPoolExecutor", ppe_map, 1.0))
    rows.append(
        (f"map x{inputs}, chunksize 1000", "fresh", fresh_map, fresh_map / ppe_map)
    )
    print(f"\n{WORKERS} workers, Python {sys.version.split()[0]}\n")
    print("| row | executor | calls/s | vs ProcessPoolExecutor |")
    print("| --- | --- | ---: | ---: |")
    for row, executor, rate, ratio in rows:
        print(f"| {row} | {executor} | {rate:,.0f} | {ratio:.2f}x |")
    print(f"\nseed cell (4 x sleep 2 s), warm: {seed:.2f} s")
    print(f"first use, empty cache (build + compile + first call): {cold:.1f} s")
    print(f"second process, same cache (import + load + first call): {warm:.2f} s")


if __name__ == "__main__":
    main()

"""Functions travel by source, with what they refer to."""

from __future__ import annotations

import collections
import json
import math
import os.path
import socket
import subprocess
import sys
import textwrap
from math import sqrt

import pytest
import wasmpool._native

LIMITS = {"low": 1, "high": 10}
Point = collections.namedtuple("Point", "x y")


def helper(x):
    return x + LIMITS["high"]


def uses_helper_module_and_data(x):
    return helper(x), math.floor(sqrt(x)), os.path.basename("/a/b"), json.dumps(x)


def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)


class Shape:
    sides = 4

    def __init__(self, size):
        self.size = size

    def area(self):
        return self.size**2 * self.sides / 4


def uses_a_class(size):
    return Shape(size).area()


def test_module_functions_with_their_globals_modules_and_data(executor):
    assert executor.submit(uses_helper_module_and_data, 9).result(timeout=60) == (
        19,
        3,
        "b",
        "9",
    )
    assert executor.submit(fact, 20).result(timeout=60) == math.factorial(20)
    assert executor.submit(uses_a_class, 3).result(timeout=60) == 9.0


def test_data_travels_as_it_is_at_submission(executor):
    LIMITS["high"] = 100
    try:
        assert executor.submit(helper, 1).result(timeout=60) == 101
    finally:
        LIMITS["high"] = 10


def test_lambdas_nested_functions_and_closures(executor):
    offset = 5
    pairs = [(1, lambda x: x + 1), (2, lambda x: x * offset)]

    def outer(n):
        def inner(k):
            return k + n + offset

        return inner(1)

    assert executor.submit(pairs[0][1], 1).result(timeout=60) == 2
    assert executor.submit(pairs[1][1], 3).result(timeout=60) == 15
    assert executor.submit(outer, 10).result(timeout=60) == 16
    # A named tuple is plain data: it arrives as a tuple.
    assert list(
        executor.map(lambda p: (type(p).__name__, p[0] * p[1]), [Point(2, 3)])
    ) == [("tuple", 6)]


def test_standard_callables_and_partials(executor):
    import functools

    assert list(executor.map(str.upper, ["a", "b"])) == ["A", "B"]
    assert executor.submit(math.factorial, 5).result(timeout=60) == 120
    assert executor.submit(sorted, [3, 1, 2]).result(timeout=60) == [1, 2, 3]
    scaled = functools.partial(add_scaled, scale=LIMITS["low"] + 2)
    assert list(executor.map(scaled, [1, 2])) == [3, 6]


def add_scaled(x, *, scale):
    return x * scale


def test_what_cannot_travel_is_a_type_error_at_submit(executor):
    conn = socket.socket()
    try:

        def uses_socket(x):
            return conn.fileno()

        with pytest.raises(TypeError, match="socket"):
            executor.submit(uses_socket, 1)
    finally:
        conn.close()
    with pytest.raises(TypeError, match="_native"):
        executor.submit(wasmpool._native.default_cache_dir)
    with pytest.raises(TypeError, match="pytest"):
        executor.submit(lambda: pytest.__name__)


def test_a_function_defined_in_a_script_main_runs(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import random, time
            from wasmpool import WasmPoolExecutor

            def really_hard_task(some_parameter: int) -> float:
                result = random.random()
                time.sleep(0.5)
                print(f"finished task crunching {some_parameter}: {result:.2f}")
                return some_parameter + result * 0

            if __name__ == "__main__":
                with WasmPoolExecutor(max_workers=2) as ex:
                    for result in ex.map(really_hard_task, [3, 5, 10, 15]):
                        print("result", result)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith("result")] == [
        "result 3.0",
        "result 5.0",
        "result 10.0",
        "result 15.0",
    ]
    assert sum(line.startswith("finished task crunching") for line in lines) == 4

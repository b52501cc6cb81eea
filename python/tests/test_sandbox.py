"""The executor's sandbox settings reach every call."""

from __future__ import annotations

import pytest
import wasmpool
from wasmpool import Task, WasmPoolExecutor


def read(path):
    with open(path) as file:
        return file.read()


def write(path, text):
    with open(path, "w") as file:
        file.write(text)
    return len(text)


def environment():
    import os

    return dict(os.environ)


def draws(n):
    import random

    return [random.random() for _ in range(n)]


def spin():
    total = 0
    while True:
        total += 1


def test_calls_see_only_the_directories_granted(tmp_path):
    (tmp_path / "in.txt").write_text("granted")
    out = tmp_path / "out"
    out.mkdir()
    grants = [str(tmp_path), (str(out), "/out", True)]
    with WasmPoolExecutor(max_workers=1, dirs=grants) as ex:
        assert ex.submit(read, str(tmp_path / "in.txt")).result(timeout=60) == "granted"
        assert ex.submit(write, "/out/made.txt", "written").result(timeout=60) == 7
        with pytest.raises(OSError):
            ex.submit(read, "/etc/hostname").result(timeout=60)
        with pytest.raises(OSError):
            ex.submit(write, str(tmp_path / "in.txt"), "read-only").result(timeout=60)
    assert (out / "made.txt").read_text() == "written"
    assert (tmp_path / "in.txt").read_text() == "granted"


def test_calls_see_only_the_environment_given():
    with WasmPoolExecutor(max_workers=1, env={"COLOR": "blue"}) as ex:
        assert ex.submit(environment).result(timeout=60) == {"COLOR": "blue"}


def test_a_seed_makes_random_numbers_repeat():
    def run(seed):
        with WasmPoolExecutor(max_workers=2, seed=seed) as ex:
            return list(ex.map(draws, [3, 3, 3]))

    first, again, other = run(7), run(7), run(8)
    assert first == again
    assert first != other
    assert first[0] != first[1]  # each call draws its own


def test_fuel_bounds_the_work_of_a_call():
    with WasmPoolExecutor(max_workers=1, fuel=50_000_000) as ex:
        with pytest.raises(wasmpool.FuelExhausted):
            ex.submit(spin).result(timeout=120)
        assert ex.submit(abs, -3).result(timeout=60) == 3


def test_reused_instances_give_the_same_results():
    with WasmPoolExecutor(max_workers=2, reuse_instances=100) as ex:
        assert list(ex.map(pow, range(50), [2] * 50)) == [i**2 for i in range(50)]
        assert list(ex.map(pow, range(50), [3] * 50, chunksize=7)) == [
            i**3 for i in range(50)
        ]


def test_a_command_program_takes_stdin_and_gives_stdout(rust_task, capsys):
    word_count = Task(rust_task("word-count"))
    with WasmPoolExecutor(max_workers=1) as ex:
        assert (
            ex.submit(word_count, b"one two\nthree\n").result(timeout=60) == b"2 3 14\n"
        )
    assert capsys.readouterr().out == ""


def huge(megabytes):
    return b"x" * (megabytes << 20)


def test_a_result_over_the_hosts_cap_fails_alone():
    # The host takes at most 64 MiB of a call's result (the pool's
    # max_result): a larger one fails as resource-limit, nothing breaks.
    with WasmPoolExecutor(max_workers=1, timeout=60) as ex:
        with pytest.raises(wasmpool.ResourceLimitExceeded) as raised:
            ex.submit(huge, 70).result(timeout=120)
        assert raised.value.kind == "resource-limit"
        assert len(ex.submit(huge, 1).result(timeout=120)) == 1 << 20

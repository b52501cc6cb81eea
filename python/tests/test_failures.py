"""Every way a call can fail comes back typed, and none breaks the
executor."""

from __future__ import annotations

import sys
import time

import pytest
import wasmpool
from wasmpool import Task, WasmPoolExecutor


class NotRightError(Exception):
    """An exception class of the caller's own: it comes back as itself."""


def really_hard_task(some_parameter):
    import random

    result = random.random()
    time.sleep(0.2)
    print(f"finished task crunching {some_parameter} with result {result:.2f}")
    return some_parameter * 2 + result * 0


def raise_builtin(x):
    raise ValueError(f"bad value {x}")


def raise_own(x):
    raise NotRightError("not right", x)


def loop(x):
    while True:
        pass


def memory_bomb(x):
    hoard = []
    while True:
        hoard.append(bytearray(1 << 20))


def exit_with(code):
    print("about to exit")
    sys.exit(code)


def return_unsendable(x):
    return object()


def test_an_exception_comes_back_as_itself_with_the_remote_traceback(executor):
    with pytest.raises(ValueError, match="bad value 7") as raised:
        executor.submit(raise_builtin, 7).result(timeout=60)
    remote = str(raised.value.__cause__)
    assert "Traceback" in remote and "raise_builtin" in remote
    assert 'raise ValueError(f"bad value {x}")' in remote

    with pytest.raises(NotRightError) as raised:
        executor.submit(raise_own, 3).result(timeout=60)
    assert raised.value.args == ("not right", 3)


def test_an_exception_the_host_cannot_name_is_a_task_error(executor):
    def raise_unknown(x):
        import fractions

        class Local(Exception):
            pass

        raise Local(fractions.Fraction(1, 3))

    with pytest.raises(wasmpool.RemoteException) as raised:
        executor.submit(raise_unknown, 0).result(timeout=60)
    assert isinstance(raised.value, wasmpool.TaskError)
    assert "Local" in raised.value.type_name and "1/3" in str(raised.value)


def test_a_result_that_cannot_cross_is_a_type_error(executor):
    with pytest.raises(TypeError, match="builtins.object"):
        executor.submit(return_unsendable, 0).result(timeout=60)


def test_every_failure_kind_is_typed_and_the_executor_goes_on(capfd, rust_task):
    """The seed's four inputs, interleaved with a call failing each way."""
    zoo = Task(rust_task("trap-zoo"))
    seed = [3, 5, 10, 15, 20, 25, 30]
    failing = [
        (loop, 4, wasmpool.TaskTimeout),
        (memory_bomb, 4, wasmpool.MemoryLimitExceeded),
        (exit_with, 4, wasmpool.TaskExited),
        (raise_builtin, 4, ValueError),
        (zoo, "unreachable", wasmpool.TaskTrapped),
        (zoo, "stack-overflow", wasmpool.StackOverflow),
        (zoo, "panic", wasmpool.TaskPanicked),
    ]
    with WasmPoolExecutor(max_workers=2, timeout=3, max_memory=128 << 20) as ex:
        futures = []
        for good, (bad, arg, _) in zip(seed, failing, strict=True):
            futures.append(ex.submit(really_hard_task, good))
            futures.append(ex.submit(bad, arg))
        assert [f.result(timeout=120) for f in futures[0::2]] == [2 * s for s in seed]
        for future, (_, _, kind) in zip(futures[1::2], failing, strict=True):
            with pytest.raises(kind):
                future.result(timeout=120)
        exited = futures[5].exception()
        assert exited.exit_code == 4 and exited.kind == "exit"
        assert "about to exit" in exited.stdout
        # The executor still works after all of that.
        assert ex.submit(really_hard_task, 1).result(timeout=60) == 2
    printed = capfd.readouterr().out
    assert printed.count("finished task crunching") == len(seed) + 1


def test_tasks_from_wasm_files_fail_typed_too(rust_task):
    zoo = Task(rust_task("trap-zoo"))
    with WasmPoolExecutor(max_workers=2) as ex:
        assert ex.submit(zoo, "ok").result(timeout=60) == "ok"
        for order, kind in [
            ("unreachable", wasmpool.TaskTrapped),
            ("panic", wasmpool.TaskPanicked),
            ("stack-overflow", wasmpool.StackOverflow),
            ("exit", wasmpool.TaskExited),
            ("error", wasmpool.GuestError),
        ]:
            with pytest.raises(kind) as raised:
                ex.submit(zoo, order).result(timeout=60)
            assert raised.value.kind == kind.kind
        assert list(ex.map(zoo, ["ok", "ok"])) == ["ok", "ok"]


def test_timeout_stops_a_running_task_for_real():
    with WasmPoolExecutor(max_workers=1, timeout=0.5) as ex:
        with pytest.raises(wasmpool.TaskTimeout):
            ex.submit(loop, 0).result(timeout=60)
        # The one worker is free again: the next call runs.
        assert ex.submit(abs, -2).result(timeout=60) == 2

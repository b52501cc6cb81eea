"""The ``concurrent.futures.Executor`` contract, point by point."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import threading
import time

import pytest
from wasmpool import WasmPoolExecutor

SCALE = 3


def triple(x):
    return x * SCALE


def add(x, y, *, z=0):
    return x + y + z


def nap(seconds):
    time.sleep(seconds)
    return seconds


def fail_on(x, bad):
    if x == bad:
        raise KeyError(x)
    return x


def test_submit_returns_a_real_future_with_the_result(executor):
    future = executor.submit(add, 1, 2, z=3)
    assert isinstance(future, cf.Future)
    assert future.result(timeout=60) == 6
    assert future.done() and not future.cancelled()
    assert future.exception() is None


def test_plain_data_of_every_kind_crosses_both_ways(executor):
    value = [
        None,
        True,
        2**100,
        -1.5,
        1j,
        "é\U0001f600",
        b"\x00\xff",
        (1, (2,)),
        {"k": {1, 2}},
    ]
    value.append(frozenset({3}))
    value.append({(1, 2): [bytearray(b"x")]})
    assert executor.submit(lambda v: v, value).result(timeout=60) == value


def test_map_keeps_order_over_several_iterables(executor):
    assert list(executor.map(add, [1, 2, 3], [10, 20, 30, 40])) == [11, 22, 33]
    assert list(executor.map(triple, range(25), chunksize=4)) == [
        3 * i for i in range(25)
    ]
    assert list(executor.map(triple, range(7), buffersize=2)) == [
        3 * i for i in range(7)
    ]
    assert list(executor.map(triple, [])) == []


def test_map_rejects_bad_chunk_and_buffer_sizes(executor):
    with pytest.raises(ValueError):
        executor.map(triple, [1], chunksize=0)
    with pytest.raises(ValueError):
        executor.map(triple, [1], buffersize=0)


def test_map_timeout_counts_from_the_call(executor):
    results = executor.map(nap, [0, 30], timeout=1)
    assert next(results) == 0
    with pytest.raises(TimeoutError):
        next(results)


def test_map_raises_the_first_failure_at_its_place(executor):
    results = executor.map(fail_on, range(6), [3] * 6)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(KeyError):
        next(results)
    # The same with chunks: the failure is the fourth item of the second.
    results = executor.map(fail_on, range(6), [3] * 6, chunksize=2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(KeyError):
        next(results)


def test_dropping_the_map_iterator_cancels_what_has_not_started():
    with WasmPoolExecutor(max_workers=1) as ex:
        started = ex.submit(nap, 0.5)
        results = ex.map(triple, range(50))
        queued = list(ex._pending.values())
        results.close()
        assert started.result(timeout=60) == 0.5
        cancelled = [
            entry.future.cancelled() for entry in queued if entry.future is not started
        ]
        assert cancelled and all(cancelled)


def test_as_completed_and_wait(executor):
    futures = [executor.submit(nap, s) for s in (0.6, 0.0, 0.3)]
    done = [f.result() for f in cf.as_completed(futures, timeout=60)]
    assert sorted(done) == [0.0, 0.3, 0.6]

    slow, fast = executor.submit(nap, 30), executor.submit(nap, 0)
    first = cf.wait([slow, fast], timeout=60, return_when=cf.FIRST_COMPLETED)
    assert fast in first.done and slow in first.not_done
    slow.cancel()

    bad, slow = executor.submit(fail_on, 1, 1), executor.submit(nap, 30)
    waited = cf.wait([bad, slow], timeout=60, return_when=cf.FIRST_EXCEPTION)
    assert bad in waited.done and slow in waited.not_done
    assert isinstance(bad.exception(), KeyError)

    futures = [executor.submit(triple, i) for i in range(4)]
    waited = cf.wait(futures, timeout=60, return_when=cf.ALL_COMPLETED)
    assert len(waited.done) == 4 and not waited.not_done


def test_callbacks_and_asyncio_see_the_result(executor):
    seen = []
    called = threading.Event()

    def callback(future):
        seen.append(future.result())
        called.set()

    executor.submit(triple, 5).add_done_callback(callback)
    assert called.wait(60)
    assert seen == [15]

    async def main():
        return await asyncio.wrap_future(executor.submit(triple, 7))

    assert asyncio.run(main()) == 21


def test_cancel_takes_a_pending_call_off_and_leaves_a_running_one():
    with WasmPoolExecutor(max_workers=1) as ex:
        running = ex.submit(nap, 1)
        pending = ex.submit(triple, 1)
        while not ex._native.is_running(running._token):
            time.sleep(0.01)
        assert pending.cancel()
        assert pending.cancelled()
        with pytest.raises(cf.CancelledError):
            pending.result()
        assert not running.cancel()
        assert running.result(timeout=60) == 1


def test_shutdown_waits_or_cancels():
    ex = WasmPoolExecutor(max_workers=1)
    first = ex.submit(nap, 0.5)
    later = [ex.submit(triple, i) for i in range(5)]
    ex.shutdown(wait=True)
    assert first.result() == 0.5 and [f.result() for f in later] == [0, 3, 6, 9, 12]

    ex = WasmPoolExecutor(max_workers=1)
    first = ex.submit(nap, 0.5)
    while not ex._native.is_running(first._token):
        time.sleep(0.01)
    later = [ex.submit(triple, i) for i in range(5)]
    ex.shutdown(wait=True, cancel_futures=True)
    assert first.result() == 0.5
    assert all(f.cancelled() for f in later)


def test_use_after_shutdown_raises_runtime_error():
    ex = WasmPoolExecutor(max_workers=1)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(triple, 1)
    with pytest.raises(RuntimeError, match="after shutdown"):
        list(ex.map(triple, [1]))


@pytest.mark.parametrize("workers", [0, -1])
def test_max_workers_is_checked_as_the_standard_executors_check_it(workers):
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        WasmPoolExecutor(max_workers=workers)


def test_max_workers_defaults_to_the_cores():
    with WasmPoolExecutor() as ex:
        assert ex._native.workers >= 1

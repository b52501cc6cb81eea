"""``WasmPoolExecutor``: a ``concurrent.futures.Executor`` whose tasks run in
sandboxed WebAssembly, one fresh CPython per task.

The futures live here; the native pool (``wasmpool._native``) runs the
tasks and hands back finished ones in batches to one thread per executor,
which prints what each task printed and resolves its future.
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures
import itertools
import json
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from . import _errors, _native, _ship

_MAGIC = b"WPX2"
_RUNNER = Path(__file__).parent / "guest" / "wasmpool_runner.py"

# One task's output at a time, whole, whichever executor it came from.
_print_lock = threading.Lock()


class Task:
    """A task loaded from a ``.wasm`` file (a Rust task, a component, a
    command program), to pass to ``submit`` or ``map`` in place of a
    function.

    Its arguments go in as JSON (one argument as itself, several as an
    array) and its output comes back decoded from JSON; with ``raw=True``
    one ``bytes`` (or ``str``) argument goes in as it is and the output
    comes back as ``bytes``. ``raw`` defaults to true for a command
    program (its argument is its stdin, its stdout the result) and to false
    for a task.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, raw: bool | None = None
    ) -> None:
        self.path = os.path.abspath(os.fspath(path))
        if not os.path.isfile(self.path):
            raise FileNotFoundError(
                f"no task at {self.path}: give the path of a .wasm file"
            )
        self.raw = raw

    def __repr__(self) -> str:
        return f"Task({self.path!r}{', raw=True' if self.raw else ''})"

    def _input(self, args: tuple, kwargs: dict, command: bool) -> bytes:
        if kwargs:
            raise TypeError(f"{self!r} takes positional arguments only")
        if self.raw or (self.raw is None and command):
            if len(args) != 1 or not isinstance(args[0], (bytes, str)):
                raise TypeError(f"{self!r} takes one bytes or str argument")
            return args[0].encode() if isinstance(args[0], str) else args[0]
        value = args[0] if len(args) == 1 else list(args)
        return json.dumps(value, separators=(",", ":")).encode()

    def _output(self, value: bytes, command: bool) -> Any:
        if self.raw or (self.raw is None and command):
            return value
        return json.loads(value)


class _TaskFuture(Future):
    """A ``concurrent.futures.Future`` whose ``cancel`` also takes a task
    that has not started off the pool."""

    def __init__(self, executor: WasmPoolExecutor, token: int) -> None:
        super().__init__()
        self._executor = executor
        self._token = token

    def cancel(self) -> bool:
        with self._condition:
            if self._state == "FINISHED":
                return False
            if self._state in ("CANCELLED", "CANCELLED_AND_NOTIFIED"):
                return True
        if not self._executor._native.cancel(self._token):
            return False
        return super().cancel()


class _Outcomes:
    """How a finished task's output becomes the results of its calls."""

    __slots__ = ("future", "task", "calls", "command")

    def __init__(
        self, future: Future, task: Task | None, calls: int, command: bool = False
    ) -> None:
        self.future = future
        # The wasm task, or None for the Python runner.
        self.task = task
        # How many calls a chunk of `map` holds (its future gets the
        # values and the exceptions of the calls that failed, by index);
        # 0 for one call (its future gets the call's result).
        self.calls = calls
        # A command's stdout is its result, not output to print.
        self.command = command


class _MapResults:
    """The iterator ``map`` returns: closing or dropping it cancels the
    calls that have not started, even before the first result is read."""

    def __init__(self, results: Iterator[Any], futures: collections.deque) -> None:
        self._results = results
        self._futures = futures

    def __iter__(self) -> _MapResults:
        return self

    def __next__(self) -> Any:
        return next(self._results)

    def close(self) -> None:
        self._results.close()
        for future in self._futures:
            future.cancel()

    def __del__(self) -> None:
        self.close()


class WasmPoolExecutor(concurrent.futures.Executor):
    """Runs calls in sandboxed WebAssembly workers, one per core.

    Each call runs in a fresh CPython (or, with ``reuse_instances=N``, one
    of N calls in an instance), so one that crashes, loops or eats memory
    fails alone with a :class:`~wasmpool.TaskError`, and the executor
    carries on. ``timeout`` (seconds) stops a call that runs too long,
    ``max_memory`` (bytes) caps its memory, ``fuel`` its instructions,
    ``retries`` re-runs calls that trapped or timed out; ``dirs`` are
    directories the calls may read (a path, or ``(host, guest)`` or
    ``(host, guest, writable)``), ``env`` their environment; ``seed``
    makes their random numbers repeat.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        timeout: float | None = None,
        max_memory: int | None = None,
        fuel: int | None = None,
        retries: int = 0,
        dirs: Iterable[Any] = (),
        env: Mapping[str, str] | None = None,
        seed: int | None = None,
        reuse_instances: int = 1,
    ) -> None:
        if max_workers is None:
            count = getattr(os, "process_cpu_count", os.cpu_count)
            max_workers = count() or 1
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if reuse_instances < 1:
            raise ValueError("reuse_instances must be 1 or more")
        self._native = _native.NativePool(
            max_workers,
            timeout=timeout,
            max_memory=max_memory,
            fuel=fuel,
            retries=retries,
            dirs=[_grant(d) for d in dirs],
            env=[(str(k), str(v)) for k, v in (env or {}).items()],
            seed=seed,
            reuse_instances=reuse_instances,
            cache_dir=_native.default_cache_dir(),
        )
        self._max_workers = max_workers
        self._tokens = itertools.count()
        self._pending: dict[int, _Outcomes] = {}
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._runtime: Any = None
        self._tasks: dict[str, Any] = {}
        self._shutdown = False
        self._thread = threading.Thread(
            target=self._deliver, name="wasmpool-results", daemon=True
        )
        self._thread.start()
        _live.add(self)

    # The Executor contract.

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Runs ``fn(*args, **kwargs)`` in a sandbox; returns its future."""
        future = _TaskFuture(self, 0)
        self._submit(fn, [args], future, None, keywords=[kwargs] if kwargs else None)
        return future

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[Any]:
        """``fn`` over the iterables, results in order, as
        ``concurrent.futures.Executor.map``: ``timeout`` counts from this
        call, the first failure is raised at its place, and the calls not
        started are cancelled when the iterator is closed. ``chunksize``
        calls run in one sandbox at a time; with ``buffersize``, at most
        that many chunks are submitted ahead of the one awaited."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if buffersize is not None and (
            not isinstance(buffersize, int) or buffersize < 1
        ):
            raise ValueError("buffersize must be None or > 0")
        end = None if timeout is None else timeout + time.monotonic()
        calls = zip(*iterables, strict=False)
        chunks = iter(lambda: list(itertools.islice(calls, chunksize)), [])
        many = chunksize > 1 and not isinstance(fn, Task)

        def start(chunk: list) -> Future:
            future = _TaskFuture(self, 0)
            self._submit(fn, chunk, future, bundle, many)
            return future

        bundle = None if isinstance(fn, Task) else self._pack(fn)
        if buffersize is None:
            futures = collections.deque(start(chunk) for chunk in chunks)
        else:
            futures = collections.deque(
                start(chunk) for chunk in itertools.islice(chunks, buffersize)
            )
        results = self._results(
            futures, chunks if buffersize else None, start, end, many
        )
        return _MapResults(results, futures)

    def _results(
        self,
        futures: collections.deque,
        more: Iterator | None,
        start: Callable,
        end: float | None,
        many: bool,
    ) -> Iterator[Any]:
        try:
            while futures:
                future = futures.popleft()
                if more is not None:
                    for chunk in itertools.islice(more, 1):
                        futures.append(start(chunk))
                left = None if end is None else end - time.monotonic()
                try:
                    result = future.result(left)
                finally:
                    future.cancel()
                if not many:
                    yield result
                    continue
                values, failed = result
                if not failed:
                    yield from values
                    continue
                for index, value in enumerate(values):
                    if index in failed:
                        raise failed[index]
                    yield value
        finally:
            for future in futures:
                future.cancel()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Takes no more calls; ``cancel_futures`` cancels those not
        started; ``wait`` returns once every started call has finished and
        its future is resolved."""
        with self._lock:
            self._shutdown = True
            pending = [entry.future for entry in self._pending.values()]
        if cancel_futures:
            for future in pending:
                future.cancel()
        self._native.shutdown(False, cancel_futures)
        self._native.wake()
        if wait:
            self._native.shutdown(True, cancel_futures)
            if self._thread is not threading.current_thread():
                self._thread.join()

    def stop(self) -> None:
        """Shuts down at once: cancels every call not started, stops the
        running ones (their futures end cancelled), and waits for the
        workers. What a ``KeyboardInterrupt`` leaving a ``with`` block does."""
        with self._lock:
            self._shutdown = True
            pending = [entry.future for entry in self._pending.values()]
        for future in pending:
            future.cancel()
        self._native.shutdown_now()
        self._native.wake()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def __exit__(self, kind: Any, value: Any, tb: Any) -> bool:
        if kind is not None and not issubclass(kind, Exception):
            self.stop()
        else:
            self.shutdown(wait=True)
        return False

    @property
    def max_workers(self) -> int:
        return self._max_workers

    # Inside.

    def _pack(self, fn: Callable[..., Any]) -> bytes:
        if not callable(fn):
            raise TypeError(f"{fn!r} is not callable")
        return _ship.pack(fn)

    def _submit(
        self,
        fn: Any,
        calls: list,
        future: Future,
        bundle: bytes | None,
        many: bool = False,
        keywords: list | None = None,
    ) -> None:
        if isinstance(fn, Task):
            native_task = self._task(fn.path)
            command = native_task.is_command
            data = fn._input(calls[0], keywords[0] if keywords else {}, command)
            entry = _Outcomes(future, fn, 1, command)
        else:
            if bundle is None:
                bundle = self._pack(fn)
            data = _MAGIC + _native.pack((bundle, calls, keywords))
            native_task = self._python_runtime()
            entry = _Outcomes(future, None, len(calls) if many else 0)
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            token = next(self._tokens)
            future._token = token  # type: ignore[attr-defined]
            self._pending[token] = entry
        try:
            self._native.submit(native_task, data, token)
        except BaseException:
            with self._lock:
                self._pending.pop(token, None)
            raise

    def _task(self, path: str) -> Any:
        with self._load_lock:
            task = self._tasks.get(path)
            if task is None:
                task = self._tasks[path] = self._native.load(path)
            return task

    def _python_runtime(self) -> Any:
        if self._runtime is not None:
            return self._runtime
        with self._load_lock:
            if self._runtime is None:
                cache = _native.default_cache_dir()
                if _native.cached_python(str(_RUNNER), cache_dir=cache) is None:
                    print(
                        "wasmpool: building the sandboxes' Python (CPython for WASI, "
                        "with "
                        "componentize-py); once per machine, about half a minute",
                        file=sys.stderr,
                        flush=True,
                    )
                path = _native.build_python(str(_RUNNER), cache_dir=cache)
                self._runtime = self._native.load(path)
        return self._runtime

    def _deliver(self) -> None:
        """Resolves futures as their tasks finish, until shut down and
        nothing is left."""
        native = self._native
        while True:
            finished = native.next_completed(None)
            with self._lock:
                entries = [self._pending.pop(done[0], None) for done in finished]
            for entry, (_, value, error, out, err) in zip(
                entries, finished, strict=True
            ):
                if entry is not None:
                    _finish(entry, value, error, out, err)
            with self._lock:
                if self._shutdown and not self._pending:
                    return


def _finish(
    entry: _Outcomes, value: bytes | None, error: tuple | None, out: bytes, err: bytes
) -> None:
    quiet = entry.command and error is None
    stdout = "" if quiet or not out else out.decode("utf-8", "replace")
    stderr = err.decode("utf-8", "replace") if err else ""
    if stdout or stderr:
        with _print_lock:
            if stdout:
                sys.stdout.write(stdout)
                sys.stdout.flush()
            if stderr:
                sys.stderr.write(stderr)
                sys.stderr.flush()
    future = entry.future
    try:
        if error is not None:
            if error[0] == "cancelled":
                Future.cancel(future)
                return
            future.set_exception(_errors.task_error(error, stdout, stderr))
        elif entry.task is not None:
            future.set_result(entry.task._output(value, entry.command))  # type: ignore[arg-type]
        else:
            _outcomes(entry, value, stdout, stderr)  # type: ignore[arg-type]
    except concurrent.futures.InvalidStateError:
        pass  # cancelled meanwhile


def _outcomes(entry: _Outcomes, value: bytes, stdout: str, stderr: str) -> None:
    future = entry.future
    try:
        values, errors = _native.unpack(value)
        if type(values) is not list or len(values) != (entry.calls or 1):
            raise ValueError(f"not {entry.calls or 1} values in a list")
        failed = {
            index: _errors.rebuild(error, stdout, stderr)
            for index, error in errors.items()
        }
        if not all(type(index) is int and 0 <= index < len(values) for index in failed):
            raise ValueError("an error for a call that is not there")
    except (ValueError, TypeError, AttributeError, KeyError) as malformed:
        future.set_exception(
            _errors.GuestError(
                f"the sandbox sent back what is not a result: {malformed}",
                stdout=stdout,
                stderr=stderr,
            )
        )
        return
    if entry.calls:
        future.set_result((values, failed))
    elif failed:
        future.set_exception(failed[0])
    else:
        future.set_result(values[0])


def _grant(spec: Any) -> tuple[str, str, bool]:
    if isinstance(spec, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(spec))
        return (path, path, False)
    host, guest, *writable = spec
    return (
        os.path.abspath(os.fspath(host)),
        str(guest),
        bool(writable and writable[0]),
    )


# Executors not shut down when the interpreter exits: their running calls
# finish first, unless the program is ending on Ctrl-C.
_live: weakref.WeakSet[WasmPoolExecutor] = weakref.WeakSet()


@atexit.register
def _at_exit() -> None:
    last = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    interrupted = isinstance(last, KeyboardInterrupt)
    for executor in list(_live):
        if interrupted:
            executor.stop()
        else:
            executor.shutdown(wait=True)

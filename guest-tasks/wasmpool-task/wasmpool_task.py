"""Write wasmpool tasks as plain Python functions.

A task is one function and one decorator::

    import random, time
    from wasmpool_task import task

    @task
    def really_hard_task(some_parameter: int) -> float:
        time.sleep(2.0)
        return random.random()

``wasmpool build really_hard_task.py`` turns the file into a component of
the ``wasmpool:task`` world (with componentize-py), and ``wasmpool run``
builds it first. Each input arrives as JSON and is decoded: a function of
one parameter gets the value, a function of several gets a JSON array
spread over them. The return value goes back as JSON.

Every failure reaches the host typed:

- an uncaught exception is a ``guest-error`` whose message is the
  exception's type and text (``ValueError: bad value 42``), with the
  traceback beside it in the record;
- ``sys.exit(n)`` is an ``exit`` with code ``n``;
- a ``MemoryError`` under a memory cap is a ``memory-limit``; time-outs,
  traps and stack overflows are the host's to tell.

What the function prints is captured and handed back with its result.
``report_progress(fraction)`` tells the host how far a long task has come.

This module runs inside the component only: it imports the bindings that
componentize-py generates from ``wit/task.wit``.
"""

from __future__ import annotations

import inspect
import json
import random
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import wit_world
from componentize_py_types import Err, Ok
from wit_world.imports import host

__all__ = ["task", "report_progress"]

F = TypeVar("F", bound=Callable[..., Any])

# Made once, not per call as json.dumps with options would.
_encoder = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
_decoder = json.JSONDecoder()

_task: Callable[..., Any] | None = None
# Whether the task's input is spread over its parameters (it has several,
# or none): decided once, when it is decorated.
_spread = False
# Whether the task takes and returns bytes as they are, without JSON.
_raw = False


def task(function: F | None = None, *, raw: bool = False) -> Any:
    """Makes ``function`` the task of this component.

    One function per component; it is returned unchanged, so it can still
    be called and tested as plain Python. ``@task(raw=True)`` hands the
    function its input bytes as they came and sends back the bytes it
    returns, for tasks that speak a format of their own.
    """
    if function is None:
        return lambda function: _register(function, raw)
    return _register(function, raw)


def _register(function: F, raw: bool) -> F:
    global _task, _spread, _raw
    if _task is not None and _task is not function:
        raise TypeError(
            f"@task on {function.__qualname__}: this component's task is "
            f"{_task.__qualname__} already (one @task per component)"
        )
    parameters = inspect.signature(function).parameters.values()
    positional = [
        p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    variadic = any(p.kind is p.VAR_POSITIONAL for p in parameters)
    _task, _spread, _raw = function, len(positional) != 1 or variadic, raw
    return function


def report_progress(fraction: float) -> None:
    """Tells the host how far the task has come, from 0.0 to 1.0."""
    host.report_progress(float(fraction))


def _call(input: bytes) -> bytes:
    """Runs the task on one input: JSON in, JSON out. A function of one
    parameter gets the value; one of several, a JSON array spread over
    them; one of none, no input (null)."""
    if _task is None:
        raise RuntimeError(
            "this component has no task: decorate one function with @wasmpool_task.task"
        )
    if _raw:
        return bytes(_task(input))
    value = _decoder.decode(input.decode())
    if not _spread:
        result = _task(value)
    elif isinstance(value, list):
        result = _task(*value)
    elif value is None:
        result = _task()
    else:
        raise TypeError(
            f"{_task.__qualname__} takes several parameters: give each input as a "
            f"JSON array of them (the input was {bytes(input[:200])!r})"
        )
    return _encoder.encode(result).encode()


def _describe(error: BaseException) -> str:
    """``ValueError: bad value 42``: the exception's type and text."""
    return "".join(traceback.format_exception_only(error)).strip()


def _traceback(error: BaseException) -> str:
    """The traceback of ``error`` from the task's own code on: the SDK's
    frames above it say nothing about the failure."""
    frames = error.__traceback__
    while frames is not None and frames.tb_frame.f_globals.get("__name__") == __name__:
        frames = frames.tb_next
    return "".join(traceback.format_exception(type(error), error, frames))


def _exit_code(code: object) -> int:
    """What ``sys.exit(code)`` exits with, as CPython says."""
    if code is None:
        return 0
    if isinstance(code, bool):
        return int(code)
    if isinstance(code, int):
        return code if -(2**31) <= code < 2**31 else 1
    print(code, file=sys.stderr)
    return 1


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


# Whether to seed `random` for every task (the run has a seed), asked of
# the host at an instance's first task; None before it.
_reseed_each: bool | None = None


def _run_one(input: bytes) -> bytes:
    """One input, start to end; a failure raises ``Err(message)``."""
    global _reseed_each
    # The interpreter was snapshotted at build time with its random state:
    # seed it anew in each instance, from the host (from the run's seed
    # with --seed, else secure), not from os.urandom, which the C library
    # buffers across the tasks of a reused instance. With a run seed, for
    # every task, so that a task draws the same whatever ran before it in
    # its instance; without, once (seeding costs as much as a small task).
    if _reseed_each is None:
        _reseed_each = host.seeded()
        random.seed(int.from_bytes(host.random_seed(), "little"))
    elif _reseed_each:
        random.seed(int.from_bytes(host.random_seed(), "little"))
    try:
        return _call(input)
    except SystemExit as stop:
        _flush()
        host.exit(_exit_code(stop.code))
        raise  # not reached: the host ends the task
    except BaseException as error:
        host.report_traceback(_traceback(error))
        raise Err(_describe(error)) from None
    finally:
        _flush()


class WitWorld(wit_world.WitWorld):
    """The component's exports: ``run`` for one input, ``run-batch`` for
    many in one instance (when the host reuses instances)."""

    def run(self, input: bytes) -> bytes:
        return _run_one(input)

    def run_batch(self) -> None:
        input = host.next_input()
        while input is not None:
            try:
                outcome: Ok[bytes] | Err[str] = Ok(_run_one(input))
            except Err as failed:
                outcome = failed
            input = host.finish_and_next_input(outcome)

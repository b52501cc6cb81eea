"""What a task's failure raises on the host.

A Python exception raised by the function itself comes back as itself
where the host can name its class (see :func:`rebuild`); everything that
ends a sandbox (a trap, a time-out, the memory cap, an exit) raises a
:class:`TaskError` subclass that says which.
"""

from __future__ import annotations

import sys
from typing import Any

from ._native import wire_loads


class TaskError(Exception):
    """A task failed in its sandbox. The executor goes on.

    ``kind`` is wasmpool's name for the failure (``"timeout"``,
    ``"memory-limit"``, ``"trap"``, ...); ``message`` what happened;
    ``exit_code`` the code of an exit; ``stdout`` and ``stderr`` what the
    task printed; ``guest_traceback`` the sandbox's own traceback, if it
    had one.
    """

    kind = "task-error"

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        exit_code: int | None = None,
        guest_traceback: str | None = None,
        stdout: str = "",
        stderr: str = "",
    ) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        self.message = message
        self.exit_code = exit_code
        self.guest_traceback = guest_traceback
        self.stdout = stdout
        self.stderr = stderr


class TaskTimeout(TaskError):
    """The task ran past the executor's ``timeout`` and was stopped."""

    kind = "timeout"


class MemoryLimitExceeded(TaskError):
    """The task asked for memory beyond the executor's ``max_memory``."""

    kind = "memory-limit"


class StackOverflow(TaskError):
    """The task overflowed its sandbox's stack."""

    kind = "stack-overflow"


class TaskTrapped(TaskError):
    """The sandbox trapped (an ``unreachable``, an out-of-bounds access)."""

    kind = "trap"


class TaskPanicked(TaskError):
    """Compiled code in the sandbox panicked."""

    kind = "panic"


class TaskExited(TaskError):
    """The task called ``sys.exit`` (or a program exited): ``exit_code``
    says with what."""

    kind = "exit"


class FuelExhausted(TaskError):
    """The task used up the executor's ``fuel``."""

    kind = "fuel-exhausted"


class ResourceLimitExceeded(TaskError):
    """The task handed back more than a cap allows (a result over the
    pool's largest, say)."""

    kind = "resource-limit"


class GuestError(TaskError):
    """The sandbox reported a failure of its own (not an exception of the
    function: those come back as themselves)."""

    kind = "guest-error"


class InvalidInput(TaskError):
    """The input could not be given to the task."""

    kind = "invalid-input"


class RemoteException(TaskError):
    """The function raised an exception whose class the host cannot name
    (its module is not imported here); ``type_name`` names it."""

    kind = "exception"

    def __init__(self, message: str, *, type_name: str, **rest: Any) -> None:
        super().__init__(message, **rest)
        self.type_name = type_name


_BY_KIND = {
    cls.kind: cls
    for cls in (
        TaskTimeout,
        MemoryLimitExceeded,
        StackOverflow,
        TaskTrapped,
        TaskPanicked,
        TaskExited,
        FuelExhausted,
        ResourceLimitExceeded,
        GuestError,
        InvalidInput,
    )
}


def task_error(about: tuple, stdout: str, stderr: str) -> TaskError:
    """The :class:`TaskError` of a failure as the native pool reports it:
    ``(kind, message, exit_code, traceback, text)``."""
    kind, message, exit_code, traceback, text = about
    cls = _BY_KIND.get(kind, TaskError)
    return cls(
        text,
        kind=kind,
        exit_code=exit_code,
        guest_traceback=traceback,
        stdout=stdout,
        stderr=stderr,
    )


class _RemoteTraceback(Exception):
    """The sandbox's traceback, shown as the cause of the exception raised
    here (as ``concurrent.futures.process`` shows a worker's)."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


def _named_class(module: str, qualname: str) -> type | None:
    """The exception class ``module.qualname`` if it is loaded here: the
    host imports nothing a sandbox names."""
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if isinstance(found, type) and issubclass(found, Exception):
        return found
    return None


def rebuild(error: tuple, stdout: str, stderr: str) -> Exception:
    """The exception a function raised in its sandbox, raised anew here.

    ``error`` is ``(module, qualname, args, text, traceback)``. The class is
    looked up among the modules already imported, never imported; it must
    be an ``Exception`` subclass; its arguments are plain data. Else the
    exception is a :class:`RemoteException` naming the type.
    """
    module, qualname, packed, text, tb = error
    cls = (
        _named_class(str(module), str(qualname)) if isinstance(qualname, str) else None
    )
    rebuilt: Exception | None = None
    if cls is not None and isinstance(packed, bytes):
        try:
            args = wire_loads(packed)
            if isinstance(args, tuple):
                rebuilt = cls(*args)
        except Exception:
            rebuilt = None
    if rebuilt is None:
        rebuilt = RemoteException(
            str(text),
            type_name=f"{module}.{qualname}",
            guest_traceback=str(tb),
            stdout=stdout,
            stderr=stderr,
        )
    rebuilt.__cause__ = _RemoteTraceback(f'\n"""\n{tb}"""')
    return rebuilt

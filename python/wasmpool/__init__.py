"""wasmpool: a ``concurrent.futures`` executor whose calls run in sandboxed
WebAssembly.

``WasmPoolExecutor`` stands in for ``ProcessPoolExecutor``: each call runs
in its own fresh CPython inside a wasmtime sandbox, so a call that raises,
crashes, loops past its time-out or eats memory fails alone, and the
executor goes on. Functions travel by source, so those defined in a script
or a notebook cell work too; what they print appears here when they finish.

    from wasmpool import WasmPoolExecutor

    with WasmPoolExecutor(max_workers=2, timeout=10) as ex:
        for result in ex.map(really_hard_task, [3, 5, 10, 15]):
            print(result)
"""

from ._errors import (
    FuelExhausted,
    GuestError,
    InvalidInput,
    MemoryLimitExceeded,
    RemoteException,
    ResourceLimitExceeded,
    StackOverflow,
    TaskError,
    TaskExited,
    TaskPanicked,
    TaskTimeout,
    TaskTrapped,
)
from ._executor import Task, WasmPoolExecutor
from .guest.wasmpool_wire import WireError

__all__ = [
    "FuelExhausted",
    "GuestError",
    "InvalidInput",
    "MemoryLimitExceeded",
    "RemoteException",
    "ResourceLimitExceeded",
    "StackOverflow",
    "Task",
    "TaskError",
    "TaskExited",
    "TaskPanicked",
    "TaskTimeout",
    "TaskTrapped",
    "WasmPoolExecutor",
    "WireError",
]

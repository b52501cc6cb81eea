"""Fails on demand in every way a Python task can, for the tests.

A number n succeeds with 2n. A string names what to do:

- "raise": raises ValueError("bad value 42");
- "exit-N": sys.exit(N);
- "loop": never returns (for --timeout);
- "memory": allocates without end (for --max-memory);
- "recursion": recurses without end (RecursionError);
- "read-file": reads /etc/hostname, which no task is granted;
- "read-granted": lists the directory /data (granted with --dir);
- "environment": returns the task's environment variables;
- "import-numpy": imports numpy, a C extension no WASI build has;
- "import-late": imports `fractions`, `csv` and `email.mime.text` here,
  inside the function;
- "random": returns random.random();
- "bad-result": returns what JSON cannot carry.
"""

import os
import random
import sys

from wasmpool_task import report_progress, task


def _recurse(depth: int) -> int:
    return _recurse(depth + 1) + 1


@task
def trap_zoo(order):
    if isinstance(order, int):
        report_progress(0.5)
        return order * 2
    if order == "raise":
        raise ValueError("bad value 42")
    if order.startswith("exit-"):
        sys.exit(int(order.removeprefix("exit-")))
    if order == "loop":
        while True:
            pass
    if order == "memory":
        hoard = []
        while True:
            hoard.append(bytearray(1 << 20))
    if order == "recursion":
        return _recurse(0)
    if order == "read-file":
        with open("/etc/hostname") as file:
            return file.read()
    if order == "read-granted":
        return sorted(os.listdir("/data"))
    if order == "environment":
        return dict(os.environ)
    if order == "import-numpy":
        import numpy  # noqa: F401

        return "numpy imported"
    if order == "import-late":
        import csv
        import email.mime.text
        import fractions

        row = next(csv.reader(["a,b"]))
        mail = email.mime.text.MIMEText("hi")
        half = fractions.Fraction(1, 3) + fractions.Fraction(1, 6)
        return [str(half), row, mail.get_content_type()]
    if order == "random":
        return random.random()
    if order == "bad-result":
        return {1, 2, 3}
    raise KeyError(order)

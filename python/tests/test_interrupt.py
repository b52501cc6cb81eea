"""Ctrl-C while waiting for a result: KeyboardInterrupt at once, the
running tasks stopped, and no hang at interpreter exit."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

# The script takes Ctrl-C as a program started from a terminal does, even
# when the tests run where SIGINT is ignored (a background job of a
# non-interactive shell, whose children inherit the ignoring).
SCRIPT = """
import signal
import time
from wasmpool import WasmPoolExecutor

signal.signal(signal.SIGINT, signal.default_int_handler)

def nap(seconds):
    time.sleep(seconds)
    return seconds

{body}
"""

IN_WITH = """
with WasmPoolExecutor(max_workers=2) as ex:
    futures = [ex.submit(nap, 600) for _ in range(4)]
    print("waiting", flush=True)
    futures[0].result()
"""

IN_MAP = """
ex = WasmPoolExecutor(max_workers=2)
print("waiting", flush=True)
for result in ex.map(nap, [600] * 4):
    print(result)
"""


@pytest.mark.parametrize("body", [IN_WITH, IN_MAP], ids=["result-in-with", "map-loop"])
def test_ctrl_c_interrupts_and_stops_the_running_tasks(tmp_path, body):
    script = tmp_path / "interrupted.py"
    script.write_text(SCRIPT.format(body=textwrap.dedent(body)))
    child = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline() == "waiting\n"
        child.send_signal(signal.SIGINT)
        # The tasks sleep for ten minutes: the script ends only if they
        # were stopped (a generous deadline, so a hang fails the test).
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert "KeyboardInterrupt" in err
    assert child.returncode != 0
    assert "600" not in out

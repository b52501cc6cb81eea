"""What a task prints reaches the caller's stdout and stderr, whole."""

from __future__ import annotations

import sys


def chatty(n):
    for line in range(50):
        print(f"task {n} line {line}")
    print(f"task {n} done", file=sys.stderr)
    return n


def test_prints_arrive_whole_and_never_interleaved(executor, capsys):
    assert sorted(executor.map(chatty, range(8))) == list(range(8))
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 8 * 50
    # Each task's 50 lines sit together, in order.
    for start in range(0, len(lines), 50):
        task = lines[start].split()[1]
        assert lines[start : start + 50] == [f"task {task} line {i}" for i in range(50)]
    assert sorted(err.splitlines()) == sorted(f"task {n} done" for n in range(8))

"""The seed's notebook, run by a real Jupyter kernel."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def test_the_seed_notebook_runs_in_a_real_kernel():
    notebook = nbformat.read(Path(__file__).with_name("seed.ipynb"), as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3").execute()
    cell = notebook.cells[-1]
    text = "".join(
        output.get("text", "")
        for output in cell.outputs
        if output.output_type == "stream"
    )
    errors = [output for output in cell.outputs if output.output_type == "error"]
    assert not errors, errors
    # Each task's line arrives whole, from the executor's thread; the cell's
    # own print() writes a result and its newline apart, so a task's line
    # may land between them, right after a result, as in a terminal.
    task_line = r"finished task crunching (\d+) with result 0\.\d\d\n"
    printed = re.findall(task_line, text)
    assert sorted(map(int, printed)) == [3, 5, 10, 15]
    result_line = r"^(0\.\d+|1\.0)(?=$|finished task crunching)"
    results = [float(x) for x in re.findall(result_line, text, re.M)]
    assert len(results) == 4 and all(0 <= r < 1 for r in results)
    assert "Took" in text

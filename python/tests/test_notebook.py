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
    printed = re.findall(
        r"^finished task crunching (\d+) with result 0\.\d\d$", text, re.M
    )
    assert sorted(map(int, printed)) == [3, 5, 10, 15]
    results = [float(x) for x in re.findall(r"^(0\.\d+|1\.0)$", text, re.M)]
    assert len(results) == 4 and all(0 <= r < 1 for r in results)
    assert "Took" in text

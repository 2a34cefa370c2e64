"""The notebooks in ``notebooks/`` run top to bottom in a real Jupyter kernel.

Each notebook is executed with ``nbclient`` in a kernel started from *this*
interpreter: the test writes a kernelspec of its own into a temporary
``JUPYTER_PATH``, so it never depends on which ``python3`` kernel a machine
happens to have (a fresh CI machine after ``pip install -e .[dev]`` has only
ipykernel's, whose ``python`` may not be this venv's). The kernel records runs
in a store of the test's own (``DASKFLOW_STORE``).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL = "daskflow-tests"


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec running ipykernel on this interpreter; runs go to the test's own store."""
    folder = tmp_path / "jupyter" / "kernels" / KERNEL
    folder.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "daskflow tests",
        "language": "python",
    }
    (folder / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("DASKFLOW_STORE", str(tmp_path / "runs.db"))
    return KERNEL


def _execute(name: str, kernel: str, folder: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=kernel,
        timeout=120,
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    return notebook


def _html(cell: nbformat.NotebookNode) -> str:
    return "".join(
        output["data"].get("text/html", "")
        for output in cell.outputs
        if output["output_type"] in ("display_data", "execute_result")
    )


def _rows(html: str) -> dict[str, list[str]]:
    """The rows of an HTML table: first cell → the other cells' text."""
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", html):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        if cells:
            rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.timeout(300)
def test_quickstart(kernel: str, tmp_path: Path) -> None:
    notebook = _execute("quickstart.ipynb", kernel, tmp_path)
    cells = {cell["id"]: cell for cell in notebook.cells}
    # the flow's cell: its value, and the progress display turned into the summary
    run_cell = cells["quickstart-05"]
    assert "etl(days)" in run_cell.source
    summary = _html(run_cell)
    assert "daskflow-summary" in summary
    assert "COMPLETED" in summary
    rows = _rows(summary)
    assert rows["extract"] == ["10", "0", "10"]  # completed, failed, total
    assert rows["transform"] == ["10", "0", "10"]
    assert rows["load"] == ["1", "0", "1"]

    # the history: the run's card, its task runs as a DataFrame, its logs
    assert "etl" in _html(cells["quickstart-07"])
    frame = _html(cells["quickstart-09"])
    assert "mean_seconds" in frame
    assert "extract" in frame
    printed = "".join(o.get("text", "") for o in cells["quickstart-10"].outputs)
    assert printed.startswith("COMPLETED in")
    assert "21 task runs" in printed

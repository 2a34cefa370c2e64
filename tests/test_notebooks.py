"""The notebooks in ``notebooks/`` run top to bottom in a real Jupyter kernel.

Each notebook is executed with ``nbclient`` in a kernel started from *this*
interpreter: the test writes a kernelspec of its own into a temporary
``JUPYTER_PATH``, so it never depends on which ``python3`` kernel a machine
happens to have (a fresh CI machine after ``pip install -e .[dev]`` has only
ipykernel's, whose ``python`` may not be this venv's). The kernel records runs
in a store of the test's own (``DASKFLOW_STORE``) and stores task results in a
folder of the test's own (``DASKFLOW_RESULTS``).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import daskflow
from daskflow.store import open_store

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


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


def _text(cell: nbformat.NotebookNode) -> str:
    """What the cell printed."""
    return "".join(output.get("text", "") for output in cell.outputs)


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


@pytest.mark.timeout(300)
def test_dataframes(kernel: str, tmp_path: Path) -> None:
    notebook = _execute("dataframes.ipynb", kernel, tmp_path)
    cells = {cell["id"]: cell for cell in notebook.cells}
    # three million made-up rows, a little dirty
    assert _text(cells["dataframes-03"]) == "12 partitions\n"
    assert re.fullmatch(
        r"3,000,000 events: [\d,]+ refunds, [\d,]+ without a price\n",
        _text(cells["dataframes-05"]),
    )

    # first run: a task run per partition plus the report, all completed
    first_cell = cells["dataframes-13"]
    assert "sales_report(" in first_cell.source
    summary = _html(first_cell)
    assert "daskflow-summary" in summary
    assert "COMPLETED" in summary
    rows = _rows(summary)
    # completed, failed, retries (one run of clean is retried on purpose), total
    assert rows["clean"] == ["12", "0", "1", "12"]
    assert rows["revenue_report"] == ["1", "0", "0", "1"]
    printed = _text(cells["dataframes-14"]).splitlines()
    assert printed[0] == "Top categories by revenue:"
    assert len(printed) == 4
    assert printed[1].split()[0] == "electronics"  # the seeded data's top category
    assert "COMPLETED" in _html(cells["dataframes-16"])  # the run's card
    # the second run reuses the stored report: the notebook shows it CACHED
    assert "CACHED" in _html(cells["dataframes-19"])
    (state_1, stored_1), (state_2, stored_2) = (
        line.split() for line in _text(cells["dataframes-21"]).splitlines()
    )
    assert (state_1, state_2) == ("COMPLETED", "CACHED")
    assert stored_1 == stored_2  # the cached run points at the first run's result

    # and the run store agrees
    store = open_store(str(tmp_path / "runs.db"))
    try:
        second, first = daskflow.runs(flow="sales-report", store=store)
        assert first.state.type.value == second.state.type.value == "COMPLETED"
        one = first.to_pandas().set_index("name")
        two = second.to_pandas().set_index("name")
    finally:
        store.close()
    # the flaky partition (2024-03-07) failed once and was retried; the others ran once
    attempts = one.loc[one["task_name"] == "clean", "attempts"]
    assert attempts.to_dict() == {f"clean-{i}": 2 if i == 6 else 1 for i in range(12)}
    assert (two.loc[two["task_name"] == "clean", "attempts"] == 1).all()
    assert one.loc["revenue_report", "state"] == "COMPLETED"
    assert two.loc["revenue_report", "state"] == "CACHED"
    assert two.loc["revenue_report", "attempts"] == 0
    location = Path(one.loc["revenue_report", "result_location"])
    assert two.loc["revenue_report", "result_location"] == str(location)
    assert location.parent == tmp_path / "results"
    assert location.suffix == ".parquet"
    assert location.exists()


@pytest.mark.timeout(300)
def test_prefect3_features(kernel: str, tmp_path: Path) -> None:
    notebook = _execute("prefect3_features.ipynb", kernel, tmp_path)
    cells = {cell["id"]: cell for cell in notebook.cells}

    def value(cell_id: str) -> str:
        [result] = [o for o in cells[cell_id].outputs if o["output_type"] == "execute_result"]
        return str(result["data"]["text/plain"])

    # an async flow awaited in the notebook's own loop: 0 + 10 + ... + 70
    assert value("p3-03") == "280"
    # a bare task call, cached the second time; no flow run
    assert _text(cells["p3-05"]) == "49 49 49\n"
    assert value("p3-05") == "[('square', 'CACHED', None), ('square', 'COMPLETED', None)]"
    # artifacts from the flow and its task, on the run's record and its card
    keys = value("p3-07")
    for key in ("'daily-rows', 'table'", "'report-progress', 'progress'", "'report', 'markdown'"):
        assert key in keys
    assert "daily-rows" in _html(cells["p3-08"])
    # a deployment served by another process ran on request
    assert value("p3-10") == "('COMPLETED', {'name': 'daskflow'})"

    store = open_store(str(tmp_path / "runs.db"))
    try:
        [greeting] = daskflow.runs(flow="greet", store=store)
        [crawl] = daskflow.runs(flow="crawl", store=store)
    finally:
        store.close()
    assert greeting.state.type.value == crawl.state.type.value == "COMPLETED"

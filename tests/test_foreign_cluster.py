"""A Dask cluster started elsewhere, as on other hosts: it cannot import the user's files.

A ``dask scheduler`` and a ``dask worker`` process run in a folder of their own
with no ``PYTHONPATH``; the flow file lives in the user's folder, which only
the flow's process can read. ``daskflow run FILE.py:FLOW --cluster ADDRESS``
must still run it: the file's code travels to the scheduler and the workers by
value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client

from daskflow.panel.serve import free_port
from tests.test_cli import daskflow, run_id

FLOW_FILE = """
from daskflow import flow, task


def shout(task, run, state):  # a hook from the same file travels along
    print(f"HOOK {run.name} {state.type.value}")


@task(retries=1, on_completion=[shout])
def scale(x, factor):
    return x * factor


@flow
def etl(xs: list, factor: int = 2):
    return sum(f.result() for f in scale.map(xs, factor))
"""


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A scheduler and one worker process (2 threads), started in a folder of their own."""
    folder = tmp_path_factory.mktemp("elsewhere")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    dask = [sys.executable, "-m", "dask"]
    quiet = {"cwd": folder, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], **quiet
    )
    worker = subprocess.Popen(
        [*dask, "worker", address, "--nthreads", "2", "--no-dashboard"], **quiet
    )
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for process in (worker, scheduler):
            process.terminate()
            process.wait(timeout=30)


def test_a_flow_file_the_cluster_cannot_import_runs_there(tmp_path: Path, address: str):
    (tmp_path / "pipeline.py").write_text(FLOW_FILE)
    store = tmp_path / "runs.db"

    result = daskflow(
        "run", "pipeline.py:etl", "-p", "xs=[1, 2, 3]", "--cluster", address,
        store=store, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "Result: 12" in result.stdout
    shown = json.loads(
        daskflow("runs", "show", run_id(result), "--json", store=store, cwd=tmp_path).stdout
    )
    assert shown["state"] == "COMPLETED"
    assert [t["state"] for t in shown["task_runs"]] == ["COMPLETED"] * 3
    assert all(t["worker"].startswith("tcp://127.0.0.1:") for t in shown["task_runs"])

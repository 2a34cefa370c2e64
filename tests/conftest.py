"""Shared fixtures: the same flows run on every kind of cluster daskflow supports.

``cluster`` is parametrized over ``"sync"``, an in-process ``LocalCluster``
(threads) and a 2-process ``LocalCluster`` (pickling, real worker processes).
Clusters are started once per session: starting one costs seconds.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from daskflow.observers.events import bus
from daskflow.observers.memory import MemoryObserver


def poll_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> None:
    """Wait until ``predicate()`` is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture(scope="session", autouse=True)
def _store_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests record runs (results, journals) in folders of their own, never in ~/.daskflow."""
    import os

    import dask

    path = str(tmp_path_factory.mktemp("store") / "daskflow.db")
    results = str(tmp_path_factory.mktemp("results"))
    journal = str(tmp_path_factory.mktemp("journal"))
    os.environ["DASKFLOW_STORE"] = path  # for subprocesses (CLI, examples)
    os.environ["DASKFLOW_RESULTS"] = results
    os.environ["DASKFLOW_JOURNAL"] = journal
    with dask.config.set(
        {
            "daskflow.store": path,
            "daskflow.results": results,
            "daskflow.journal": journal,
            "daskflow.progress": False,
        }
    ):
        yield


@pytest.fixture(scope="session")
def threads_client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=4, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client
        _close_daskflow_clients_now()  # before their cluster goes: no reconnect attempts


@pytest.fixture(scope="session")
def processes_client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client
        _close_daskflow_clients_now()


@pytest.fixture(params=["sync", "threads", "processes"])
def cluster(request: pytest.FixtureRequest) -> object:
    """Where the flow under test runs: pass it as ``flow.with_options(cluster=...)``."""
    if request.param == "sync":
        return "sync"
    return request.getfixturevalue(f"{request.param}_client")


@pytest.fixture
def observer() -> Iterator[MemoryObserver]:
    """An in-memory observer of every run event during the test."""
    memory = bus.register(MemoryObserver())
    yield memory  # type: ignore[misc]
    bus.unregister(memory)


@pytest.fixture(scope="session", autouse=True)
def _close_daskflow_clients() -> Iterator[None]:
    """Close clients daskflow made (for addresses, cluster objects) while logs still work."""
    yield
    _close_daskflow_clients_now()


def _close_daskflow_clients_now() -> None:
    """Close the clients (and the embedded cluster) daskflow made for flows under test.

    A client daskflow made for a cluster object outlives it otherwise, and its
    reconnect attempts log errors once pytest has closed the streams.
    """
    from daskflow.engine.cluster import close_embedded

    close_embedded()


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec running ipykernel on this interpreter; runs and results stay in tmp_path."""
    folder = tmp_path / "jupyter" / "kernels" / "daskflow-tests"
    folder.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "daskflow tests",
        "language": "python",
    }
    (folder / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("DASKFLOW_STORE", str(tmp_path / "runs.db"))
    monkeypatch.setenv("DASKFLOW_RESULTS", str(tmp_path / "results"))
    return "daskflow-tests"

"""Where flows run: the embedded cluster, an active client, config, addresses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import dask
from distributed import Client

from daskflow import flow
from daskflow.engine.cluster import SYNC, resolve_client
from tests.console import foreign_lines
from tests.resources.tasks import inc

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_default_is_an_embedded_cluster_closed_at_exit():
    code = (
        "from daskflow import flow\n"
        "from tests.resources.tasks import inc\n"
        "from daskflow.engine.cluster import _embedded\n"
        "@flow\n"
        "def f(x: int) -> int:\n"
        "    return inc(inc(x))\n"
        "if __name__ == '__main__':\n"
        "    print(f(1), f(2))\n"
        "    print(type(_embedded['cluster']).__name__)\n"
    )
    result = run_python(code, {"DASK_DASKFLOW__LOCAL_CLUSTER": "{n_workers: 1}"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "4", "LocalCluster"]


def test_the_quickstart_example_runs_quietly_while_another_dashboard_holds_8787(tmp_path):
    with socket.socket() as other:  # another Dask dashboard, say
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            other.bind(("127.0.0.1", 8787))
            other.listen()
        except OSError:
            pass  # something listens there already: all the better
        result = subprocess.run(
            [str(ROOT / "examples" / "quickstart.py")],  # run as a script: its shebang
            capture_output=True,
            text=True,
            timeout=180,
            cwd=tmp_path,  # a script is run from any folder
            # the environment's python3 first on PATH, as an activated venv puts it
            env={
                **os.environ,
                "PATH": os.pathsep.join(
                    [os.path.dirname(sys.executable), os.environ.get("PATH", "")]
                ),
            },
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert "etl over 14 days: total" in result.stdout
    # a first run is quiet: no "Port 8787 is already in use", and no warning from Dask
    # as the embedded cluster closes at exit, whichever of daskflow and distributed was
    # imported first; only the run's own log lines (and its retries)
    assert foreign_lines(result.stderr) == []
    assert "| INFO    | Flow run 'etl-" in result.stderr


def test_config_and_env_select_sync():
    assert resolve_client(None) != SYNC
    with dask.config.set({"daskflow.cluster": "sync"}):
        assert resolve_client(None) == SYNC
    result = run_python(
        "from daskflow.engine.cluster import resolve_client; print(resolve_client(None))",
        {"DASKFLOW__CLUSTER": "sync"},
    )
    assert result.stdout.strip() == "sync", result.stderr


def test_an_active_client_is_used(threads_client):
    address = threads_client.scheduler.address
    with Client(address) as active:  # what a notebook user does
        assert resolve_client(None) is active

        @flow
        def f() -> int:
            return inc(1)

        assert f() == 2


def test_an_address_and_a_cluster_object(threads_client):
    address = threads_client.scheduler.address
    assert resolve_client(address).scheduler.address == address
    assert resolve_client(address) is resolve_client(address)  # one client per address
    assert resolve_client(threads_client.cluster).scheduler.address == address


def test_cli_version():
    result = subprocess.run(
        [sys.executable, "-m", "daskflow.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("daskflow ")

"""The panel beyond 127.0.0.1: a password (HTTP basic auth, user ``daskflow``) or nothing.

``daskflow dashboard --host <an address of this machine>`` runs as a real
subprocess; the panel mounted on a Dask dashboard that listens on 0.0.0.0 is
tested in-process with a real ``LocalCluster``. Requests are real HTTP and
websocket requests (urllib, Tornado's websocket client).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from daskflow import flow, task
from daskflow.panel.auth import is_loopback, password_is_right, websocket_origins

PASSWORD = "correct horse battery staple"


def non_loopback_address() -> str:
    """An IPv4 address of this machine beyond loopback, else the wildcard 0.0.0.0."""
    import psutil

    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not is_loopback(address.address):
                return str(address.address)
    return "0.0.0.0"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def get(url: str, authorization: str | None = None) -> tuple[int, Message, str]:
    """Status, headers and body of a GET (4xx answers included)."""
    request = urllib.request.Request(url)
    if authorization:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


def upgrade(url: str, origin: str, authorization: str | None = None) -> int:
    """Try a websocket handshake: 101 when accepted, else the HTTP status it got."""
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    headers = {"Origin": origin}
    if authorization:
        headers["Authorization"] = authorization

    async def connect() -> int:
        request = HTTPRequest(url, headers=headers, connect_timeout=30, request_timeout=30)
        try:
            connection = await websocket_connect(request, subprotocols=["bokeh", "token"])
        except HTTPClientError as exc:
            return exc.code
        connection.close()
        return 101

    return asyncio.run(connect())


def environment(tmp_path: Path, password: str | None) -> dict[str, str]:
    env = {**os.environ, "DASKFLOW__PROGRESS": "false"}
    env.pop("DASKFLOW_DASHBOARD_PASSWORD", None)
    env.pop("DASKFLOW__DASHBOARD__PASSWORD", None)
    env.pop("DASK_DASKFLOW__DASHBOARD__PASSWORD", None)
    if password is not None:
        env["DASKFLOW_DASHBOARD_PASSWORD"] = password
    return env


def dashboard_command(tmp_path: Path, host: str) -> list[str]:
    store = str(tmp_path / "runs.db")
    return [sys.executable, "-m", "daskflow.cli", "--store", store, "dashboard", "--host", host]


# -- daskflow dashboard ---------------------------------------------------------------


def test_dashboard_beyond_loopback_refuses_to_start_without_a_password(tmp_path):
    result = subprocess.run(
        [*dashboard_command(tmp_path, non_loopback_address()), "--port", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment(tmp_path, None),
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "daskflow.dashboard.password" in lines[0]
    assert "DASKFLOW_DASHBOARD_PASSWORD" in lines[0]


@pytest.fixture
def exposed_dashboard(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """``daskflow dashboard`` on a non-loopback address, password from the env var."""
    host = non_loopback_address()
    server = subprocess.Popen(
        [*dashboard_command(tmp_path, host), "--port", "0", "--allow-origin", "panel.example"],
        cwd=tmp_path,
        env=environment(tmp_path, PASSWORD),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()  # "daskflow panel at http://HOST:PORT/daskflow ..."
        assert "daskflow panel at" in first, first + server.stdout.read()
        port = int(first.split("/daskflow")[0].rsplit(":", 1)[1])
        yield ("127.0.0.1" if host == "0.0.0.0" else host), port
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_dashboard_beyond_loopback_asks_for_the_password(exposed_dashboard):
    host, port = exposed_dashboard
    page = f"http://{host}:{port}/daskflow"

    status, headers, _ = get(page)
    assert status == 401
    assert headers.get("WWW-Authenticate", "").startswith("Basic ")  # the browser's password prompt
    assert get(page, basic("daskflow", "wrong"))[0] == 401
    assert get(page, basic("admin", PASSWORD))[0] == 401
    status, _, body = get(page, basic("daskflow", PASSWORD))
    assert status == 200
    assert "Bokeh" in body
    # static files and the page's metadata are behind the password too
    assert get(f"http://{host}:{port}/static/js/bokeh.min.js")[0] == 401
    assert (
        get(f"http://{host}:{port}/static/js/bokeh.min.js", basic("daskflow", PASSWORD))[0] == 200
    )


def test_dashboard_websocket_needs_the_password_and_an_allowed_origin(exposed_dashboard):
    host, port = exposed_dashboard
    ws = f"ws://{host}:{port}/daskflow/ws"
    own = f"http://{host}:{port}"
    right = basic("daskflow", PASSWORD)

    assert upgrade(ws, own, right) == 101
    assert upgrade(ws, f"http://panel.example:{port}", right) == 101  # --allow-origin
    assert upgrade(ws, own) == 401  # no password: refused before the handshake
    assert upgrade(ws, own, basic("daskflow", "wrong")) == 401
    assert upgrade(ws, "http://evil.example", right) == 403  # a foreign page
    assert upgrade(ws, f"http://evil.example:{port}", right) == 403


def test_dashboard_on_loopback_needs_no_password_and_keeps_foreign_pages_out(tmp_path):
    from daskflow.panel.serve import make_server

    holder: list[Any] = []
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        holder.append(make_server("127.0.0.1", 0, str(tmp_path / "runs.db")))
        ready.set()
        holder[0].io_loop.start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30)
    server = holder[0]
    try:
        base = f"127.0.0.1:{server.port}"
        assert get(f"http://{base}/daskflow")[0] == 200  # this machine only: no password
        assert upgrade(f"ws://{base}/daskflow/ws", f"http://{base}") == 101
        assert upgrade(f"ws://{base}/daskflow/ws", f"http://localhost:{server.port}") == 101
        assert upgrade(f"ws://{base}/daskflow/ws", "http://evil.example") == 403
    finally:
        server.io_loop.add_callback(server.stop)
        server.io_loop.add_callback(server.io_loop.stop)
        thread.join(30)


def test_basic_credentials_are_checked_exactly():
    assert password_is_right(basic("daskflow", "pw"), "pw")
    assert password_is_right(basic("daskflow", "pw:with:colons"), "pw:with:colons")
    assert not password_is_right(basic("daskflow", "pw "), "pw")
    assert not password_is_right(basic("daskflow", ""), "pw")
    assert not password_is_right("Bearer " + base64.b64encode(b"daskflow:pw").decode(), "pw")
    assert not password_is_right("Basic not-base64!", "pw")
    assert not password_is_right(None, "pw")


def test_websocket_origins_are_never_everyone():
    assert websocket_origins("10.1.2.3", 8788) == ["10.1.2.3:8788"]
    assert "panel.example:8788" in websocket_origins("10.1.2.3", 8788, ["panel.example"])
    assert "panel.example:443" in websocket_origins("10.1.2.3", 8788, ["panel.example:443"])
    wildcard = websocket_origins("0.0.0.0", 8788)
    assert "127.0.0.1:8788" in wildcard
    assert f"{socket.gethostname().lower()}:8788" in wildcard
    assert all("*" not in origin for origin in wildcard)
    from daskflow.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        websocket_origins("0.0.0.0", 8788, ["*"])


# -- the panel on a Dask dashboard that listens beyond loopback ----------------------


@task
def square(x: int) -> int:
    return x * x


@pytest.fixture
def store(tmp_path, monkeypatch):
    path = tmp_path / "runs.db"
    monkeypatch.setenv("DASKFLOW_STORE", str(path))
    monkeypatch.delenv("DASKFLOW_DASHBOARD_PASSWORD", raising=False)
    import dask

    with dask.config.set({"daskflow.store": str(path), "daskflow.dashboard.password": None}):
        yield path


def run_on_exposed_dashboard(check, address: str = "0.0.0.0"):
    """Run a flow on a LocalCluster whose dashboard listens on ``address``; call check(base)."""
    from distributed import Client, LocalCluster

    @flow(name="panel-exposed")
    def small() -> int:
        return square(3)

    with (
        LocalCluster(
            n_workers=1,
            processes=False,
            dashboard_address=f"{address}:0",
            silence_logs=False,  # Dask would raise the level of caplog's handler to WARNING
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        assert small.with_options(cluster=client)() == 9  # the flow runs either way
        check(f"127.0.0.1:{cluster.scheduler.http_server.port}")


def test_panel_is_not_mounted_on_an_exposed_dask_dashboard_without_a_password(store, caplog):
    def check(base: str) -> None:
        assert get(f"http://{base}/daskflow")[0] == 404
        assert get(f"http://{base}/status")[0] == 200  # Dask's own pages: the user's choice

    with caplog.at_level(logging.INFO, logger="daskflow.panel"):
        run_on_exposed_dashboard(check)
    said = [r.getMessage() for r in caplog.records if r.name == "daskflow.panel"]
    assert len(said) == 1, said
    assert "not mounted" in said[0]
    assert "daskflow.dashboard.password" in said[0]
    assert "DASKFLOW_DASHBOARD_PASSWORD" in said[0]


def test_panel_on_an_exposed_dask_dashboard_asks_for_the_password(store):
    import dask

    def check(base: str) -> None:
        assert get(f"http://{base}/daskflow")[0] == 401
        assert get(f"http://{base}/daskflow", basic("daskflow", "wrong"))[0] == 401
        status, _, body = get(f"http://{base}/daskflow", basic("daskflow", PASSWORD))
        assert status == 200
        assert "Bokeh" in body
        ws = f"ws://{base}/daskflow/ws"
        right = basic("daskflow", PASSWORD)
        assert upgrade(ws, f"http://{base}", right) == 101
        assert upgrade(ws, f"http://{base}") == 401
        assert upgrade(ws, "http://evil.example", right) == 403
        assert get(f"http://{base}/status")[0] == 200  # Dask's pages are not ours to close

    with dask.config.set({"daskflow.dashboard.password": PASSWORD}):
        run_on_exposed_dashboard(check)


def test_panel_on_a_loopback_dask_dashboard_keeps_foreign_pages_out(store):
    def check(base: str) -> None:
        assert get(f"http://{base}/daskflow")[0] == 200  # this machine only: no password
        ws = f"ws://{base}/daskflow/ws"
        assert upgrade(ws, f"http://{base}") == 101
        # Dask's own pages take any origin ("*"); the panel's websocket does not
        assert upgrade(ws, "http://evil.example") == 403

    run_on_exposed_dashboard(check, address="127.0.0.1")

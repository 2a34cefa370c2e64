"""The daskflow panel as a page of the Dask dashboard (scheduler plugin, navigation link).

What the panel's views show is tested in ``test_panel_components.py`` (on
memory, SQLite and PostgreSQL stores) and in a real browser in
``test_panel_browser.py``.
"""

from __future__ import annotations

import pytest

from daskflow import flow, task


@task
def square(x: int) -> int:
    return x * x


@pytest.fixture
def store(tmp_path, monkeypatch):
    path = tmp_path / "runs.db"
    monkeypatch.setenv("DASKFLOW_STORE", str(path))
    import dask

    with dask.config.set({"daskflow.store": str(path)}):
        yield path


def test_the_panel_is_a_page_of_the_dask_dashboard(store):
    import urllib.request

    from distributed import Client, LocalCluster

    @flow(name="panel-on-dask")
    def small() -> int:
        return square(3)

    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0") as cluster,
        Client(cluster) as client,
    ):
        assert small.with_options(cluster=client)() == 9
        base = f"http://127.0.0.1:{cluster.scheduler.http_server.port}"
        with urllib.request.urlopen(f"{base}/daskflow", timeout=30) as response:
            assert response.status == 200  # a Bokeh page in the dashboard's template
            assert "Bokeh" in response.read().decode()
        with urllib.request.urlopen(f"{base}/status", timeout=30) as response:
            assert 'href="daskflow"' in response.read().decode()  # in the navigation bar

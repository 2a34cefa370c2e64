"""The multi-host cluster (:mod:`tests.multihost.cluster`), started once for the module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.multihost.cluster import Cluster, postgres_bin, started_cluster
from tests.test_panel_browser import browser  # noqa: F401  (the panel's tests use it)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Cluster]:
    pytest.importorskip("psycopg")
    if postgres_bin() is None:
        pytest.skip("no PostgreSQL server here (the CI installs it)")
    with started_cluster(tmp_path_factory.mktemp("multihost")) as cluster:
        terminal = pytestconfig.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:  # the CI log says which kind of hosts ran
            hosts = cluster.hosts
            terminal.write_line(f"\nmulti-host harness: {hosts.mode} ({hosts.network})")
        yield cluster

"""A cluster of six hosts (see :mod:`tests.multihost.hosts`): what runs on each, started.

====== ==========================================================
sched  ``dask scheduler``
w1, w2 ``dask worker`` with 2 worker processes of 1 thread each
db     PostgreSQL (``initdb`` in a temporary folder), the run store
flow   where flows are run from (``daskflow run``)
panel  ``daskflow dashboard`` and a second flow process
====== ==========================================================

The workers run in a folder of their own without ``PYTHONPATH``: they cannot
import the flow file, which only the flow's processes read from the project
folder. :func:`started_cluster` starts it all and stops it all; the tests
(``conftest.py``) and ``benchmarks/multihost.py`` share it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.multihost.hosts import Host, Hosts

PORT = 8786
PG_PORT = 5432


@dataclass
class Cluster:
    """The started hosts, and how to reach what runs on them."""

    hosts: Hosts
    scheduler: str  # tcp://ADDRESS:PORT
    store: str  # the PostgreSQL store's URL
    project: Path  # the flow file's folder
    workers: dict[str, subprocess.Popen[bytes]]  # host name: its `dask worker` process
    env: dict[str, str]

    def host(self, name: str) -> Host:
        return self.hosts.hosts[name]

    def daskflow(self, host: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``daskflow --store STORE ARGS`` on ``host``, run to its end."""
        command = [sys.executable, "-m", "daskflow.cli", "--store", self.store, *args]
        return self.hosts.run(self.host(host), command, cwd=self.project, env=self.env)

    def start_worker(self, host: str) -> None:
        """(Re)start the two worker processes of ``host``."""
        where = self.host(host)
        command = [
            sys.executable, "-m", "dask", "worker", self.scheduler, "--nworkers", "2",
            "--nthreads", "1", "--host", where.address, "--no-dashboard",
        ]  # fmt: skip
        self.workers[host] = self.hosts.start(
            where, command, cwd=self.project.parent / "workers", env=self.env, log=f"{host}.log"
        )


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("postgres")
    return Path(which).parent if which else None


def _as_postgres(argv: list[str]) -> list[str]:
    """``argv`` as the postgres user where this is root (PostgreSQL refuses root)."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _start_postgres(hosts: Hosts, host: Host, bin: Path) -> tuple[str, Path]:
    data = Path(tempfile.mkdtemp(prefix="dfmh-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    subprocess.run(
        _as_postgres([str(bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    with open(data / "pg_hba.conf", "a") as hba:
        hba.write(f"host all all {hosts.network} trust\n")
    server = [
        str(bin / "postgres"), "-D", str(data), "-h", host.address, "-p", str(PG_PORT),
        "-k", str(data), "-c", "fsync=off",
    ]  # fmt: skip
    hosts.start(host, _as_postgres(server), cwd=data, log="postgres.log")
    psql = [str(bin / "psql"), "-h", host.address, "-p", str(PG_PORT), "-U", "postgres"]
    deadline = time.monotonic() + 60
    while True:
        made = hosts.run(host, [*psql, "-c", "CREATE DATABASE daskflow"], cwd=data)
        if made.returncode == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL did not start: {made.stderr}")
        time.sleep(0.3)
    return f"postgresql+psycopg://postgres@{host.address}:{PG_PORT}/daskflow", data


@contextlib.contextmanager
def started_cluster(folder: Path, extra_hosts: tuple[str, ...] = ()) -> Iterator[Cluster]:
    """Start the six hosts (and ``extra_hosts``, flow hosts) in ``folder``; stop all after.

    Raises
    ------
    LookupError
        No PostgreSQL server binaries here (the CI installs them).
    """
    bin = postgres_bin()
    if bin is None:
        raise LookupError("no PostgreSQL server here (the CI installs it)")
    logs, project = folder / "logs", folder / "project"
    for made in (logs, project, folder / "workers"):
        made.mkdir(exist_ok=True)
    hosts = Hosts(logs)
    data: Path | None = None
    try:
        for name in ("sched", "w1", "w2", "db", "flow", "panel", *extra_hosts):
            hosts.add(name)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["DASKFLOW__PROGRESS"] = "false"
        store, data = _start_postgres(hosts, hosts.hosts["db"], bin)
        scheduler = f"tcp://{hosts.hosts['sched'].address}:{PORT}"
        hosts.start(
            hosts.hosts["sched"],
            [sys.executable, "-m", "dask", "scheduler", "--host", hosts.hosts["sched"].address,
             "--port", str(PORT), "--no-dashboard"],
            cwd=folder / "workers", env=env, log="sched.log",
        )  # fmt: skip
        cluster = Cluster(hosts, scheduler, store, project, {}, env)
        for name in ("w1", "w2"):
            cluster.start_worker(name)
        wait_for_workers(cluster, 4)
        yield cluster
    finally:
        hosts.close()
        if data is not None:
            shutil.rmtree(data, ignore_errors=True)


def wait_for_workers(cluster: Cluster, n: int, timeout: float = 90) -> None:
    """Wait until ``n`` workers joined the scheduler (asked from the test process)."""
    from distributed import Client

    with Client(cluster.scheduler, timeout=timeout) as client:
        client.wait_for_workers(n, timeout=timeout)

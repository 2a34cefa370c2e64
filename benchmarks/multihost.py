"""Figures of flows on the multi-host cluster: scheduler CPU, store writes, driver memory.

The cluster is the test suite's (``tests/multihost/``): a ``dask scheduler``,
two worker hosts of 2 processes of 1 thread, PostgreSQL, and flow hosts, each
a Linux network namespace of its own (loopback addresses where namespaces are
not permitted; the output says which). Workloads, each ``daskflow run`` of a
flow file as a user runs it:

- **one flow** of ``--tasks`` trivial task runs (one ``.map``), from one host;
- **N flows at once**: ``--flows`` flow runs of ``--tasks / --flows`` task runs
  each, from three client hosts.

For each: the wall time of the flow processes; the scheduler's CPU seconds
(``psutil``, its process) per task run; PostgreSQL's committed transactions
and rows written (inserted + updated, ``pg_stat_database``) per second and per
task run; the driver's peak resident memory (sampled every 50 ms). Run it as
root on an otherwise quiet machine::

    python benchmarks/multihost.py                   # 10,000 task runs, 10 flows
    python benchmarks/multihost.py --tasks 100000
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLOW_FILE = """
from daskflow import flow, task


@task
def inc(i):
    return i + 1


@flow
def fan(n: int = 1000):
    return sum(f.result() for f in inc.map(range(n)))
"""


def pg_counters(cluster: Any) -> tuple[float, int, int]:
    """(time, committed transactions, rows inserted + updated) of the store's database."""
    import sqlalchemy as sa

    engine = sa.create_engine(cluster.store)
    try:
        with engine.connect() as conn:
            commits, rows = conn.execute(
                sa.text(
                    "SELECT xact_commit, tup_inserted + tup_updated FROM pg_stat_database "
                    "WHERE datname = current_database()"
                )
            ).one()
    finally:
        engine.dispose()
    return time.monotonic(), int(commits), int(rows)


def scheduler_cpu(cluster: Any) -> float:
    """CPU seconds the scheduler's process has used."""
    import psutil

    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "scheduler" in cmdline and "dask" in cmdline and "--port" in cmdline:
            times = process.cpu_times()
            return float(times.user + times.system)
    raise LookupError("no dask scheduler process")


def run_flows(cluster: Any, hosts: list[str], tasks: int) -> tuple[list[float], int]:
    """Run one ``fan`` flow of ``tasks`` on each host at once: (wall seconds, peak RSS bytes)."""
    import psutil

    command = [
        sys.executable, "-m", "daskflow.cli", "--store", cluster.store, "run", "flows.py:fan",
        "-p", f"n={tasks}", "--cluster", cluster.scheduler,
    ]  # fmt: skip
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            cluster.host(h).command(command),
            cwd=cluster.project,
            env=cluster.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for h in hosts
    ]
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    peak = max(peak, psutil.Process(process.pid).memory_info().rss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    walls = []
    for process in processes:
        out, err = process.communicate(timeout=3600)
        walls.append(time.monotonic() - started)
        if process.returncode != 0 or f"Result: {sum(range(1, tasks + 1))}" not in out:
            raise RuntimeError(f"a flow failed:\n{out}\n{err}")
    done.set()
    sampler.join()
    return walls, peak


def measure(cluster: Any, label: str, hosts: list[str], tasks: int) -> dict[str, Any]:
    cpu0, (t0, commits0, rows0) = scheduler_cpu(cluster), pg_counters(cluster)
    walls, peak = run_flows(cluster, hosts, tasks)
    cpu1, (t1, commits1, rows1) = scheduler_cpu(cluster), pg_counters(cluster)
    total = tasks * len(hosts)
    seconds = t1 - t0
    return {
        "workload": label,
        "task runs": total,
        "wall s": max(walls),
        "scheduler CPU ms/task": (cpu1 - cpu0) / total * 1000,
        "PG commits/s": (commits1 - commits0) / seconds,
        "PG rows/s": (rows1 - rows0) / seconds,
        "PG rows/task run": (rows1 - rows0) / total,
        "driver peak MiB": peak / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--flows", type=int, default=10)
    args = parser.parse_args()

    from tests.multihost.cluster import started_cluster

    with (
        tempfile.TemporaryDirectory(prefix="dfmh-bench-") as folder,
        started_cluster(Path(folder), extra_hosts=("flow2",)) as cluster,
    ):
        (cluster.project / "flows.py").write_text(FLOW_FILE)
        hosts = cluster.hosts
        print(f"hosts: {hosts.mode} ({hosts.network}); 2 worker hosts of 2 processes")
        run_flows(cluster, ["flow"], 100)  # untimed: imports, connections, the store's tables
        rows = [measure(cluster, "one flow", ["flow"], args.tasks)]
        clients = ["flow", "flow2", "panel"]
        per = max(args.tasks // args.flows, 1)
        rows.append(
            measure(
                cluster,
                f"{args.flows} flows from 3 hosts",
                [clients[i % 3] for i in range(args.flows)],
                per,
            )
        )
    columns = list(rows[0])
    print(" | ".join(columns))
    for row in rows:
        print(
            " | ".join(
                f"{row[c]:,.2f}"
                if isinstance(row[c], float)
                else f"{row[c]:,}"
                if isinstance(row[c], int)
                else str(row[c])
                for c in columns
            )
        )


if __name__ == "__main__":
    main()

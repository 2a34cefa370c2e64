"""Measure async tasks: an async flow against raw ``asyncio.gather`` and a sync flow.

Workloads (``--tasks`` N, default 1,000, each waiting ``--sleep`` s, default 0.01)
--------------------------------------------------------------------------------
raw          ``asyncio.gather`` of N ``asyncio.sleep`` coroutines, in this process:
             the floor (no tracking, no cluster, everything concurrent).
async-map    an ``async def`` flow awaiting ``fetch.map(range(N))`` of an
             ``async def`` task (batched: a chunk's elements run concurrently on one
             event loop of the worker).
async-gather an ``async def`` flow awaiting ``asyncio.gather`` of N ``fetch.submit``
             futures (one Dask task each).
sync-map     a sync flow of ``nap.map(range(N))``, ``time.sleep`` in a sync task.

Every daskflow workload runs on one LocalCluster (2 worker processes of 2 threads,
started once), recording into a temporary SQLite store, alternating with the others,
``--repeats`` times; the table shows the median wall time of each and its ratio to
``raw``. Run it as::

    python benchmarks/async_flows.py
    python benchmarks/async_flows.py --tasks 200 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable

SLEEP = 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--sleep", type=float, default=SLEEP)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="daskflow-async-bench-")
    os.environ["DASKFLOW_STORE"] = os.path.join(folder, "runs.db")
    os.environ["DASKFLOW__PROGRESS"] = "false"
    os.environ["DASKFLOW__LOGGING__CONSOLE_LEVEL"] = "OFF"

    import dask
    from distributed import Client, LocalCluster

    from daskflow import flow, task

    n, pause = args.tasks, args.sleep

    @task
    async def fetch(i: int) -> int:
        await asyncio.sleep(pause)
        return i

    @task
    def nap(i: int) -> int:
        time.sleep(pause)
        return i

    @flow
    async def async_map() -> int:
        return sum(await fetch.map(range(n)))

    @flow
    async def async_gather() -> int:
        return sum(await asyncio.gather(*[fetch.submit(i) for i in range(n)]))

    @flow
    def sync_map() -> int:
        return sum(nap.map(range(n)).result())

    async def raw() -> int:
        async def one(i: int) -> int:
            await asyncio.sleep(pause)
            return i

        return sum(await asyncio.gather(*[one(i) for i in range(n)]))

    workloads: dict[str, Callable[[], int]] = {
        "raw": lambda: asyncio.run(raw()),
        "async-map": lambda: asyncio.run(async_map()),
        "async-gather": lambda: asyncio.run(async_gather()),
        "sync-map": sync_map,
    }
    times: dict[str, list[float]] = {name: [] for name in workloads}
    with (
        LocalCluster(n_workers=2, threads_per_worker=2, dashboard_address=":0") as cluster,
        Client(cluster) as client,
        dask.config.set({"daskflow.cluster": client}),
    ):
        for name, run in workloads.items():  # warm up: imports, worker code
            assert run() == sum(range(n)), name
        for _ in range(args.repeats):
            for name, run in workloads.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    floor = statistics.median(times["raw"])
    print(f"{n} tasks of asyncio.sleep({pause}) / time.sleep, median of {args.repeats}")
    print(f"{'workload':<14}{'median s':>10}{'x raw':>9}")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"{name:<14}{median:>10.3f}{median / floor:>9.1f}")
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()

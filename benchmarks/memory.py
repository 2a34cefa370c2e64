"""How much memory the driver needs to record a flow of many task runs.

Runs one flow of ``N`` (default 100,000) trivial mapped tasks plus a reduce on
a ``LocalCluster(n_workers=2, threads_per_worker=1)``, recording into a fresh
SQLite run store, and samples the driver's resident memory (RSS) every 0.5 s
with psutil. Prints the RSS before the flow, the peak during it, and after;
then checks the store holds ``N + 1`` task runs.

Targets (issue 14): the driver's growth at 100,000 task runs within raw
Dask's + 150 MiB, and no growth across repeated flows in one process
(``--repeat``: the RSS after each of several flows).

    python benchmarks/memory.py            # daskflow, then raw Dask: two processes each
    python benchmarks/memory.py -n 20000
    python benchmarks/memory.py -n 10000 --repeat 6
    python benchmarks/memory.py --variant raw
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import dask
import psutil
from distributed import Client, LocalCluster

import daskflow
from daskflow import flow, task


@task
def inc(x: int) -> int:
    return x + 1


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@flow(name="bench-memory")
def many(n: int) -> int:
    return total(inc.map(range(n)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="mapped task runs (default 100,000)")
    parser.add_argument(
        "--variant",
        choices=["both", "daskflow", "raw"],
        default="both",
        help="daskflow (the flow, recorded), raw (the same work as client.map + submit), "
        "or both (default: each in a process of its own)",
    )
    parser.add_argument("--store", default="temp", help="'temp' (default), 'none' or a URL")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the flow this many times in one process"
    )
    args = parser.parse_args()
    if args.variant == "both":
        for variant in ("daskflow", "raw"):
            command = [sys.executable, __file__, "-n", str(args.n), "--variant", variant]
            command += ["--store", args.store, "--repeat", str(args.repeat)]
            subprocess.run(command, check=True)
        return
    store = args.store
    if store == "temp":
        store = str(Path(tempfile.mkdtemp(prefix="daskflow-mem-")) / "daskflow.db")
    process = psutil.Process()
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], process.memory_info().rss)

    mib = 1024 * 1024
    with (
        dask.config.set(
            {
                "daskflow.store": store,
                "daskflow.progress": False,
                "daskflow.logging.console-level": "WARNING",
            }
        ),
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        flow_on = many.with_options(cluster=client)
        if args.variant == "raw":

            def flow_on(n: int) -> int:
                futures = client.map(inc.fn, range(n), pure=False)
                return client.submit(total.fn, futures, pure=False).result()

        flow_on(10)  # warm up: the cluster, the store, the imports
        before = process.memory_info().rss
        peak[0] = before
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        afters: list[float] = []
        start = time.perf_counter()
        for _ in range(args.repeat):
            result = flow_on(args.n)
            assert result == sum(range(1, args.n + 1))
            afters.append(process.memory_info().rss / mib)
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    recorded = 0
    if args.variant == "daskflow" and store != "none":
        run = daskflow.runs(flow="bench-memory", limit=1, store=store)[0]
        recorded = sum(sum(counts.values()) for counts in run.task_counts().values())
    flows = f"{args.repeat} flows of " if args.repeat > 1 else ""
    print(f"{args.variant}: {flows}{args.n + 1:,} tasks in {seconds:.1f} s, recorded: {recorded:,}")
    print(
        f"  driver RSS: before {before / mib:.0f} MiB, peak {peak[0] / mib:.0f} MiB "
        f"(+{(peak[0] - before) / mib:.0f}), after {afters[-1]:.0f} MiB"
    )
    if args.repeat > 1:
        print("  after each flow: " + ", ".join(f"{a:.0f}" for a in afters) + " MiB")


if __name__ == "__main__":
    main()

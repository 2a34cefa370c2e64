"""Prefect 3 side by side with daskflow and raw Dask, on the same cluster, in one session.

Needs Prefect and prefect-dask next to daskflow; install them in a venv of their own
(Prefect pins many packages), with the ``compare`` extra::

    python -m venv /tmp/prefect-venv
    /tmp/prefect-venv/bin/pip install -e ".[compare]"
    /tmp/prefect-venv/bin/python benchmarks/compare_prefect.py

Prefect needs an API: the script runs a temporary Prefect server the way Prefect's
own tests do (``prefect.testing.utilities.prefect_test_harness``: a subprocess
server on a free local port with a temporary SQLite database), with ``PREFECT_HOME``
in a temporary folder, analytics off and console logging at WARNING. The server is
stopped, and the folder removed, before the script exits. daskflow records its runs
into a new SQLite file in a temporary folder, as in ``overhead.py``.

Workloads (the functions of ``overhead.py``)
--------------------------------------------
fanout  ``inc(i)`` for ``i < N`` (1,000), then ``total(list)``.
chain   ``inc`` ``N`` times (200), each taking the previous result.
frames  ``P`` partitions (40) of 250,000 rows, filtered, grouped and combined.

Variants
--------
prefect-threads  ``@prefect.flow(task_runner=ThreadPoolTaskRunner())``, its defaults.
prefect-dask     ``@prefect.flow(task_runner=DaskTaskRunner(address=...))`` on the
                 cluster below. At about 0.1 s per task it runs fan-out and chain at
                 a tenth of N (100 and 20); their figures are scaled linearly by the
                 number of tasks and marked ``*``. frames runs at full size.
raw-dask         ``client.map`` / ``client.submit`` futures, ``pure=False``.
daskflow         ``@flow(cluster=client)`` of ``@task`` functions.

Dask runs on one ``LocalCluster(n_workers=2, threads_per_worker=1)`` started once.
Each variant runs once untimed (small N), then the variants take turns in that
order, ``--repeats`` times. A timed span is the flow (or graph) call until its
result is back; for Prefect it also waits until Prefect's client-side event and
log queues have been sent to the API (on the workers too, for prefect-dask), since
a flow can return with thousands of state events still queued and the next run
would pay for them. The JSON has the flow-call-only times as well (``returned_s``).
After each Prefect run, untimed, the script waits until the API server process is
idle again (``settle_s`` in the JSON), so that the server digesting one run's events
does not slow the next variant's turn.

Reading the output
------------------
``median s`` columns: the median wall time of each variant. Ratios are paired:
in each turn, the variant's time over daskflow's time in the same turn (for
``daskflow/raw``, daskflow's over raw Dask's), then the median over the turns, so a
machine that slows down during the run moves both sides alike. ``P-thr/df`` above 1
means Prefect's thread runner is that many times slower than daskflow on the same
work; ``df/raw`` is what daskflow adds over raw Dask (see ``overhead.py`` for its
targets). A ``*`` marks a figure extrapolated from the smaller N. Timings on a
small or shared machine are noisy: look at the load average printed at the top.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import inspect
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import dask
from distributed import Client, LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overhead  # the workloads and the daskflow flows of overhead.py

WORKLOADS = ("fanout", "chain", "frames")
LETTER = {"fanout": "a", "chain": "b", "frames": "c"}
VARIANTS = ("prefect-threads", "prefect-dask", "raw-dask", "daskflow")
FULL = {"fanout": 1_000, "chain": 200, "frames": 40}
QUICK = {"fanout": 200, "chain": 50, "frames": 8}
#: prefect-dask runs at a tenth of N (not frames: 41 tasks take a few seconds)
PREFECT_DASK_FULL = {"fanout": 100, "chain": 20, "frames": 40}
PREFECT_DASK_QUICK = {"fanout": 20, "chain": 10, "frames": 8}
WARMUP = {"fanout": 20, "chain": 5, "frames": 2}

#: quiet as Prefect is here: no progress bar, no INFO line per flow run on the console
DASKFLOW_CONFIG = {"daskflow.progress": False, "daskflow.logging.console-level": "WARNING"}

Runner = Callable[[int], Any]


def n_tasks(workload: str, n: int) -> int:
    return n if workload == "chain" else n + 1


def prefect_env(home: Path) -> None:
    """Point Prefect at ``home`` and quiet it; before ``import prefect`` and the cluster."""
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
            "PREFECT_LOGGING_LEVEL": "WARNING",
            # Prefect's console handler sits on the root logger, so it would print every
            # INFO record that propagates there (daskflow's run logs too)
            "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        }
    )


def flush_prefect() -> None:
    """Wait until Prefect's queued events and logs reach the API (the queues restart on use)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    EventsWorker.drain_all(at_exit=False)
    APILogWorker.drain_all(at_exit=False)


async def flush_prefect_on_worker() -> None:
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (EventsWorker, APILogWorker):
        waiting = service.drain_all(at_exit=False)
        if inspect.isawaitable(waiting):
            await waiting


def prefect_runners(
    client: Client, address: str, returned: list[float]
) -> dict[str, dict[str, Runner]]:
    """The workloads as Prefect flows, on the thread pool and on the Dask runner.

    Each runner appends to ``returned`` the moment its flow call returned, before the flush.
    """
    import prefect
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect.utilities.annotations import unmapped
    from prefect_dask import DaskTaskRunner

    inc_t, total_t = prefect.task(overhead.inc), prefect.task(overhead.total)
    summary_t, combine_t = prefect.task(overhead.partition_summary), prefect.task(overhead.combine)

    def fan(n: int) -> int:
        return total_t(inc_t.map(range(n)))

    def chain(n: int) -> int:
        fut = inc_t.submit(0)
        for _ in range(n - 1):
            fut = inc_t.submit(fut)
        return fut.result()

    def frames(n: int) -> Any:
        return combine_t(summary_t.map(range(n), n_rows=unmapped(overhead.ROWS)))

    bodies = {"fanout": fan, "chain": chain, "frames": frames}
    threads = {
        w: prefect.flow(name=f"bench-{w}", task_runner=ThreadPoolTaskRunner())(f)
        for w, f in bodies.items()
    }
    on_dask = {
        w: prefect.flow(name=f"bench-{w}-dask", task_runner=DaskTaskRunner(address=address))(f)
        for w, f in bodies.items()
    }

    def with_flush(run: Runner, workers: bool) -> Runner:
        def timed(n: int) -> Any:
            result = run(n)
            returned.append(time.perf_counter())
            flush_prefect()
            if workers:
                client.run(flush_prefect_on_worker)
            return result

        return timed

    return {
        "prefect-threads": {w: with_flush(f, False) for w, f in threads.items()},
        "prefect-dask": {w: with_flush(f, True) for w, f in on_dask.items()},
    }


def bind(run: Callable[[Client, int], Any], client: Client) -> Runner:
    return lambda n: run(client, n)


def expected(workload: str, n: int) -> int | None:
    return {"fanout": n * (n + 1) // 2, "chain": n}.get(workload)


def run_workload(
    workload: str,
    runners: dict[str, Runner],
    sizes: dict[str, int],
    full: int,
    repeats: int,
    returned: list[float],
    settle: Callable[[], float],
) -> dict[str, Any]:
    prefects = [v for v in runners if v.startswith("prefect")]
    for variant, run in runners.items():
        print(f"  ({workload}) {variant:<16} warm-up", flush=True)
        run(WARMUP[workload])
        if variant in prefects:
            settle()
    times: dict[str, list[float]] = {v: [] for v in runners}
    returned_s: dict[str, list[float]] = {v: [] for v in prefects}
    settle_s: dict[str, list[float]] = {v: [] for v in prefects}
    reference: Any = None
    for rep in range(repeats):
        for variant, run in runners.items():
            n = sizes[variant]
            start = time.perf_counter()
            result = run(n)
            seconds = time.perf_counter() - start
            scale = n_tasks(workload, full) / n_tasks(workload, n)
            settled = ""
            if variant in prefects:
                returned_s[variant].append((returned[-1] - start) * scale)
                settle_s[variant].append(settle())
                settled = f"; server idle {settle_s[variant][-1]:.1f} s later"
            want = expected(workload, n)
            if want is not None and result != want:
                raise RuntimeError(f"({workload}) {variant} returned {result!r}, not {want!r}")
            if n == full:
                if reference is None:
                    reference = result
                elif not overhead.same(reference, result):
                    raise RuntimeError(f"({workload}) {variant} returned a different result")
            times[variant].append(seconds * scale)
            note = f" (N={n}, x{scale:.2f} = {seconds * scale:.3f} s*)" if scale != 1 else ""
            print(
                f"  ({workload}) {variant:<16} {rep + 1}/{repeats}: {seconds:.3f} s{note}{settled}",
                flush=True,
            )

    def paired(num: str, den: str) -> float:
        return statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))

    return {
        "workload": workload,
        "size": full,
        "n_tasks": n_tasks(workload, full),
        "measured_size": {v: sizes[v] for v in runners},
        "extrapolated": {v: sizes[v] != full for v in runners},
        "times_s": times,
        "returned_s": returned_s,
        "settle_s": settle_s,
        "median_s": {v: statistics.median(t) for v, t in times.items()},
        "ratios": {
            "prefect-threads/daskflow": paired("prefect-threads", "daskflow"),
            "prefect-dask/daskflow": paired("prefect-dask", "daskflow"),
            "daskflow/raw-dask": paired("daskflow", "raw-dask"),
        },
    }


def print_report(rows: list[dict[str, Any]]) -> None:
    heads = ["P-thr/df", "P-dask/df", "df/raw"]
    print(f"\n{'workload':<14}{'tasks':>6}" + "".join(f"{v:>17}" for v in VARIANTS), end="")
    print("".join(f"{h:>11}" for h in heads))
    extrapolated: list[str] = []
    for r in rows:
        line = f"{r['workload'] + ' ' + str(r['size']):<14}{r['n_tasks']:>6}"
        for v in VARIANTS:
            star = "*" if r["extrapolated"][v] else " "
            line += f"{r['median_s'][v]:>16.3f}{star}"
        for key, value in r["ratios"].items():
            star = (
                "*" if key.startswith("prefect-dask") and r["extrapolated"]["prefect-dask"] else " "
            )
            line += f"{value:>10.2f}{star}"
        print(line.rstrip())
        if r["extrapolated"]["prefect-dask"]:
            extrapolated.append(f"{r['workload']} from N={r['measured_size']['prefect-dask']}")
    print(
        "median s per variant; ratios: paired per turn, median over turns "
        "(P-thr = prefect-threads, P-dask = prefect-dask, df = daskflow, raw = raw-dask)."
    )
    if extrapolated:
        print(f"* prefect-dask scaled linearly by task count: {', '.join(extrapolated)}.")


def versions() -> dict[str, str]:
    out = {}
    for dist in ("prefect", "prefect-dask", "dask", "distributed", "daskflow"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


@contextlib.contextmanager
def prefect_server() -> Iterator[Callable[[], float]]:
    """A temporary Prefect API server and SQLite database, as Prefect's test harness runs.

    Yields ``settle()``: wait, untimed, until the server process is idle (its CPU use
    under 10 % over half a second, at most 60 s) and return the seconds waited. The
    server goes on digesting a flow run's events after the flow has returned; without
    the wait it would share the two cores with the next variant's turn.
    """
    import psutil
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        popen = SubprocessASGIServer._instances[None].server_process
        server = psutil.Process(popen.pid) if popen is not None else None

        def settle() -> float:
            start = time.perf_counter()
            while server is not None and time.perf_counter() - start < 60:
                if server.cpu_percent(interval=0.5) < 10:
                    break
            return time.perf_counter() - start

        yield settle


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time the same workloads as Prefect 3 flows (ThreadPoolTaskRunner and "
        "DaskTaskRunner), raw Dask futures and daskflow flows, taking turns, on one "
        "LocalCluster(n_workers=2, threads_per_worker=1). Needs the `compare` extra.",
        epilog="Workloads: fanout = 1,000 inc + reduce, chain = 200 inc, frames = 40 x "
        "250k-row dataframe partitions. prefect-dask runs fanout and chain at N/10 and is "
        "scaled up (marked *).",
    )
    parser.add_argument("--repeats", type=int, metavar="N", help="turns (default 3; --quick: 1)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes (fanout 200, chain 50, frames 8; prefect-dask 20/10/8), 1 turn",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    elif args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    found = versions()
    if found["prefect"] == "not installed" or found["prefect-dask"] == "not installed":
        print("Prefect and prefect-dask are needed: pip install -e '.[compare]'", file=sys.stderr)
        return 2
    overhead.import_daskflow()
    cloudpickle.register_pickle_by_value(overhead)  # workers need not find benchmarks/
    full = QUICK if args.quick else FULL
    small = PREFECT_DASK_QUICK if args.quick else PREFECT_DASK_FULL
    load = os.getloadavg()
    print("load average: {:.2f} {:.2f} {:.2f} (1, 5, 15 min)".format(*load))
    print(", ".join(f"{k} {v}" for k, v in found.items()), f"(Python {sys.version.split()[0]})")
    home = Path(tempfile.mkdtemp(prefix="daskflow-vs-prefect-"))
    prefect_env(home / "prefect")
    store = str(home / "daskflow.db")
    rows: list[dict[str, Any]] = []
    try:
        with (
            dask.config.set(DASKFLOW_CONFIG | {"daskflow.store": store}),
            LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster,
            Client(cluster) as client,
            prefect_server() as settle,
        ):
            flows = overhead.daskflow_runners(client)
            returned: list[float] = []
            prefect = prefect_runners(client, cluster.scheduler_address, returned)
            raw = {
                "fanout": overhead.fan_futures,
                "chain": overhead.chain_futures,
                "frames": overhead.frames_futures,
            }
            for w in WORKLOADS:
                print(f"workload {w}, size {full[w]}", flush=True)
                runners: dict[str, Runner] = {
                    "prefect-threads": prefect["prefect-threads"][w],
                    "prefect-dask": prefect["prefect-dask"][w],
                    "raw-dask": bind(raw[w], client),
                    "daskflow": bind(flows[LETTER[w]], client),
                }
                sizes = {v: full[w] for v in VARIANTS} | {"prefect-dask": small[w]}
                rows.append(
                    run_workload(w, runners, sizes, full[w], args.repeats, returned, settle)
                )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print_report(rows)
    load_end = os.getloadavg()
    print("load average at the end: {:.2f} {:.2f} {:.2f}".format(*load_end))
    if args.json:
        meta = {
            "repeats": args.repeats,
            "quick": args.quick,
            "load_average": load,
            "load_average_end": load_end,
            "versions": found,
            "rows_per_partition": overhead.ROWS,
        }
        args.json.write_text(json.dumps({"config": meta, "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

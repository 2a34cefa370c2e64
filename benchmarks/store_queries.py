"""Time the run store's queries on a big SQLite store: what ``daskflow runs`` does.

The store is filled with ``--flow-runs`` flow runs (1,000) holding
``--task-runs`` task runs in all (1,000,000): one big flow run holds a
quarter of them, the others share the rest. Every task run is created, goes
RUNNING and ends COMPLETED (one in 50 FAILED, with a traceback), so the
store holds about 3 rows per task run (a task run and two transitions), plus
a few log records per flow run. The fill goes through the store's own write
path (:meth:`SQLStore.write`), in batches of 10,000 task runs (30,000
events), as the event bus would deliver them; its rate is printed.

Then each query is timed, median of ``--repeats`` (5) after one warm-up:

- ``open``: opening the store (schema check, crashed-run check): every CLI
  command pays it;
- ``runs list``: ``list_flow_runs(limit=20)``;
- ``runs show``: ``get_flow_run`` by an 8-character prefix,
  ``count_task_runs`` and ``list_task_runs(limit=50)`` of the biggest run;
- the transitions and logs of the biggest run's flow.

Target: under 1 s each. If the ``daskflow`` command has ``runs list`` /
``runs show`` subcommands, they are timed too (whole processes, so they
include Python's start and imports). Run it as::

    python benchmarks/store_queries.py                    # fill a temporary store, time
    python benchmarks/store_queries.py --store big.db     # keep the store (reused if full)
    python benchmarks/store_queries.py --task-runs 100000 --flow-runs 100   # quick
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if importlib.util.find_spec("daskflow") is None:  # not installed: use this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from daskflow.observers.events import (
    Event,
    FlowRunCreated,
    LogEmitted,
    StateChanged,
    TaskRunCreated,
)
from daskflow.states import State, StateType
from daskflow.store.sql import SQLStore

BATCH = 10_000
TARGET = 1.0
TRACEBACK = 'Traceback (most recent call last):\n  File "etl.py", line 12\nValueError: bad row\n'


def flow_sizes(flow_runs: int, task_runs: int) -> list[int]:
    """Task runs per flow run: the first holds a quarter, the others share the rest."""
    big = task_runs // 4 if flow_runs > 1 else task_runs
    rest, extra = divmod(task_runs - big, max(flow_runs - 1, 1))
    return [big] + [rest + (1 if i < extra else 0) for i in range(flow_runs - 1)]


def events_of(n: int, size: int, t: float) -> Iterator[list[Event]]:
    """The events of flow run ``n`` with ``size`` task runs, in batches as the engine sends them.

    Per 10,000 task runs: one batch creating them (PENDING, from the client's
    graph submission), then one with their RUNNING and final states (from the
    workers): the second batch updates rows written by an earlier one.
    """
    fid = f"{n:08x}" + os.urandom(12).hex()
    yield [
        FlowRunCreated(fid, f"etl-{n % 7}", f"etl-{n}", {"day": n, "factor": 1.5}, None, t),
        StateChanged(fid, None, State(StateType.PENDING, t)),
        StateChanged(fid, None, State(StateType.RUNNING, t + 0.01), 1),
        LogEmitted(fid, None, t + 0.01, 20, "daskflow", f"flow run etl-{n} started"),
    ]
    tags = frozenset({"etl"})
    for start in range(0, size, BATCH):
        created: list[Event] = []
        ran: list[Event] = []
        for i in range(start, min(start + BATCH, size)):
            tid = f"{fid[:16]}{i:016x}"
            task = ("extract", "transform", "load")[i % 3]
            when = t + 0.02 + i * 1e-4
            created.append(TaskRunCreated(tid, fid, task, f"{task}-{i}", i, tags, None, when))
            created.append(StateChanged(fid, tid, State(StateType.PENDING, when)))
            ran.append(StateChanged(fid, tid, State(StateType.RUNNING, when), 1, "tcp://w:1"))
            if i % 50 == 49:
                end = State(
                    StateType.FAILED,
                    when + 0.01,
                    "ValueError: bad row",
                    "ValueError",
                    "bad row",
                    TRACEBACK,
                )
            else:
                end = State(StateType.COMPLETED, when + 0.01)
            ran.append(StateChanged(fid, tid, end, 1, "tcp://w:1"))
        yield created
        yield ran
    done = t + 0.03 + size * 1e-4
    yield [
        StateChanged(fid, None, State(StateType.COMPLETED, done), 1),
        LogEmitted(fid, None, done, 20, "daskflow", f"flow run etl-{n} finished"),
    ]


def fill(path: str, flow_runs: int, task_runs: int) -> None:
    store = SQLStore(path)
    start = time.perf_counter()
    written = 0
    t0 = time.time() - flow_runs * 60.0
    try:
        for n, size in enumerate(flow_sizes(flow_runs, task_runs)):
            pending: list[Event] = []  # small flow runs' batches go together, as on the bus
            for batch in events_of(n, size, t0 + n * 60.0):
                if len(pending) + len(batch) > 2 * BATCH:
                    store.write(pending)
                    pending = []
                pending += batch
            store.write(pending)
            written += size
            if n % 100 == 0 or written == task_runs:
                rate = written / (time.perf_counter() - start)
                print(f"  {n + 1:5d} flow runs, {written:9,d} task runs ({rate:,.0f}/s)", end="\r")
    finally:
        store.close()
    seconds = time.perf_counter() - start
    print(f"\nfilled in {seconds:.0f} s: {task_runs / seconds:,.0f} task runs/s (write path)")


def timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def cli() -> str | None:
    """The ``daskflow`` command beside this Python (a virtual environment's), or on PATH."""
    beside = Path(sys.executable).with_name("daskflow")
    return str(beside) if beside.exists() else shutil.which("daskflow")


def cli_has(exe: str, *words: str) -> bool:
    done = subprocess.run([exe, *words, "--help"], capture_output=True, check=False)
    return done.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", help="SQLite file to fill (reused when it holds runs)")
    parser.add_argument("--flow-runs", type=int, default=1_000)
    parser.add_argument("--task-runs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    folder = None
    if args.store is None:
        folder = tempfile.mkdtemp(prefix="daskflow-bench-")
        path = os.path.join(folder, "daskflow.db")
    else:
        path = os.path.abspath(args.store)
    try:
        store = SQLStore(path)
        empty = not store.list_flow_runs(limit=1)
        store.close()
        if empty:
            print(f"filling {path} with {args.flow_runs:,} flow runs, {args.task_runs:,} task runs")
            fill(path, args.flow_runs, args.task_runs)
        run(path, args.repeats)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def run(path: str, repeats: int) -> None:
    store = SQLStore(path)
    runs = store.list_flow_runs(limit=None)
    sizes = {r.id: sum(sum(c.values()) for c in store.count_task_runs(r.id).values()) for r in runs}
    biggest = max(sizes, key=lambda i: sizes[i])
    mb = os.path.getsize(path) / 2**20
    print(
        f"\nstore: {path} ({mb:,.0f} MiB): {len(runs):,} flow runs, "
        f"{sum(sizes.values()):,} task runs; biggest run {biggest[:8]} has {sizes[biggest]:,}\n"
    )
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("open the store", lambda: SQLStore(path).close()),
        ("runs list: list_flow_runs(limit=20)", lambda: store.list_flow_runs(limit=20)),
        ("runs show: get_flow_run(8-char prefix)", lambda: store.get_flow_run(biggest[:8])),
        ("runs show: count_task_runs(biggest)", lambda: store.count_task_runs(biggest)),
        (
            "runs show: list_task_runs(biggest, limit=50)",
            lambda: store.list_task_runs(biggest, limit=50),
        ),
        (
            "list_task_runs(biggest, task='load', limit=50)",
            lambda: store.list_task_runs(biggest, task="load", limit=50),
        ),
        ("list_transitions(biggest)", lambda: store.list_transitions(biggest)),
        ("list_logs(biggest)", lambda: store.list_logs(biggest)),
    ]
    exe = cli()
    env = {**os.environ, "DASKFLOW_STORE": path}
    for words in (["runs", "list"], ["runs", "show", biggest[:8]]):
        if exe is not None and cli_has(exe, *words[:2]):
            command = [exe, *words]
            cases.append(
                (
                    "CLI: daskflow " + " ".join(words),
                    lambda c=command: subprocess.run(c, env=env, capture_output=True, check=True),
                )
            )
        else:
            print(f"(no `daskflow {' '.join(words[:2])}` command here: not timed)")
    print(f"{'operation':48} {'median s':>9} {'min s':>8} {'max s':>8}  target")
    for name, fn in cases:
        times = timed(fn, repeats)
        median = statistics.median(times)
        verdict = "ok" if median < TARGET else "SLOW"
        print(
            f"{name:48} {median:9.4f} {min(times):8.4f} {max(times):8.4f}  < {TARGET:g} s {verdict}"
        )
    store.close()


if __name__ == "__main__":
    main()

"""Fault scenarios shared by the fast tests and ``benchmarks/chaos.py``.

Each scenario is a plain function taking a store URL and a scratch folder;
it makes the cluster it breaks, runs flows under the fault, reads back what
the run store recorded, and returns a dict of counts (0 is the target for
every count named like a defect).

Ground truth comes from the tasks themselves: each call of a task function
appends ``s`` to a file of its own when it starts and ``e`` when it returns.
A worker killed mid-task leaves an ``s`` without its ``e``; a task run that
ran again after it had completed (Dask recomputing a lost result) shows an
``s`` after an ``e``; a result reloaded from storage writes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask

from daskflow import flow, task, unmapped

__all__ = ["worker_kill"]

FLOW_NAME = "chaos-worker-kill"


@task
def nap(i: int, folder: str, seconds: float) -> int:
    """Sleep ``seconds``, marking the start and the end in ``folder/<i>``."""
    path = Path(folder) / str(i)
    with path.open("a") as f:
        f.write("s")
    time.sleep(seconds)
    with path.open("a") as f:
        f.write("e")
    return i


class _Warnings(logging.Handler):
    """Counts "events did not all arrive" warnings of daskflow's loggers."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "did not all arrive" in record.getMessage():
            self.count += 1


@contextmanager
def _counting_warnings() -> Iterator[_Warnings]:
    handler = _Warnings()
    logger = logging.getLogger("daskflow")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def worker_kill(
    store_url: str,
    folder: str | os.PathLike[str],
    *,
    flows: int = 3,
    tasks: int = 20,
    seconds: float = 0.5,
    kill_after: float | Sequence[float] = (0.05, 0.2, 0.6),
    persist_result: bool = False,
) -> dict[str, int]:
    """Run ``flows`` flows on 2 worker processes, SIGKILLing one worker in each.

    Each flow maps ``tasks`` task runs that sleep ``seconds``; ``kill_after``
    seconds after the flow starts (cycling through a sequence), one worker
    process is killed and its Nanny starts a new one.

    Returns
    -------
    dict
        ``flows``, ``completed`` (flow runs recorded COMPLETED), ``lost`` (flow
        runs absent from the store or not ended), ``task_runs``,
        ``not_completed`` (task runs not COMPLETED), ``zero_attempts``
        (COMPLETED with 0 attempts), ``wrong_attempts`` (recorded attempts
        other than the attempts that started), ``gaps`` (a RUNNING followed by
        neither a final state nor RETRYING), ``deaths`` (attempts that died
        with their worker), ``deaths_recorded`` (of those, how many have a
        "worker died" RETRYING), ``reruns`` (completed task runs that ran
        again), ``warnings`` ("events did not all arrive").
    """
    from distributed import Client, LocalCluster

    from daskflow.history import runs
    from daskflow.states import StateType
    from daskflow.store import open_store

    delays = [kill_after] if isinstance(kill_after, int | float) else list(kill_after)
    root = Path(folder)
    counts = dict.fromkeys(
        (
            "flows",
            "completed",
            "lost",
            "task_runs",
            "not_completed",
            "zero_attempts",
            "wrong_attempts",
            "gaps",
            "deaths",
            "deaths_recorded",
            "reruns",
            "warnings",
        ),
        0,
    )
    marks: list[Path] = []
    with (
        dask.config.set(
            {
                "daskflow.store": store_url,
                "daskflow.results": str(root / "results"),
                "daskflow.progress": False,
            }
        ),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
        _counting_warnings() as warnings,
    ):
        chaos = _chaos_flow.with_options(cluster=client, persist_result=persist_result)
        dead: set[int] = set()
        for number in range(flows):
            pids = _two_workers(cluster, client, dead)
            marks.append(root / f"flow-{number}")
            marks[-1].mkdir(parents=True)
            dead.add(pids[number % 2])
            killer = threading.Timer(
                delays[number % len(delays)], os.kill, (pids[number % 2], signal.SIGKILL)
            )
            killer.start()
            with contextlib.suppress(Exception):  # a lost flow run shows in the counts
                chaos(str(marks[-1]), tasks, seconds)
            killer.join()
        counts["warnings"] = warnings.count

    counts["flows"] = flows
    recorded = {run.parameters.get("folder"): run for run in runs(flow=FLOW_NAME, store=store_url)}
    store = open_store(store_url)
    try:
        for path in marks:
            run = recorded.get(str(path))
            if run is None or not run.state.type.is_final:
                counts["lost"] += 1
                continue
            counts["completed"] += run.state.type is StateType.COMPLETED
            for task_run in run.task_runs:
                rows = store.list_transitions(run.id, task_run.id)
                _count_task_run(counts, task_run, rows, path)
    finally:
        store.close()
    return counts


def _two_workers(cluster: Any, client: Any, dead: set[int]) -> list[int]:
    """Pids of two live workers, not ones killed (their modules imported).

    The Nanny restarts a killed worker; now and then ``LocalCluster`` closes
    that Nanny instead (a kill right after a restart), so scale back to 2.
    """
    deadline = time.monotonic() + 60
    rescale = time.monotonic() + 5
    while True:
        try:
            pids = sorted(client.run(_warm_up).values())
        except Exception:  # a worker dying or starting under the call
            pids = []
        if len(pids) == 2 and not dead & set(pids):
            return pids
        if time.monotonic() > rescale:
            cluster.scale(2)
            rescale = time.monotonic() + 5
        if time.monotonic() > deadline:
            raise TimeoutError("the killed worker was not replaced within 60 s")
        time.sleep(0.1)


def _warm_up() -> int:
    """Import what a task run needs, so a new worker starts its first task at once."""
    import daskflow.engine.attempt  # noqa: F401

    return os.getpid()


@flow(name=FLOW_NAME)
def _chaos_flow(folder: str, tasks: int, seconds: float) -> int:
    return sum(nap.map(range(tasks), unmapped(folder), unmapped(seconds)).result())


def _count_task_run(counts: dict[str, int], task_run: Any, rows: list[Any], folder: Path) -> None:
    from daskflow.states import StateType

    counts["task_runs"] += 1
    completed = task_run.state.type is StateType.COMPLETED
    counts["not_completed"] += not completed
    counts["zero_attempts"] += completed and task_run.attempts == 0
    mark = folder / str(task_run.map_index)
    starts = mark.read_text() if mark.exists() else ""
    counts["wrong_attempts"] += task_run.attempts != starts.count("s")
    # an attempt that died: a start not followed by its end
    counts["deaths"] += starts.count("s") - starts.count("se")
    counts["reruns"] += "es" in starts
    died = [r for r in rows if r.details.get("worker_died") and "during this attempt" in r.message]
    counts["deaths_recorded"] += len(died)
    ordered = sorted(rows, key=lambda r: r.timestamp)
    for row, after in zip(ordered, [*ordered[1:], None], strict=True):
        if row.state is StateType.RUNNING and (
            after is None or not (after.state.is_final or after.state is StateType.RETRYING)
        ):
            counts["gaps"] += 1

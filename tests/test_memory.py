"""What a flow run leaves behind in a long-lived process: nothing that grows.

A notebook or ``serve`` runs flow after flow in one process; a run that ended
must not stay reachable (its task runs, futures and events), and the
scheduler must not keep every event batch. ``benchmarks/memory.py
--repeat`` measures the RSS; these tests name the references.
"""

from __future__ import annotations

import gc
import weakref

from daskflow import flow, task
from daskflow.engine.current import current_runner
from daskflow.engine.emit import KEPT_BATCHES, TOPIC


@task
def inc(x: int) -> int:
    return x + 1


@task
def total(xs: list[int]) -> int:
    return sum(xs)


def test_an_ended_flow_run_is_not_kept_alive(processes_client):
    runners: list[weakref.ref[object]] = []

    @flow(cluster=processes_client)
    def fan(n: int) -> int:
        runner = current_runner()
        assert runner is not None
        runners.append(weakref.ref(runner))
        mapped = inc.map(range(n))
        values = mapped.result()  # a gather: connections opened while the flow runs
        return total(values)

    for n in (50, 60, 70):
        assert fan(n) == sum(range(1, n + 1))
    gc.collect()
    # asyncio copies the flow's context into callbacks that outlive it (the reader
    # of a connection opened during the run): they must not hold the run
    assert [ref() for ref in runners] == [None, None, None]


def test_the_scheduler_keeps_no_event_batch(processes_client):
    @flow(cluster=processes_client)
    def small() -> int:
        return total(inc.map(range(4)))

    for _ in range(3):
        assert small() == 10

    def kept(dask_scheduler: object) -> int:
        return len(dask_scheduler.get_events(TOPIC))  # type: ignore[attr-defined]

    assert processes_client.run_on_scheduler(kept) == KEPT_BATCHES == 0

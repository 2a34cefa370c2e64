"""``RunStore.bin_task_runs``: task runs counted per task name, state and start-time bin.

The panel's timeline of a big flow run. Every test runs on the in-memory
store, a SQLite file, and PostgreSQL when ``DASKFLOW_TEST_POSTGRES_URL`` is
set; both implementations must give the same rows.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter

import pytest

from daskflow.observers.events import Event
from daskflow.states import StateType
from daskflow.store import RunStore
from daskflow.store.base import TaskRunBin
from tests.test_store import (
    change,
    failed,
    flow_created,
    store_fixture,  # noqa: F401  (the `store` fixture: each kind of store)
    task_created,
)

S = StateType
T = 1_700_000_000.0  # a round start: bin edges are exact in binary floating point


def started(fid: str, tid: str, task: str, at: float, end: S | None = None) -> list[Event]:
    """A task run created at T that started at ``at`` and, with ``end``, ended 1 s later."""
    events: list[Event] = [
        task_created(tid, fid, T, task),
        change(fid, tid, S.RUNNING, at, 1, "w1"),
    ]
    if end is S.FAILED:
        events.append(failed(fid, tid, at + 1, 1, "w1"))
    elif end is not None:
        events.append(change(fid, tid, end, at + 1, 1, "w1"))
    return events


def test_task_runs_are_counted_per_task_name_state_and_bin(store: RunStore) -> None:
    f = uuid.uuid4().hex
    store.write(
        [
            flow_created(f, T),
            change(f, None, S.RUNNING, T, 1),
            *started(f, "a", "extract", T + 0.5, S.COMPLETED),  # bin 0
            *started(f, "b", "extract", T + 1.5, S.COMPLETED),  # bin 1
            *started(f, "c", "extract", T + 1.7, S.COMPLETED),  # bin 1
            *started(f, "d", "extract", T + 1.9, S.FAILED),  # bin 1
            *started(f, "e", "load", T + 2.5),  # bin 2, still running
            task_created("f", f, T, "load"),  # not started
            task_created("g", f, T, "load"),  # not started
        ]
    )
    rows = store.bin_task_runs(f, start=T, width=1.0, bins=10)
    assert rows == [
        TaskRunBin("extract", S.COMPLETED, 0, 1),
        TaskRunBin("extract", S.COMPLETED, 1, 2),
        TaskRunBin("extract", S.FAILED, 1, 1),
        TaskRunBin("load", S.PENDING, None, 2),
        TaskRunBin("load", S.RUNNING, 2, 1),
    ]


def test_runs_outside_the_range_count_in_the_first_or_last_bin(store: RunStore) -> None:
    f = uuid.uuid4().hex
    store.write(
        [
            flow_created(f, T),
            *started(f, "early", "t", T - 30.0, S.COMPLETED),  # a worker clock behind
            *started(f, "first", "t", T + 0.25, S.COMPLETED),
            *started(f, "late", "t", T + 99.0, S.COMPLETED),  # past the 4 bins of 1 s
            *started(f, "last", "t", T + 3.5, S.COMPLETED),
        ]
    )
    rows = store.bin_task_runs(f, start=T, width=1.0, bins=4)
    assert rows == [TaskRunBin("t", S.COMPLETED, 0, 2), TaskRunBin("t", S.COMPLETED, 3, 2)]


def test_one_bin_holds_everything(store: RunStore) -> None:
    f = uuid.uuid4().hex
    store.write([flow_created(f, T), *started(f, "x", "t", T + 5.0, S.CACHED)])
    assert store.bin_task_runs(f, start=T, width=0.001, bins=1) == [TaskRunBin("t", S.CACHED, 0, 1)]


def test_an_unknown_flow_run_has_no_bins(store: RunStore) -> None:
    assert store.bin_task_runs("nothing", start=T, width=1.0, bins=10) == []


@pytest.mark.parametrize(("width", "bins"), [(0.0, 10), (-1.0, 10), (1.0, 0)])
def test_bins_need_a_width_and_a_count(store: RunStore, width: float, bins: int) -> None:
    with pytest.raises(ValueError, match="width > 0 and bins >= 1"):
        store.bin_task_runs("nothing", start=T, width=width, bins=bins)


def test_bins_match_the_task_runs_they_count(store: RunStore) -> None:
    """3,000 task runs at random times: the bins agree with the rows, run by run."""
    rng = random.Random(7)
    f = uuid.uuid4().hex
    events: list[Event] = [flow_created(f, T)]
    for i in range(3_000):
        task = rng.choice(["extract", "transform", "load"])
        if rng.random() < 0.1:
            events.append(task_created(f"{f}-{i}", f, T, task))  # pending
            continue
        end = rng.choice([S.COMPLETED, S.COMPLETED, S.FAILED, None])
        events += started(f, f"{f}-{i}", task, T + rng.uniform(-5.0, 125.0), end)
    store.write(events)
    start, width, bins = T, 120.0 / 37, 37
    expected: Counter[tuple[str, S, int | None]] = Counter()
    for row in store.list_task_runs(f):
        index = None
        if row.start_time is not None:
            index = min(max(math.floor((row.start_time - start) / width), 0), bins - 1)
        expected[(row.task_name, row.state, index)] += 1
    rows = store.bin_task_runs(f, start=start, width=width, bins=bins)
    assert Counter({(r.task_name, r.state, r.bin): r.count for r in rows}) == expected
    assert sum(r.count for r in rows) == 3_000
    assert len(rows) == len(expected)  # one row per group, sorted by name, bin, state
    keys = [(r.task_name, -1 if r.bin is None else r.bin, r.state.value) for r in rows]
    assert keys == sorted(keys)

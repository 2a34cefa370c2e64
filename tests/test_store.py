"""The run store: events in, rows out, the same on every backend.

The behaviour tests take the ``store`` fixture and run against the in-memory
store, a SQLite file, and PostgreSQL when ``DASKFLOW_TEST_POSTGRES_URL`` is
set (each test gets a fresh schema there). Tests of what only a database does
(reopening, schema checks, two processes) take ``sql_url`` instead.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import re
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask
import pytest
import sqlalchemy as sa

from daskflow.errors import ConfigurationError, StoreError
from daskflow.observers.events import (
    Event,
    FlowRunCreated,
    LogEmitted,
    StateChanged,
    TaskRunCreated,
    bus,
)
from daskflow.states import State, StateType
from daskflow.store import (
    MemoryStore,
    RunStore,
    SQLStore,
    StoreObserver,
    default_observer,
    open_store,
)
from daskflow.store.base import HEARTBEAT_TIMEOUT

PG_URL = os.environ.get("DASKFLOW_TEST_POSTGRES_URL")
SQL_BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=pytest.mark.skipif(PG_URL is None, reason="DASKFLOW_TEST_POSTGRES_URL not set"),
    ),
]
S = StateType


@contextmanager
def backend_url(kind: str, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty store: a SQLite path, or a fresh PostgreSQL schema."""
    if kind == "sqlite":
        yield str(tmp_path / "runs" / "daskflow.db")  # the folder does not exist yet
        return
    assert PG_URL is not None
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=SQL_BACKENDS)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with backend_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture(name="store", params=["memory", *SQL_BACKENDS])
def store_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    """Each kind of run store, empty (other test modules import it by this name)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    with backend_url(request.param, tmp_path) as url:
        opened = SQLStore(url)
        yield opened
        opened.close()


# -- building events -----------------------------------------------------------------
def flow_created(fid: str, t: float, name: str = "etl", **kw: Any) -> FlowRunCreated:
    params = kw.pop("parameters", {"n": 1})
    return FlowRunCreated(fid, name, f"{name}-run", params, kw.pop("parent", None), t, **kw)


def task_created(tid: str, fid: str, t: float, task: str = "inc", i: int | None = None):
    return TaskRunCreated(tid, fid, task, f"{task}-{i}", i, frozenset({"db", "a"}), (task, i), t)


def change(fid: str, tid: str | None, kind: StateType, t: float, *args: Any, **kw: Any):
    message = kw.pop("message", "")
    return StateChanged(fid, tid, State(kind, t, message=message), *args, **kw)


def failed(fid: str, tid: str | None, t: float, attempt: int, worker: str) -> StateChanged:
    try:
        raise ValueError("bad row 7")
    except ValueError as exc:
        state = State.from_exception(S.FAILED, exc, timestamp=t)
    return StateChanged(fid, tid, state, attempt, worker)


def a_flow_run(fid: str, t: float, tasks: int = 0, task: str = "inc") -> list[Event]:
    """A RUNNING flow run with ``tasks`` COMPLETED task runs."""
    events: list[Event] = [
        flow_created(fid, t),
        change(fid, None, S.PENDING, t),
        change(fid, None, S.RUNNING, t + 0.1, 1),
    ]
    for i in range(tasks):
        tid = f"{fid}-{task}-{i}"
        events += [
            task_created(tid, fid, t + 0.2, task, i),
            change(fid, tid, S.PENDING, t + 0.2),
            change(fid, tid, S.RUNNING, t + 0.3, 1, "w1"),
            change(fid, tid, S.COMPLETED, t + 0.4, 1, "w1"),
        ]
    return events


# -- what the rows say ---------------------------------------------------------------
def test_events_become_rows(store: RunStore) -> None:
    t = time.time()
    f = "f" + uuid.uuid4().hex[1:]
    store.write(
        [
            flow_created(f, t, parameters={"days": ("mon", "tue"), "lock": threading.Lock()}),
            change(f, None, S.PENDING, t),
            change(f, None, S.RUNNING, t + 1, 1),
            task_created("ok", f, t + 1, "inc", 0),
            task_created("retried", f, t + 1, "inc", 1),
            task_created("bad", f, t + 1, "load"),
            change(f, "ok", S.RUNNING, t + 2, 1, "w1"),
            change(f, "ok", S.COMPLETED, t + 3, 1, "w1"),
            change(f, "retried", S.RUNNING, t + 2, 1, "w1"),
            failed(f, "retried", t + 3, 1, "w1"),
            change(f, "retried", S.RETRYING, t + 3.5, 1, "w1"),
            change(f, "retried", S.RUNNING, t + 4, 2, "w2"),
            change(f, "retried", S.COMPLETED, t + 5, 2, "w2"),
            change(f, "bad", S.RUNNING, t + 2, 1, "w2"),
            failed(f, "bad", t + 6, 1, "w2"),
            LogEmitted(f, None, t + 1, 20, "daskflow", "flow starts"),
            LogEmitted(f, "bad", t + 6, 40, "daskflow.task", "load failed"),
            change(f, None, S.FAILED, t + 7, 1, message="1 task failed"),
        ]
    )
    row = store.get_flow_run(f)
    assert row is not None
    assert (row.flow_name, row.name, row.parent_flow_run_id) == ("etl", "etl-run", None)
    assert row.parameters["days"] == ["mon", "tue"]  # JSON where possible ...
    assert row.parameters["lock"].startswith("<unlocked _thread.lock")  # ... else repr
    assert (row.state, row.state_message) == (S.FAILED, "1 task failed")
    assert (row.created, row.start_time, row.end_time) == (t, t + 1, t + 7)

    ok, retried, bad = store.list_task_runs(f)  # creation order
    assert (ok.id, ok.task_name, ok.map_index, ok.tags) == ("ok", "inc", 0, ("a", "db"))
    assert (ok.state, ok.start_time, ok.end_time, ok.attempts, ok.worker) == (
        S.COMPLETED,
        t + 2,
        t + 3,
        1,
        "w1",
    )
    assert (retried.state, retried.attempts, retried.worker) == (S.COMPLETED, 2, "w2")
    assert (retried.start_time, retried.end_time) == (t + 2, t + 5)  # first RUNNING, last end
    assert retried.error_type is None  # it ended well
    assert (bad.state, bad.error_type, bad.error_message) == (S.FAILED, "ValueError", "bad row 7")
    assert bad.traceback is not None
    assert "ValueError: bad row 7" in bad.traceback
    assert [r.id for r in store.list_task_runs(f, task="inc", limit=1)] == ["ok"]

    assert store.count_task_runs(f) == {"inc": {S.COMPLETED: 2}, "load": {S.FAILED: 1}}
    states = [(x.state, x.attempt, x.worker) for x in store.list_transitions(f, "retried")]
    assert states == [
        (S.RUNNING, 1, "w1"),
        (S.FAILED, 1, "w1"),
        (S.RETRYING, 1, "w1"),
        (S.RUNNING, 2, "w2"),
        (S.COMPLETED, 2, "w2"),
    ]
    own = store.list_transitions(f)
    assert [x.state for x in own] == [S.PENDING, S.RUNNING, S.FAILED]
    assert own[-1].message == "1 task failed"

    assert [(x.message, x.task_name) for x in store.list_logs(f)] == [
        ("flow starts", None),
        ("load failed", "load"),
    ]
    assert [x.level for x in store.list_logs(f, task="load")] == [40]
    assert len(store.list_logs(f, limit=1)) == 1


def test_flow_runs_are_listed_newest_first(store: RunStore) -> None:
    t = time.time()
    store.write([*a_flow_run("a" * 32, t), *a_flow_run("b" * 32, t + 1)])
    store.write([flow_created("c" * 32, t + 2, name="report")])
    assert [r.id[0] for r in store.list_flow_runs()] == ["c", "b", "a"]
    assert [r.id[0] for r in store.list_flow_runs(limit=2)] == ["c", "b"]
    assert [r.id[0] for r in store.list_flow_runs(flow="etl")] == ["b", "a"]
    assert [r.id[0] for r in store.list_flow_runs(state=S.PENDING)] == ["c"]
    assert store.list_flow_runs(flow="etl", state=S.COMPLETED) == []
    assert store.get_flow_run("nothing-like-it") is None
    assert store.list_task_runs("nothing") == []
    assert store.count_task_runs("nothing") == {}


def test_a_run_may_span_batches(store: RunStore) -> None:
    t = time.time()
    f = uuid.uuid4().hex
    store.write([flow_created(f, t), task_created("x", f, t)])
    assert store.list_task_runs(f)[0].state is S.PENDING
    store.write([change(f, "x", S.RUNNING, t + 1, 1, "w1")])
    store.write([change(f, "x", S.COMPLETED, t + 2, 1, "w1")])
    (row,) = store.list_task_runs(f)
    assert (row.state, row.start_time, row.end_time, row.attempts) == (S.COMPLETED, t + 1, t + 2, 1)


def test_a_late_transition_does_not_move_the_state_back(store: RunStore) -> None:
    t = time.time()
    f = uuid.uuid4().hex
    store.write(
        [
            flow_created(f, t),
            task_created("x", f, t),
            task_created("y", f, t),
            change(f, "x", S.RUNNING, t + 2, 2, "w2"),
            change(f, "x", S.COMPLETED, t + 3, 2, "w2"),
            # within one batch, out of order: the final state still wins
            change(f, "y", S.COMPLETED, t + 3, 1, "w1"),
            change(f, "y", S.RUNNING, t + 2, 1, "w1"),
        ]
    )
    # the attempt whose worker died, reported at the end of the flow run
    died = change(f, "x", S.RETRYING, t + 1, 0, None, {"worker_died": True})
    # and a (wrongly) later non-final state: a final state is never left
    store.write([died, change(f, "y", S.RUNNING, t + 9, 2, "w3")])
    x, y = store.list_task_runs(f)
    assert (x.state, x.end_time, x.worker) == (S.COMPLETED, t + 3, "w2")
    assert (y.state, y.end_time, y.worker, y.start_time) == (S.COMPLETED, t + 3, "w1", t + 2)
    history = store.list_transitions(f, "x")
    assert [h.state for h in history] == [S.RETRYING, S.RUNNING, S.COMPLETED]
    assert history[0].details == {"worker_died": True}
    assert store.count_task_runs(f) == {"inc": {S.COMPLETED: 2}}


def test_a_plain_task_run_s_history_reads_back_whole_before_and_after_a_late_transition(
    store: RunStore,
) -> None:
    # a SQL store keeps the PENDING, RUNNING and COMPLETED of a run that lived
    # just that in its task_runs row (store.implied); they read back as the
    # in-memory store, which keeps every transition, gives them
    t = time.time()
    f = uuid.uuid4().hex
    plain, other = f"{f}-inc-0", f"{f}-inc-1"
    store.write(a_flow_run(f, t, tasks=2))

    def history(task_run_id: str) -> list[tuple[Any, ...]]:
        rows = store.list_transitions(f, task_run_id)
        return [(x.state, x.timestamp, x.attempt, x.worker, x.message, x.details) for x in rows]

    lived = [
        (S.PENDING, t + 0.2, 0, None, "", {}),
        (S.RUNNING, t + 0.3, 1, "w1", "", {}),
        (S.COMPLETED, t + 0.4, 1, "w1", "", {}),
    ]
    assert history(plain) == history(other) == lived
    assert [x.state for x in store.list_transitions(f)] == [S.PENDING, S.RUNNING]  # the flow's

    # an attempt whose worker died, reported late (earlier than the others), and a
    # RUNNING at the time of the COMPLETED (after it: it came later)
    died = change(f, plain, S.RETRYING, t + 0.25, 0, None, {"worker_died": True})
    store.write([died, change(f, plain, S.RUNNING, t + 0.4, 2, "w2")])
    assert history(plain) == [
        lived[0],
        (S.RETRYING, t + 0.25, 0, None, "", {"worker_died": True}),
        lived[1],
        lived[2],
        (S.RUNNING, t + 0.4, 2, "w2", "", {}),
    ]
    assert history(other) == lived
    runs = {r.id: r for r in store.list_task_runs(f)}
    assert (runs[plain].state, runs[plain].attempts, runs[plain].start_time) == (
        S.COMPLETED,
        2,
        t + 0.3,
    )
    store.write([change(f, plain, S.RUNNING, t + 0.5, 3, "w3")])  # once more: written once
    assert len(store.list_transitions(f, plain)) == 6


def test_the_worker_s_report_after_the_client_s_final_state_says_where_the_run_ran(
    store: RunStore,
) -> None:
    # a flow run that ends before its worker's last batch arrives records the
    # final state its client saw (no worker, no result location) first
    t = time.time()
    f = uuid.uuid4().hex
    stored = {"storage": "local", "key": "abc"}
    store.write([flow_created(f, t), task_created("x", f, t), change(f, "x", S.COMPLETED, t + 5)])
    store.write(
        [
            change(f, "x", S.RUNNING, t + 2, 1, "w1"),
            change(f, "x", S.COMPLETED, t + 3, 1, "w1", {"result": stored}),
        ]
    )
    (x,) = store.list_task_runs(f)
    assert (x.state, x.worker, x.start_time, x.attempts) == (S.COMPLETED, "w1", t + 2, 1)
    assert x.result == stored


def test_prefix_lookup(store: RunStore) -> None:
    t = time.time()
    ids = ["abcdef01" + "0" * 24, "abcdef02" + "0" * 24, "123456789" + "0" * 23]
    store.write([flow_created(i, t) for i in ids])
    found = store.get_flow_run("abcdef01")
    assert found is not None
    assert found.id == ids[0]
    assert store.get_flow_run(ids[1]) is not None
    assert store.get_flow_run("abcdef") is None  # two runs start so
    assert store.get_flow_run("12345") is None  # too short, even though unique
    found = store.get_flow_run("123456")
    assert found is not None
    assert found.id == ids[2]
    assert store.get_flow_run("12345%") is None  # no wildcards


def test_heartbeat_and_crashed_runs(store: RunStore) -> None:
    now = time.time()
    old = now - 10 * HEARTBEAT_TIMEOUT
    dead, alive, done = "d" * 32, "e" * 32, "c" * 32
    store.write(
        [
            *a_flow_run(dead, old, tasks=1),
            task_created("running", dead, old),
            change(dead, "running", S.RUNNING, old + 1, 1, "w1"),
            task_created("pending", dead, old),
            *a_flow_run(alive, old),
            *a_flow_run(done, old),
            change(done, None, S.COMPLETED, old + 2, 1),
        ]
    )
    store.heartbeat([alive], now)
    alive_row = store.get_flow_run(alive)
    assert alive_row is not None
    assert alive_row.heartbeat == now

    assert store.mark_crashed(now) == [dead]  # type: ignore[attr-defined]
    states = {r.id: r.state for r in store.list_flow_runs()}
    assert states == {dead: S.CRASHED, alive: S.RUNNING, done: S.COMPLETED}
    row = store.get_flow_run(dead)
    assert row is not None
    assert row.end_time == now
    assert row.state_message == "the flow process stopped sending heartbeats"
    last = store.list_transitions(dead)[-1]
    assert (last.state, last.message) == (S.CRASHED, "the flow process stopped sending heartbeats")
    tasks = {r.id: r.state for r in store.list_task_runs(dead)}
    assert tasks == {f"{dead}-inc-0": S.COMPLETED, "running": S.CRASHED, "pending": S.CRASHED}
    crash = store.list_transitions(dead, "running")[-1]
    assert (crash.state, crash.attempt, crash.worker) == (S.CRASHED, 1, "w1")


def test_a_scheduled_run_left_by_a_dead_serve_process_is_crashed(store: RunStore) -> None:
    old = time.time() - 10 * HEARTBEAT_TIMEOUT
    store.write(
        [
            flow_created("s" * 32, old, scheduled_time=old + 60),
            change("s" * 32, None, S.SCHEDULED, old),
        ]
    )
    assert store.mark_crashed() == ["s" * 32]  # type: ignore[attr-defined]
    assert store.get_flow_run("s" * 32).state is S.CRASHED  # type: ignore[union-attr]


def test_scheduled_runs_keep_their_slot_and_the_last_served_slot_is_found(
    store: RunStore,
) -> None:
    t = time.time()
    store.write(
        [
            *a_flow_run("a" * 32, t),  # not scheduled
            flow_created("b" * 32, t, scheduled_time=t - 60),
            change("b" * 32, None, S.SCHEDULED, t),
            change("b" * 32, None, S.RUNNING, t + 1),
            flow_created("c" * 32, t, scheduled_time=t + 60),  # not started yet
            change("c" * 32, None, S.SCHEDULED, t),
            flow_created("d" * 32, t, name="other", scheduled_time=t - 1),
            change("d" * 32, None, S.RUNNING, t + 1),
        ]
    )
    row = store.get_flow_run("c" * 32)
    assert row is not None
    assert (row.state, row.scheduled_time) == (S.SCHEDULED, t + 60)
    assert [r.id for r in store.list_flow_runs(state=S.SCHEDULED)] == ["c" * 32]
    assert store.last_scheduled_time("etl") == t - 60  # started runs only, this flow only
    assert store.last_scheduled_time("nothing") is None


def test_a_scheduled_run_starts_or_is_cancelled_from_its_slot(store: RunStore) -> None:
    t = time.time()
    served, skipped = "a" * 32, "b" * 32
    store.write(  # serve records the runs SCHEDULED ahead of their slots ...
        [
            flow_created(served, t, scheduled_time=t + 60),
            change(served, None, S.SCHEDULED, t),
            flow_created(skipped, t, scheduled_time=t + 120),
            change(skipped, None, S.SCHEDULED, t),
        ]
    )
    assert store.request_cancel(skipped, t + 1).cancel_requested == t + 1  # type: ignore[union-attr]
    assert store.cancel_requests([served, skipped]) == [skipped]
    # ... starts one at its slot, in later batches, and records the other CANCELLED
    store.write([change(skipped, None, S.CANCELLED, t + 2, message="cancelled")])
    store.write(
        [change(served, None, S.PENDING, t + 60), change(served, None, S.RUNNING, t + 60, 1)]
    )
    store.write([change(served, None, S.COMPLETED, t + 61, 1)])

    run = store.get_flow_run(served)
    assert run is not None
    assert (run.state, run.start_time, run.end_time) == (S.COMPLETED, t + 60, t + 61)
    assert [x.state for x in store.list_transitions(served)] == [
        S.SCHEDULED,
        S.PENDING,
        S.RUNNING,
        S.COMPLETED,
    ]
    gone = store.get_flow_run(skipped)
    assert gone is not None
    assert (gone.state, gone.state_message) == (S.CANCELLED, "cancelled")
    assert (gone.start_time, gone.end_time, gone.cancel_requested) == (None, t + 2, t + 1)
    assert store.last_scheduled_time("etl") == t + 60  # the cancelled slot never started


def test_cancellation_requests_are_recorded_once_and_only_for_runs_not_over(
    store: RunStore,
) -> None:
    t = time.time()
    running, done = "r" * 32, "f" * 32
    store.write([*a_flow_run(running, t), *a_flow_run(done, t), change(done, None, S.FAILED, t)])
    assert store.cancel_requests([running, done]) == []

    first = store.request_cancel(running[:8], t + 1)
    assert first is not None
    assert (first.id, first.cancel_requested, first.state) == (running, t + 1, S.RUNNING)
    again = store.request_cancel(running, t + 2)
    assert again is not None
    assert again.cancel_requested == t + 1  # the first request's time is kept
    ended = store.request_cancel(done, t + 3)
    assert ended is not None
    assert (ended.state, ended.cancel_requested) == (S.FAILED, None)
    assert store.request_cancel("0" * 32, t) is None
    assert store.cancel_requests([running, done, "0" * 32]) == [running]


def test_the_newest_log_records_come_in_time_order(store: RunStore) -> None:
    t = time.time()
    lines = [LogEmitted("l" * 32, None, t + i, 20, "daskflow.runs", f"line {i}") for i in range(5)]
    store.write([*a_flow_run("l" * 32, t), *lines])
    messages = [r.message for r in store.list_logs("l" * 32, limit=2, newest=True)]
    assert messages == ["line 3", "line 4"]
    assert [r.message for r in store.list_logs("l" * 32, limit=2)] == ["line 0", "line 1"]
    assert len(store.list_logs("l" * 32, newest=True)) == 5


def test_task_runs_can_be_listed_by_state(store: RunStore) -> None:
    t = time.time()
    store.write(
        [
            *a_flow_run("a" * 32, t, tasks=30, task="load"),
            task_created("bad", "a" * 32, t, task="check"),
            failed("a" * 32, "bad", t + 1, 1, "w1"),
        ]
    )
    assert store.list_task_runs("a" * 32, states=[S.CRASHED]) == []
    done = store.list_task_runs("a" * 32, states=[S.COMPLETED])
    assert [r.name for r in done] == [f"load-{i}" for i in range(30)]
    assert [r.id for r in store.list_task_runs("a" * 32, states=[S.FAILED])] == ["bad"]
    assert len(store.list_task_runs("a" * 32, states=[S.COMPLETED, S.FAILED])) == 31
    # by task names too (the panel's failures: found through the index, in creation order)
    both = store.list_task_runs("a" * 32, task=["check", "load"], states=[S.COMPLETED, S.FAILED])
    assert [r.name for r in both] == [*(f"load-{i}" for i in range(30)), "check-None"]
    assert store.list_task_runs("a" * 32, task=["load"], states=[S.FAILED]) == []
    assert len(store.list_task_runs("a" * 32, task=["load"], states=[S.COMPLETED], limit=3)) == 3


def test_threads_write_at_once(store: RunStore) -> None:
    t = time.time()

    def write(n: int) -> None:
        for b in range(10):
            store.write(a_flow_run(f"{n}-{b}-{uuid.uuid4().hex}", t, tasks=5))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs = store.list_flow_runs(limit=None)
    assert len(runs) == 60
    assert all(store.count_task_runs(r.id) == {"inc": {S.COMPLETED: 5}} for r in runs)


# -- what only a database does -------------------------------------------------------
def test_a_stale_run_is_crashed_when_the_store_is_opened(sql_url: str) -> None:
    now = time.time()
    first = SQLStore(sql_url)
    first.write(
        [*a_flow_run("a" * 32, now - 3600, tasks=2), task_created("t", "a" * 32, now - 3600)]
    )
    first.write([*a_flow_run("b" * 32, now - 3600), *a_flow_run("c" * 32, now - 3600)])
    first.write(  # SCHEDULED runs of a serve process: one alive, one left by a killed one
        [
            event
            for fid in ("d" * 32, "e" * 32)
            for event in (
                flow_created(fid, now - 3600, scheduled_time=now + 60),
                change(fid, None, S.SCHEDULED, now - 3600),
            )
        ]
    )
    first.heartbeat(["b" * 32, "d" * 32], now)
    first.heartbeat(["c" * 32, "e" * 32], now - 2 * HEARTBEAT_TIMEOUT)
    first.close()
    second = SQLStore(sql_url)
    try:
        states = {r.id[0]: r.state for r in second.list_flow_runs()}
        assert states == {
            "a": S.CRASHED,
            "b": S.RUNNING,
            "c": S.CRASHED,
            "d": S.SCHEDULED,
            "e": S.CRASHED,
        }
        assert [x.state for x in second.list_transitions("e" * 32)] == [S.SCHEDULED, S.CRASHED]
        assert second.count_task_runs("a" * 32) == {"inc": {S.COMPLETED: 2, S.CRASHED: 1}}
    finally:
        second.close()


def _statements(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The first word of each statement the store's writes ran (and COMMIT), in order."""
    return [r.getMessage().split()[0] for r in caplog.records if r.name == "daskflow.store.sql"]


def test_a_batch_is_one_transaction_of_bulk_statements(
    sql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLStore(sql_url)
    t = time.time()
    f = uuid.uuid4().hex
    events = a_flow_run(f, t, tasks=300)
    events += [LogEmitted(f, f"{f}-inc-{i}", t, 20, "x", "hello") for i in range(300)]
    caplog.set_level(logging.DEBUG, logger="daskflow.store.sql")
    store.write(events)  # 1,503 events
    seen = _statements(caplog)
    assert seen.count("COMMIT") == 1
    assert 2 < len(seen) < 12, seen  # a few bulk statements, not one per event

    caplog.clear()
    store.write([change(f, f"{f}-inc-{i}", S.CACHED, t + 1) for i in range(300)])
    seen = _statements(caplog)
    assert seen.count("COMMIT") == 1
    assert seen.count("UPDATE") == 1, seen  # one executemany for 300 runs
    assert len(seen) < 12, seen

    # a batch that fails leaves nothing behind: it was one transaction
    caplog.clear()
    bad = [task_created("new", f, t), task_created(f"{f}-inc-0", f, t)]  # a duplicate id
    with pytest.raises((sa.exc.IntegrityError, sqlite3.IntegrityError)):
        store.write(bad)
    assert "COMMIT" not in _statements(caplog)
    assert [r.id for r in store.list_task_runs(f) if r.id == "new"] == []
    assert store.count_task_runs(f) == {"inc": {S.CACHED: 300}}
    store.close()


def test_a_running_flow_s_later_batches_read_no_status_back(
    sql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLStore(sql_url)
    t = time.time()
    f = uuid.uuid4().hex
    caplog.set_level(logging.DEBUG, logger="daskflow.store.sql")
    store.write([flow_created(f, t), task_created("x", f, t), task_created("y", f, t)])
    store.write([change(f, "x", S.RUNNING, t + 1, 1, "w1")])
    store.write([change(f, "x", S.COMPLETED, t + 2, 1, "w1"), change(f, "y", S.RUNNING, t + 2, 1)])
    statements = _statements(caplog)
    assert "UPDATE" in statements
    assert "SELECT" not in statements, statements  # it folds onto what it wrote
    # a store object that did not write them (another process) reads them back
    other = SQLStore(sql_url)
    caplog.clear()
    other.write([change(f, "y", S.FAILED, t + 3, 1, "w2")])
    assert "SELECT" in _statements(caplog)
    x, y = store.list_task_runs(f)
    assert (x.state, x.start_time, x.end_time, x.attempts) == (S.COMPLETED, t + 1, t + 2, 1)
    assert (y.state, y.start_time, y.end_time, y.worker) == (S.FAILED, t + 2, t + 3, "w2")
    other.close()
    store.close()


def test_count_task_runs_is_one_group_by(sql_url: str) -> None:
    store = SQLStore(sql_url)
    f = uuid.uuid4().hex
    store.write(a_flow_run(f, time.time(), tasks=20))
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    assert store.count_task_runs(f) == {"inc": {S.COMPLETED: 20}}
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1
    assert "GROUP BY" in selects[0].upper()
    store.close()


def _write_task_runs(url: str, flow_run_id: str, barrier: Any) -> None:
    """In a child process: open a new store and write 2,000 task runs in 20 batches.

    Both children pass the barrier together: they create the store at once, then write.
    """
    barrier.wait(timeout=60)
    store = SQLStore(url)
    t = time.time()
    store.write([flow_created(flow_run_id, t), change(flow_run_id, None, S.RUNNING, t, 1)])
    for b in range(20):
        batch: list[Event] = []
        for i in range(b * 100, b * 100 + 100):
            tid = f"{flow_run_id}-{i}"
            batch += [
                task_created(tid, flow_run_id, t, "inc", i),
                change(flow_run_id, tid, S.RUNNING, t + 1, 1, "w"),
                change(flow_run_id, tid, S.COMPLETED, t + 2, 1, "w"),
            ]
        store.write(batch)
        store.heartbeat([flow_run_id], time.time())
    store.close()


def test_two_processes_writing_at_once_lose_nothing(sql_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    ids = [uuid.uuid4().hex, uuid.uuid4().hex]
    procs = [ctx.Process(target=_write_task_runs, args=(sql_url, i, barrier)) for i in ids]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0, 0]
    store = SQLStore(sql_url)
    try:
        for flow_run_id in ids:
            assert store.count_task_runs(flow_run_id) == {"inc": {S.COMPLETED: 2000}}
            runs = store.list_task_runs(flow_run_id)
            assert [r.map_index for r in runs] == list(range(2000))
            assert len(store.list_transitions(flow_run_id, runs[-1].id)) == 2
    finally:
        store.close()


def _snapshot(url: str) -> Any:
    """What a store holds, byte for byte (SQLite) or table by table (other databases)."""
    sa_url = sa.make_url(_to_url(url))
    database = sa_url.database
    if sa_url.get_backend_name() == "sqlite" and database:
        folder = os.path.dirname(database)
        files = sorted(os.listdir(folder))
        stat = os.stat(database)
        return files, Path(database).read_bytes(), stat.st_mtime_ns
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        names = sorted(sa.inspect(conn).get_table_names())
        rows = {n: sorted(map(tuple, conn.execute(sa.text(f"SELECT * FROM {n}")))) for n in names}
    engine.dispose()
    return rows


def _to_url(url: str) -> str:
    from daskflow.store.sql import to_url

    return to_url(url)


def test_a_newer_schema_is_refused_and_left_untouched(sql_url: str) -> None:
    store = SQLStore(sql_url)
    store.write(a_flow_run("a" * 32, time.time(), tasks=3))
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE meta SET value = '99' WHERE key = 'schema_version'"))
    store.close()
    before = _snapshot(sql_url)
    with pytest.raises(StoreError, match=r"newer daskflow \(schema version 99") as info:
        SQLStore(sql_url)
    assert re.escape(store.where) in re.escape(str(info.value))  # it names the store
    assert _snapshot(sql_url) == before
    assert str(pickle.loads(pickle.dumps(info.value))) == str(info.value)


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5, 6, 7])
def test_an_older_store_is_upgraded_and_keeps_its_runs(sql_url: str, version: int) -> None:
    from daskflow.store.schema import _ADDED, _INDEXES_REPLACED, _TABLES_ADDED, SCHEMA_VERSION

    if "://" not in sql_url and sqlite3.sqlite_version_info < (3, 35):
        pytest.skip(f"SQLite {sqlite3.sqlite_version} cannot DROP COLUMN (3.35 can)")
    store = SQLStore(sql_url)
    t = time.time()
    store.write(
        [flow_created("b" * 32, t, entrypoint="etl.py:etl"), *a_flow_run("b" * 32, t, 2)[1:]]
    )
    with store.engine.begin() as conn:  # back to the layout of that schema version
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for table, column in _ADDED.get(step, ()):
                conn.execute(sa.text(f"ALTER TABLE {table.name} DROP COLUMN {column}"))
            for added in _TABLES_ADDED.get(step, ()):
                conn.execute(sa.text(f"DROP TABLE {added.name}"))
            for old, new in _INDEXES_REPLACED.get(step, ()):
                conn.execute(sa.text(f"DROP INDEX {new}"))
                conn.execute(sa.text(f"CREATE INDEX {old} ON task_runs (flow_run_id, task_name)"))
        conn.execute(sa.text(f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'"))
    store.close()

    upgraded = SQLStore(sql_url)
    [row] = upgraded.list_flow_runs()
    assert row.id == "b" * 32
    assert (row.scheduled_time, row.cancel_requested) == (None, None)
    assert row.entrypoint == ("etl.py:etl" if version >= 2 else None)  # what v2 had is kept
    if version == 1:
        assert row.resumed_from is None
        assert [t.result for t in upgraded.list_task_runs(row.id)] == [None, None]
    later = [change("b" * 32, None, StateType.COMPLETED, time.time() + 1)]
    upgraded.write(later, replay_id="j" * 32)  # the v4 table of replayed journal batches
    upgraded.write(later, replay_id="j" * 32)
    assert upgraded.get_flow_run("b" * 32).state is StateType.COMPLETED
    assert len(upgraded.list_transitions("b" * 32)) == 3  # PENDING, RUNNING, then one more
    with upgraded.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT value FROM meta WHERE key = 'schema_version'"))
        assert stored.scalar_one() == str(SCHEMA_VERSION)
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("task_runs")}
    assert "ix_task_runs_flow_task_state_start" in indexes  # v7: the timeline's bins covered
    assert "ix_task_runs_flow_task_state" not in indexes
    assert upgraded.count_task_runs("b" * 32) == {"inc": {StateType.COMPLETED: 2}}
    upgraded.close()


def test_a_database_of_something_else_is_refused_and_left_untouched(sql_url: str) -> None:
    engine = sa.create_engine(_to_url(sql_url))
    os.makedirs(os.path.dirname(engine.url.database or "") or ".", exist_ok=True)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE flow_runs (x INTEGER)"))
        conn.execute(sa.text("INSERT INTO flow_runs VALUES (1)"))
    engine.dispose()
    before = _snapshot(sql_url)
    with pytest.raises(StoreError, match="not a daskflow database"):
        SQLStore(sql_url)
    assert _snapshot(sql_url) == before  # no table created


@pytest.mark.parametrize("content", ["text", "other tables"])
def test_a_file_that_is_not_a_store_is_refused_and_left_untouched(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "notes.db"
    if content == "text":
        path.write_text("not a database\n")
    else:
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE notes (body TEXT)")
        conn.close()
    before = _snapshot(str(path))
    with pytest.raises(StoreError, match=f"{re.escape(str(path))}: not a daskflow database"):
        SQLStore(str(path))
    assert _snapshot(str(path)) == before


# -- opening the configured store, and the observer ----------------------------------
def test_open_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert open_store("memory") is open_store(" memory ")
    monkeypatch.setenv("HOME", str(tmp_path))
    for url, file in [
        ("~/a/runs.db", tmp_path / "a" / "runs.db"),
        ("sqlite:///~/b/runs.db", tmp_path / "b" / "runs.db"),
        (f"sqlite:///{tmp_path}/c/runs.db", tmp_path / "c" / "runs.db"),
    ]:
        store = open_store(url)
        assert isinstance(store, SQLStore)
        assert store.where == str(file)
        store.close()
        assert file.exists()
    with dask.config.set({"daskflow.store": str(tmp_path / "configured.db")}):
        store = open_store()
    assert isinstance(store, SQLStore)
    assert store.where == str(tmp_path / "configured.db")
    store.close()
    for none in ["none", ""]:
        with (
            dask.config.set({"daskflow.store": none}),
            pytest.raises(ConfigurationError, match=r"daskflow\.store"),
        ):
            open_store()


def test_default_observer_follows_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def ours() -> list[StoreObserver]:
        return [o for o in bus._observers if isinstance(o, StoreObserver)]

    try:
        with dask.config.set({"daskflow.store": str(tmp_path / "one.db")}):
            first = default_observer()
            assert first is not None
            assert default_observer() is first
            assert ours() == [first]
        with dask.config.set({"daskflow.store": "memory"}):
            second = default_observer()
            assert second is not None
            assert second.store is open_store("memory")
            assert ours() == [second]
    finally:
        with dask.config.set({"daskflow.store": "none"}):
            assert default_observer() is None
    assert ours() == []


def test_a_flow_run_is_recorded_through_the_bus(tmp_path: Path) -> None:
    from daskflow import flow, task

    @task
    def inc(x: int) -> int:
        return x + 1

    @flow(cluster="sync")
    def add_one(xs: list[int]) -> list[int]:
        return [f.result() for f in inc.map(xs)]

    observer = bus.register(StoreObserver(SQLStore(str(tmp_path / "runs.db"))))
    try:
        assert add_one([1, 2, 3]) == [2, 3, 4]
    finally:
        bus.unregister(observer)
    store = SQLStore(str(tmp_path / "runs.db"))
    (row,) = store.list_flow_runs(flow="add_one")
    assert (row.state, row.parameters) == (S.COMPLETED, {"xs": [1, 2, 3]})
    assert store.count_task_runs(row.id) == {"inc": {S.COMPLETED: 3}}
    assert [r.map_index for r in store.list_task_runs(row.id)] == [0, 1, 2]
    assert all(r.attempts == 1 and r.end_time is not None for r in store.list_task_runs(row.id))
    store.close()


def test_importing_daskflow_does_not_import_sqlalchemy() -> None:
    code = "import sys, daskflow, daskflow.store; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_flow_recording_into_a_sqlite_file_does_not_import_sqlalchemy(tmp_path: Path) -> None:
    # SQLAlchemy costs ~0.2 s of CPU at a process's start: a flow run opens and writes a
    # SQLite store through sqlite3 alone. Creating the tables of a new store uses it.
    code = (
        "import sys, daskflow\n"
        "@daskflow.task(retries=1)\n"
        "def inc(x):\n"
        "    daskflow.get_run_logger().info('inc %s', x)\n"
        "    return x + 1\n"
        "@daskflow.flow(cluster='sync')\n"
        "def plain(xs):\n"
        "    return sum(inc.map(xs).result())\n"
        "assert plain([1, 2, 3]) == 9\n"
        "print('sqlalchemy' in sys.modules)\n"
    )
    store_file = tmp_path / "runs.db"
    env = {**os.environ, "DASKFLOW_STORE": str(store_file)}
    env["DASK_DASKFLOW__JOURNAL"] = str(tmp_path / "journal")
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        for _ in range(2)
    ]
    assert [run.stdout.strip() for run in runs] == ["True", "False"]  # a new store, then not
    assert [run.stderr for run in runs if "Traceback" in run.stderr] == []
    store = SQLStore(str(store_file))
    try:
        flows = store.list_flow_runs()
        assert [row.state for row in flows] == [S.COMPLETED, S.COMPLETED]
        for row in flows:
            assert store.count_task_runs(row.id) == {"inc": {S.COMPLETED: 3}}
            assert len(store.list_transitions(row.id)) == 3  # PENDING, RUNNING, COMPLETED
            messages = [log.message for log in store.list_logs(row.id)]
            assert {"inc 1", "inc 2", "inc 3"} <= set(messages)
    finally:
        store.close()


def test_the_schema_s_tables_are_the_ones_a_store_is_recognised_by() -> None:
    from daskflow.store.schema import metadata
    from daskflow.store.versions import TABLES, TABLES_ADDED

    assert set(metadata.tables) == TABLES
    assert {name for names in TABLES_ADDED.values() for name in names} <= TABLES

"""Serving flows on schedules: ``daskflow serve`` as a real subprocess, and ``Flow.serve``.

The subprocess tests read the SQLite store the serve process writes, send it
SIGTERM, and check what it recorded. The policy tests (missed slots,
overlapping runs) serve from a thread of this process with ``stop=``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import daskflow
from daskflow import flow
from daskflow.observers.events import FlowRunCreated, StateChanged, bus
from daskflow.states import State, StateType
from tests.conftest import poll_for

SERVED = Path(__file__).parent / "resources" / "served.py"


def cli(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daskflow.cli", "--store", str(store), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Served:
    """``daskflow serve`` running in a subprocess on a store of its own."""

    def __init__(self, store: Path, *args: str) -> None:
        self.store = store
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daskflow.cli", "--store", str(store), "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "DASKFLOW__PROGRESS": "false"},
        )

    def runs(self, state: str | None = None) -> list[daskflow.FlowRun]:
        return daskflow.runs(state=state, limit=None, store=str(self.store))

    def wait_for(self, state: str, count: int = 1) -> list[daskflow.FlowRun]:
        found: list[daskflow.FlowRun] = []

        def enough() -> bool:
            assert self.process.poll() is None, self.output()
            found[:] = self.runs(state)
            return len(found) >= count

        poll_for(enough, timeout=60, interval=0.1)
        return found

    def terminate(self, how: signal.Signals = signal.SIGTERM) -> int:
        self.process.send_signal(how)
        return self.process.wait(timeout=60)

    def output(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        assert self.process.stdout is not None
        return self.process.stdout.read()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "served.db"


@pytest.fixture
def release(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "held"
    folder.mkdir()
    yield folder
    (folder / "release").touch()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_serve_runs_on_an_interval_and_stops_cleanly_on_sigterm_or_ctrl_c(store, how):
    served = Served(store, f"{SERVED}:ticking", "--interval", "1", "--cluster", "sync")
    try:
        completed = served.wait_for("COMPLETED", 2)
        listed = cli("runs", "list", "--state", "SCHEDULED", store=store)
        assert listed.returncode == 0
        assert "SCHEDULED" in listed.stdout
        assert "ticking" in listed.stdout
        assert served.terminate(how) == 0
    finally:
        served.kill()
    output = served.process.stdout.read() if served.process.stdout else ""
    assert "serving flow ticking every 1s" in output

    runs = served.runs()
    assert not [r for r in runs if not r.state.is_final()]  # nothing left RUNNING/SCHEDULED
    [unstarted] = [r for r in runs if r.state.type is StateType.CANCELLED]
    assert f"serve stopped ({how.name}) before its slot" in unstarted.state.message
    assert unstarted.start_time is None
    for run in completed:
        assert run.scheduled_time is not None
        assert [t.state.type for t in run.transitions] == [
            StateType.SCHEDULED,
            StateType.PENDING,
            StateType.RUNNING,
            StateType.COMPLETED,
        ]
    slots = sorted(r.scheduled_time for r in runs if r.scheduled_time is not None)
    assert len(set(slots)) == len(slots)  # one run per slot


def test_a_failing_flow_keeps_being_served(store):
    served = Served(store, f"{SERVED}:failing", "--interval", "1", "--cluster", "sync")
    try:
        failed = served.wait_for("FAILED", 2)
        assert served.terminate() == 0
    finally:
        served.kill()
    assert all("fails on purpose" in r.state.message for r in failed)


def test_cancel_a_served_run_then_sigterm_cancels_the_next(store, release):
    served = Served(
        store, f"{SERVED}:held", "--interval", "1", "-p", f"folder={release}", "--cluster", "local"
    )
    try:
        [first] = served.wait_for("RUNNING")
        poll_for(lambda: any(release.glob("started-*")), timeout=60)
        cancelled = cli("runs", "cancel", first.id, store=store)
        assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
        # serving goes on: the next slot's run starts once the cancelled one ended
        poll_for(
            lambda: any(r.id != first.id for r in served.runs("RUNNING")), timeout=60, interval=0.1
        )
        assert served.terminate() == 0
    finally:
        served.kill()
    runs = {r.id: r for r in served.runs()}
    assert runs[first.id].state.type is StateType.CANCELLED
    assert "cancellation was requested" in runs[first.id].state.message
    [task_run] = runs[first.id].task_runs
    assert task_run.state.type is StateType.CANCELLED
    stopped = [r for r in runs.values() if r.id != first.id and r.start_time is not None]
    assert stopped, "a second run started"
    assert all(r.state.type is StateType.CANCELLED for r in stopped)
    assert any("serve stopped (SIGTERM)" in r.state.message for r in stopped)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cron", "61 * * * *"], "invalid cron '61 * * * *'"),
        (["--interval", "0"], "invalid interval"),
        (["--cron", "0 * * * *", "--timezone", "Mars/Olympus"], "invalid timezone"),
        ([], "exactly one of --cron and --interval"),
        (["--interval", "5", "-p", "nope=1"], "nope"),
    ],
)
def test_a_bad_schedule_is_a_usage_error_before_anything_starts(store, args, message):
    result = cli("serve", f"{SERVED}:ticking", *args, store=store)
    assert result.returncode == 2
    assert message in result.stderr
    assert not store.exists() or not daskflow.runs(store=str(store))


# -- policies, served from a thread of this process ---------------------------------------


class InThread:
    """``flow.serve(...)`` on a thread, stopped by an event."""

    def __init__(self, served: Any, **kwargs: Any) -> None:
        from daskflow.serving import serve

        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=serve, args=(served,), kwargs={**kwargs, "stop": self.stop}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive()


def record_scheduled_run(flow_name: str, slot: float) -> None:
    """A run of an earlier serve process, which served the slot ``slot``."""
    from daskflow.store import default_observer

    default_observer()  # the store records what the bus carries
    flow_run_id = uuid.uuid4().hex
    bus.publish(
        [
            FlowRunCreated(flow_run_id, flow_name, "old", {}, None, slot, scheduled_time=slot),
            StateChanged(flow_run_id, None, State(StateType.RUNNING, slot + 0.01)),
            StateChanged(flow_run_id, None, State(StateType.COMPLETED, slot + 0.02)),
        ]
    )
    bus.flush()


def scheduled_runs(flow_name: str) -> list[daskflow.FlowRun]:
    bus.flush()
    return [r for r in daskflow.runs(flow=flow_name, limit=None) if r.name != "old"]


@pytest.mark.parametrize("catch_up", [False, True])
def test_slots_missed_while_not_serving_are_skipped_or_caught_up_once(catch_up):
    name = f"missed-{catch_up}"

    @flow(name=name, cluster="sync")
    def missed() -> int:
        return 1

    last = time.time() - 12.5  # the slots at +5 and +10 s were missed; +15 s is ahead
    record_scheduled_run(name, last)
    serving = InThread(missed, interval=5, catch_up=catch_up)
    try:
        if catch_up:  # a run starts at once
            poll_for(lambda: any(r.start_time for r in scheduled_runs(name)), timeout=30)
        else:  # the next slot's run waits, SCHEDULED
            poll_for(lambda: bool(scheduled_runs(name)), timeout=30)
        first = scheduled_runs(name)[-1]
    finally:
        serving.close()
    assert first.scheduled_time is not None
    # the slot it serves is on the old run's grid: +10 s (caught up) or +15 s (the next one)
    expected = last + (10 if catch_up else 15)
    assert first.scheduled_time.timestamp() == pytest.approx(expected, abs=1e-3)
    assert (first.start_time is not None) == catch_up


@pytest.mark.parametrize("limit", [1, None])
def test_at_most_limit_runs_of_a_served_flow_at_a_time(limit):
    name = f"overlap-{limit}"

    @flow(name=name, cluster="sync")
    def slow() -> None:
        time.sleep(0.6)

    serving = InThread(slow, interval=0.2, limit=limit)
    try:
        poll_for(
            lambda: len([r for r in scheduled_runs(name) if r.state.is_completed()]) >= 3,
            timeout=60,
        )
    finally:
        serving.close()
    spans = [
        (r.start_time.timestamp(), r.end_time.timestamp())
        for r in scheduled_runs(name)
        if r.state.is_completed() and r.start_time and r.end_time
    ]
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    at_once = peak = 0
    for _, step in edges:
        at_once += step
        peak = max(peak, at_once)
    if limit == 1:
        assert peak == 1
    else:
        assert peak >= 2


def test_cancelling_the_scheduled_run_skips_its_slot_and_serving_goes_on():
    @flow(name="yearly", cluster="sync")
    def yearly() -> int:
        return 1

    serving = InThread(yearly, cron="0 0 1 1 *")
    try:
        poll_for(lambda: bool(scheduled_runs("yearly")), timeout=30)
        [waiting] = scheduled_runs("yearly")
        assert waiting.state.type is StateType.SCHEDULED
        after = waiting.cancel(wait=30)
        assert after.state.type is StateType.CANCELLED
        assert "cancelled before its slot" in after.state.message
        poll_for(lambda: len(scheduled_runs("yearly")) == 2, timeout=30)
        following = scheduled_runs("yearly")[0]
        assert following.state.type is StateType.SCHEDULED
        assert following.scheduled_time.year == waiting.scheduled_time.year + 1
    finally:
        serving.close()
    assert all(r.start_time is None for r in scheduled_runs("yearly"))  # nothing ran


def test_a_cron_whose_last_slot_passed_stops_serving_after_its_run():
    from datetime import UTC, datetime, timedelta

    @flow(name="last-slot", cluster="sync")
    def last_slot() -> int:
        return 1

    # minute hour day month weekday second year: one slot only, two seconds from now
    t = datetime.now(UTC) + timedelta(seconds=2)
    cron = f"{t.minute} {t.hour} {t.day} {t.month} * {t.second} {t.year}"
    done = threading.Event()
    thread = threading.Thread(target=lambda: (last_slot.serve(cron=cron), done.set()))
    thread.start()
    try:
        assert done.wait(60), "serve kept waiting for a slot that never comes"
    finally:
        thread.join(60)
    [run] = scheduled_runs("last-slot")
    assert run.state.type is StateType.COMPLETED


def test_a_signal_handler_sets_serves_wake_event_while_the_main_thread_waits_on_it():
    from daskflow.signal_handlers import SignalSafeEvent

    event = SignalSafeEvent()
    done = threading.Event()

    def main_thread_inside_wait() -> None:
        with event._cond:  # where wait() is when the signal comes: holding its lock
            event.set()  # what serve's handler does then (a plain Event deadlocks here)
        done.set()

    threading.Thread(target=main_thread_inside_wait, daemon=True).start()
    assert done.wait(10), "set() deadlocked on the event's own lock"
    assert event.wait(0)

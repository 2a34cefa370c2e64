"""Prefect 3's schedule objects: ``Cron``, ``Interval``, ``RRule``, ``serve(schedules=[...])``."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import daskflow
from daskflow import flow
from daskflow.errors import ParameterValidationError, ScheduleError
from daskflow.observers.events import bus
from daskflow.schedules import Cron, Interval, RRule, Schedule
from tests.conftest import poll_for

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)


def test_cron_slots_follow_the_expression_in_its_timezone():
    slots = Cron("0 8 * * 1", timezone="America/New_York").slots()
    first = slots.next_after(MONDAY)
    assert first.isoformat() == "2026-01-05T08:00:00-05:00"
    assert slots.next_after(first) - first == timedelta(days=7)


def test_cron_day_or_false_needs_both_day_and_weekday():
    # the 1st to 7th of a month AND a Friday: the first Friday of each month
    first_friday = Cron("0 0 1-7 * 5", day_or=False).slots()
    either = Cron("0 0 1-7 * 5").slots()
    assert first_friday.next_after(MONDAY).date().isoformat() == "2026-02-06"
    assert either.next_after(MONDAY).date().isoformat() == "2026-01-06"


def test_interval_slots_count_from_the_anchor_date():
    every = Interval(timedelta(minutes=5), anchor_date=MONDAY).slots()
    assert every.next_after(MONDAY + timedelta(minutes=7)) == MONDAY + timedelta(minutes=10)
    assert Interval(90).interval == timedelta(seconds=90)


def test_rrule_slots_follow_the_rule():
    rule = RRule("FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9;BYMINUTE=0;BYSECOND=0").slots(MONDAY)
    monday = rule.next_after(MONDAY)
    assert monday == MONDAY.replace(hour=9)
    assert rule.next_after(monday) == MONDAY.replace(day=7, hour=9)
    dated = RRule("DTSTART:20260101T060000\nRRULE:FREQ=DAILY", timezone="Europe/Berlin").slots()
    assert dated.next_after(MONDAY).isoformat() == "2026-01-05T06:00:00+01:00"


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda: Cron("61 * * * *"), "cron"),
        (lambda: Cron("* * * * *", timezone="Nowhere/Atlantis"), "timezone"),
        (lambda: Interval(0), "interval"),
        (lambda: Interval("often"), "interval"),
        (lambda: RRule("FREQ=SOMETIMES"), "rrule"),
        (lambda: Schedule(cron="* * * * *", interval=timedelta(1)), "schedule"),
        (lambda: Schedule(), "schedule"),
    ],
)
def test_a_bad_schedule_is_refused_when_made(make, what):
    with pytest.raises(ScheduleError, match=f"invalid {what}"):
        make()


def test_a_schedule_describes_itself_with_its_parameters():
    cron = Cron("0 6 * * *", timezone="Europe/Berlin", parameters={"full": True}, slug="daily")
    assert cron.describe() == "daily: cron '0 6 * * *' (Europe/Berlin) with {'full': True}"
    assert Interval(3600).describe() == "every 1h"


class Serving:
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


def completed_runs(flow_name: str) -> list[daskflow.FlowRun]:
    bus.flush()
    return [r for r in daskflow.runs(flow=flow_name, limit=None) if r.state.is_completed()]


def test_several_schedules_each_run_with_their_own_parameters(cluster, request):
    name = f"two-schedules-{request.node.callspec.id}"

    @flow(name=name)
    def report(region: str, full: bool = False, source: str = "") -> str:
        return f"{region} {full} {source}"

    served = report.with_options(cluster=cluster)
    serving = Serving(
        served,
        name="reports",
        parameters={"source": "s3://raw", "region": "eu"},
        schedules=[
            Interval(0.3, parameters={"full": True}),
            Interval(0.4, parameters={"region": "us"}),
            Cron("* * * * *", active=False, parameters={"region": "never"}),
        ],
        limit=None,
    )
    try:
        poll_for(
            lambda: len({r.parameters["region"] for r in completed_runs(name)}) == 2, timeout=60
        )
    finally:
        serving.close()
    seen = {tuple(sorted(r.parameters.items())) for r in completed_runs(name)}
    assert seen == {
        (("full", True), ("region", "eu"), ("source", "s3://raw")),
        (("region", "us"), ("source", "s3://raw")),
    }
    from daskflow.store import default_observer
    from daskflow.store.deployments import get_deployment

    store = default_observer().store
    deployment = get_deployment(store, name, "reports")
    assert deployment is not None
    words = "every 0.3s with {'full': True}; every 0.4s with {'region': 'us'}"
    assert deployment.schedule == words
    command = ["deployments", "list", "--json"]
    listed = subprocess.run(
        [sys.executable, "-m", "daskflow.cli", "--store", store.url, *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    [shown] = [d for d in json.loads(listed.stdout) if d["flow_name"] == name]
    assert shown["schedule"] == words


def test_a_schedule_whose_parameters_do_not_fit_is_refused_before_serving():
    @flow(cluster="sync")
    def counted(n: int) -> int:
        return n

    with pytest.raises(ParameterValidationError, match="n"):
        counted.serve("bad", schedules=[Interval(60, parameters={"n": "many"})])


def test_schedules_and_cron_together_are_refused():
    @flow(cluster="sync")
    def once() -> None: ...

    with pytest.raises(ScheduleError, match="not both"):
        once.serve("both", cron="* * * * *", schedules=[Interval(60)])


def test_something_else_in_schedules_is_refused():
    @flow(cluster="sync")
    def once() -> None: ...

    with pytest.raises(ScheduleError, match="Cron"):
        once.serve("odd", schedules=["0 * * * *"])

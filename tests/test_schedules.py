"""Schedules: cron in a timezone across DST, intervals, and clear errors for bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from daskflow.errors import DaskflowError, ScheduleError
from daskflow.serving.schedules import CronSchedule, IntervalSchedule, parse_interval, schedule_for

BERLIN = ZoneInfo("Europe/Berlin")


def slots(schedule: CronSchedule | IntervalSchedule, start: datetime, n: int) -> list[datetime]:
    out = []
    for _ in range(n):
        start = schedule.next_after(start)
        out.append(start)
    return out


def test_cron_slots_are_read_in_the_schedule_timezone() -> None:
    schedule = schedule_for(cron="0 6 * * *", timezone="Europe/Berlin")
    [slot] = slots(schedule, datetime(2026, 1, 10, 12, tzinfo=UTC), 1)
    assert slot == datetime(2026, 1, 11, 6, tzinfo=BERLIN)
    assert slot.astimezone(UTC).hour == 5  # CET is UTC+1 in winter


def test_a_daily_slot_keeps_its_wall_time_across_the_spring_change() -> None:
    schedule = schedule_for(cron="0 6 * * *", timezone="Europe/Berlin")
    got = slots(schedule, datetime(2026, 3, 27, 12, tzinfo=BERLIN), 2)
    assert [(s.day, s.hour) for s in got] == [(28, 6), (29, 6)]
    # 2026-03-29 has 23 hours: 23 hours of real time between the two 06:00 slots
    assert got[1].astimezone(UTC) - got[0].astimezone(UTC) == timedelta(hours=23)
    assert [s.astimezone(UTC).hour for s in got] == [5, 4]


def test_a_slot_in_the_skipped_spring_hour_runs_right_after_the_jump() -> None:
    schedule = schedule_for(cron="30 2 * * *", timezone="Europe/Berlin")
    got = slots(schedule, datetime(2026, 3, 28, 12, tzinfo=BERLIN), 2)
    assert got[0] == datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN)  # 02:30 does not exist
    assert got[1] == datetime(2026, 3, 30, 2, 30, tzinfo=BERLIN)


def test_a_fixed_hour_slot_runs_once_in_the_repeated_autumn_hour() -> None:
    schedule = schedule_for(cron="30 2 * * *", timezone="Europe/Berlin")
    got = slots(schedule, datetime(2026, 10, 24, 12, tzinfo=BERLIN), 2)
    assert [(s.day, s.hour, s.minute) for s in got] == [(25, 2, 30), (26, 2, 30)]


def test_an_hourly_schedule_runs_in_both_passes_of_the_repeated_hour() -> None:
    schedule = schedule_for(cron="0 * * * *", timezone="Europe/Berlin")
    got = slots(schedule, datetime(2026, 10, 24, 23, 30, tzinfo=UTC), 3)
    # 02:00 CEST, 02:00 CET, 03:00 CET: one hour of real time apart each
    assert [s.astimezone(UTC).hour for s in got] == [0, 1, 2]
    assert [(s.hour, s.fold) for s in got] == [(2, 0), (2, 1), (3, 0)]


def test_interval_slots_count_elapsed_time_from_the_anchor() -> None:
    anchor = datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN)  # an hour before the spring jump
    schedule = IntervalSchedule(timedelta(hours=1), anchor, BERLIN)
    got = slots(schedule, anchor, 3)
    elapsed = [s.astimezone(UTC) - anchor.astimezone(UTC) for s in got]
    assert elapsed == [timedelta(hours=h) for h in (1, 2, 3)]
    assert [s.hour for s in got] == [3, 4, 5]  # the clock jumped from 2 to 3
    assert schedule.next_after(anchor - timedelta(days=1)) == anchor  # before it: the anchor


@pytest.mark.parametrize(
    ("text", "seconds"), [("30", 30), (45, 45), ("90s", 90), ("5m", 300), ("1h", 3600), (0.5, 0.5)]
)
def test_intervals_are_read_like_dask_durations(text: object, seconds: float) -> None:
    assert parse_interval(text).total_seconds() == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"cron": "61 * * * *"}, "'61 * * * *'"),
        ({"cron": "every hour"}, "'every hour'"),
        ({"cron": "0 0 31 2 *"}, "'0 0 31 2 *'"),
        ({"interval": 0}, "interval 0"),
        ({"interval": "-5s"}, "'-5s'"),
        ({"interval": "soon"}, "'soon'"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "'Mars/Olympus'"),
        ({}, "exactly one of cron= and interval="),
        ({"cron": "* * * * *", "interval": 5}, "exactly one of cron= and interval="),
    ],
)
def test_a_bad_schedule_is_one_clear_error_naming_it(kwargs: dict, names: str) -> None:
    with pytest.raises(ScheduleError) as info:
        schedule_for(**kwargs)
    assert names in str(info.value)
    assert isinstance(info.value, DaskflowError | ValueError)


def test_schedules_describe_themselves() -> None:
    assert schedule_for(interval="5m").describe() == "every 5m"
    assert "Europe/Berlin" in schedule_for(cron="0 6 * * *", timezone="Europe/Berlin").describe()


@pytest.mark.parametrize(
    "schedule",
    [
        schedule_for(cron="*/15 * * * *", timezone="Europe/Berlin"),
        IntervalSchedule(timedelta(minutes=15), datetime(2026, 1, 1, 0, 5, tzinfo=UTC)),
    ],
)
def test_the_last_slot_until_a_moment_includes_the_moment_itself(schedule) -> None:
    slot = schedule.next_after(datetime(2026, 6, 1, 12, 1, tzinfo=UTC))
    assert schedule.last_until(slot) == slot
    assert schedule.last_until(slot + timedelta(minutes=14)) == slot
    assert schedule.next_after(schedule.last_until(slot - timedelta(seconds=1))) == slot


def test_a_six_field_cron_with_a_fixed_hour_runs_once_in_the_repeated_autumn_hour() -> None:
    # croniter's sixth field is the second: the hour is still the second field
    schedule = schedule_for(cron="30 2 * * * 15", timezone="Europe/Berlin")
    got = slots(schedule, datetime(2026, 10, 24, 12, tzinfo=BERLIN), 2)
    assert [(s.day, s.hour, s.minute, s.second) for s in got] == [(25, 2, 30, 15), (26, 2, 30, 15)]


def test_a_cron_with_no_slot_left_says_so() -> None:
    schedule = schedule_for(cron="0 0 1 1 * 0 2026-2099", timezone="UTC")
    assert schedule.next_after(datetime(2098, 6, 1, tzinfo=UTC)).year == 2099
    with pytest.raises(ScheduleError, match="no slot after"):
        schedule.next_after(datetime(2099, 6, 1, tzinfo=UTC))
    assert schedule.last_until(datetime(2099, 6, 1, tzinfo=UTC)) == datetime(2099, 1, 1, tzinfo=UTC)

"""Schedules as objects, as Prefect 3 writes them: ``Cron``, ``Interval``, ``RRule``.

``flow.serve(name, schedules=[...])`` serves several at once; each run of a
schedule gets the deployment's parameters with the schedule's own
``parameters`` merged over them::

    from daskflow.schedules import Cron, Interval

    etl.serve(
        "etl",
        parameters={"source": "s3://bucket/raw"},
        schedules=[
            Cron("0 6 * * *", timezone="Europe/Berlin", parameters={"full": True}),
            Interval(timedelta(hours=1), parameters={"full": False}),
        ],
    )

A :class:`Schedule` is a frozen description, checked when it is made (a bad
cron string, interval, rule or timezone is a
:class:`~daskflow.errors.ScheduleError`, a ``ValueError``); the serve loop
(:mod:`daskflow.serving.serve`) turns it into slots.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from daskflow.errors import ScheduleError

__all__ = ["Cron", "Interval", "RRule", "Schedule", "as_schedules"]


@dataclass(frozen=True)
class Schedule:
    """One schedule of a served flow: exactly one of ``cron``, ``interval``, ``rrule``.

    Attributes
    ----------
    interval
        Runs every ``interval`` of elapsed time from ``anchor_date``.
    cron
        A cron expression (``"0 0 * * *"``), read in ``timezone``.
    rrule
        An iCalendar recurrence rule (``"FREQ=DAILY;BYHOUR=6"``).
    timezone
        An IANA timezone name (default UTC).
    anchor_date
        Where interval slots are counted from (default: when serving starts).
    day_or
        Cron only: day of month and day of week match with OR (cron's rule,
        default) or AND.
    active
        An inactive schedule starts no runs.
    parameters
        Parameters of this schedule's runs, merged over the deployment's.
    slug
        A name for the schedule, shown with it.
    """

    interval: datetime.timedelta | None = None
    cron: str | None = None
    rrule: str | None = None
    timezone: str | None = None
    anchor_date: datetime.datetime | None = None
    day_or: bool = True
    active: bool = True
    parameters: dict[str, Any] = field(default_factory=dict)
    slug: str | None = None

    def __post_init__(self) -> None:
        given = [n for n in ("interval", "cron", "rrule") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ScheduleError(
                "schedule", ", ".join(given) or None, "give exactly one of interval, cron and rrule"
            )
        if not isinstance(self.parameters, dict):
            raise ScheduleError("parameters", self.parameters, "a dict of parameter values")
        if self.anchor_date is not None and not isinstance(self.anchor_date, datetime.datetime):
            raise ScheduleError("anchor_date", self.anchor_date, "a datetime")
        self.slots()  # checks the cron string, interval, rule and timezone now

    def slots(self, start: datetime.datetime | None = None) -> Any:
        """The slot generator the serve loop reads (:mod:`daskflow.serving.schedules`).

        ``start``: where an interval without ``anchor_date``, or a rule
        without ``DTSTART``, starts (default: now).
        """
        from daskflow.serving.schedules import (
            CronSchedule,
            IntervalSchedule,
            RRuleSchedule,
            parse_interval,
            parse_timezone,
        )

        zone = parse_timezone(self.timezone)
        start = start or datetime.datetime.now(datetime.UTC)
        if self.cron is not None:
            return CronSchedule(self.cron, zone, self.day_or)
        if self.rrule is not None:
            return RRuleSchedule(self.rrule, zone, start)
        assert self.interval is not None
        anchor = self.anchor_date or start
        if anchor.tzinfo is None:
            anchor = anchor.replace(tzinfo=zone)
        return IntervalSchedule(parse_interval(self.interval), anchor, zone)

    def describe(self) -> str:
        """The schedule in words (what ``daskflow deployments list`` shows)."""
        text = self.slots().describe()
        if self.slug:
            text = f"{self.slug}: {text}"
        if self.parameters:
            text += f" with {self.parameters}"
        return text


def Cron(
    cron: str,
    /,
    timezone: str | None = None,
    day_or: bool = True,
    active: bool = True,
    parameters: dict[str, Any] | None = None,
    slug: str | None = None,
) -> Schedule:
    """A cron schedule, e.g. ``Cron("0 8 * * 1", timezone="America/New_York")``.

    Examples
    --------
    >>> Cron("0 0 * * *").describe()
    "cron '0 0 * * *' (UTC)"
    """
    return Schedule(
        cron=cron,
        timezone=timezone,
        day_or=day_or,
        active=active,
        parameters=dict(parameters or {}),
        slug=slug,
    )


def Interval(
    interval: datetime.timedelta | float | int,
    /,
    anchor_date: datetime.datetime | None = None,
    timezone: str | None = None,
    active: bool = True,
    parameters: dict[str, Any] | None = None,
    slug: str | None = None,
) -> Schedule:
    """An interval schedule: a ``timedelta`` or seconds, counted from ``anchor_date``.

    Examples
    --------
    >>> Interval(3600, parameters={"full": False}).describe()
    "every 1h with {'full': False}"
    """
    if isinstance(interval, bool) or not isinstance(interval, int | float | datetime.timedelta):
        raise ScheduleError("interval", interval, "a timedelta or a number of seconds")
    every = (
        interval
        if isinstance(interval, datetime.timedelta)
        else datetime.timedelta(seconds=interval)
    )
    return Schedule(
        interval=every,
        anchor_date=anchor_date,
        timezone=timezone,
        active=active,
        parameters=dict(parameters or {}),
        slug=slug,
    )


def RRule(
    rrule: str,
    /,
    timezone: str | None = None,
    active: bool = True,
    parameters: dict[str, Any] | None = None,
    slug: str | None = None,
) -> Schedule:
    """A schedule from an iCalendar recurrence rule (read by ``dateutil.rrule``).

    Examples
    --------
    >>> RRule("FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9;BYMINUTE=0;BYSECOND=0").describe()
    "rrule 'FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9;BYMINUTE=0;BYSECOND=0' (UTC)"
    """
    return Schedule(
        rrule=rrule,
        timezone=timezone,
        active=active,
        parameters=dict(parameters or {}),
        slug=slug,
    )


def as_schedules(
    *,
    cron: str | Sequence[str] | None = None,
    interval: Any = None,
    rrule: str | Sequence[str] | None = None,
    timezone: str | None = None,
) -> list[Schedule]:
    """``serve``'s ``cron``/``interval``/``rrule`` arguments (each one or a list) as schedules.

    Examples
    --------
    >>> [s.describe() for s in as_schedules(cron=["0 6 * * *", "0 18 * * *"])]
    ["cron '0 6 * * *' (UTC)", "cron '0 18 * * *' (UTC)"]
    """
    from daskflow.serving.schedules import parse_interval

    def each(value: Any) -> list[Any]:
        return [] if value is None else list(value) if isinstance(value, list | tuple) else [value]

    return [
        *(Cron(c, timezone=timezone) for c in each(cron)),
        *(Interval(parse_interval(i), timezone=timezone) for i in each(interval)),
        *(RRule(r, timezone=timezone) for r in each(rrule)),
    ]

"""When a served flow runs: cron and interval schedules.

A schedule is a pure function of time: :meth:`Schedule.next_after` gives the
first slot strictly after a moment, as a timezone-aware ``datetime``. The
serve loop (:mod:`daskflow.serving.serve`) asks it for one slot at a time, so
a schedule holds no state and the same slots come out in every process.

- :class:`CronSchedule` parses a cron expression with ``croniter`` (five
  fields, or six with seconds; ``@hourly``-style aliases) in a timezone from
  the IANA database. Daylight saving time follows cron's own rules: a slot
  that falls in the hour skipped in spring runs at the first minute after the
  jump, and a slot with a fixed hour runs once in the hour repeated in
  autumn (a slot with a wildcard hour runs in both, an hour apart, as the
  clock really passes twice).
- :class:`IntervalSchedule` runs every ``interval`` of elapsed time from an
  anchor: slots are ``anchor + k * interval``, unaffected by clock changes.

Both are built by :func:`schedule_for`, which checks everything before a
serve process starts: a bad cron string, a non-positive interval or an
unknown timezone raise :class:`~daskflow.errors.ScheduleError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daskflow.errors import ScheduleError

#: The longest interval a schedule takes: slots must stay datetimes (before
#: year 9999) for as long as a serve process could run.
MAX_INTERVAL = timedelta(days=100 * 366)

__all__ = [
    "CronSchedule",
    "IntervalSchedule",
    "RRuleSchedule",
    "Schedule",
    "ScheduleSet",
    "parse_interval",
    "parse_timezone",
    "schedule_for",
]


class Schedule(Protocol):
    """What the serve loop needs from a schedule."""

    timezone: tzinfo

    def next_after(self, moment: datetime) -> datetime:
        """The first slot strictly after ``moment`` (an aware datetime)."""

    def last_until(self, moment: datetime) -> datetime | None:
        """The latest slot at or before ``moment``; None when there is none."""

    def describe(self) -> str:
        """The schedule in words, for logs and ``--help`` output."""


def parse_timezone(name: str | tzinfo | None) -> tzinfo:
    """A timezone from an IANA name (``"Europe/Berlin"``), a ``tzinfo``, or None (UTC)."""
    if name is None:
        return UTC
    if isinstance(name, tzinfo):
        return name
    if not isinstance(name, str):
        raise ScheduleError("timezone", name, "give an IANA timezone name as a string")
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        # OSError: a name the file system refuses (too long, a folder, unreadable)
        raise ScheduleError(
            "timezone", name, "not a timezone of the IANA database (e.g. 'Europe/Berlin')"
        ) from exc


def parse_interval(value: timedelta | float | str) -> timedelta:
    """An interval from a ``timedelta``, seconds, or text like ``"30s"``, ``"5m"``, ``"1h"``.

    Text is read by :func:`dask.utils.parse_timedelta` (a bare number is seconds),
    the way Dask reads durations in its configuration.

    Examples
    --------
    >>> parse_interval("90s"), parse_interval(2.5)
    (datetime.timedelta(seconds=90), datetime.timedelta(seconds=2, microseconds=500000))
    """
    if isinstance(value, timedelta):
        interval = value
    elif isinstance(value, bool):
        raise ScheduleError("interval", value, "a duration, not True or False")
    else:
        from dask.utils import parse_timedelta

        try:
            seconds = parse_timedelta(value, default="seconds")
        except (KeyError, ValueError, TypeError, IndexError, OverflowError) as exc:
            raise ScheduleError(
                "interval", value, "not a duration (write e.g. 30, '30s', '5m', '1h', '1d')"
            ) from exc
        if seconds is None or not math.isfinite(seconds):
            raise ScheduleError("interval", value, "not a finite duration")
        if seconds > MAX_INTERVAL.total_seconds():
            raise ScheduleError("interval", value, f"longer than {MAX_INTERVAL.days} days")
        interval = timedelta(seconds=seconds)
    if interval <= timedelta(0):
        raise ScheduleError("interval", value, "must be longer than zero")
    if interval > MAX_INTERVAL:
        raise ScheduleError("interval", value, f"longer than {MAX_INTERVAL.days} days")
    return interval


@dataclass(frozen=True)
class CronSchedule:
    """Slots where a cron expression matches, in ``timezone``.

    Examples
    --------
    >>> hourly = CronSchedule("0 * * * *")
    >>> hourly.next_after(datetime(2026, 1, 1, 10, 30, tzinfo=UTC)).isoformat()
    '2026-01-01T11:00:00+00:00'
    """

    expression: str
    timezone: tzinfo = UTC
    day_or: bool = True  # day of month OR day of week (cron's rule); False: AND

    def __post_init__(self) -> None:
        from croniter import CroniterError

        if not isinstance(self.expression, str) or not self.expression.strip():
            raise ScheduleError("cron", self.expression, "give a cron expression as a string")
        try:
            self._iter(datetime.now(self.timezone)).get_next(datetime)
        except (CroniterError, ValueError, KeyError) as exc:
            raise ScheduleError("cron", self.expression, _first_line(exc)) from exc

    def _iter(self, start: datetime) -> Any:
        from croniter import croniter

        return croniter(self.expression, start, day_or=self.day_or)

    @property
    def _fixed_hour(self) -> bool:
        fields = self.expression.split()
        if len(fields) < 2:  # an alias: @daily, @weekly ... have a fixed hour; @hourly not
            return self.expression.strip().lower() not in {"@hourly", "@minutely"}
        hour = fields[1]  # croniter: minute hour day month weekday [second [year]]
        return "*" not in hour and "/" not in hour and "-" not in hour

    def next_after(self, moment: datetime) -> datetime:
        """The first slot after ``moment``.

        Raises
        ------
        ScheduleError
            No slot is left (an expression limited to years that have passed).
        """
        from croniter import CroniterBadDateError

        try:
            slot: datetime = self._iter(moment.astimezone(self.timezone)).get_next(datetime)
            if self._fixed_hour and _second_occurrence(slot):
                # the repeated autumn hour: a fixed-hour slot already ran in its first pass
                slot = self._iter(slot).get_next(datetime)
        except (CroniterBadDateError, OverflowError) as exc:
            raise ScheduleError(
                "cron", self.expression, f"no slot after {moment.isoformat()}"
            ) from exc
        return slot

    def last_until(self, moment: datetime) -> datetime | None:
        from croniter import CroniterBadDateError

        try:
            before: datetime = self._iter(moment.astimezone(self.timezone)).get_prev(datetime)
        except (CroniterBadDateError, OverflowError):
            return None
        try:
            following = self.next_after(before)
        except ScheduleError:
            return before
        return following if following <= moment else before

    def describe(self) -> str:
        day_and = "" if self.day_or else ", day AND weekday"
        return f"cron {self.expression!r} ({_zone_name(self.timezone)}{day_and})"


@dataclass(frozen=True)
class IntervalSchedule:
    """Slots every ``interval`` of elapsed time, counted from ``anchor``.

    Examples
    --------
    >>> every = IntervalSchedule(timedelta(minutes=5), datetime(2026, 1, 1, tzinfo=UTC))
    >>> every.next_after(datetime(2026, 1, 1, 0, 7, tzinfo=UTC)).isoformat()
    '2026-01-01T00:10:00+00:00'
    """

    interval: timedelta
    anchor: datetime
    timezone: tzinfo = UTC

    def next_after(self, moment: datetime) -> datetime:
        # in UTC: arithmetic on datetimes of one zone is wall-clock arithmetic
        anchor = self.anchor.astimezone(UTC)
        elapsed = (moment.astimezone(UTC) - anchor) / self.interval
        steps = math.floor(elapsed) + 1 if elapsed >= 0 else 0
        return (anchor + steps * self.interval).astimezone(self.timezone)

    def last_until(self, moment: datetime) -> datetime | None:
        anchor = self.anchor.astimezone(UTC)
        if moment < anchor:
            return None
        steps = math.floor((moment.astimezone(UTC) - anchor) / self.interval)
        return (anchor + steps * self.interval).astimezone(self.timezone)

    def describe(self) -> str:
        return f"every {_format_interval(self.interval)}"


@dataclass(frozen=True)
class RRuleSchedule:
    """Slots of an iCalendar recurrence rule (``dateutil.rrule``), in ``timezone``.

    A rule without ``DTSTART`` starts at ``start``; a ``DTSTART`` without a
    zone is read in ``timezone``. One ``RRULE`` per schedule.

    Examples
    --------
    >>> start = datetime(2026, 1, 1, tzinfo=UTC)
    >>> daily = RRuleSchedule("FREQ=DAILY;BYHOUR=6;BYMINUTE=0;BYSECOND=0", UTC, start)
    >>> daily.next_after(datetime(2026, 1, 1, 7, tzinfo=UTC)).isoformat()
    '2026-01-02T06:00:00+00:00'
    """

    text: str
    timezone: tzinfo = UTC
    start: datetime | None = None
    _rule: Any = field(init=False, repr=False, compare=False)  # the parsed rule

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rule", self._parse())

    def _parse(self) -> Any:
        from dateutil.rrule import rrule, rrulestr

        if not isinstance(self.text, str) or not self.text.strip():
            raise ScheduleError("rrule", self.text, "give a recurrence rule as a string")
        start = (self.start or datetime.now(UTC)).astimezone(self.timezone).replace(microsecond=0)
        try:
            rule = rrulestr(self.text, dtstart=start)
            if isinstance(rule, rrule) and rule._dtstart.tzinfo is None:  # a DTSTART of no zone
                rule = rule.replace(dtstart=rule._dtstart.replace(tzinfo=self.timezone))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise ScheduleError("rrule", self.text, _first_line(exc)) from exc
        if not isinstance(rule, rrule):
            raise ScheduleError("rrule", self.text, "give one RRULE (no RDATE, EXRULE, EXDATE)")
        return rule

    def next_after(self, moment: datetime) -> datetime:
        slot: datetime | None = self._rule.after(moment.astimezone(self.timezone))
        if slot is None:
            raise ScheduleError("rrule", self.text, f"no slot after {moment.isoformat()}")
        return slot

    def last_until(self, moment: datetime) -> datetime | None:
        before: datetime | None = self._rule.before(moment.astimezone(self.timezone), inc=True)
        return before

    def describe(self) -> str:
        return f"rrule {self.text!r} ({_zone_name(self.timezone)})"


@dataclass(frozen=True)
class ScheduleSet:
    """Several schedules served together, each slot with its schedule's parameters.

    Built from :class:`daskflow.schedules.Schedule` objects by :meth:`of`.
    Slots are the union of the members' slots; a moment two members share is
    one slot, with the first member's parameters. Intervals without an
    ``anchor_date`` and rules without ``DTSTART`` start when serving starts
    (:meth:`started`).
    """

    sources: tuple[Any, ...]  # the Schedule objects, active ones only
    parameters: tuple[dict[str, Any], ...]  # each one's run parameters, merged
    members: tuple[Any, ...]  # each one's slots
    timezone: tzinfo = UTC

    @classmethod
    def of(cls, schedules: Any, defaults: dict[str, Any], start: datetime) -> ScheduleSet:
        """The active ``schedules``, each with ``defaults`` merged under its parameters."""
        from daskflow.schedules import Schedule

        listed = [schedules] if isinstance(schedules, Schedule) else list(schedules)
        for schedule in listed:
            if not isinstance(schedule, Schedule):
                raise ScheduleError(
                    "schedules",
                    schedule,
                    "give Cron(...), Interval(...) or RRule(...) from daskflow.schedules",
                )
        active = tuple(s for s in listed if s.active)
        merged = tuple({**defaults, **s.parameters} for s in active)
        return cls(active, merged, tuple(s.slots(start) for s in active))

    def started(self, start: datetime) -> ScheduleSet:
        """The same schedules, with their slots counted from ``start``."""
        return ScheduleSet(
            self.sources, self.parameters, tuple(s.slots(start) for s in self.sources)
        )

    def next_after(self, moment: datetime) -> datetime:
        slots = []
        for schedule in self.members:
            try:
                slots.append(schedule.next_after(moment))
            except ScheduleError:  # this one has no slot left; the others go on
                continue
        if not slots:
            raise ScheduleError("schedules", None, f"no slot after {moment.isoformat()}")
        return min(slots)

    def last_until(self, moment: datetime) -> datetime | None:
        found = [s for s in (m.last_until(moment) for m in self.members) if s is not None]
        return max(found) if found else None

    def parameters_at(self, slot: datetime) -> dict[str, Any]:
        """The run parameters of the (first) schedule whose slot ``slot`` is."""
        for schedule, parameters in zip(self.members, self.parameters, strict=True):
            if schedule.last_until(slot) == slot:
                return parameters
        return self.parameters[0]

    def describe(self) -> str:
        return "; ".join(s.describe() for s in self.sources)


def schedule_for(
    *,
    cron: str | None = None,
    interval: timedelta | float | str | None = None,
    timezone: str | tzinfo | None = None,
    anchor: datetime | None = None,
) -> CronSchedule | IntervalSchedule:
    """The schedule of one ``serve`` call: exactly one of ``cron`` and ``interval``.

    Parameters
    ----------
    cron
        A cron expression, e.g. ``"0 * * * *"`` (every hour on the hour).
    interval
        A ``timedelta``, seconds, or text like ``"30s"``.
    timezone
        An IANA name; cron slots are read in it (default UTC).
    anchor
        Where interval slots are counted from (default: now).

    Raises
    ------
    ScheduleError
        Neither or both of ``cron`` and ``interval``, a bad cron expression,
        a non-positive interval, an unknown timezone.
    """
    zone = parse_timezone(timezone)
    if (cron is None) == (interval is None):
        raise ScheduleError("schedule", None, "give exactly one of cron= and interval=")
    if cron is not None:
        return CronSchedule(cron, zone)
    assert interval is not None
    start = anchor if anchor is not None else datetime.now(UTC)
    return IntervalSchedule(parse_interval(interval), start, zone)


def _second_occurrence(slot: datetime) -> bool:
    """True for a wall time the clock shows for the second time (autumn's repeated hour)."""
    first = slot.replace(fold=0)
    return slot.fold == 1 or (
        first.utcoffset() != slot.utcoffset() and first.astimezone(UTC) < slot.astimezone(UTC)
    )


def _zone_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or str(zone)


def _format_interval(interval: timedelta) -> str:
    seconds = interval.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

"""Expansion of Graph's `patternedRecurrence` into occurrence start times.

Semantics follow Microsoft's documentation of `recurrencePattern`, `recurrenceRange` and "Schedule
repeating appointments as recurring events in Outlook" (learn.microsoft.com/graph/outlook-schedule-
recurring-events), mapped onto iCalendar rules evaluated by `dateutil.rrule`:

- The first occurrence is the first day on or after `range.startDate` that fits the pattern; the
  interval counts from there. (Microsoft's example: "first Thursday of every other month" starting
  on 29 August, after that month's first Thursday, first occurs in September.)
- `weekly` repeats on `daysOfWeek` every `interval` weeks, weeks starting on `firstDayOfWeek`
  (default Sunday), which decides which days share a week when `interval` > 1.
- `relativeMonthly`/`relativeYearly` fall on the `index`-th (default first; `last` counts from
  the end) of the days in the month that are one of `daysOfWeek`: "first Thursday or Friday" is
  whichever comes first.
- `absoluteMonthly`/`absoluteYearly` with a `dayOfMonth` the month lacks fall on its last day, as
  Outlook and Exchange do (day 31 means "last day"; 29 February falls on the 28th).
- `endDate` is inclusive; `numberOfOccurrences` counts from the first occurrence of the series.
- Every occurrence starts at the series start's wall-clock time in the recurrence time zone, so a
  09:00 meeting stays at 09:00 local across a daylight-saving change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from dateutil import rrule  # type: ignore[import-untyped]  # python-dateutil ships no type hints

_WEEKDAYS = {
    "monday": rrule.MO,
    "tuesday": rrule.TU,
    "wednesday": rrule.WE,
    "thursday": rrule.TH,
    "friday": rrule.FR,
    "saturday": rrule.SA,
    "sunday": rrule.SU,
}
_INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_FREQUENCY = {
    "daily": rrule.DAILY,
    "weekly": rrule.WEEKLY,
    "absolutemonthly": rrule.MONTHLY,
    "relativemonthly": rrule.MONTHLY,
    "absoluteyearly": rrule.YEARLY,
    "relativeyearly": rrule.YEARLY,
}
_SHORTEST_MONTH = 28


class InvalidRecurrence(ValueError):
    """The recurrence lacks a property its pattern or range type requires."""


def occurrence_starts(
    recurrence: Mapping[str, Any],
    series_start: datetime,
    range_start: datetime,
    range_end: datetime,
) -> list[datetime]:
    """Starts of the series' occurrences with `range_start <= start < range_end`, in order.

    `series_start` is the series master's start, aware, in the recurrence time zone; the results
    are aware datetimes in that zone. Raises `InvalidRecurrence` for a pattern or range missing
    what its type requires.
    """
    zone = series_start.tzinfo
    if zone is None or range_start.tzinfo is None or range_end.tzinfo is None:
        raise ValueError("series_start, range_start and range_end must be timezone-aware")
    pattern: Mapping[str, Any] = recurrence.get("pattern") or {}
    series_range: Mapping[str, Any] = recurrence.get("range") or {}

    first_day = _date(series_range.get("startDate")) or series_start.date()
    frequency, by_rules = _pattern_rules(pattern)
    pattern_start = datetime.combine(first_day, series_start.timetz())
    # The first fitting day is found ignoring the interval; the interval then counts from it.
    first = rrule.rrule(frequency, dtstart=pattern_start, count=1, **by_rules)
    first_occurrence: datetime | None = next(iter(first), None)
    if first_occurrence is None:
        return []

    limits: dict[str, Any] = {}
    range_type = str(series_range.get("type", "noEnd")).lower()
    if range_type == "numbered":
        count = series_range.get("numberOfOccurrences")
        if not isinstance(count, int) or count < 1:
            raise InvalidRecurrence("a numbered range needs a positive numberOfOccurrences")
        limits["count"] = count
    elif range_type == "enddate":
        last_day = _date(series_range.get("endDate"))
        if last_day is None:
            raise InvalidRecurrence("an endDate range needs an endDate")
        limits["until"] = datetime.combine(last_day, time.max, tzinfo=zone)
    elif range_type != "noend":
        raise InvalidRecurrence("range.type must be endDate, noEnd or numbered")

    rule = rrule.rrule(
        frequency,
        dtstart=first_occurrence,
        interval=_positive_int(pattern.get("interval", 1), "interval"),
        **by_rules,
        **limits,
    )
    # Compare instants in UTC: datetimes sharing a tzinfo compare by wall clock, which is
    # ambiguous in the hour a daylight-saving change repeats.
    window_start, window_end = range_start.astimezone(UTC), range_end.astimezone(UTC)
    starts: list[datetime] = []
    for occurrence in rule.xafter(window_start, inc=True):
        if occurrence >= window_end:
            break
        starts.append(_existing(occurrence, zone))
    return starts


def _pattern_rules(pattern: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """The rrule frequency and BY* rules of a Graph `recurrencePattern`."""
    pattern_type = str(pattern.get("type", "")).lower()
    if pattern_type not in _FREQUENCY:
        raise InvalidRecurrence(
            "pattern.type must be daily, weekly, absoluteMonthly, relativeMonthly,"
            " absoluteYearly or relativeYearly"
        )
    rules: dict[str, Any] = {}
    if pattern_type == "weekly":
        rules["byweekday"] = _weekdays(pattern)
        rules["wkst"] = _weekday(pattern.get("firstDayOfWeek") or "sunday")
    elif pattern_type.startswith("relative"):
        rules["byweekday"] = _weekdays(pattern)
        index = str(pattern.get("index") or "first").lower()
        if index not in _INDEX:
            raise InvalidRecurrence("pattern.index must be first, second, third, fourth or last")
        rules["bysetpos"] = _INDEX[index]
    elif pattern_type.startswith("absolute"):
        rules.update(_day_of_month(_positive_int(pattern.get("dayOfMonth"), "dayOfMonth")))
    if pattern_type.endswith("yearly"):
        month = _positive_int(pattern.get("month"), "month")
        if month > 12:
            raise InvalidRecurrence("pattern.month must be 1 to 12")
        rules["bymonth"] = month
    return _FREQUENCY[pattern_type], rules


def _day_of_month(day: int) -> dict[str, Any]:
    if day > 31:
        raise InvalidRecurrence("pattern.dayOfMonth must be 1 to 31")
    if day <= _SHORTEST_MONTH:
        return {"bymonthday": day}
    # The last existing day among 28..day: the day itself where the month has it, else month end.
    return {"bymonthday": tuple(range(_SHORTEST_MONTH, day + 1)), "bysetpos": -1}


def _weekdays(pattern: Mapping[str, Any]) -> tuple[rrule.weekday, ...]:
    days = pattern.get("daysOfWeek")
    if not isinstance(days, list) or not days:
        raise InvalidRecurrence("pattern.daysOfWeek is required for this pattern type")
    return tuple(_weekday(day) for day in days)


def _weekday(name: object) -> rrule.weekday:
    day = _WEEKDAYS.get(str(name).lower())
    if day is None:
        raise InvalidRecurrence("days of the week are sunday to saturday")
    return day


def _positive_int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidRecurrence(f"pattern.{name} must be a positive integer")
    return value


def _date(value: object) -> date | None:
    if value in (None, "", "0001-01-01"):  # Graph reports an unset date as 0001-01-01
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError as error:
        raise InvalidRecurrence("range dates are YYYY-MM-DD") from error


def _existing(occurrence: datetime, zone: tzinfo) -> datetime:
    """The wall time itself, or where a daylight-saving gap skips it, the same instant after it."""
    return occurrence.astimezone(UTC).astimezone(zone)

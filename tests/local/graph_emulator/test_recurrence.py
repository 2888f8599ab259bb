"""Occurrences of Graph `patternedRecurrence` series, checked against hand-counted calendars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from local.graph_emulator.recurrence import InvalidRecurrence, occurrence_starts

ZURICH = ZoneInfo("Europe/Zurich")  # DST 2026: from 29 March 02:00 to 25 October 03:00
PACIFIC = ZoneInfo("America/Los_Angeles")
WIDE_OPEN = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def series(pattern: dict[str, Any], **series_range: Any) -> dict[str, Any]:
    return {"pattern": pattern, "range": series_range}


def days(starts: list[datetime]) -> list[str]:
    return [start.date().isoformat() for start in starts]


def test_daily_every_third_day() -> None:
    recurrence = series(
        {"type": "daily", "interval": 3},
        type="numbered",
        startDate="2026-03-02",
        numberOfOccurrences=4,
    )

    starts = occurrence_starts(recurrence, datetime(2026, 3, 2, 9, tzinfo=ZURICH), *WIDE_OPEN)

    assert days(starts) == ["2026-03-02", "2026-03-05", "2026-03-08", "2026-03-11"]
    assert {(s.hour, s.minute) for s in starts} == {(9, 0)}


def test_weekly_every_other_week_on_several_days() -> None:
    recurrence = series(
        {
            "type": "weekly",
            "interval": 2,
            "daysOfWeek": ["monday", "wednesday", "friday"],
            "firstDayOfWeek": "monday",
        },
        type="endDate",
        startDate="2026-03-04",
        endDate="2026-03-31",
    )

    starts = occurrence_starts(recurrence, datetime(2026, 3, 4, 10, tzinfo=ZURICH), *WIDE_OPEN)

    # Monday 2 March precedes the start; the weeks of 9 and 23 March are skipped.
    assert days(starts) == [
        "2026-03-04",
        "2026-03-06",
        "2026-03-16",
        "2026-03-18",
        "2026-03-20",
        "2026-03-30",
    ]


@pytest.mark.parametrize(
    ("first_day_of_week", "expected"),
    [
        # Sunday-first weeks put Sunday 1 and Monday 2 March in the same week.
        ("sunday", ["2026-03-01", "2026-03-02", "2026-03-15", "2026-03-16"]),
        (None, ["2026-03-01", "2026-03-02", "2026-03-15", "2026-03-16"]),
        # Monday-first weeks end on Sunday 1 March, so Monday 2 March is in a skipped week.
        ("monday", ["2026-03-01", "2026-03-09", "2026-03-15", "2026-03-23"]),
    ],
)
def test_weekly_interval_counts_weeks_from_first_day_of_week(
    first_day_of_week: str | None, expected: list[str]
) -> None:
    pattern: dict[str, Any] = {"type": "weekly", "interval": 2, "daysOfWeek": ["sunday", "monday"]}
    if first_day_of_week is not None:
        pattern["firstDayOfWeek"] = first_day_of_week
    recurrence = series(pattern, type="numbered", startDate="2026-03-01", numberOfOccurrences=4)

    starts = occurrence_starts(recurrence, datetime(2026, 3, 1, 8, tzinfo=ZURICH), *WIDE_OPEN)

    assert days(starts) == expected


def test_absolute_monthly_quarterly_on_the_15th() -> None:
    recurrence = series(
        {"type": "absoluteMonthly", "interval": 3, "dayOfMonth": 15},
        type="noEnd",
        startDate="2026-01-10",
    )

    starts = occurrence_starts(
        recurrence,
        datetime(2026, 1, 10, 14, tzinfo=ZURICH),
        datetime(2026, 1, 1, tzinfo=ZURICH),
        datetime(2026, 12, 31, tzinfo=ZURICH),
    )

    assert days(starts) == ["2026-01-15", "2026-04-15", "2026-07-15", "2026-10-15"]


def test_absolute_monthly_on_the_31st_falls_on_shorter_months_last_day() -> None:
    recurrence = series(
        {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
        type="numbered",
        startDate="2026-01-31",
        numberOfOccurrences=4,
    )

    starts = occurrence_starts(recurrence, datetime(2026, 1, 31, 9, tzinfo=ZURICH), *WIDE_OPEN)

    assert days(starts) == ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]


@pytest.mark.parametrize(
    ("days_of_week", "index", "expected"),
    [
        (["wednesday"], "second", ["2026-01-14", "2026-02-11", "2026-03-11"]),
        (["friday"], "last", ["2026-01-30", "2026-02-27", "2026-03-27"]),
        (["tuesday"], None, ["2026-01-06", "2026-02-03", "2026-03-03"]),  # index defaults to first
        # "first Thursday or Friday": whichever comes first; in May 2026 that is Friday the 1st.
        (["thursday", "friday"], "first", ["2026-01-01", "2026-02-05", "2026-03-05"]),
    ],
)
def test_relative_monthly(days_of_week: list[str], index: str | None, expected: list[str]) -> None:
    pattern: dict[str, Any] = {"type": "relativeMonthly", "interval": 1, "daysOfWeek": days_of_week}
    if index is not None:
        pattern["index"] = index
    recurrence = series(pattern, type="numbered", startDate="2026-01-01", numberOfOccurrences=3)

    starts = occurrence_starts(recurrence, datetime(2026, 1, 1, 9, tzinfo=ZURICH), *WIDE_OPEN)

    assert days(starts) == expected


def test_relative_monthly_first_weekday_of_the_two_can_be_either() -> None:
    recurrence = series(
        {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["Thursday", "Friday"]},
        type="noEnd",
        startDate="2026-04-01",
    )

    starts = occurrence_starts(
        recurrence,
        datetime(2026, 4, 1, 9, tzinfo=ZURICH),
        datetime(2026, 4, 1, tzinfo=ZURICH),
        datetime(2026, 6, 1, tzinfo=ZURICH),
    )

    assert [(s.date().isoformat(), s.strftime("%A")) for s in starts] == [
        ("2026-04-02", "Thursday"),
        ("2026-05-01", "Friday"),
    ]


def test_relative_monthly_interval_counts_from_the_first_fitting_month() -> None:
    # Microsoft's example: first Thursday of every other month from 29 August 2017 "first
    # occurs in September" because August's first Thursday precedes the start date.
    recurrence = series(
        {"type": "relativeMonthly", "interval": 2, "daysOfWeek": ["Thursday"], "index": "first"},
        type="noEnd",
        startDate="2017-08-29",
    )

    starts = occurrence_starts(
        recurrence,
        datetime(2017, 8, 29, 14, tzinfo=PACIFIC),
        datetime(2017, 8, 1, tzinfo=PACIFIC),
        datetime(2018, 2, 1, tzinfo=PACIFIC),
    )

    assert days(starts) == ["2017-09-07", "2017-11-02", "2018-01-04"]


def test_end_date_range_ends_on_the_last_fitting_day() -> None:
    # Microsoft's example: every Monday from 4 September 2017 to 31 December 2017 (a Sunday)
    # last occurs on Monday 25 December.
    recurrence = series(
        {"type": "weekly", "interval": 1, "daysOfWeek": ["Monday"]},
        type="endDate",
        startDate="2017-09-04",
        endDate="2017-12-31",
    )

    starts = occurrence_starts(recurrence, datetime(2017, 9, 4, 13, tzinfo=PACIFIC), *WIDE_OPEN)

    assert len(starts) == 17
    assert days(starts)[-1] == "2017-12-25"


def test_absolute_yearly_and_29_february() -> None:
    april = series(
        {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 15, "month": 4},
        type="numbered",
        startDate="2026-01-01",
        numberOfOccurrences=3,
    )
    leap_day = series(
        {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 29, "month": 2},
        type="numbered",
        startDate="2024-02-29",
        numberOfOccurrences=5,
    )

    april_starts = occurrence_starts(april, datetime(2026, 1, 1, 9, tzinfo=ZURICH), *WIDE_OPEN)
    leap_starts = occurrence_starts(leap_day, datetime(2024, 2, 29, 9, tzinfo=ZURICH), *WIDE_OPEN)

    assert days(april_starts) == ["2026-04-15", "2027-04-15", "2028-04-15"]
    assert days(leap_starts) == [
        "2024-02-29",
        "2025-02-28",
        "2026-02-28",
        "2027-02-28",
        "2028-02-29",
    ]


def test_relative_yearly_last_wednesday_of_november() -> None:
    recurrence = series(
        {
            "type": "relativeYearly",
            "interval": 1,
            "daysOfWeek": ["wednesday"],
            "index": "last",
            "month": 11,
        },
        type="numbered",
        startDate="2026-01-01",
        numberOfOccurrences=2,
    )

    starts = occurrence_starts(recurrence, datetime(2026, 1, 1, 16, tzinfo=ZURICH), *WIDE_OPEN)

    assert days(starts) == ["2026-11-25", "2027-11-24"]


def test_daylight_saving_change_keeps_the_local_wall_time() -> None:
    recurrence = series(
        {"type": "daily", "interval": 1},
        type="numbered",
        startDate="2026-03-27",
        numberOfOccurrences=4,
    )

    starts = occurrence_starts(recurrence, datetime(2026, 3, 27, 9, tzinfo=ZURICH), *WIDE_OPEN)

    assert [s.strftime("%Y-%m-%d %H:%M") for s in starts] == [
        "2026-03-27 09:00",
        "2026-03-28 09:00",
        "2026-03-29 09:00",
        "2026-03-30 09:00",
    ]
    assert [s.astimezone(UTC).hour for s in starts] == [8, 8, 7, 7]
    # The day of the change is 23 hours long (same-zone subtraction would say 24).
    assert starts[2].astimezone(UTC) - starts[1].astimezone(UTC) == timedelta(hours=23)


def test_start_inside_a_daylight_saving_gap_moves_to_the_same_instant_after_it() -> None:
    recurrence = series(
        {"type": "daily", "interval": 1},
        type="numbered",
        startDate="2026-03-28",
        numberOfOccurrences=3,
    )

    starts = occurrence_starts(recurrence, datetime(2026, 3, 28, 2, 30, tzinfo=ZURICH), *WIDE_OPEN)

    # 02:30 does not exist on 29 March in Zurich: that occurrence is at 03:30 CEST (01:30 UTC).
    assert [s.strftime("%d %H:%M%z") for s in starts] == [
        "28 02:30+0100",
        "29 03:30+0200",
        "30 02:30+0200",
    ]


def test_numbered_range_counts_from_the_series_start_not_the_window() -> None:
    recurrence = series(
        {"type": "daily", "interval": 1},
        type="numbered",
        startDate="2026-03-01",
        numberOfOccurrences=10,
    )

    starts = occurrence_starts(
        recurrence,
        datetime(2026, 3, 1, 9, tzinfo=ZURICH),
        datetime(2026, 3, 8, tzinfo=ZURICH),
        datetime(2026, 4, 1, tzinfo=ZURICH),
    )

    assert days(starts) == ["2026-03-08", "2026-03-09", "2026-03-10"]


def test_end_date_is_inclusive_whatever_the_time_of_day() -> None:
    recurrence = series(
        {"type": "daily", "interval": 1},
        type="endDate",
        startDate="2026-03-01",
        endDate="2026-03-03",
    )

    starts = occurrence_starts(recurrence, datetime(2026, 3, 1, 23, 30, tzinfo=ZURICH), *WIDE_OPEN)

    assert days(starts) == ["2026-03-01", "2026-03-02", "2026-03-03"]


def test_window_includes_its_start_and_excludes_its_end() -> None:
    recurrence = series({"type": "daily", "interval": 1}, type="noEnd", startDate="2026-03-01")
    series_start = datetime(2026, 3, 1, 9, tzinfo=ZURICH)

    # The window is given in UTC: 08:00 UTC is 09:00 in Zurich in March (before the change).
    starts = occurrence_starts(
        recurrence,
        series_start,
        datetime(2026, 3, 5, 8, tzinfo=UTC),
        datetime(2026, 3, 8, 8, tzinfo=UTC),
    )

    assert days(starts) == ["2026-03-05", "2026-03-06", "2026-03-07"]
    assert all(s.tzinfo is ZURICH for s in starts)


def test_window_before_the_series_or_after_its_end_is_empty() -> None:
    recurrence = series(
        {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
        type="endDate",
        startDate="2026-03-02",
        endDate="2026-03-31",
    )
    series_start = datetime(2026, 3, 2, 9, tzinfo=ZURICH)

    before = occurrence_starts(
        recurrence,
        series_start,
        datetime(2026, 1, 1, tzinfo=ZURICH),
        datetime(2026, 3, 2, 9, tzinfo=ZURICH),
    )
    after = occurrence_starts(
        recurrence,
        series_start,
        datetime(2026, 4, 1, tzinfo=ZURICH),
        datetime(2027, 1, 1, tzinfo=ZURICH),
    )

    assert before == []
    assert after == []


def test_open_ended_series_far_from_its_start() -> None:
    recurrence = series(
        {"type": "weekly", "interval": 1, "daysOfWeek": ["tuesday"]},
        type="noEnd",
        startDate="2016-01-05",
    )

    starts = occurrence_starts(
        recurrence,
        datetime(2016, 1, 5, 9, tzinfo=ZURICH),
        datetime(2026, 3, 1, tzinfo=ZURICH),
        datetime(2026, 3, 15, tzinfo=ZURICH),
    )

    assert days(starts) == ["2026-03-03", "2026-03-10"]


@pytest.mark.parametrize(
    "recurrence",
    [
        series({"type": "daily", "interval": 1}, type="numbered", startDate="2026-03-01"),
        series({"type": "daily", "interval": 1}, type="endDate", startDate="2026-03-01"),
        series({"type": "weekly", "interval": 1}, type="noEnd", startDate="2026-03-01"),
        series({"type": "hourly", "interval": 1}, type="noEnd", startDate="2026-03-01"),
        series({"type": "daily", "interval": 0}, type="noEnd", startDate="2026-03-01"),
        series(
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["monday"], "index": "fifth"},
            type="noEnd",
            startDate="2026-03-01",
        ),
    ],
)
def test_incomplete_recurrence_is_rejected(recurrence: dict[str, Any]) -> None:
    with pytest.raises(InvalidRecurrence):
        occurrence_starts(recurrence, datetime(2026, 3, 1, 9, tzinfo=ZURICH), *WIDE_OPEN)


def test_naive_datetimes_are_refused() -> None:
    recurrence = series({"type": "daily", "interval": 1}, type="noEnd", startDate="2026-03-01")

    with pytest.raises(ValueError, match="timezone-aware"):
        occurrence_starts(recurrence, datetime(2026, 3, 1, 9), *WIDE_OPEN)

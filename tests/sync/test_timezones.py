"""Mailbox time zones: Windows and IANA names, wall-clock times across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from sync.timezones import UnknownTimeZone, graph_date_time, mailbox_zone

TORONTO = ZoneInfo("America/Toronto")


def toronto(year: int, month: int, day: int, hour: int = 14) -> datetime:
    return datetime(year, month, day, hour, tzinfo=TORONTO)


@pytest.mark.parametrize(
    ("name", "iana"),
    [
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("pacific standard time", "America/Los_Angeles"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Eastern Standard Time", "America/New_York"),
        ("UTC", "Etc/UTC"),
        ("Europe/Paris", "Europe/Paris"),
        (" America/Toronto ", "America/Toronto"),
    ],
)
def test_mailbox_zone_names(name: str, iana: str) -> None:
    assert mailbox_zone(name).key == iana


@pytest.mark.parametrize(
    "name", ["", "Customized Time Zone", "Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime"]
)
def test_an_unknown_zone_is_an_error(name: str) -> None:
    with pytest.raises(UnknownTimeZone):
        mailbox_zone(name)


@pytest.mark.parametrize(
    ("instant", "wall_clock"),
    [
        # Both zones leave DST on 2026-11-01 and enter it on 2027-03-14: three hours apart.
        (toronto(2026, 10, 29), "2026-10-29T11:00:00"),  # EDT -> PDT
        (toronto(2026, 11, 1), "2026-11-01T11:00:00"),  # the change day, after it
        (toronto(2026, 11, 5), "2026-11-05T11:00:00"),  # EST -> PST
        (toronto(2027, 3, 12), "2027-03-12T11:00:00"),  # EST -> PST
        (toronto(2027, 3, 16), "2027-03-16T11:00:00"),  # EDT -> PDT
        # The same UTC hour reads an hour apart on either side of the change.
        (datetime(2026, 10, 31, 8, tzinfo=UTC), "2026-10-31T01:00:00"),
        (datetime(2026, 11, 2, 8, tzinfo=UTC), "2026-11-02T00:00:00"),
        (datetime(2027, 3, 14, 9, tzinfo=UTC), "2027-03-14T01:00:00"),
        (datetime(2027, 3, 14, 10, tzinfo=UTC), "2027-03-14T03:00:00"),
    ],
)
def test_pacific_mailbox_across_dst(instant: datetime, wall_clock: str) -> None:
    assert graph_date_time(instant, "Pacific Standard Time") == {
        "dateTime": wall_clock,
        "timeZone": "Pacific Standard Time",
    }


@pytest.mark.parametrize(
    ("instant", "wall_clock"),
    [
        # Europe leaves DST a week before North America: the gap shrinks to five hours between.
        (toronto(2026, 10, 22), "2026-10-22T20:00:00"),
        (toronto(2026, 10, 28), "2026-10-28T19:00:00"),
        (toronto(2026, 11, 3), "2026-11-03T20:00:00"),
        # ...and enters it two weeks after North America.
        (toronto(2027, 3, 20), "2027-03-20T19:00:00"),
        (toronto(2027, 3, 30), "2027-03-30T20:00:00"),
    ],
)
def test_west_european_mailbox_across_dst(instant: datetime, wall_clock: str) -> None:
    assert graph_date_time(instant, "W. Europe Standard Time") == {
        "dateTime": wall_clock,
        "timeZone": "W. Europe Standard Time",
    }


def test_an_iana_mailbox_keeps_its_own_name() -> None:
    assert graph_date_time(toronto(2026, 12, 1), "Europe/Paris") == {
        "dateTime": "2026-12-01T20:00:00",
        "timeZone": "Europe/Paris",
    }


def test_a_half_hour_zone_crosses_midnight() -> None:
    assert graph_date_time(toronto(2026, 12, 1), "India Standard Time") == {
        "dateTime": "2026-12-02T00:30:00",
        "timeZone": "India Standard Time",
    }


@pytest.mark.parametrize(
    ("instant", "utc_wall_clock"),
    [
        (datetime(2026, 11, 1, 8, 30, tzinfo=UTC), "2026-11-01T08:30:00"),  # first 01:30 (PDT)
        (datetime(2026, 11, 1, 9, 30, tzinfo=UTC), "2026-11-01T09:30:00"),  # second 01:30 (PST)
    ],
)
def test_the_repeated_hour_is_written_in_utc(instant: datetime, utc_wall_clock: str) -> None:
    assert graph_date_time(instant, "Pacific Standard Time") == {
        "dateTime": utc_wall_clock,
        "timeZone": "UTC",
    }


def test_the_hour_after_the_repeated_one_is_local_again() -> None:
    written = graph_date_time(datetime(2026, 11, 1, 10, 30, tzinfo=UTC), "Pacific Standard Time")

    assert written == {"dateTime": "2026-11-01T02:30:00", "timeZone": "Pacific Standard Time"}


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        graph_date_time(datetime(2026, 12, 1, 14), "Pacific Standard Time")

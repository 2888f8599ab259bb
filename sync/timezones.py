"""Mailbox time zones: Graph's names for them, and wall-clock times written in them.

Exchange reports a mailbox's time zone mostly by its Windows name ("Pacific Standard Time"),
sometimes by an IANA name. Events are written in that zone, under the name Graph gave, so that
Outlook shows them exactly as the staff member's own appointments.

Graph also reports names no mapping knows: Windows zones CLDR leaves out ("Mid-Atlantic Standard
Time", "Kamchatka Standard Time") and custom zones ("Customized Time Zone",
"tzone://Microsoft/Custom"). Those mailboxes get their events in UTC (`writing_zone`): the
instants stay exact, and Outlook shows them in the staff member's own zone all the same.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

# CLDR's windowsZones mapping (Windows name -> IANA name), looked up case-insensitively.
_WINDOWS_TO_IANA: Final = {name.casefold(): iana for name, iana in win_tz.items()}

UTC_NAME: Final = "UTC"


class UnknownTimeZone(ValueError):
    """A mailbox time zone that is neither a known Windows name nor an IANA name."""


@cache
def mailbox_zone(name: str) -> ZoneInfo:
    """The zone a mailbox time-zone name (Windows or IANA, as Graph reports it) stands for."""
    key = name.strip()
    iana = _WINDOWS_TO_IANA.get(key.casefold(), key)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        # ValueError: not even a well-formed key (e.g. empty or a path).
        raise UnknownTimeZone(f"unknown time zone {name!r}") from None


def is_understood(name: str) -> bool:
    """Whether `mailbox_zone` knows this name."""
    try:
        mailbox_zone(name)
    except UnknownTimeZone:
        return False
    return True


def zone_note(name: str) -> str:
    """What an administrator should know about a mailbox's time zone `name`, if anything (a
    staff member's status reason)."""
    if is_understood(name):
        return ""
    return (
        f"the mailbox time zone {name!r} is not understood: events are written in "
        "UTC, and Outlook shows them in the staff member's own zone"
    )


def writing_zone(name: str) -> str:
    """The zone to write a mailbox's events in: its own if understood, else UTC."""
    return name if is_understood(name) else UTC_NAME


def _is_ambiguous(local: datetime) -> bool:
    """True when this wall-clock time occurs twice in its zone (the hour repeated at DST end)."""
    other = local.replace(fold=1 - local.fold)
    return other.utcoffset() != local.utcoffset()


def graph_date_time(instant: datetime, zone_name: str) -> dict[str, str]:
    """Graph's `dateTimeTimeZone` for `instant`, as wall-clock time in the mailbox's zone.

    A wall-clock time inside the repeated hour at the end of daylight saving time cannot say which
    of the two it means, so such an instant is written in UTC instead: Outlook still shows it in the
    staff member's zone, at the right moment.
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instant must be timezone-aware")
    local = instant.astimezone(mailbox_zone(zone_name))
    if _is_ambiguous(local):
        utc = instant.astimezone(ZoneInfo("UTC"))
        return {"dateTime": _wall_clock(utc), "timeZone": UTC_NAME}
    return {"dateTime": _wall_clock(local), "timeZone": zone_name}


def _wall_clock(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")

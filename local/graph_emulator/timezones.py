"""Graph's `dateTimeTimeZone`: Windows or IANA zone names, and the 7-digit UTC wire format.

Windows names are read through CLDR's windowsZones mapping, plus the few Windows zones Graph
supports that CLDR leaves out (`windows_zones.py`). Names that are neither ("Customized Time
Zone", "tzone://Microsoft/Custom") stand for no zone: a mailbox may report them, but an event
cannot be written in them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

from local.graph_emulator.errors import GraphError
from local.graph_emulator.windows_zones import WINDOWS_ONLY_ZONES

_UTC_NAMES = {"utc", "etc/utc", "coordinated universal time"}
_WINDOWS_BY_LOWER = {name.lower(): iana for name, iana in win_tz.items()}


def zone_for(name: str | None) -> tzinfo | None:
    """The zone a Windows ("W. Europe Standard Time") or IANA ("Europe/Berlin") name means."""
    if not name:
        return None
    key = name.strip().lower()
    if key in _UTC_NAMES:
        return UTC
    windows_only = WINDOWS_ONLY_ZONES.get(key)
    if windows_only is not None:
        return windows_only
    iana = win_tz.get(name) or _WINDOWS_BY_LOWER.get(key) or name
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def unsupported_zone(name: str) -> GraphError:
    return GraphError(
        400,
        "TimeZoneNotSupportedException",
        "A valid TimeZone value must be specified. "
        f"The following TimeZone value is not supported: '{name}'.",
    )


def parse_date_time_time_zone(value: Mapping[str, Any], field: str) -> tuple[datetime, str]:
    """UTC instant and zone name of a `dateTimeTimeZone` body value."""
    raw = value.get("dateTime")
    zone_name = value.get("timeZone") or ""
    if not isinstance(raw, str) or not raw:
        raise GraphError(400, "ErrorInvalidRequest", f"The property '{field}' needs a dateTime.")
    zone = zone_for(zone_name)
    if zone is None:
        raise unsupported_zone(str(zone_name))
    local = parse_iso(raw, field)
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone)
    return local.astimezone(UTC), str(zone_name)


def parse_iso(raw: str, field: str) -> datetime:
    text = raw.strip()
    # Graph writes 7 fractional digits; Python reads at most 6.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        rest = tail[len(digits) :]
        text = f"{head}.{digits[:6]}{rest}" if digits else head + rest
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise GraphError(
            400, "ErrorInvalidRequest", f"The value of '{field}' is not a valid date and time."
        ) from None


def parse_instant(raw: str, field: str) -> datetime:
    """A query-string instant; without an offset it is UTC, as Graph reads it."""
    parsed = parse_iso(raw, field)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_local(instant: datetime, zone: tzinfo) -> str:
    """Graph's wire form: local wall time, no offset, 7 fractional digits."""
    local = instant.astimezone(zone).replace(tzinfo=None)
    return local.isoformat(timespec="microseconds") + "0"


def format_instant(instant: datetime) -> str:
    """An Edm.DateTimeOffset as Graph writes it (UTC, `Z`)."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def render_date_time_time_zone(instant: datetime, zone_name: str | None) -> dict[str, str]:
    zone = zone_for(zone_name) if zone_name else None
    if zone is None or zone_name is None:
        return {"dateTime": format_local(instant, UTC), "timeZone": "UTC"}
    return {"dateTime": format_local(instant, zone), "timeZone": zone_name}

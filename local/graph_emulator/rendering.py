"""Events as Graph writes them: UTC or `outlook.timezone`, HTML or text bodies, `$select`."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

from local.graph_emulator.model import StoredEvent, User, instant_text
from local.graph_emulator.odata import Expansion, Preferences
from local.graph_emulator.timezones import render_date_time_time_zone

# The event properties a client may name in `$select` (event, outlookItem, entity).
EVENT_PROPERTIES = (
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "transactionId",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "iCalUId",
    "reminderMinutesBeforeStart",
    "isReminderOn",
    "hasAttachments",
    "subject",
    "bodyPreview",
    "importance",
    "sensitivity",
    "isAllDay",
    "isCancelled",
    "isOrganizer",
    "responseRequested",
    "seriesMasterId",
    "showAs",
    "type",
    "webLink",
    "onlineMeetingUrl",
    "isOnlineMeeting",
    "onlineMeetingProvider",
    "allowNewTimeProposals",
    "isDraft",
    "hideAttendees",
    "originalStart",
    "responseStatus",
    "body",
    "start",
    "end",
    "location",
    "locations",
    "recurrence",
    "attendees",
    "organizer",
    "onlineMeeting",
    "cancelledOccurrences",
)

_NO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class View:
    prefs: Preferences = field(default_factory=Preferences)
    select: list[str] | None = None
    expansion: Expansion = field(default_factory=Expansion)


def text_to_html(text: str) -> str:
    """How Exchange stores a text body: HTML-escaped, one line per line, in an HTML document."""
    lines = "<br>\r\n".join(html.escape(line) for line in text.splitlines())
    return (
        '<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        f"\r\n</head>\r\n<body>\r\n<div>{lines}</div>\r\n</body>\r\n</html>\r\n"
    )


class _TextExtractor(HTMLParser):
    _BREAKS = frozenset({"br", "p", "div", "li", "tr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("head", "style", "script"):
            self._skip += 1
        elif tag in self._BREAKS and self.parts:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("head", "style", "script") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data.replace("\r", "").replace("\n", ""))


def html_to_text(markup: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    lines = [line.strip() for line in "".join(extractor.parts).split("\n")]
    return "\n".join(lines).strip()


def body_text(event: StoredEvent) -> str:
    return event.body_content if event.body_type == "text" else html_to_text(event.body_content)


def render_body(event: StoredEvent, prefs: Preferences) -> dict[str, str]:
    if prefs.body_text:
        return {"contentType": "text", "content": body_text(event)}
    if event.body_type == "text":
        content = text_to_html(event.body_content) if event.body_content else ""
        return {"contentType": "html", "content": content}
    return {"contentType": "html", "content": event.body_content}


def _location(value: Any) -> dict[str, Any]:
    source = dict(value) if isinstance(value, dict) else {}
    name = source.get("displayName") or ""
    out: dict[str, Any] = {
        "displayName": name,
        "locationType": source.get("locationType") or "default",
    }
    if name:
        out["uniqueId"] = source.get("uniqueId") or name
        out["uniqueIdType"] = source.get("uniqueIdType") or "private"
    else:
        out["uniqueIdType"] = "unknown"
    out["address"] = source.get("address") or {}
    out["coordinates"] = source.get("coordinates") or {}
    for key in ("locationUri", "locationEmailAddress"):
        if source.get(key):
            out[key] = source[key]
    return out


def _locations(event: StoredEvent) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`location` and `locations` always correspond (the event resource page says so)."""
    many = event.fields.get("locations")
    if isinstance(many, list) and many:
        rendered = [_location(item) for item in many]
        names = "; ".join(item["displayName"] for item in rendered if item["displayName"])
        return _location({"displayName": names}), rendered
    single = _location(event.fields.get("location"))
    return single, ([single] if single["displayName"] else [])


def _attendees(value: Any) -> list[dict[str, Any]]:
    out = []
    for attendee in value if isinstance(value, list) else []:
        if not isinstance(attendee, dict):
            continue
        item = dict(attendee)
        item.setdefault("type", "required")
        item.setdefault("status", {"response": "none", "time": _NO_TIME})
        out.append(item)
    return out


def _preview(event: StoredEvent) -> str:
    return re.sub(r"\s+", " ", body_text(event)).strip()[:255]


def render_event(event: StoredEvent, owner: User, view: View) -> dict[str, Any]:
    """The JSON Graph returns for an event, without `@odata.context`."""
    fields = event.fields
    location, locations = _locations(event)
    zone = view.prefs.timezone
    full: dict[str, Any] = {
        "@odata.etag": event.etag,
        "id": event.id,
        "createdDateTime": instant_text(event.created),
        "lastModifiedDateTime": instant_text(event.modified),
        "changeKey": event.change_key,
        "categories": list(fields.get("categories") or []),
        "transactionId": event.transaction_id,
        "originalStartTimeZone": event.start_zone,
        "originalEndTimeZone": event.end_zone,
        "iCalUId": event.ical_uid,
        "reminderMinutesBeforeStart": fields.get("reminderMinutesBeforeStart", 15),
        "isReminderOn": fields.get("isReminderOn", True),
        "hasAttachments": False,
        "subject": fields.get("subject") or "",
        "bodyPreview": _preview(event),
        "importance": fields.get("importance") or "normal",
        "sensitivity": fields.get("sensitivity") or "normal",
        "isAllDay": bool(fields.get("isAllDay", False)),
        "isCancelled": False,
        "isOrganizer": True,
        "responseRequested": fields.get("responseRequested", True),
        "seriesMasterId": event.series_master_id,
        "showAs": fields.get("showAs") or "busy",
        "type": event.kind,
        "webLink": (
            "https://outlook.office365.com/owa/?itemid="
            f"{quote(event.id, safe='')}&exvsurl=1&path=/calendar/item"
        ),
        "onlineMeetingUrl": None,
        "isOnlineMeeting": bool(fields.get("isOnlineMeeting", False)),
        "onlineMeetingProvider": fields.get("onlineMeetingProvider") or "unknown",
        "allowNewTimeProposals": fields.get("allowNewTimeProposals", True),
        "isDraft": False,
        "hideAttendees": bool(fields.get("hideAttendees", False)),
        "responseStatus": {"response": "organizer", "time": _NO_TIME},
        "body": render_body(event, view.prefs),
        "start": render_date_time_time_zone(event.start, zone),
        "end": render_date_time_time_zone(event.end, zone),
        "location": location,
        "locations": locations,
        "recurrence": event.recurrence if event.kind == "seriesMaster" else None,
        "attendees": _attendees(fields.get("attendees")),
        "organizer": {"emailAddress": {"name": owner.display_name, "address": owner.mail or ""}},
        "onlineMeeting": None,
    }
    if event.kind in ("occurrence", "exception"):
        full["originalStart"] = instant_text(event.original_start)
    if view.select is not None:
        wanted = set(view.select) | {"id"}
        full = {key: value for key, value in full.items() if key in wanted or key == "@odata.etag"}
    _add_expansions(full, event, view.expansion)
    return full


def _add_expansions(out: dict[str, Any], event: StoredEvent, expansion: Expansion) -> None:
    if expansion.single is not None:
        wanted = expansion.single.ids
        found = [
            {"id": prop.id, "value": prop.value}
            for key, prop in event.single_properties.items()
            if wanted is None or key in wanted
        ]
        # Graph leaves the navigation property out when nothing matched the expand filter.
        if found:
            out["singleValueExtendedProperties"] = found
    if expansion.multi is not None:
        wanted = expansion.multi.ids
        multi = [
            {"id": prop.id, "value": list(prop.value)}
            for key, prop in event.multi_properties.items()
            if wanted is None or key in wanted
        ]
        if multi:
            out["multiValueExtendedProperties"] = multi
    if expansion.attachments:
        out["attachments"] = []


def render_full(event: StoredEvent, owner: User) -> dict[str, Any]:
    """Everything, extended properties included: what the control API shows a test."""
    out = render_event(event, owner, View())
    out["singleValueExtendedProperties"] = [
        {"id": prop.id, "value": prop.value} for prop in event.single_properties.values()
    ]
    out["multiValueExtendedProperties"] = [
        {"id": prop.id, "value": list(prop.value)} for prop in event.multi_properties.values()
    ]
    if event.kind == "seriesMaster":
        out["cancelledOccurrenceStarts"] = sorted(
            instant_text(start) or "" for start in event.cancelled_starts
        )
    return out

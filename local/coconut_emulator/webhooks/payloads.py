"""Builders for webhook payloads exactly as contracts/coconut-webhooks.md shows them.

The results are plain dicts (typed as TypedDicts) ready for `json.dumps`; the builders refuse to
produce a payload the contract rules out (naive datetimes, end before start, a location on a
virtual appointment), because malformed payloads are made on purpose in `bad_deliveries`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal, NotRequired, TypedDict
from zoneinfo import ZoneInfo

AppointmentEventType = Literal[
    "appointment.created",
    "appointment.updated",
    "appointment.cancelled",
    "appointment.deleted",
]
UnavailabilityEventType = Literal[
    "unavailability.created",
    "unavailability.updated",
    "unavailability.deleted",
]
EventType = AppointmentEventType | UnavailabilityEventType
EVENT_TYPES: tuple[EventType, ...] = (
    "appointment.created",
    "appointment.updated",
    "appointment.cancelled",
    "appointment.deleted",
    "unavailability.created",
    "unavailability.updated",
    "unavailability.deleted",
)

AT_LOCATION, PHONE_CALL, VIDEO_CALL, OFF_SITE = 1, 2, 3, 4
VIRTUAL_MEETING_METHODS = frozenset({PHONE_CALL, VIDEO_CALL})
DEFAULT_TIMEZONE = "America/Toronto"


class StaffRef(TypedDict):
    id: str
    email: str
    first_name: str
    last_name: str


class Answer(TypedDict):
    question: str
    answer: str


class Attendee(TypedDict):
    id: str
    first_name: str
    last_name: str
    # May be null or absent (contract).
    email: NotRequired[str | None]
    cell_phone: NotRequired[str | None]
    phone: NotRequired[str | None]
    notes: NotRequired[str | None]
    answers: NotRequired[list[Answer] | None]


class Service(TypedDict):
    id: str
    name: str


class Location(TypedDict):
    id: str
    name: str
    address: str


class AppointmentAttributes(TypedDict):
    revision: int
    status: Literal["booked", "cancelled"]
    start: str
    end: str
    timezone: str
    meeting_method: int
    service: Service
    staff: list[StaffRef]
    attendees: list[Attendee]
    notes: NotRequired[str | None]
    location: NotRequired[Location | None]


class Appointment(TypedDict):
    type: Literal["appointments"]
    id: str
    attributes: AppointmentAttributes


class UnavailabilityAttributes(TypedDict):
    revision: int
    title: str
    start: str
    end: str
    timezone: str
    all_day: bool
    staff: StaffRef


class Unavailability(TypedDict):
    type: Literal["unavailabilities"]
    id: str
    attributes: UnavailabilityAttributes


class RevisionOnly(TypedDict):
    revision: int


class Deletion(TypedDict):
    """What a deletion may carry instead of the full resource: only id and revision."""

    type: Literal["appointments", "unavailabilities"]
    id: str
    attributes: RevisionOnly


class Envelope(TypedDict):
    id: str
    type: EventType
    created_at: str
    data: Appointment | Unavailability | Deletion


# --- small parts ------------------------------------------------------------------------------


def staff_member(user_id: str, email: str, first_name: str, last_name: str) -> StaffRef:
    return {"id": user_id, "email": email, "first_name": first_name, "last_name": last_name}


def answer(question: str, text: str) -> Answer:
    return {"question": question, "answer": text}


def attendee(
    attendee_id: str,
    first_name: str,
    last_name: str,
    *,
    email: str | None = None,
    cell_phone: str | None = None,
    phone: str | None = None,
    notes: str | None = None,
    answers: Sequence[Answer] | None = None,
    omit_nulls: bool = False,
) -> Attendee:
    """An attendee; optional fields are sent as null, or left out with `omit_nulls`."""
    result: Attendee = {
        "id": attendee_id,
        "first_name": first_name,
        "last_name": last_name,
        "email": email,
        "cell_phone": cell_phone,
        "phone": phone,
        "notes": notes,
        "answers": list(answers) if answers is not None else None,
    }
    if omit_nulls:
        for key in ("email", "cell_phone", "phone", "notes", "answers"):
            if result.get(key) is None:
                result.pop(key)  # type: ignore[misc]  # the key is NotRequired
    return result


def service(service_id: str, name: str) -> Service:
    return {"id": service_id, "name": name}


def location(location_id: str, name: str, address: str) -> Location:
    return {"id": location_id, "name": name, "address": address}


# --- time -------------------------------------------------------------------------------------


def local_time(moment: datetime, timezone: str) -> datetime:
    """A naive datetime is wall-clock time in `timezone`; an aware one is kept as it is."""
    return moment.replace(tzinfo=ZoneInfo(timezone)) if moment.tzinfo is None else moment


def rfc3339(moment: datetime) -> str:
    """RFC 3339 with the moment's own offset, e.g. 2026-12-01T14:00:00-05:00."""
    if moment.utcoffset() is None:
        raise ValueError("a webhook time needs an offset")
    return moment.isoformat(timespec="seconds")


def utc_timestamp(moment: datetime) -> str:
    """The envelope's `created_at` style: UTC ending in Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _period(start: datetime, end: datetime, timezone: str) -> tuple[str, str]:
    start, end = local_time(start, timezone), local_time(end, timezone)
    if end <= start:
        raise ValueError("end must be after start")
    return rfc3339(start), rfc3339(end)


# --- resources --------------------------------------------------------------------------------


def appointment(
    appointment_id: str,
    *,
    revision: int,
    start: datetime,
    end: datetime,
    service: Service,
    staff: Sequence[StaffRef],
    attendees: Sequence[Attendee] = (),
    meeting_method: int = AT_LOCATION,
    location: Location | None = None,
    notes: str | None = None,
    status: Literal["booked", "cancelled"] = "booked",
    timezone: str = DEFAULT_TIMEZONE,
) -> Appointment:
    if revision < 1:
        raise ValueError("revision starts at 1")
    if meeting_method not in (AT_LOCATION, PHONE_CALL, VIDEO_CALL, OFF_SITE):
        raise ValueError("meeting_method is 1, 2, 3 or 4")
    if meeting_method in VIRTUAL_MEETING_METHODS and location is not None:
        raise ValueError("a virtual appointment has no location")
    if status == "booked" and not staff:
        raise ValueError("a booked appointment has at least one staff member")
    start_text, end_text = _period(start, end, timezone)
    return {
        "type": "appointments",
        "id": appointment_id,
        "attributes": {
            "revision": revision,
            "status": status,
            "start": start_text,
            "end": end_text,
            "timezone": timezone,
            "meeting_method": meeting_method,
            "notes": notes,
            "service": service,
            "location": location,
            "staff": list(staff),
            "attendees": list(attendees),
        },
    }


def unavailability(
    unavailability_id: str,
    *,
    revision: int,
    title: str,
    start: datetime,
    end: datetime,
    staff: StaffRef,
    all_day: bool = False,
    timezone: str = DEFAULT_TIMEZONE,
) -> Unavailability:
    if revision < 1:
        raise ValueError("revision starts at 1")
    start_text, end_text = _period(start, end, timezone)
    return {
        "type": "unavailabilities",
        "id": unavailability_id,
        "attributes": {
            "revision": revision,
            "title": title,
            "start": start_text,
            "end": end_text,
            "timezone": timezone,
            "all_day": all_day,
            "staff": staff,
        },
    }


def deletion(
    resource_type: Literal["appointments", "unavailabilities"], resource_id: str, revision: int
) -> Deletion:
    return {"type": resource_type, "id": resource_id, "attributes": {"revision": revision}}


def new_delivery_id() -> str:
    return f"whevt_{uuid.uuid4().hex}"


def envelope(
    event_type: EventType,
    data: Appointment | Unavailability | Deletion,
    *,
    delivery_id: str | None = None,
    created_at: datetime | None = None,
) -> Envelope:
    return {
        "id": delivery_id or new_delivery_id(),
        "type": event_type,
        "created_at": utc_timestamp(created_at or datetime.now(UTC)),
        "data": data,
    }

"""Webhook bodies as contracts/coconut-webhooks.md shows them, for tests to vary."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sync.coconut.webhook_models import (
    AppointmentChange,
    AppointmentDeleted,
    UnavailabilityChange,
    parse_delivery,
)

APPOINTMENT_RESOURCE: dict[str, Any] = {
    "type": "appointments",
    "id": "A-1001",
    "attributes": {
        "revision": 3,
        "status": "booked",
        "start": "2026-12-01T14:00:00-05:00",
        "end": "2026-12-01T14:30:00-05:00",
        "timezone": "America/Toronto",
        "meeting_method": 1,
        "notes": "Customer prefers French.",
        "service": {"id": "S-7", "name": "Opening an account"},
        "location": {
            "id": "L-3",
            "name": "Downtown Branch",
            "address": "100 King St W, Toronto, ON M5X 1A9",
        },
        "staff": [
            {
                "id": "U-42",
                "email": "jane.doe@bank.example",
                "first_name": "Jane",
                "last_name": "Doe",
            }
        ],
        "attendees": [
            {
                "id": "C-9",
                "first_name": "Sam",
                "last_name": "Lee",
                "email": "sam.lee@example.com",
                "cell_phone": "+1 416 555 0100",
                "phone": "+1 416 555 0199",
                "notes": "Bring two pieces of ID.",
                "answers": [{"question": "Which account type?", "answer": "Chequing"}],
            }
        ],
    },
}

UNAVAILABILITY_RESOURCE: dict[str, Any] = {
    "type": "unavailabilities",
    "id": "N-77",
    "attributes": {
        "revision": 1,
        "title": "Vacation",
        "start": "2026-12-20T00:00:00-05:00",
        "end": "2027-01-04T00:00:00-05:00",
        "timezone": "America/Toronto",
        "all_day": True,
        "staff": {
            "id": "U-42",
            "email": "jane.doe@bank.example",
            "first_name": "Jane",
            "last_name": "Doe",
        },
    },
}


def envelope(event_type: str, data: Any, delivery_id: str = "whevt_01HZX3J4K5") -> dict[str, Any]:
    return {
        "id": delivery_id,
        "type": event_type,
        "created_at": "2026-11-23T15:04:05Z",
        "data": copy.deepcopy(data),
    }


def appointment_envelope(event_type: str = "appointment.updated") -> dict[str, Any]:
    return envelope(event_type, APPOINTMENT_RESOURCE)


def unavailability_envelope(event_type: str = "unavailability.created") -> dict[str, Any]:
    return envelope(event_type, UNAVAILABILITY_RESOURCE)


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode("utf-8")


def appointment_change(body: dict[str, Any]) -> AppointmentChange:
    delivery = parse_delivery(encode(body))
    assert isinstance(delivery, AppointmentChange)
    return delivery


def unavailability_change(body: dict[str, Any]) -> UnavailabilityChange:
    delivery = parse_delivery(encode(body))
    assert isinstance(delivery, UnavailabilityChange)
    return delivery


def staff_member(staff_id: str) -> dict[str, str]:
    return {
        "id": staff_id,
        "email": f"{staff_id.lower()}@bank.example",
        "first_name": "Staff",
        "last_name": staff_id,
    }


def tomorrow() -> datetime:
    """A start a day from now: inside the import window (which opens a day before a calendar's
    first sync) and the content retention, whatever day the tests run on."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)


def appointment_at(
    revision: int,
    staff_ids: tuple[str, ...] = ("U-42",),
    *,
    coconut_id: str = "A-1001",
    status: str = "booked",
    notes: str | None = "Customer prefers French.",
    event_type: str | None = None,
    starts: datetime | None = None,
) -> AppointmentChange:
    """An appointment change at `revision`, assigned to `staff_ids` (at the contract's example
    time unless `starts` moves it: a test whose outcome depends on today's date must)."""
    body = appointment_envelope(
        event_type or f"appointment.{'cancelled' if status == 'cancelled' else 'updated'}"
    )
    attributes = body["data"]["attributes"]
    body["data"]["id"] = coconut_id
    attributes.update(
        revision=revision,
        status=status,
        notes=notes,
        staff=[staff_member(staff_id) for staff_id in staff_ids],
    )
    if starts is not None:
        attributes.update(
            start=starts.isoformat(), end=(starts + timedelta(minutes=30)).isoformat()
        )
    return appointment_change(body)


def appointment_deleted_at(revision: int, coconut_id: str = "A-1001") -> AppointmentDeleted:
    delivery = parse_delivery(
        encode(
            envelope(
                "appointment.deleted",
                {"type": "appointments", "id": coconut_id, "attributes": {"revision": revision}},
            )
        )
    )
    assert isinstance(delivery, AppointmentDeleted)
    return delivery

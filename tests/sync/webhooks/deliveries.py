"""Webhook deliveries for the receiver's tests (unit, and end to end on the local stack): correct
ones full of distinctive personal data, and the catalogue of refused ones with the status the
contract (contracts/coconut-webhooks.md) prescribes for each."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from local.coconut_emulator.webhooks import bad_deliveries as bad
from local.coconut_emulator.webhooks import payloads
from local.coconut_emulator.webhooks.coconut import Coconut
from local.coconut_emulator.webhooks.delivery import PreparedDelivery
from local.coconut_emulator.webhooks.payloads import StaffRef
from local.coconut_emulator.webhooks.signing import SIGNATURE_HEADER, encode_body
from local.stack import WEBHOOK_SECRET

PREVIOUS_SECRET = "previous-webhook-secret"
SECRETS = [WEBHOOK_SECRET]
TORONTO = ZoneInfo("America/Toronto")
START = datetime(2026, 12, 1, 14, 0, tzinfo=TORONTO)
SERVICE = payloads.service("S-7", "Opening an account")
BRANCH = payloads.location("L-3", "Downtown Branch", "100 King St W, Toronto, ON M5X 1A9")

# Distinctive personal values put in every payload: none may come back in an error body or a log.
CUSTOMER = payloads.attendee(
    "C-9",
    "Zephyrine",
    "Quackenbush",
    email="zephyrine.quackenbush@example.net",
    cell_phone="+1 416 555 0142",
    phone="+1 416 555 0173",
    notes="Brings a guide dog named Biscuit",
    answers=[payloads.answer("Account holders?", "Joint with Marguerite Oyelaran")],
)
APPOINTMENT_NOTES = "Prefers Portuguese; uses a hearing aid"
STAFF_FIRST, STAFF_LAST = "Quinta", "Ravenscroft"
PERSONAL_VALUES = (
    "Zephyrine",
    "Quackenbush",
    "zephyrine.quackenbush",
    "555 0142",
    "555 0173",
    "Biscuit",
    "Marguerite",
    "Oyelaran",
    "Portuguese",
    STAFF_FIRST,
    STAFF_LAST,
    "@bank.example",
)


def new_staff_member() -> StaffRef:
    tag = uuid.uuid4().hex[:8]
    return payloads.staff_member(f"U-{tag}", f"q.{tag}@bank.example", STAFF_FIRST, STAFF_LAST)


def new_coconut() -> Coconut:
    """A Coconut whose appointment ids no other test uses."""
    return Coconut(first_appointment_number=uuid.uuid4().int % 10**9)


def booking(coconut: Coconut, staff: StaffRef, start: datetime = START) -> dict[str, Any]:
    """A booked appointment full of personal data, as Coconut sends it."""
    return dict(
        coconut.book(
            staff=[staff],
            start=start,
            end=start + timedelta(minutes=30),
            service=SERVICE,
            location=BRANCH,
            attendees=[CUSTOMER],
            notes=APPOINTMENT_NOTES,
        )
    )


def absence(coconut: Coconut, staff: StaffRef) -> dict[str, Any]:
    return dict(
        coconut.record_absence(
            staff=staff,
            start=datetime(2026, 12, 20, tzinfo=TORONTO),
            end=datetime(2027, 1, 4, tzinfo=TORONTO),
            title="Vacation",
            all_day=True,
            absence_id=f"N-{uuid.uuid4().hex[:8]}",
        )
    )


def item_key(envelope: Mapping[str, Any]) -> str:
    data = envelope["data"]
    kind = "appointment" if data["type"] == "appointments" else "unavailability"
    return f"{kind}:{data['id']}"


def now() -> int:
    return int(time.time())


def signed(envelope: Mapping[str, Any], **options: Any) -> PreparedDelivery:
    """A correct delivery, signed with the current secret at the current time."""
    return bad.prepare(envelope, SECRETS, now(), **options)


def personal_data_in(text: str) -> list[str]:
    return [value for value in PERSONAL_VALUES if value.lower() in text.lower()]


# --- refusals: each breaks one rule, or several to show which rule is checked first -------------

Refusal = Callable[[Mapping[str, Any], int], PreparedDelivery]
"""Builds a refused delivery from a correct envelope and the current Unix time."""

NO_START = bad.drop("data.attributes.start")


def _cut_short(envelope: Mapping[str, Any]) -> bytes:
    body = encode_body(envelope)
    return body[: len(body) // 2]


def _unsigned(prepared: PreparedDelivery) -> PreparedDelivery:
    headers = {k: v for k, v in prepared.headers.items() if k != SIGNATURE_HEADER}
    return PreparedDelivery(prepared.body, headers, prepared.delivery_id, prepared.expected_status)


def _declared_as_text(prepared: PreparedDelivery) -> PreparedDelivery:
    headers = {**prepared.headers, "Content-Type": "text/plain"}
    return PreparedDelivery(prepared.body, headers, prepared.delivery_id, prepared.expected_status)


UNAUTHENTICATED: dict[str, Refusal] = {
    "wrong secret": lambda e, t: bad.wrong_secret(e, t),
    "tampered body": lambda e, t: bad.tampered_body(e, SECRETS, t),
    "missing signature": lambda e, t: bad.missing_signature(e, SECRETS, t),
    "unknown signature scheme": lambda e, t: bad.unknown_signature_scheme(e, SECRETS, t),
    "missing timestamp": lambda e, t: bad.missing_timestamp(e, SECRETS, t),
    "timestamp 301 s old": lambda e, t: bad.stale_timestamp(e, SECRETS, t),
    # Whole seconds, floored: a few seconds of margin keep it outside while the request travels.
    "timestamp 305 s ahead": lambda e, t: bad.future_timestamp(e, SECRETS, t, ahead=305),
    "timestamp a day old": lambda e, t: bad.stale_timestamp(e, SECRETS, t, age=86_400),
}

TOO_LARGE: dict[str, Refusal] = {
    "signed, one byte over": lambda e, t: bad.oversize_body(e, SECRETS, t),
    # Size comes before authentication: an oversize body that is not authentic is still 413.
    "wrong secret": lambda e, t: bad.oversize_body(e, [bad.WRONG_SECRET], t),
    "no signature header": lambda e, t: _unsigned(bad.oversize_body(e, SECRETS, t)),
}

NOT_JSON_CONTENT: dict[str, Refusal] = {
    "text/plain": lambda e, t: bad.wrong_content_type(e, SECRETS, t),
    "no content type": lambda e, t: bad.wrong_content_type(e, SECRETS, t, content_type=None),
    "form": lambda e, t: bad.wrong_content_type(
        e, SECRETS, t, content_type="application/x-www-form-urlencoded"
    ),
}

NOT_JSON: dict[str, Refusal] = {
    "cut short": lambda e, t: bad.not_json(e, SECRETS, t),
    "empty body": lambda e, t: bad.prepare(
        b"", SECRETS, t, delivery_id=str(e["id"]), expected_status=400
    ),
    "NaN": lambda e, t: bad.prepare(
        b'{"id": NaN}', SECRETS, t, delivery_id=str(e["id"]), expected_status=400
    ),
}

FAULT_ORDER: dict[str, Refusal] = {
    # size > authentication > content type > body: the first broken rule decides.
    "oversize, wrong secret, text: 413": lambda e, t: _declared_as_text(
        bad.oversize_body(e, [bad.WRONG_SECRET], t)
    ),
    "wrong secret, text: 401": lambda e, t: bad.prepare(
        e, [bad.WRONG_SECRET], t, content_type="text/plain", expected_status=401
    ),
    "wrong secret, not JSON: 401": lambda e, t: bad.prepare(
        _cut_short(e), [bad.WRONG_SECRET], t, delivery_id=str(e["id"]), expected_status=401
    ),
    "stale timestamp, schema violation: 401": lambda e, t: bad.prepare(
        bad.violating(e, NO_START), SECRETS, t - 400, expected_status=401
    ),
    "text, not JSON: 415": lambda e, t: bad.prepare(
        _cut_short(e),
        SECRETS,
        t,
        delivery_id=str(e["id"]),
        content_type="text/plain",
        expected_status=415,
    ),
    "text, schema violation: 415": lambda e, t: bad.prepare(
        bad.violating(e, NO_START), SECRETS, t, content_type="text/plain", expected_status=415
    ),
}

REFUSALS: dict[str, Refusal] = {
    **{f"401 {name}": refusal for name, refusal in UNAUTHENTICATED.items()},
    **{f"413 {name}": refusal for name, refusal in TOO_LARGE.items()},
    **{f"415 {name}": refusal for name, refusal in NOT_JSON_CONTENT.items()},
    **{f"400 {name}": refusal for name, refusal in NOT_JSON.items()},
    **{f"order: {name}": refusal for name, refusal in FAULT_ORDER.items()},
}

ATTRIBUTES = "data.attributes"
# The field path a 400 must name for each violation in the emulator's catalogue.
VIOLATION_PATHS: dict[str, str] = {
    "envelope without id": "id",
    "envelope without type": "type",
    "envelope without created_at": "created_at",
    "created_at not a timestamp": "created_at",
    "envelope without data": "data",
    "data not an object": "data",
    "data without id": "data.id",
    "data without attributes": ATTRIBUTES,
    "revision missing": f"{ATTRIBUTES}.revision",
    "revision not an integer": f"{ATTRIBUTES}.revision",
    "revision below 1": f"{ATTRIBUTES}.revision",
    "start missing": f"{ATTRIBUTES}.start",
    "end missing": f"{ATTRIBUTES}.end",
    "start without offset": f"{ATTRIBUTES}.start",
    "start not a date": f"{ATTRIBUTES}.start",
    "end before start": f"{ATTRIBUTES}.end",
    "end equal to start": f"{ATTRIBUTES}.end",
    "duration over 366 days": f"{ATTRIBUTES}.end",
    "status unknown": f"{ATTRIBUTES}.status",
    "meeting_method out of range": f"{ATTRIBUTES}.meeting_method",
    "meeting_method not an integer": f"{ATTRIBUTES}.meeting_method",
    "service missing": f"{ATTRIBUTES}.service",
    "staff missing": f"{ATTRIBUTES}.staff",
    "staff not a list": f"{ATTRIBUTES}.staff",
    "no staff on a booked appointment": f"{ATTRIBUTES}.staff",
    "too many staff": f"{ATTRIBUTES}.staff",
    "attendees not a list": f"{ATTRIBUTES}.attendees",
    "too many attendees": f"{ATTRIBUTES}.attendees",
    "too many answers": f"{ATTRIBUTES}.attendees.0.answers",
    "notes too long": f"{ATTRIBUTES}.notes",
    "attendee notes too long": f"{ATTRIBUTES}.attendees.0.notes",
    "string too long": f"{ATTRIBUTES}.service.name",
    "all_day not a boolean": f"{ATTRIBUTES}.all_day",
    "staff a list instead of one": f"{ATTRIBUTES}.staff",
    "title too long": f"{ATTRIBUTES}.title",
}

Builder = Callable[[Coconut, StaffRef], dict[str, Any]]
VIOLATIONS: list[tuple[str, Builder, str]] = [
    *((f"appointment: {name}", booking, name) for name in bad.APPOINTMENT_VIOLATIONS),
    *((f"absence: {name}", absence, name) for name in bad.UNAVAILABILITY_VIOLATIONS),
]


def violation(resource: Builder, name: str) -> Callable[[Mapping[str, Any]], bytes]:
    catalogue = bad.APPOINTMENT_VIOLATIONS if resource is booking else bad.UNAVAILABILITY_VIOLATIONS
    return lambda envelope: encode_body(bad.violating(envelope, catalogue[name]))


def named_fields(error: str) -> list[str]:
    """The field paths a 400's error names (`path: message; path: message`)."""
    return [part.split(":")[0].strip() for part in error.split(";")]

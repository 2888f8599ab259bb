"""Each bad delivery breaks exactly the rule it names, judged by the contract's checks written out
again here (size, then authentication, then content type, then JSON)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import pytest

from local.coconut_emulator.webhooks import Coconut, PreparedDelivery, WebhookSender, encode_body
from local.coconut_emulator.webhooks import bad_deliveries as bad
from local.coconut_emulator.webhooks import payloads as p

from .receiver import Receiver, serving

SECRET = "webhook-secret"
NOW = 1_795_000_000
JANE = p.staff_member("U-42", "jane.doe@bank.example", "Jane", "Doe")


def contract_status(headers: Mapping[str, str], body: bytes) -> int | None:
    """What the contract says a receiver answers before looking at the schema; None = passes."""
    if len(body) > 1024 * 1024:
        return 413
    timestamp = headers.get("X-Coconut-Timestamp")
    if timestamp is None or not timestamp.isdigit() or abs(int(timestamp) - NOW) > 300:
        return 401
    digest = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    offered = headers.get("X-Coconut-Signature", "").split(",")
    if not any(hmac.compare_digest(f"v1={digest.hexdigest()}", v.strip()) for v in offered):
        return 401
    if headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
        return 415
    try:
        json.loads(body)
    except ValueError:
        return 400
    return None


@pytest.fixture
def appointment() -> p.Envelope:
    return Coconut().book(
        staff=[JANE],
        start=datetime(2026, 12, 1, 14),
        end=datetime(2026, 12, 1, 14, 30),
        service=p.service("S-7", "Opening an account"),
        location=p.location("L-3", "Downtown Branch", "100 King St W"),
        attendees=[p.attendee("C-9", "Sam", "Lee", notes="ID")],
        notes="French.",
    )


@pytest.fixture
def absence() -> p.Envelope:
    return Coconut().record_absence(
        staff=JANE, start=datetime(2026, 12, 20), end=datetime(2027, 1, 4), all_day=True
    )


BAD: dict[str, Callable[[Any], PreparedDelivery]] = {
    "wrong secret": lambda e: bad.wrong_secret(e, NOW),
    "tampered body": lambda e: bad.tampered_body(e, [SECRET], NOW),
    "missing signature": lambda e: bad.missing_signature(e, [SECRET], NOW),
    "unknown signature scheme": lambda e: bad.unknown_signature_scheme(e, [SECRET], NOW),
    "missing timestamp": lambda e: bad.missing_timestamp(e, [SECRET], NOW),
    "stale timestamp": lambda e: bad.stale_timestamp(e, [SECRET], NOW),
    "future timestamp": lambda e: bad.future_timestamp(e, [SECRET], NOW),
    "oversize body": lambda e: bad.oversize_body(e, [SECRET], NOW),
    "oversize body, wrong secret": lambda e: bad.oversize_body(e, ["wrong"], NOW),
    "wrong content type": lambda e: bad.wrong_content_type(e, [SECRET], NOW),
    "no content type": lambda e: bad.wrong_content_type(e, [SECRET], NOW, None),
    "not JSON": lambda e: bad.not_json(e, [SECRET], NOW),
}


@pytest.mark.parametrize("name", BAD, ids=list(BAD))
def test_each_bad_delivery_earns_the_status_it_expects(appointment: p.Envelope, name: str) -> None:
    prepared = BAD[name](appointment)

    assert prepared.expected_status is not None
    assert contract_status(prepared.headers, prepared.body) == prepared.expected_status
    assert prepared.headers.get("X-Coconut-Delivery") == appointment["id"]


def test_a_good_delivery_passes_the_same_checks(appointment: p.Envelope) -> None:
    prepared = bad.prepare(appointment, [SECRET], NOW)

    assert contract_status(prepared.headers, prepared.body) is None


def test_timestamps_just_inside_the_tolerance_are_not_bad(appointment: p.Envelope) -> None:
    inside = bad.stale_timestamp(appointment, [SECRET], NOW, age=300)

    assert contract_status(inside.headers, inside.body) is None


def test_oversize_is_just_over_one_mebibyte_and_otherwise_valid(appointment: p.Envelope) -> None:
    prepared = bad.oversize_body(appointment, [SECRET], NOW)

    assert len(prepared.body) == 1024 * 1024 + 1
    assert json.loads(prepared.body)["data"] == appointment["data"]


@pytest.mark.parametrize("name", bad.APPOINTMENT_VIOLATIONS, ids=list(bad.APPOINTMENT_VIOLATIONS))
def test_appointment_schema_violations_are_signed_json_that_differs(
    appointment: p.Envelope, name: str
) -> None:
    prepared = bad.schema_violation(appointment, bad.APPOINTMENT_VIOLATIONS[name], [SECRET], NOW)

    assert prepared.expected_status == 400
    assert contract_status(prepared.headers, prepared.body) is None
    assert json.loads(prepared.body) != json.loads(encode_body(appointment))
    assert prepared.headers["X-Coconut-Delivery"] == appointment["id"]


@pytest.mark.parametrize(
    "name", bad.UNAVAILABILITY_VIOLATIONS, ids=list(bad.UNAVAILABILITY_VIOLATIONS)
)
def test_absence_schema_violations_are_signed_json_that_differs(
    absence: p.Envelope, name: str
) -> None:
    broken = bad.violating(absence, bad.UNAVAILABILITY_VIOLATIONS[name])

    assert broken != json.loads(encode_body(absence))


def test_named_violations_break_what_they_say(appointment: p.Envelope) -> None:
    def attributes(name: str) -> dict[str, Any]:
        result: dict[str, Any] = bad.violating(appointment, bad.APPOINTMENT_VIOLATIONS[name])
        return result["data"]["attributes"]  # type: ignore[no-any-return]

    assert len(attributes("too many attendees")["attendees"]) == 101
    assert len(attributes("too many staff")["staff"]) == 21
    assert len(attributes("too many answers")["attendees"][0]["answers"]) == 51
    assert len(attributes("notes too long")["notes"]) == 32_001
    swapped = attributes("end before start")
    assert datetime.fromisoformat(swapped["end"]) < datetime.fromisoformat(swapped["start"])
    long = attributes("duration over 366 days")
    duration = datetime.fromisoformat(long["end"]) - datetime.fromisoformat(long["start"])
    assert duration.days == 367
    assert "start" not in attributes("start missing")
    # The original is untouched.
    assert len(appointment["data"]["attributes"]["attendees"]) == 1  # type: ignore[typeddict-item]


async def test_a_prepared_delivery_is_sent_as_is_once(appointment: p.Envelope) -> None:
    receiver = Receiver(statuses=[401])
    prepared = bad.stale_timestamp(appointment, [SECRET], NOW)

    with serving(receiver) as url:
        async with WebhookSender(url, SECRET) as sender:
            attempt = await sender.send(prepared)

    assert (attempt.status, attempt.timestamp) == (401, NOW - 301)
    [received] = receiver.received
    assert received.body == prepared.body
    assert received.headers["x-coconut-signature"] == prepared.headers["X-Coconut-Signature"]

"""Deliberately bad webhook deliveries, each with the status the contract prescribes for it.

Each one breaks exactly one rule and is otherwise a correct delivery (properly signed, fresh
timestamp, JSON content type), so a receiver that answers the wrong status is wrong about that
rule. Rules can be combined through the parameters, e.g. an oversize body signed with a wrong
secret (the contract says size is checked first: 413).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from local.coconut_emulator.webhooks.delivery import PreparedDelivery
from local.coconut_emulator.webhooks.signing import (
    CONTENT_TYPE,
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    encode_body,
    signature,
    signature_header,
)

MAX_BODY_BYTES = 1024 * 1024
TIMESTAMP_TOLERANCE_SECONDS = 300
WRONG_SECRET = "not-the-webhook-secret"  # noqa: S105 - the point is that it is wrong

Payload = Mapping[str, Any]
Mutation = Callable[[dict[str, Any]], None]


def prepare(
    payload: Payload | bytes,
    secrets: Sequence[str],
    timestamp: int,
    *,
    delivery_id: str | None = None,
    content_type: str | None = CONTENT_TYPE,
    expected_status: int | None = None,
) -> PreparedDelivery:
    """A correctly signed request for `payload` (an envelope, or raw bytes sent as they are)."""
    body = payload if isinstance(payload, bytes) else encode_body(payload)
    if delivery_id is None and not isinstance(payload, bytes) and "id" in payload:
        delivery_id = str(payload["id"])
    headers = {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_header(secrets, timestamp, body),
    }
    if delivery_id is not None:
        headers[DELIVERY_HEADER] = delivery_id
    if content_type is not None:
        headers["Content-Type"] = content_type
    return PreparedDelivery(body, headers, delivery_id, expected_status)


def _without(prepared: PreparedDelivery, header: str, expected_status: int) -> PreparedDelivery:
    headers = {k: v for k, v in prepared.headers.items() if k != header}
    return PreparedDelivery(prepared.body, headers, prepared.delivery_id, expected_status)


# --- authentication (401) ---------------------------------------------------------------------


def wrong_secret(envelope: Payload, timestamp: int, secret: str = WRONG_SECRET) -> PreparedDelivery:
    return prepare(envelope, [secret], timestamp, expected_status=401)


def tampered_body(envelope: Payload, secrets: Sequence[str], timestamp: int) -> PreparedDelivery:
    """Signed, then the body changed by one trailing space: still valid JSON, signature stale."""
    signed = prepare(envelope, secrets, timestamp)
    return PreparedDelivery(signed.body + b" ", signed.headers, signed.delivery_id, 401)


def missing_signature(
    envelope: Payload, secrets: Sequence[str], timestamp: int
) -> PreparedDelivery:
    return _without(prepare(envelope, secrets, timestamp), SIGNATURE_HEADER, 401)


def unknown_signature_scheme(
    envelope: Payload, secrets: Sequence[str], timestamp: int
) -> PreparedDelivery:
    """The right HMAC under a scheme other than `v1=`."""
    prepared = prepare(envelope, secrets, timestamp)
    body = prepared.body
    headers = {
        **prepared.headers,
        SIGNATURE_HEADER: ",".join(f"v0={signature(s, timestamp, body)}" for s in secrets),
    }
    return PreparedDelivery(body, headers, prepared.delivery_id, 401)


def missing_timestamp(
    envelope: Payload, secrets: Sequence[str], timestamp: int
) -> PreparedDelivery:
    return _without(prepare(envelope, secrets, timestamp), TIMESTAMP_HEADER, 401)


def stale_timestamp(
    envelope: Payload,
    secrets: Sequence[str],
    now: int,
    age: int = TIMESTAMP_TOLERANCE_SECONDS + 1,
) -> PreparedDelivery:
    """Correctly signed, but over a timestamp `age` seconds in the past."""
    return prepare(envelope, secrets, now - age, expected_status=401)


def future_timestamp(
    envelope: Payload,
    secrets: Sequence[str],
    now: int,
    ahead: int = TIMESTAMP_TOLERANCE_SECONDS + 1,
) -> PreparedDelivery:
    return prepare(envelope, secrets, now + ahead, expected_status=401)


# --- size, content type, syntax ---------------------------------------------------------------


def oversize_body(
    envelope: Payload,
    secrets: Sequence[str],
    timestamp: int,
    size: int = MAX_BODY_BYTES + 1,
) -> PreparedDelivery:
    """A valid, signed envelope padded (with an unknown field) to exactly `size` bytes."""
    base = len(encode_body({**envelope, "padding": ""}))
    if size < base:
        raise ValueError("size is smaller than the envelope itself")
    padded = {**envelope, "padding": "x" * (size - base)}
    return prepare(padded, secrets, timestamp, expected_status=413)


def wrong_content_type(
    envelope: Payload,
    secrets: Sequence[str],
    timestamp: int,
    content_type: str | None = "text/plain",
) -> PreparedDelivery:
    """A JSON body declared as something else (or, with None, as nothing)."""
    return prepare(envelope, secrets, timestamp, content_type=content_type, expected_status=415)


def not_json(envelope: Payload, secrets: Sequence[str], timestamp: int) -> PreparedDelivery:
    """The envelope cut short: signed and declared JSON, but not parseable."""
    body = encode_body(envelope)
    return prepare(
        body[: len(body) // 2],
        secrets,
        timestamp,
        delivery_id=str(envelope["id"]),
        expected_status=400,
    )


# --- schema violations (400) ------------------------------------------------------------------


def _path(path: str) -> tuple[list[str], str]:
    *parents, leaf = path.split(".")
    return parents, leaf


def _parent(document: dict[str, Any], parents: list[str]) -> Any:
    node: Any = document
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def drop(path: str) -> Mutation:
    """Remove the field at a dotted path such as `data.attributes.start`."""
    parents, leaf = _path(path)
    return lambda document: _parent(document, parents).pop(leaf)


def put(path: str, value: Any) -> Mutation:
    """Set the field at a dotted path (list items by index: `...attendees.0.notes`)."""
    parents, leaf = _path(path)

    def mutate(document: dict[str, Any]) -> None:
        parent = _parent(document, parents)
        if isinstance(parent, list):
            parent[int(leaf)] = copy.deepcopy(value)
        else:
            parent[leaf] = copy.deepcopy(value)

    return mutate


def _swap_start_and_end(document: dict[str, Any]) -> None:
    attributes = document["data"]["attributes"]
    attributes["start"], attributes["end"] = attributes["end"], attributes["start"]


def _end_at_start(document: dict[str, Any]) -> None:
    attributes = document["data"]["attributes"]
    attributes["end"] = attributes["start"]


def _duration(days: int) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        attributes = document["data"]["attributes"]
        start = datetime.fromisoformat(attributes["start"])
        attributes["end"] = (start + timedelta(days=days)).isoformat(timespec="seconds")

    return mutate


def _synthetic_attendees(count: int) -> list[dict[str, Any]]:
    # Made-up people only: these payloads end up in receivers' logs and test output.
    return [
        {"id": f"C-synthetic-{n}", "first_name": "Test", "last_name": f"Attendee {n}"}
        for n in range(count)
    ]


def _synthetic_staff(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"U-synthetic-{n}",
            "email": f"staff{n}@bank.example",
            "first_name": "Test",
            "last_name": f"Staff {n}",
        }
        for n in range(count)
    ]


def _answers(count: int) -> Mutation:
    answers = [{"question": f"Question {n}", "answer": "Yes"} for n in range(count)]

    def mutate(document: dict[str, Any]) -> None:
        attendees = document["data"]["attributes"]["attendees"]
        if not attendees:
            attendees.extend(_synthetic_attendees(1))
        attendees[0]["answers"] = answers

    return mutate


def _attendee_notes(length: int) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        attendees = document["data"]["attributes"]["attendees"]
        if not attendees:
            attendees.extend(_synthetic_attendees(1))
        attendees[0]["notes"] = "n" * length

    return mutate


ATTRIBUTES = "data.attributes"

ENVELOPE_VIOLATIONS: dict[str, Mutation] = {
    "envelope without id": drop("id"),
    "envelope without type": drop("type"),
    "envelope without created_at": drop("created_at"),
    "created_at not a timestamp": put("created_at", "yesterday"),
    "envelope without data": drop("data"),
    "data not an object": put("data", []),
    "data without id": drop("data.id"),
    "data without attributes": drop(ATTRIBUTES),
    "revision missing": drop(f"{ATTRIBUTES}.revision"),
    "revision not an integer": put(f"{ATTRIBUTES}.revision", "3"),
    "revision below 1": put(f"{ATTRIBUTES}.revision", 0),
}
"""Violations that apply to every envelope, a deletion's included."""

APPOINTMENT_VIOLATIONS: dict[str, Mutation] = {
    **ENVELOPE_VIOLATIONS,
    "start missing": drop(f"{ATTRIBUTES}.start"),
    "end missing": drop(f"{ATTRIBUTES}.end"),
    "start without offset": put(f"{ATTRIBUTES}.start", "2026-12-01T14:00:00"),
    "start not a date": put(f"{ATTRIBUTES}.start", "tomorrow at two"),
    "end before start": _swap_start_and_end,
    "end equal to start": _end_at_start,
    "duration over 366 days": _duration(367),
    "status unknown": put(f"{ATTRIBUTES}.status", "pending"),
    "meeting_method out of range": put(f"{ATTRIBUTES}.meeting_method", 5),
    "meeting_method not an integer": put(f"{ATTRIBUTES}.meeting_method", "1"),
    "service missing": drop(f"{ATTRIBUTES}.service"),
    "staff missing": drop(f"{ATTRIBUTES}.staff"),
    "staff not a list": put(f"{ATTRIBUTES}.staff", {"id": "U-1"}),
    "no staff on a booked appointment": put(f"{ATTRIBUTES}.staff", []),
    "too many staff": put(f"{ATTRIBUTES}.staff", _synthetic_staff(21)),
    "attendees not a list": put(f"{ATTRIBUTES}.attendees", "nobody"),
    "too many attendees": put(f"{ATTRIBUTES}.attendees", _synthetic_attendees(101)),
    "too many answers": _answers(51),
    "notes too long": put(f"{ATTRIBUTES}.notes", "n" * 32_001),
    "attendee notes too long": _attendee_notes(32_001),
    "string too long": put(f"{ATTRIBUTES}.service.name", "s" * 10_001),
}
"""Each breaks one rule of an appointment envelope carrying the full resource."""

UNAVAILABILITY_VIOLATIONS: dict[str, Mutation] = {
    **ENVELOPE_VIOLATIONS,
    "start missing": drop(f"{ATTRIBUTES}.start"),
    "start without offset": put(f"{ATTRIBUTES}.start", "2026-12-20T00:00:00"),
    "end before start": _swap_start_and_end,
    "duration over 366 days": _duration(367),
    "all_day not a boolean": put(f"{ATTRIBUTES}.all_day", "yes"),
    "staff missing": drop(f"{ATTRIBUTES}.staff"),
    "staff a list instead of one": put(f"{ATTRIBUTES}.staff", _synthetic_staff(2)),
    "title too long": put(f"{ATTRIBUTES}.title", "t" * 10_001),
}


def violating(envelope: Payload, mutation: Mutation) -> dict[str, Any]:
    """A deep copy of `envelope` with one rule broken."""
    document: dict[str, Any] = json.loads(encode_body(envelope))
    mutation(document)
    return document


def schema_violation(
    envelope: Payload, mutation: Mutation, secrets: Sequence[str], timestamp: int
) -> PreparedDelivery:
    """Correctly signed, but the JSON breaks the schema: the receiver answers 400."""
    broken = violating(envelope, mutation)
    # The delivery header keeps the original id even when the body lost it.
    return prepare(broken, secrets, timestamp, delivery_id=str(envelope["id"]), expected_status=400)

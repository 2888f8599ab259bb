"""Webhook payload validation against contracts/coconut-webhooks.md."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from sync.coconut.webhook_models import (
    Appointment,
    AppointmentChange,
    AppointmentDeleted,
    IgnoredEvent,
    InvalidPayload,
    UnavailabilityChange,
    UnavailabilityDeleted,
    parse_delivery,
)
from tests.sync.payloads import (
    APPOINTMENT_RESOURCE,
    appointment_change,
    appointment_envelope,
    encode,
    envelope,
    unavailability_change,
    unavailability_envelope,
)

Body = dict[str, Any]


def rejection(body: Body | bytes) -> str:
    with pytest.raises(InvalidPayload) as caught:
        parse_delivery(body if isinstance(body, bytes) else encode(body))
    return str(caught.value)


def attendee(number: int = 0) -> dict[str, Any]:
    return {"id": f"C-{number}", "first_name": "Sam", "last_name": "Lee"}


def staff(number: int = 0) -> dict[str, Any]:
    return {
        "id": f"U-{number}",
        "email": f"u{number}@bank.example",
        "first_name": "Jane",
        "last_name": "Doe",
    }


def test_the_contract_example_reads_as_an_appointment_change() -> None:
    delivery = appointment_change(appointment_envelope("appointment.updated"))

    appointment = delivery.appointment
    assert delivery.delivery_id == "whevt_01HZX3J4K5"
    assert delivery.event_type == "appointment.updated"
    assert appointment.id == "A-1001"
    assert appointment.revision == 3
    assert appointment.status == "booked"
    assert appointment.start == datetime(2026, 12, 1, 19, 0, tzinfo=UTC)
    assert appointment.end == datetime(2026, 12, 1, 19, 30, tzinfo=UTC)
    assert appointment.service.name == "Opening an account"
    assert appointment.location is not None
    assert appointment.location.address == "100 King St W, Toronto, ON M5X 1A9"
    assert [member.id for member in appointment.staff] == ["U-42"]
    assert appointment.attendees is not None
    assert appointment.attendees[0].cell_phone == "+1 416 555 0100"
    assert appointment.attendees[0].answers is not None
    assert appointment.attendees[0].answers[0].answer == "Chequing"


def test_unknown_fields_anywhere_are_ignored() -> None:
    body = appointment_envelope()
    body["future_field"] = {"x": 1}
    body["data"]["links"] = {"self": "https://example"}
    body["data"]["attributes"]["colour"] = "blue"
    body["data"]["attributes"]["attendees"][0]["loyalty"] = 7
    body["data"]["attributes"]["service"]["duration"] = 30

    delivery = appointment_change(body)

    assert delivery == appointment_change(appointment_envelope()), "read as if they were absent"
    assert delivery.appointment.model_extra is None
    assert not hasattr(delivery.appointment, "colour")


@pytest.mark.parametrize("event_type", ["appointment.created", "appointment.updated"])
def test_appointment_event_types(event_type: str) -> None:
    delivery = parse_delivery(encode(appointment_envelope(event_type)))

    assert isinstance(delivery, AppointmentChange)
    assert (delivery.event_type, delivery.kind) == (event_type, "appointment_change")
    assert (delivery.appointment.id, delivery.appointment.revision) == ("A-1001", 3)


@pytest.mark.parametrize("event_type", ["unavailability.created", "unavailability.updated"])
def test_unavailability_event_types(event_type: str) -> None:
    delivery = parse_delivery(encode(unavailability_envelope(event_type)))

    assert isinstance(delivery, UnavailabilityChange)
    assert (delivery.event_type, delivery.kind) == (event_type, "unavailability_change")
    assert (delivery.unavailability.id, delivery.unavailability.revision) == ("N-77", 1)


def test_a_cancellation_carries_the_cancelled_resource() -> None:
    body = appointment_envelope("appointment.cancelled")
    body["data"]["attributes"]["status"] = "cancelled"

    assert appointment_change(body).appointment.status == "cancelled"


def test_a_cancellation_that_says_booked_is_rejected() -> None:
    message = rejection(appointment_envelope("appointment.cancelled"))

    assert message.startswith("data.attributes.status:")


def test_a_cancelled_appointment_may_have_no_staff_left() -> None:
    body = appointment_envelope("appointment.cancelled")
    body["data"]["attributes"]["status"] = "cancelled"
    body["data"]["attributes"]["staff"] = []

    assert appointment_change(body).appointment.staff == ()


def test_unavailability_changes() -> None:
    delivery = unavailability_change(unavailability_envelope("unavailability.updated"))

    absence = delivery.unavailability
    assert absence.id == "N-77"
    assert absence.title == "Vacation"
    assert absence.all_day is True
    assert absence.start == datetime(2026, 12, 20, 5, 0, tzinfo=UTC)
    assert absence.end == datetime(2027, 1, 4, 5, 0, tzinfo=UTC)
    assert (absence.staff.id, absence.staff.email) == ("U-42", "jane.doe@bank.example")


def test_deletions_may_carry_only_id_and_revision() -> None:
    appointment = parse_delivery(
        encode(
            envelope(
                "appointment.deleted",
                {"type": "appointments", "id": "A-1001", "attributes": {"revision": 9}},
            )
        )
    )
    absence = parse_delivery(
        encode(envelope("unavailability.deleted", {"id": "N-77", "attributes": {"revision": 2}}))
    )

    assert appointment == AppointmentDeleted(
        delivery_id="whevt_01HZX3J4K5",
        event_type="appointment.deleted",
        appointment_id="A-1001",
        revision=9,
    )
    assert isinstance(absence, UnavailabilityDeleted)
    assert (absence.unavailability_id, absence.revision) == ("N-77", 2)


def test_a_deletion_needs_its_revision() -> None:
    body = envelope("appointment.deleted", {"id": "A-1001", "attributes": {}})

    assert rejection(body) == "data.attributes.revision: Field required"


def test_a_full_resource_on_a_deletion_is_accepted() -> None:
    delivery = parse_delivery(encode(appointment_envelope("appointment.deleted")))

    assert delivery == AppointmentDeleted(
        delivery_id="whevt_01HZX3J4K5",
        event_type="appointment.deleted",
        appointment_id="A-1001",
        revision=3,
    )


def test_an_unknown_event_type_is_ignored_not_rejected() -> None:
    body = envelope("appointment.rescheduled.v2", {"anything": [1, 2, 3]}, delivery_id="whevt_9")

    assert parse_delivery(encode(body)) == IgnoredEvent(
        delivery_id="whevt_9", event_type="appointment.rescheduled.v2"
    )


def test_an_unknown_event_type_still_needs_a_valid_envelope() -> None:
    body = envelope("something.new", {})
    del body["created_at"]

    assert rejection(body) == "created_at: Field required"


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"{", b"\xff\xfe\x00", b"NaN", b'{"id": Infinity}', b"[" * 100_000],
)
def test_a_body_that_is_not_json(body: bytes) -> None:
    assert rejection(body) == "body is not valid JSON"


def test_json_that_is_not_an_object() -> None:
    assert rejection(b"[1, 2]") == "body: Input should be an object"


def test_errors_name_every_offending_field_path() -> None:
    body = appointment_envelope()
    body["data"]["attributes"]["attendees"][0]["email"] = 42
    del body["data"]["attributes"]["service"]["name"]

    message = rejection(body)

    assert "data.attributes.attendees.0.email: Input should be a valid string" in message
    assert "data.attributes.service.name: Field required" in message


# --- Limits: each at the edge (accepted) and one beyond it (rejected, naming the path). ---


def _parsed(appointment: Appointment, path: str) -> Any:
    """The value the model holds at an attribute path such as `attendees.0.notes`."""
    value: Any = appointment
    for part in path.split("."):
        value = value[int(part)] if part.isdigit() else getattr(value, part)
    return value


def _set(path: str, value: Any) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        target = body["data"]["attributes"]
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return change


LIMITS = [
    ("service.name", "x" * 10_000, "x" * 10_001),
    ("attendees.0.first_name", "x" * 10_000, "x" * 10_001),
    ("notes", "x" * 32_000, "x" * 32_001),
    ("attendees.0.notes", "x" * 32_000, "x" * 32_001),
    ("attendees", [attendee(n) for n in range(100)], [attendee(n) for n in range(101)]),
    (
        "attendees.0.answers",
        [{"question": "q", "answer": "a"}] * 50,
        [{"question": "q", "answer": "a"}] * 51,
    ),
    ("staff", [staff(n) for n in range(20)], [staff(n) for n in range(21)]),
    ("end", "2027-12-02T14:00:00-05:00", "2027-12-02T14:01:00-05:00"),
    ("revision", 1, 0),
    ("meeting_method", 4, 5),
]


@pytest.mark.parametrize(("path", "within", "beyond"), LIMITS)
def test_contract_limits(path: str, within: Any, beyond: Any) -> None:
    accepted = appointment_envelope()
    _set(path, within)(accepted)
    rejected = appointment_envelope()
    _set(path, beyond)(rejected)

    held = _parsed(appointment_change(accepted).appointment, path)
    if isinstance(within, list):
        assert len(held) == len(within)
        assert held[-1] == held[-1].model_validate(within[-1]), "the last one is read as sent"
    elif path == "end":
        assert held == datetime.fromisoformat(within)
    else:
        assert held == within
    assert rejection(rejected).startswith(f"data.attributes.{path}:")


def test_an_absence_longer_than_366_days_is_rejected() -> None:
    body = unavailability_envelope()
    body["data"]["attributes"]["end"] = "2027-12-21T00:00:01-05:00"

    assert rejection(body) == "data.attributes.end: duration must be at most 366 days"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("end", "2026-12-01T14:00:00-05:00", "data.attributes.end: end must be after start"),
        ("end", "2026-12-01T13:00:00-05:00", "data.attributes.end: end must be after start"),
        ("start", "2026-12-01T14:00:00", "data.attributes.start: Input should have timezone info"),
        ("start", 1764615600, "data.attributes.start: Input should be a valid datetime"),
        ("revision", "3", "data.attributes.revision: Input should be a valid integer"),
        ("revision", 3.0, "data.attributes.revision: Input should be a valid integer"),
        ("meeting_method", True, "data.attributes.meeting_method: Input should be a valid integer"),
        ("status", "postponed", "data.attributes.status: Input should be 'booked' or 'cancelled'"),
        (
            "staff",
            [],
            "data.attributes.staff: a booked appointment needs at least one staff member",
        ),
        ("staff", {"id": "U-1"}, "data.attributes.staff: Input should be an array"),
        (
            "staff",
            [staff(n) for n in range(21)],
            "data.attributes.staff: Input should have at most 20 items",
        ),
        (
            "notes",
            "x" * 32_001,
            "data.attributes.notes: String should have at most 32000 characters",
        ),
    ],
)
def test_schema_violations(path: str, value: Any, expected: str) -> None:
    body = appointment_envelope()
    _set(path, value)(body)

    assert rejection(body) == expected


def test_the_resource_type_must_match_the_event() -> None:
    body = envelope("appointment.created", {**APPOINTMENT_RESOURCE, "type": "unavailabilities"})

    assert rejection(body) == "data.type: Input should be 'appointments'"


@pytest.mark.parametrize(
    "path",
    [
        "notes",
        "location",
        "attendees",
        "attendees.0.notes",
        "attendees.0.answers",
        "attendees.0.cell_phone",
        "attendees.0.phone",
        "attendees.0.email",
    ],
)
def test_fields_that_may_be_null_or_absent(path: str) -> None:
    nulled = appointment_envelope()
    _set(path, None)(nulled)
    absent = appointment_envelope()
    *parents, last = path.split(".")
    target = absent["data"]["attributes"]
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    del target[last]

    for body in (nulled, absent):
        appointment = appointment_change(body).appointment
        assert _parsed(appointment, path) is None
        assert (appointment.id, appointment.service.name) == ("A-1001", "Opening an account")


# --- Privacy: no error message carries a value from the payload. ---

SECRETS = ("Zyxwv Secretname", "secret.person@example.com", "+1 555 0199 999")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("attendees.0.email", ["secret.person@example.com"]),
        ("attendees.0.first_name", {"name": "Zyxwv Secretname"}),
        ("attendees.0.cell_phone", "+1 555 0199 999" + " " * 10_000),
        ("attendees.0.notes", "Zyxwv Secretname " * 2_000),
        ("attendees.0", "Zyxwv Secretname secret.person@example.com"),
        ("attendees.0.answers.0", ["+1 555 0199 999"]),
        ("status", "Zyxwv Secretname"),
        ("revision", "+1 555 0199 999"),
        ("meeting_method", "secret.person@example.com"),
        ("start", "Zyxwv Secretname"),
        ("end", "secret.person@example.com"),
        ("staff", "Zyxwv Secretname"),
        ("location", "secret.person@example.com"),
    ],
)
def test_errors_never_echo_personal_values(path: str, value: Any) -> None:
    body = appointment_envelope()
    _set(path, value)(body)

    with pytest.raises(InvalidPayload) as caught:
        parse_delivery(encode(body))

    error = caught.value
    assert str(error).startswith("data.attributes.")
    for text in (str(error), repr(error)):
        for secret in (*SECRETS, "Zyxwv", "secret.person", "0199"):
            assert secret not in text
    # Nothing that holds the input travels with it into a logged traceback.
    assert error.__cause__ is None
    assert error.__context__ is None


def test_a_malformed_body_does_not_carry_the_body_along() -> None:
    with pytest.raises(InvalidPayload) as caught:
        parse_delivery(b'{"name": "Zyxwv Secretname"')

    assert caught.value.__context__ is None


def test_the_repr_of_a_delivery_leaves_customer_data_out() -> None:
    body = appointment_envelope()
    body["data"]["attributes"]["notes"] = "Zyxwv Secretname"
    body["data"]["attributes"]["attendees"][0].update(
        first_name="Zyxwv", email="secret.person@example.com", cell_phone="+1 555 0199 999"
    )

    shown = repr(appointment_change(body))

    assert "A-1001" in shown
    for secret in ("Zyxwv", "secret.person", "0199", "jane.doe"):
        assert secret not in shown

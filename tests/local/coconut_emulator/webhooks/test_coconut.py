"""The revision-tracking model of Coconut and the payloads it produces."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from local.coconut_emulator.webhooks import Coconut, GoneError
from local.coconut_emulator.webhooks import payloads as p

JANE = p.staff_member("U-42", "jane.doe@bank.example", "Jane", "Doe")
OMAR = p.staff_member("U-43", "omar.ali@bank.example", "Omar", "Ali")
ACCOUNT = p.service("S-7", "Opening an account")
DOWNTOWN = p.location("L-3", "Downtown Branch", "100 King St W, Toronto, ON M5X 1A9")
SAM = p.attendee(
    "C-9",
    "Sam",
    "Lee",
    email="sam.lee@example.com",
    cell_phone="+1 416 555 0100",
    phone="+1 416 555 0199",
    notes="Bring two pieces of ID.",
    answers=[p.answer("Which account type?", "Chequing")],
)
CREATED = datetime(2026, 11, 23, 15, 4, 5, tzinfo=UTC)


@pytest.fixture
def coconut() -> Coconut:
    return Coconut(clock=lambda: CREATED)


def book(coconut: Coconut) -> str:
    envelope = coconut.book(
        staff=[JANE],
        start=datetime(2026, 12, 1, 14, 0),
        end=datetime(2026, 12, 1, 14, 30),
        service=ACCOUNT,
        location=DOWNTOWN,
        attendees=[SAM],
        notes="Customer prefers French.",
    )
    return envelope["data"]["id"]


def test_booking_produces_the_contracts_example(coconut: Coconut) -> None:
    envelope = coconut.book(
        staff=[JANE],
        start=datetime(2026, 12, 1, 14, 0),
        end=datetime(2026, 12, 1, 14, 30),
        service=ACCOUNT,
        location=DOWNTOWN,
        attendees=[SAM],
        notes="Customer prefers French.",
    )

    assert envelope["id"].startswith("whevt_")
    assert envelope["type"] == "appointment.created"
    assert envelope["created_at"] == "2026-11-23T15:04:05Z"
    assert envelope["data"] == {
        "type": "appointments",
        "id": "A-1001",
        "attributes": {
            "revision": 1,
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


def test_every_change_carries_the_next_revision(coconut: Coconut) -> None:
    appointment_id = book(coconut)

    envelopes = [
        coconut.reschedule(appointment_id, datetime(2026, 12, 2, 9, 0), datetime(2026, 12, 2, 10)),
        coconut.add_attendee(appointment_id, p.attendee("C-10", "Ana", "Ruiz")),
        coconut.reassign(appointment_id, [OMAR]),
        coconut.change_location(appointment_id, None, p.VIDEO_CALL),
        coconut.cancel(appointment_id),
    ]

    assert [e["data"]["attributes"]["revision"] for e in envelopes] == [2, 3, 4, 5, 6]
    assert [e["type"] for e in envelopes] == [*["appointment.updated"] * 4, "appointment.cancelled"]
    assert len({e["id"] for e in envelopes}) == 5
    final = coconut.appointment(appointment_id)["attributes"]
    assert final["start"] == "2026-12-02T09:00:00-05:00"
    assert [a["id"] for a in final["attendees"]] == ["C-9", "C-10"]
    assert final["staff"] == [OMAR]
    assert (final["meeting_method"], final.get("location"), final["status"]) == (
        3,
        None,
        "cancelled",
    )


def test_reschedule_across_daylight_saving_keeps_the_zones_offset(coconut: Coconut) -> None:
    appointment_id = book(coconut)

    envelope = coconut.reschedule(
        appointment_id, datetime(2027, 4, 1, 14, 0), datetime(2027, 4, 1, 14, 30)
    )

    assert envelope["data"]["attributes"]["start"] == "2027-04-01T14:00:00-04:00"  # type: ignore[typeddict-item]


def test_deletion_carries_only_id_and_revision_and_is_final(coconut: Coconut) -> None:
    appointment_id = book(coconut)
    coconut.reschedule(appointment_id, datetime(2026, 12, 3, 9), datetime(2026, 12, 3, 10))

    envelope = coconut.delete(appointment_id)

    assert envelope["type"] == "appointment.deleted"
    assert envelope["data"] == {
        "type": "appointments",
        "id": appointment_id,
        "attributes": {"revision": 3},
    }
    assert coconut.revision(appointment_id) == 3
    with pytest.raises(GoneError):
        coconut.cancel(appointment_id)


def test_a_virtual_appointment_has_a_null_location(coconut: Coconut) -> None:
    envelope = coconut.book(
        staff=[JANE, OMAR],
        start=datetime(2026, 12, 1, 14, 0),
        end=datetime(2026, 12, 1, 14, 30),
        service=ACCOUNT,
        meeting_method=p.PHONE_CALL,
    )

    attributes = envelope["data"]["attributes"]
    assert attributes["location"] is None  # type: ignore[typeddict-item]
    with pytest.raises(ValueError, match="virtual"):
        p.appointment(
            "A-1",
            revision=1,
            start=datetime(2026, 12, 1, 14, 0),
            end=datetime(2026, 12, 1, 15, 0),
            service=ACCOUNT,
            staff=[JANE],
            meeting_method=p.VIDEO_CALL,
            location=DOWNTOWN,
        )


def test_attendee_fields_can_be_absent_instead_of_null() -> None:
    assert p.attendee("C-1", "Ana", "Ruiz", cell_phone="+1 416 555 0101", omit_nulls=True) == {
        "id": "C-1",
        "first_name": "Ana",
        "last_name": "Ruiz",
        "cell_phone": "+1 416 555 0101",
    }


def test_absences_follow_the_same_revision_rules(coconut: Coconut) -> None:
    created = coconut.record_absence(
        staff=JANE,
        start=datetime(2026, 12, 20),
        end=datetime(2027, 1, 4),
        all_day=True,
    )
    absence_id = created["data"]["id"]

    updated = coconut.change_absence(absence_id, title="Parental leave")
    deleted = coconut.delete_absence(absence_id)

    assert created["data"]["attributes"] == {
        "revision": 1,
        "title": "Vacation",
        "start": "2026-12-20T00:00:00-05:00",
        "end": "2027-01-04T00:00:00-05:00",
        "timezone": "America/Toronto",
        "all_day": True,
        "staff": JANE,
    }
    assert (updated["type"], updated["data"]["attributes"]["revision"]) == (
        "unavailability.updated",
        2,
    )
    assert updated["data"]["attributes"]["title"] == "Parental leave"  # type: ignore[typeddict-item]
    assert deleted["data"] == {
        "type": "unavailabilities",
        "id": absence_id,
        "attributes": {"revision": 3},
    }


def test_builders_refuse_what_the_contract_rules_out() -> None:
    with pytest.raises(ValueError, match="after start"):
        p.unavailability(
            "N-1",
            revision=1,
            title="Off",
            start=datetime(2026, 12, 2),
            end=datetime(2026, 12, 1),
            staff=JANE,
        )
    with pytest.raises(ValueError, match="staff"):
        p.appointment(
            "A-1",
            revision=1,
            start=datetime(2026, 12, 1, 14),
            end=datetime(2026, 12, 1, 15),
            service=ACCOUNT,
            staff=[],
        )

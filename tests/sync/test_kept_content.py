"""What is kept of a delivery is exactly what its event is made of: the event rendered from the
record equals the event rendered from the whole delivery, and nothing else stays."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sync.coconut.webhook_models import Appointment, Unavailability
from sync.desired_state import DesiredItem, decide
from sync.export.rendering import render_event
from sync.kept_content import kept_for_event
from tests.sync.payloads import (
    APPOINTMENT_RESOURCE,
    appointment_change,
    envelope,
    unavailability_change,
    unavailability_envelope,
)

ZONES = ("America/Toronto", "Europe/Paris", "UTC")


def appointment(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(APPOINTMENT_RESOURCE)
    data["attributes"].update(changes)
    return envelope("appointment.updated", data)


SECOND_ATTENDEE = {
    "id": "C-10",
    "first_name": "Ana",
    "last_name": "Ruiz",
    "email": None,
    "cell_phone": "+1 647 555 0111",
    "phone": "+1 647 555 0112",
    "notes": "",
    "answers": [{"question": "Preferred language?", "answer": "Spanish"}],
}

VARIANTS = {
    "at a branch": appointment(),
    "by video": appointment(meeting_method=3),
    "by phone, no notes": appointment(meeting_method=2, notes=None, location=None),
    "two attendees": appointment(
        attendees=[APPOINTMENT_RESOURCE["attributes"]["attendees"][0], SECOND_ATTENDEE]
    ),
    "no attendees": appointment(attendees=None),
}


def full_and_kept(body: dict[str, Any]) -> tuple[DesiredItem, DesiredItem]:
    delivery = appointment_change(body)
    kept = decide(None, delivery).record
    assert kept is not None
    return kept.model_copy(update={"resource": delivery.appointment}), kept


@pytest.mark.parametrize("body", VARIANTS.values(), ids=VARIANTS.keys())
@pytest.mark.parametrize("zone", ZONES)
def test_the_event_from_what_is_kept_is_the_event_from_the_delivery(
    body: dict[str, Any], zone: str
) -> None:
    full, kept = full_and_kept(body)

    assert render_event(kept, zone) == render_event(full, zone)
    assert render_event(kept, zone).content_hash() == render_event(full, zone).content_hash()


def test_an_absence_keeps_its_title_times_and_all_day_flag() -> None:
    delivery = unavailability_change(unavailability_envelope())
    kept = decide(None, delivery).record
    assert kept is not None
    assert isinstance(kept.resource, Unavailability)
    full = kept.model_copy(update={"resource": delivery.unavailability})

    for zone in ZONES:
        assert render_event(kept, zone) == render_event(full, zone)
    assert kept.resource.staff.email == kept.resource.staff.first_name == ""
    assert kept.resource.timezone == ""
    assert kept.staff_emails == {"U-42": "jane.doe@bank.example"}, "finds the mailbox"


def test_what_the_event_never_shows_is_not_kept() -> None:
    _, kept = full_and_kept(VARIANTS["two attendees"])
    resource = kept.resource
    assert isinstance(resource, Appointment)
    text = kept.model_dump_json()

    for value in ("555 0199", "555 0112", "C-9", "C-10", "Downtown Branch", "Jane", "Doe"):
        assert value not in text
    assert "America/Toronto" not in text
    assert [a.id for a in resource.attendees or ()] == ["1", "2"]
    assert all(a.phone is None for a in resource.attendees or ())
    assert [s.id for s in resource.staff] == ["U-42"]
    assert kept.staff_emails == {"U-42": "jane.doe@bank.example"}


def test_a_virtual_appointment_keeps_no_location() -> None:
    located = appointment(meeting_method=3)  # a video call that still names a branch
    _, kept = full_and_kept(located)

    assert isinstance(kept.resource, Appointment)
    assert kept.resource.location is None


def test_a_cancelled_appointment_keeps_only_its_times_and_staff() -> None:
    body = appointment(status="cancelled")
    body["type"] = "appointment.cancelled"
    _, kept = full_and_kept(body)
    resource = kept.resource

    assert isinstance(resource, Appointment)
    assert (resource.notes, resource.attendees, resource.location) == (None, None, None)
    assert resource.service.name == ""
    assert "Sam" not in kept.model_dump_json()
    assert "French" not in kept.model_dump_json()


def test_keeping_is_idempotent_and_survives_a_round_trip() -> None:
    for body in VARIANTS.values():
        _, kept = full_and_kept(body)
        assert kept.resource is not None
        assert kept_for_event(kept.resource) == kept.resource
        assert DesiredItem.model_validate_json(kept.model_dump_json()) == kept

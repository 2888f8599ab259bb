"""The Exchange event each Coconut item becomes (DESIGN.md, "Export")."""

from __future__ import annotations

from typing import Any

import pytest

from sync.desired_state import DesiredItem, decide
from sync.export.rendering import render_event
from tests.sync.payloads import (
    appointment_change,
    appointment_deleted_at,
    appointment_envelope,
    unavailability_change,
    unavailability_envelope,
)

PACIFIC = "Pacific Standard Time"
EASTERN = "Eastern Standard Time"


def appointment_item(**attributes: Any) -> DesiredItem:
    body = appointment_envelope()
    body["data"]["attributes"].update(attributes)
    record = decide(None, appointment_change(body)).record
    assert record is not None
    return record


def absence_item(**attributes: Any) -> DesiredItem:
    body = unavailability_envelope()
    body["data"]["attributes"].update(attributes)
    record = decide(None, unavailability_change(body)).record
    assert record is not None
    return record


def attendee(**fields: Any) -> dict[str, Any]:
    return {"id": "C-1", "first_name": "Ana", "last_name": "Ruiz", **fields}


def test_the_contract_example_as_a_graph_event() -> None:
    event = render_event(appointment_item(), PACIFIC).to_graph()

    assert event == {
        "subject": "Opening an account",
        "body": {
            "contentType": "text",
            "content": (
                "Notes: Customer prefers French.\n"
                "\n"
                "Attendee\n"
                "First name: Sam\n"
                "Last name: Lee\n"
                "E-mail: sam.lee@example.com\n"
                "Mobile phone: +1 416 555 0100\n"
                "Notes: Bring two pieces of ID.\n"
                "Q: Which account type?\n"
                "A: Chequing"
            ),
        },
        "start": {"dateTime": "2026-12-01T11:00:00", "timeZone": PACIFIC},
        "end": {"dateTime": "2026-12-01T11:30:00", "timeZone": PACIFIC},
        "location": {"displayName": "100 King St W, Toronto, ON M5X 1A9"},
        "showAs": "busy",
        "isAllDay": False,
    }


def test_customers_are_never_graph_attendees() -> None:
    assert "attendees" not in render_event(appointment_item(), PACIFIC).to_graph()


def test_only_the_mobile_number_is_shown() -> None:
    item = appointment_item(
        attendees=[attendee(cell_phone=None, phone="+1 416 555 0199"), attendee(phone="+1 1")]
    )

    body = render_event(item, PACIFIC).body

    assert "555 0199" not in body
    assert "+1 1" not in body
    assert "Mobile phone" not in body


@pytest.mark.parametrize("meeting_method", [2, 3])
def test_virtual_appointments_have_no_location(meeting_method: int) -> None:
    # Even if Coconut sends a location along, a phone or video call happens nowhere.
    draft = render_event(appointment_item(meeting_method=meeting_method), PACIFIC)

    assert draft.to_graph()["location"] == {"displayName": ""}


@pytest.mark.parametrize("meeting_method", [1, 4])
def test_appointments_in_person_show_the_address(meeting_method: int) -> None:
    draft = render_event(appointment_item(meeting_method=meeting_method), PACIFIC)

    assert draft.location == "100 King St W, Toronto, ON M5X 1A9"


def test_no_location_is_a_blank_one() -> None:
    assert render_event(appointment_item(location=None), PACIFIC).location == ""


def test_several_attendees_with_their_answers() -> None:
    item = appointment_item(
        notes=None,
        attendees=[
            attendee(
                email="ana@example.com",
                answers=[
                    {"question": "Which account type?", "answer": "Savings"},
                    {"question": "First visit?", "answer": "Yes"},
                ],
            ),
            {"id": "C-2", "first_name": "Bo", "last_name": "Chen", "notes": "Wheelchair access"},
        ],
    )

    assert render_event(item, PACIFIC).body == (
        "Attendee 1\n"
        "First name: Ana\n"
        "Last name: Ruiz\n"
        "E-mail: ana@example.com\n"
        "Q: Which account type?\n"
        "A: Savings\n"
        "Q: First visit?\n"
        "A: Yes\n"
        "\n"
        "Attendee 2\n"
        "First name: Bo\n"
        "Last name: Chen\n"
        "Notes: Wheelchair access"
    )


def test_empty_and_absent_values_are_left_out() -> None:
    item = appointment_item(
        notes="   ",
        attendees=[attendee(email="", cell_phone=None, notes="", answers=[])],
    )

    assert render_event(item, PACIFIC).body == "Attendee\nFirst name: Ana\nLast name: Ruiz"


def test_no_notes_and_no_attendees_is_an_empty_body() -> None:
    assert render_event(appointment_item(notes=None, attendees=None), PACIFIC).body == ""


def test_an_all_day_absence_in_its_own_zone_is_all_day() -> None:
    event = render_event(absence_item(), EASTERN).to_graph()

    assert event == {
        "subject": "Vacation",
        "body": {"contentType": "text", "content": ""},
        "start": {"dateTime": "2026-12-20T00:00:00", "timeZone": EASTERN},
        "end": {"dateTime": "2027-01-04T00:00:00", "timeZone": EASTERN},
        "location": {"displayName": ""},
        "showAs": "busy",
        "isAllDay": True,
        "isReminderOn": False,
    }


def test_an_all_day_absence_seen_from_another_zone_is_a_timed_event() -> None:
    draft = render_event(absence_item(), PACIFIC)

    assert not draft.is_all_day
    assert draft.start.date_time == "2026-12-19T21:00:00"
    assert draft.end.date_time == "2027-01-03T21:00:00"


def test_a_timed_absence_stays_timed_even_at_midnight() -> None:
    assert not render_event(absence_item(all_day=False), EASTERN).is_all_day


def test_a_long_absence_is_kept_whole() -> None:
    draft = render_event(
        absence_item(
            title="Parental leave",
            start="2026-06-01T09:00:00-04:00",
            end="2027-05-31T17:00:00-04:00",
            all_day=False,
        ),
        EASTERN,
    )

    assert (draft.subject, draft.show_as) == ("Parental leave", "busy")
    assert (draft.start.date_time, draft.end.date_time) == (
        "2026-06-01T09:00:00",
        "2027-05-31T17:00:00",
    )


def test_a_deleted_item_has_no_event() -> None:
    tombstone = decide(None, appointment_deleted_at(3)).record
    assert tombstone is not None

    with pytest.raises(ValueError, match="deleted"):
        render_event(tombstone, PACIFIC)


def test_the_content_hash_is_stable_and_covers_the_content_only() -> None:
    draft = render_event(appointment_item(), PACIFIC)
    same_content_other_ids = render_event(
        appointment_item(revision=9, service={"id": "S-other", "name": "Opening an account"}),
        PACIFIC,
    )

    assert draft.content_hash() == render_event(appointment_item(), PACIFIC).content_hash()
    assert draft.content_hash() == same_content_other_ids.content_hash()
    assert len(draft.content_hash()) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "Closing an account"},
        {"body": "Other notes"},
        {"location": ""},
        {"is_all_day": True},
        {"is_reminder_on": False},
    ],
)
def test_the_content_hash_changes_with_any_written_field(change: dict[str, Any]) -> None:
    draft = render_event(appointment_item(), PACIFIC)

    assert draft.model_copy(update=change).content_hash() != draft.content_hash()


def test_the_content_hash_changes_with_the_mailbox_zone() -> None:
    item = appointment_item()

    assert render_event(item, PACIFIC).content_hash() != render_event(item, EASTERN).content_hash()


def test_a_draft_keeps_customer_data_out_of_its_repr() -> None:
    shown = repr(render_event(appointment_item(), PACIFIC))

    assert "Opening an account" in shown
    assert "Sam" not in shown
    assert "King St" not in shown


def test_drafts_are_immutable() -> None:
    draft = render_event(appointment_item(), PACIFIC)

    with pytest.raises(ValueError, match="frozen"):
        draft.subject = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start", "end", "wall_start", "wall_end"),
    [
        # 14:00 in Toronto is 11:00 in a Pacific mailbox on both sides of each change.
        ("2026-10-29T14:00:00-04:00", "2026-10-29T14:30:00-04:00", "11:00:00", "11:30:00"),
        ("2026-11-05T14:00:00-05:00", "2026-11-05T14:30:00-05:00", "11:00:00", "11:30:00"),
        ("2027-03-12T14:00:00-05:00", "2027-03-12T14:30:00-05:00", "11:00:00", "11:30:00"),
        ("2027-03-16T14:00:00-04:00", "2027-03-16T14:30:00-04:00", "11:00:00", "11:30:00"),
    ],
)
def test_appointment_times_in_a_pacific_mailbox_across_dst(
    start: str, end: str, wall_start: str, wall_end: str
) -> None:
    draft = render_event(appointment_item(start=start, end=end), PACIFIC)

    assert draft.start.date_time == f"{start[:10]}T{wall_start}"
    assert draft.end.date_time == f"{end[:10]}T{wall_end}"
    assert draft.start.time_zone == draft.end.time_zone == PACIFIC


def test_an_appointment_spanning_the_fall_back_night_keeps_its_length() -> None:
    # 23:00 PDT to 04:00 PST is six real hours; each end is written as its own wall-clock time.
    draft = render_event(
        appointment_item(start="2026-10-31T23:00:00-07:00", end="2026-11-01T04:00:00-08:00"),
        PACIFIC,
    )

    assert draft.start.to_graph() == {"dateTime": "2026-10-31T23:00:00", "timeZone": PACIFIC}
    assert draft.end.to_graph() == {"dateTime": "2026-11-01T04:00:00", "timeZone": PACIFIC}

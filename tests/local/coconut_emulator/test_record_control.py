"""Changing Coconut's record without a webhook, and switching calendar sync, from another process
(the control API), with outcomes read back through the API the service uses."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from local.coconut_emulator import CoconutEmulator

SINCE: dict[str, str | int] = {"filter[end_after]": "2026-01-01T00:00:00Z", "page[size]": 100}
DRAFT: dict[str, Any] = {
    "staff": ["U-42"],
    "start": "2026-12-01T14:00:00",
    "end": "2026-12-01T14:30:00",
    "service": {"id": "S-7", "name": "Opening an account"},
}


@pytest.fixture(autouse=True)
def staff(emulator: CoconutEmulator) -> None:
    emulator.add_user("U-42", "jane.doe@bank.example", "Jane", "Doe")
    emulator.add_user("U-43", "omar.ali@bank.example", "Omar", "Ali")


def listed(api: httpx.Client, user_id: str, kind: str = "appointments") -> list[dict[str, Any]]:
    response = api.get(f"/users/{user_id}/{kind}", params=SINCE)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["data"]
    return items


def pointers(response: httpx.Response) -> set[str]:
    return {error["source"]["pointer"] for error in response.json()["errors"]}


# --- calendar sync --------------------------------------------------------------------------


def test_calendar_sync_is_switched_off_and_on_in_the_roster(
    api: httpx.Client, control: httpx.Client
) -> None:
    def roster() -> dict[str, bool]:
        page = api.get("/users", params={"page[size]": 100}).json()
        return {user["id"]: user["attributes"]["calendar_sync"] for user in page["data"]}

    off = control.patch("/users/U-42", json={"calendar_sync": False})
    assert off.status_code == 200
    assert off.json()["calendar_sync"] is False
    assert roster() == {"U-42": False, "U-43": True}

    control.patch("/users/U-42", json={"calendar_sync": True})
    assert roster() == {"U-42": True, "U-43": True}


def test_calendar_sync_of_an_unknown_user_or_not_a_boolean_is_refused(
    control: httpx.Client,
) -> None:
    assert control.patch("/users/U-9", json={"calendar_sync": False}).status_code == 404
    assert control.patch("/users/U-42", json={"calendar_sync": "no"}).status_code == 400
    assert control.patch("/users/U-42", json={"email": "x@bank.example"}).status_code == 400


# --- appointments ---------------------------------------------------------------------------


def test_a_booking_is_listed_at_once_and_answers_the_envelope_not_sent(
    api: httpx.Client, control: httpx.Client
) -> None:
    response = control.post("/appointments", json=DRAFT)

    assert response.status_code == 201
    envelope = response.json()
    assert envelope["type"] == "appointment.created"
    assert envelope["id"].startswith("whevt_")
    resource = envelope["data"]
    assert resource["attributes"]["revision"] == 1
    # Wall-clock time in the appointment's zone; staff filled in from the roster.
    assert resource["attributes"]["start"] == "2026-12-01T14:00:00-05:00"
    assert resource["attributes"]["staff"] == [
        {"id": "U-42", "email": "jane.doe@bank.example", "first_name": "Jane", "last_name": "Doe"}
    ]
    assert listed(api, "U-42") == [resource]
    assert control.get("/users/U-42/appointments").json() == {"appointments": [resource]}


def test_a_time_with_an_offset_is_written_in_the_items_zone(
    api: httpx.Client, control: httpx.Client
) -> None:
    draft = {**DRAFT, "start": "2026-12-01T19:00:00Z", "end": "2026-12-01T19:30:00Z"}

    resource = control.post("/appointments", json=draft).json()["data"]

    assert resource["attributes"]["start"] == "2026-12-01T14:00:00-05:00"


def test_update_reassign_cancel_and_delete_each_make_the_next_revision(
    api: httpx.Client, control: httpx.Client
) -> None:
    appointment_id = control.post("/appointments", json=DRAFT).json()["data"]["id"]
    path = f"/appointments/{appointment_id}"

    moved = control.patch(
        path, json={"start": "2026-12-02T09:00:00", "end": "2026-12-02T10:00:00", "notes": None}
    )
    reassigned = control.patch(path, json={"staff": ["U-43", "U-42"]})
    cancelled = control.patch(path, json={"status": "cancelled"})

    assert [r.status_code for r in (moved, reassigned, cancelled)] == [200, 200, 200]
    assert [r.json()["type"] for r in (moved, reassigned, cancelled)] == [
        "appointment.updated",
        "appointment.updated",
        "appointment.cancelled",
    ]
    (item,) = listed(api, "U-43")
    assert listed(api, "U-42") == [item]
    assert item["attributes"]["revision"] == 4
    assert item["attributes"]["status"] == "cancelled"
    assert item["attributes"]["start"] == "2026-12-02T09:00:00-05:00"

    deleted = control.delete(path)

    assert deleted.status_code == 200
    assert deleted.json()["type"] == "appointment.deleted"
    assert deleted.json()["data"] == {
        "type": "appointments",
        "id": appointment_id,
        "attributes": {"revision": 5},
    }
    assert listed(api, "U-42") == listed(api, "U-43") == []
    assert control.delete(path).status_code == 404
    assert control.patch(path, json={"status": "booked"}).status_code == 404


def test_a_reassignment_moves_the_item_to_the_new_staff_only(
    api: httpx.Client, control: httpx.Client
) -> None:
    appointment_id = control.post("/appointments", json=DRAFT).json()["data"]["id"]

    control.patch(f"/appointments/{appointment_id}", json={"staff": ["U-43"]})

    assert listed(api, "U-42") == []
    assert [item["id"] for item in listed(api, "U-43")] == [appointment_id]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({**DRAFT, "staff": ["U-42", "U-9"]}, "/staff/1"),
        ({**DRAFT, "staff": []}, "/staff"),
        ({**DRAFT, "start": "tomorrow"}, "/start"),
        ({**DRAFT, "timezone": "Mars/Olympus"}, "/timezone"),
        ({**DRAFT, "colour": "red"}, "/colour"),
        ({**DRAFT, "attendees": [{"id": "C-1", "first_name": "Sam"}]}, "/attendees/0/last_name"),
    ],
)
def test_an_invalid_booking_is_refused_naming_the_field(
    api: httpx.Client, control: httpx.Client, body: dict[str, Any], pointer: str
) -> None:
    response = control.post("/appointments", json=body)

    assert response.status_code == 400
    assert pointer in pointers(response)
    assert "Sam" not in response.text
    assert listed(api, "U-42") == []


def test_what_the_contract_rules_out_is_refused(control: httpx.Client) -> None:
    backwards = {**DRAFT, "end": "2026-12-01T13:00:00"}
    virtual_with_a_branch = {
        **DRAFT,
        "meeting_method": 3,
        "location": {"id": "L-3", "name": "Downtown", "address": "100 King St W"},
    }
    appointment_id = control.post("/appointments", json=DRAFT).json()["data"]["id"]

    assert control.post("/appointments", json=backwards).status_code == 400
    assert control.post("/appointments", json=virtual_with_a_branch).status_code == 400
    taken = control.post("/appointments", json={**DRAFT, "id": appointment_id})
    assert taken.status_code == 400
    cleared = control.patch(f"/appointments/{appointment_id}", json={"start": None})
    assert (cleared.status_code, pointers(cleared)) == (400, {"/start"})
    assert control.post("/appointments", content=b"{not json").status_code == 400


def test_ids_from_the_emulator_and_from_webhooks_do_not_collide(control: httpx.Client) -> None:
    first = control.post("/appointments", json=DRAFT).json()["data"]["id"]
    chosen = control.post("/appointments", json={**DRAFT, "id": "A-1001"}).json()["data"]["id"]

    assert first not in {"A-1001", chosen}
    assert chosen == "A-1001"


# --- absences -------------------------------------------------------------------------------


def test_an_absence_is_created_changed_and_deleted(
    api: httpx.Client, control: httpx.Client
) -> None:
    created = control.post(
        "/unavailabilities",
        json={
            "staff": "U-42",
            "start": "2026-12-20T00:00:00",
            "end": "2027-01-04T00:00:00",
            "all_day": True,
        },
    )
    absence_id = created.json()["data"]["id"]
    changed = control.patch(f"/unavailabilities/{absence_id}", json={"title": "Parental leave"})

    assert (created.status_code, created.json()["type"]) == (201, "unavailability.created")
    assert changed.json()["type"] == "unavailability.updated"
    (item,) = listed(api, "U-42", "unavailabilities")
    assert item["attributes"]["title"] == "Parental leave"
    assert item["attributes"]["revision"] == 2
    assert item["attributes"]["start"] == "2026-12-20T00:00:00-05:00"
    assert control.get("/users/U-42/unavailabilities").json() == {"unavailabilities": [item]}

    deleted = control.delete(f"/unavailabilities/{absence_id}")

    assert deleted.json()["data"]["attributes"] == {"revision": 3}
    assert listed(api, "U-42", "unavailabilities") == []
    assert control.delete(f"/unavailabilities/{absence_id}").status_code == 404


def test_an_absence_for_someone_off_the_roster_is_refused(control: httpx.Client) -> None:
    response = control.post(
        "/unavailabilities",
        json={"staff": "U-9", "start": "2026-12-20T00:00:00", "end": "2026-12-21T00:00:00"},
    )

    assert (response.status_code, pointers(response)) == (400, {"/staff"})


# --- envelopes: what a delivered webhook changes -----------------------------------------------


def envelope(event_type: str, revision: int, start: str = "2026-12-01T14:00:00-05:00") -> Any:
    staff = {"id": "U-42", "email": "jane.doe@bank.example", "first_name": "J", "last_name": "D"}
    attributes: dict[str, Any] = {"revision": revision}
    if not event_type.endswith("deleted"):
        attributes |= {
            "status": "booked",
            "start": start,
            "end": "2026-12-01T23:30:00-05:00",
            "timezone": "America/Toronto",
            "meeting_method": 1,
            "service": {"id": "S-7", "name": "Opening an account"},
            "staff": [staff],
            "attendees": [],
        }
    data = {"type": "appointments", "id": "A-1", "attributes": attributes}
    return {"id": f"whevt_{revision}", "type": event_type, "created_at": "x", "data": data}


def test_an_envelope_is_recorded_by_the_revision_rules(
    api: httpx.Client, control: httpx.Client
) -> None:
    def record(body: Any) -> bool:
        response = control.post("/envelopes", json=body)
        assert response.status_code == 200
        return bool(response.json()["recorded"])

    assert record(envelope("appointment.updated", 2, "2026-12-01T15:00:00-05:00")) is True
    assert record(envelope("appointment.created", 1)) is False  # older: the newer one stays
    assert [i["attributes"]["start"] for i in listed(api, "U-42")] == ["2026-12-01T15:00:00-05:00"]
    assert record(envelope("appointment.deleted", 3)) is True
    assert record(envelope("appointment.updated", 4)) is False  # a deletion is final
    assert listed(api, "U-42") == []
    assert record({"type": "appointment.created", "data": {"id": "A-2"}}) is False
    assert record(envelope("appointment.archived", 1)) is False
    assert control.post("/envelopes", json=[1]).status_code == 400


def test_reset_empties_the_record_and_numbers_ids_afresh(
    emulator: CoconutEmulator, api: httpx.Client, control: httpx.Client
) -> None:
    first = control.post("/appointments", json=DRAFT).json()["data"]["id"]

    control.post("/reset")

    assert emulator.appointments("U-42") == []
    emulator.add_user("U-42", "jane.doe@bank.example", "Jane", "Doe")
    assert listed(api, "U-42") == []
    assert control.post("/appointments", json=DRAFT).json()["data"]["id"] == first

"""`transactionId` beyond the documentation: a repeat with the same meaningful body answers with
the original; one with a different body is refused; deleted originals stay bound."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from local.graph_emulator.model import User
from local.graph_emulator.server import GraphEmulator
from tests.local.graph_emulator.conftest import TAG_ID, event_body


def booking(**extra: Any) -> dict[str, Any]:
    body = event_body(
        transactionId="tx-1",
        singleValueExtendedProperties=[{"id": TAG_ID, "value": "c-1"}],
        body={"contentType": "text", "content": "Notes"},
    )
    body.update(extra)
    return body


async def test_same_meaningful_body_answers_with_the_original(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    url = f"/users/{jane.id}/events"
    first = (await http.post(url, json=booking())).json()
    respelled = dict(reversed(list(booking().items())))  # other key order
    respelled["start"] = {
        "dateTime": "2030-03-11T09:00:00.0000000",
        "timeZone": "w. europe standard time",
    }
    # The type and GUID of a property id compare case-insensitively (its name does not).
    loud_id = TAG_ID.replace("String", "STRING").replace("66f5a359", "66F5A359")
    respelled["singleValueExtendedProperties"] = [{"id": loud_id, "value": "c-1"}]
    respelled["@odata.type"] = "#microsoft.graph.event"
    respelled["recurrence"] = None

    again = await http.post(url, json=respelled)

    assert again.status_code == 201
    assert again.json()["id"] == first["id"]
    assert len(emulator.events(jane.id)) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "Another service"},
        {"start": {"dateTime": "2030-03-11T09:30:00", "timeZone": "W. Europe Standard Time"}},
        {"body": {"contentType": "text", "content": "Other notes"}},
        {"singleValueExtendedProperties": [{"id": TAG_ID, "value": "c-2"}]},
        {"location": {"displayName": "Branch 7"}},
    ],
)
async def test_different_body_is_refused(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User, change: dict[str, Any]
) -> None:
    url = f"/users/{jane.id}/events"
    await http.post(url, json=booking())

    refused = await http.post(url, json=booking(**change))

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "ErrorDuplicateTransactionId"
    assert "already been used to create a different event" in refused.json()["error"]["message"]
    assert len(emulator.events(jane.id)) == 1


async def test_repeat_matches_the_create_even_after_a_person_edited_the_event(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    url = f"/users/{jane.id}/events"
    first = (await http.post(url, json=booking())).json()
    emulator.update_event_as_person(jane.id, first["id"], {"subject": "Renamed by me"})

    again = await http.post(url, json=booking())

    assert again.status_code == 201
    assert again.json()["id"] == first["id"]
    assert again.json()["subject"] == "Renamed by me"


async def test_original_in_deleted_items_stays_bound_and_resolves(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    url = f"/users/{jane.id}/events"
    first = (await http.post(url, json=booking())).json()
    await http.delete(f"{url}/{first['id']}")

    again = await http.post(url, json=booking())
    different = await http.post(url, json=booking(subject="Another service"))
    read = await http.get(f"{url}/{again.json()['id']}")

    assert again.status_code == 201
    assert again.json()["id"] == first["id"]
    assert different.json()["error"]["code"] == "ErrorDuplicateTransactionId"
    assert read.status_code == 200  # in Deleted Items: gone from the calendar, id still good
    assert emulator.events(jane.id) == []


async def test_purged_original_answers_with_an_id_that_is_gone(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    url = f"/users/{jane.id}/events"
    first = (await http.post(url, json=booking())).json()
    await http.post(f"{url}/{first['id']}/permanentDelete")

    again = await http.post(url, json=booking())
    read = await http.get(f"{url}/{first['id']}")

    assert again.json()["id"] == first["id"]
    assert read.json()["error"]["code"] == "ErrorItemNotFound"
    assert emulator.events(jane.id, "all") == []


async def test_create_new_policy_recreates_once_the_original_left_the_calendar(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    await http.put(
        f"{emulator.control_url}/settings", json={"transactionIdAfterDelete": "createNew"}
    )
    url = f"/users/{jane.id}/events"
    first = (await http.post(url, json=booking())).json()
    repeat = (await http.post(url, json=booking())).json()
    await http.delete(f"{url}/{first['id']}")

    recreated = await http.post(url, json=booking(subject="Recreated"))

    assert repeat["id"] == first["id"]
    assert recreated.status_code == 201
    assert recreated.json()["id"] != first["id"]
    assert [e["subject"] for e in emulator.events(jane.id)] == ["Recreated"]

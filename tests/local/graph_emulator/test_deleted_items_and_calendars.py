"""Deleted Items and other calendars: a deleted or moved event keeps its id under `/events/{id}`
but leaves the primary calendar's listings, views and delta."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from local.graph_emulator.model import User
from local.graph_emulator.server import GraphEmulator
from tests.local.graph_emulator.conftest import TAG_ID, WebhookReceiver, event_body

WINDOW = {"startDateTime": "2030-03-10T00:00:00Z", "endDateTime": "2030-03-20T00:00:00Z"}


def tagged(value: str) -> dict[str, Any]:
    return event_body(singleValueExtendedProperties=[{"id": TAG_ID, "value": value}])


def tag_filter(value: str) -> dict[str, str]:
    return {
        "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{TAG_ID}' "
        f"and ep/value eq '{value}')"
    }


async def delta_link(http: httpx.AsyncClient, user: User) -> str:
    page = (await http.get(f"/users/{user.id}/calendarView/delta", params=WINDOW)).json()
    return str(page["@odata.deltaLink"])


async def primary_ids(http: httpx.AsyncClient, user: User) -> dict[str, list[str]]:
    """What the primary calendar shows: its event list and its calendar view."""
    listed = (await http.get(f"/users/{user.id}/events")).json()["value"]
    view = (await http.get(f"/users/{user.id}/calendarView", params=WINDOW)).json()["value"]
    return {"events": [e["id"] for e in listed], "calendarView": [e["id"] for e in view]}


@pytest.mark.parametrize("deleted_by", ["graph", "person"])
async def test_deleted_event_moves_to_deleted_items(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User, deleted_by: str
) -> None:
    created = (await http.post(f"/users/{jane.id}/events", json=tagged("c-1"))).json()
    url = f"/users/{jane.id}/events/{created['id']}"
    link = await delta_link(http, jane)

    if deleted_by == "graph":
        assert (await http.delete(url)).status_code == 204
    else:
        emulator.delete_event_as_person(jane.id, created["id"])
    read = await http.get(url)
    patched = await http.patch(url, json={"subject": "Edited in Deleted Items"})
    scoped = await http.get(f"/users/{jane.id}/calendar/events/{created['id']}")
    changes = (await http.get(link)).json()["value"]
    shown = await primary_ids(http, jane)

    deleted_items = next(
        c for c in await control_calendars(http, emulator, jane) if not c["isCalendar"]
    )
    assert read.status_code == 200
    assert read.json()["calendar@odata.navigationLink"].endswith(
        f"/calendars('{deleted_items['id']}')"
    )
    assert patched.status_code == 200
    assert patched.json()["subject"] == "Edited in Deleted Items"
    assert scoped.status_code == 404
    assert scoped.json()["error"]["code"] == "ErrorItemNotFound"
    assert shown == {"events": [], "calendarView": []}
    assert changes == [
        {
            "@odata.type": "#microsoft.graph.event",
            "id": created["id"],
            "@removed": {"reason": "deleted"},
        }
    ]
    assert emulator.events(jane.id) == []
    assert [e["id"] for e in emulator.deleted_items(jane.id)] == [created["id"]]


async def control_calendars(
    http: httpx.AsyncClient, emulator: GraphEmulator, user: User
) -> list[dict[str, Any]]:
    response = await http.get(f"{emulator.control_url}/users/{user.id}/calendars")
    return list(response.json()["value"])


async def test_permanent_delete_removes_it_everywhere(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    created = (await http.post(f"/users/{jane.id}/events", json=event_body())).json()
    url = f"/users/{jane.id}/events/{created['id']}"
    await http.delete(url)

    purged = await http.post(f"{url}/permanentDelete")
    read = await http.get(url)

    assert purged.status_code == 204
    assert read.status_code == 404
    assert read.json()["error"]["code"] == "ErrorItemNotFound"
    assert emulator.events(jane.id, "all") == []


async def test_deleting_from_deleted_items_removes_it_for_good(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    created = (await http.post(f"/users/{jane.id}/events", json=event_body())).json()
    url = f"/users/{jane.id}/events/{created['id']}"

    first, second = await http.delete(url), await http.delete(url)
    third = await http.delete(url)

    assert [first.status_code, second.status_code, third.status_code] == [204, 204, 404]
    assert emulator.events(jane.id, "all") == []


async def test_calendars_lists_the_default_calendar_first(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    emulator.add_calendar(jane.id, "Personal")

    listed = (await http.get(f"/users/{jane.id}/calendars")).json()["value"]
    primary = (await http.get(f"/users/{jane.id}/calendar")).json()
    personal = await http.get(f"/users/{jane.id}/calendars/{listed[2]['id']}")

    assert [(c["name"], c["isDefaultCalendar"]) for c in listed] == [
        ("Calendar", True),
        ("Birthdays", False),
        ("Personal", False),
    ]
    assert primary["id"] == listed[0]["id"]
    assert personal.json()["name"] == "Personal"
    assert "Deleted Items" not in [c["name"] for c in listed]


async def test_event_moved_to_another_calendar_leaves_the_primary_one(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User, webhook: WebhookReceiver
) -> None:
    personal = emulator.add_calendar(jane.id, "Personal")
    created = (await http.post(f"/users/{jane.id}/events", json=tagged("c-7"))).json()
    link = await delta_link(http, jane)
    expiry = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    await http.post(
        "/subscriptions",
        json={
            "changeType": "created,updated,deleted",
            "notificationUrl": webhook.url("notify"),
            "resource": f"users/{jane.id}/events",
            "expirationDateTime": expiry,
        },
    )

    moved = await http.post(
        f"{emulator.control_url}/users/{jane.id}/events/{created['id']}/move",
        json={"calendar": "Personal"},
    )
    read = await http.get(
        f"/users/{jane.id}/events/{created['id']}", params={"$expand": "calendar"}
    )
    in_primary = await http.get(f"/users/{jane.id}/calendar/events/{created['id']}")
    in_personal = await http.get(f"/users/{jane.id}/calendars/{personal.id}/events/{created['id']}")
    personal_view = await http.get(
        f"/users/{jane.id}/calendars/{personal.id}/calendarView", params=WINDOW
    )
    changes = (await http.get(link)).json()["value"]
    received = webhook.wait_for(lambda got: len(got) >= 1)

    assert moved.status_code == 200
    assert read.status_code == 200
    assert read.json()["calendar"]["name"] == "Personal"
    assert read.json()["calendar"]["id"] == personal.id
    assert read.json()["calendar@odata.navigationLink"].endswith(f"/calendars('{personal.id}')")
    assert in_primary.json()["error"]["code"] == "ErrorItemNotFound"
    assert in_personal.status_code == 200
    assert [e["id"] for e in personal_view.json()["value"]] == [created["id"]]
    assert await primary_ids(http, jane) == {"events": [], "calendarView": []}
    assert [c.get("@removed") for c in changes] == [{"reason": "deleted"}]
    assert [p["value"][0]["changeType"] for _, p in received] == ["deleted"]
    assert emulator.events(jane.id) == []
    assert [e["id"] for e in emulator.events(jane.id, "Personal")] == [created["id"]]


async def test_property_filter_finds_only_events_of_the_primary_calendar(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    personal = emulator.add_calendar(jane.id, "Personal")
    events = f"/users/{jane.id}/events"
    kept = (await http.post(events, json=tagged("c-1"))).json()
    deleted = (await http.post(events, json=tagged("c-2"))).json()
    moved = (await http.post(events, json=tagged("c-3"))).json()
    await http.delete(f"{events}/{deleted['id']}")
    emulator.move_event_as_person(jane.id, moved["id"], personal.id)

    found = {
        value: [e["id"] for e in (await http.get(events, params=tag_filter(value))).json()["value"]]
        for value in ("c-1", "c-2", "c-3")
    }
    in_personal = await http.get(
        f"/users/{jane.id}/calendars/{personal.id}/events", params=tag_filter("c-3")
    )

    assert found == {"c-1": [kept["id"]], "c-2": [], "c-3": []}
    assert [e["id"] for e in in_personal.json()["value"]] == [moved["id"]]


async def test_series_moves_to_deleted_items_with_its_exceptions(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    series = event_body(
        recurrence={
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": "2030-03-11", "numberOfOccurrences": 3},
        }
    )
    master = emulator.create_event_as_person(jane.id, series)
    view = (await http.get(f"/users/{jane.id}/calendarView", params=WINDOW)).json()["value"]
    emulator.update_event_as_person(jane.id, view[1]["id"], {"subject": "Moved one"})

    emulator.delete_event_as_person(jane.id, master.id)
    after = (await http.get(f"/users/{jane.id}/calendarView", params=WINDOW)).json()["value"]

    assert after == []
    assert sorted(e["type"] for e in emulator.deleted_items(jane.id)) == [
        "exception",
        "seriesMaster",
    ]


async def test_create_in_another_calendar_stays_out_of_the_primary_one(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    personal = emulator.add_calendar(jane.id, "Personal")

    created = await http.post(
        f"/users/{jane.id}/calendars/{personal.id}/events", json=event_body("Private")
    )
    in_primary = await http.post(f"/users/{jane.id}/calendar/events", json=event_body("Work"))
    primary = (await http.get(f"/users/{jane.id}/events", params={"$expand": "calendar"})).json()[
        "value"
    ]
    unknown = await http.get(f"/users/{jane.id}/calendars/AAMkAGnothere/events")

    assert created.status_code == 201
    assert in_primary.status_code == 201
    assert [(e["subject"], e["calendar"]["isDefaultCalendar"]) for e in primary] == [("Work", True)]
    assert [e["subject"] for e in emulator.events(jane.id, personal.id)] == ["Private"]
    assert unknown.json()["error"]["code"] == "ErrorItemNotFound"

"""Faults that keep failing until cleared (one event, one mailbox) and faults that fire a set
number of times (an expired token, a lost answer)."""

from __future__ import annotations

import httpx
import pytest

from local.graph_emulator.model import User
from local.graph_emulator.server import GraphEmulator
from tests.local.graph_emulator.conftest import TAG_ID, event_body

WINDOW = {"startDateTime": "2030-03-10T00:00:00Z", "endDateTime": "2030-03-20T00:00:00Z"}


def tagged(value: str) -> dict[str, object]:
    return event_body(singleValueExtendedProperties=[{"id": TAG_ID, "value": value}])


def tag_filter(value: str) -> dict[str, str]:
    return {
        "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{TAG_ID}' "
        f"and ep/value eq '{value}')"
    }


def codes(*responses: httpx.Response) -> list[tuple[int, str | None]]:
    return [
        (r.status_code, r.json().get("error", {}).get("code") if r.content else None)
        for r in responses
    ]


async def test_failing_event_answers_500_until_cleared_while_the_mailbox_works(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    events = f"/users/{jane.id}/events"
    broken = (await http.post(events, json=event_body("Broken"))).json()
    fine = (await http.post(events, json=event_body("Fine"))).json()
    added = await http.post(
        f"{emulator.control_url}/faults", json={"kind": "failingEvent", "eventId": broken["id"]}
    )
    name = added.json()["names"][0]

    about_it = [
        await http.get(f"{events}/{broken['id']}"),
        await http.patch(f"{events}/{broken['id']}", json={"subject": "x"}),
        await http.delete(f"{events}/{broken['id']}"),
        await http.post(f"{events}/{broken['id']}/cancel", json={}),
    ]
    rest = [
        await http.get(f"{events}/{fine['id']}"),
        await http.patch(f"{events}/{fine['id']}", json={"subject": "Still fine"}),
        await http.get(events),
        await http.get(f"/users/{jane.id}/calendarView", params=WINDOW),
    ]
    batch = await http.post(
        "/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": f"{events}/{broken['id']}"},
                {"id": "2", "method": "GET", "url": f"{events}/{fine['id']}"},
            ]
        },
    )
    cleared = await http.delete(f"{emulator.control_url}/faults/{name}")
    after = await http.get(f"{events}/{broken['id']}")

    assert codes(*about_it) == [(500, "ErrorInternalServerError")] * 4
    assert [r.status_code for r in rest] == [200, 200, 200, 200]
    assert sorted((i["id"], i["status"]) for i in batch.json()["responses"]) == [
        ("1", 500),
        ("2", 200),
    ]
    assert cleared.status_code == 204
    assert after.status_code == 200
    assert after.json()["subject"] == "Broken"  # nothing the failures refused was applied


async def test_failing_event_by_property_value_refuses_its_create_and_its_lookup(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    events = f"/users/{jane.id}/events"
    existing = emulator.create_event_as_person(jane.id, tagged("c-9"))
    emulator.fail_event(property_value="c-9", property_id=TAG_ID)

    create = await http.post(events, json=tagged("c-9"))
    lookup = await http.get(events, params=tag_filter("c-9"))
    read = await http.get(f"{events}/{existing.id}")
    other = await http.post(events, json=tagged("c-8"))

    assert codes(create, lookup, read) == [(500, "ErrorInternalServerError")] * 3
    assert other.status_code == 201
    assert len(emulator.events(jane.id)) == 2


@pytest.mark.parametrize("status", [500, 503])
async def test_mailbox_down_answers_every_request_until_cleared(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User, status: int
) -> None:
    other = emulator.add_user("sam@bank.onmicrosoft.com", "sam@bank.example")
    name = emulator.fail_mailbox(jane.user_principal_name, status)

    down = [
        await http.get(f"/users/{jane.id}/events"),
        await http.post(f"/users/{jane.id}/events", json=event_body()),
        await http.get(f"/users/{jane.id}/mailboxSettings/timeZone"),
    ]
    directory = await http.get(f"/users/{jane.id}")
    elsewhere = await http.get(f"/users/{other.id}/events")
    emulator.clear_fault(name)
    back = await http.get(f"/users/{jane.id}/events")

    assert {r.status_code for r in down} == {status}
    assert ("Retry-After" in down[0].headers) == (status == 503)
    assert directory.status_code == 200
    assert elsewhere.status_code == 200
    assert back.status_code == 200
    assert emulator.events(jane.id) == []


async def test_mailbox_can_drop_every_connection_without_applying_anything(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    name = emulator.fail_mailbox(jane.id, "drop")

    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(f"/users/{jane.id}/events", json=event_body())
    emulator.clear_fault(name)
    back = await http.get(f"/users/{jane.id}/events")

    assert emulator.events(jane.id) == []
    assert back.status_code == 200


async def test_expired_token_answers_401_for_the_next_requests_only(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    await http.post(f"{emulator.control_url}/faults", json={"kind": "invalidToken", "times": 2})

    answers = [await http.get(f"/users/{jane.id}/events") for _ in range(3)]
    listed = (await http.get(f"{emulator.control_url}/faults")).json()["rules"]

    assert codes(*answers) == [
        (401, "InvalidAuthenticationToken"),
        (401, "InvalidAuthenticationToken"),
        (200, None),
    ]
    assert "WWW-Authenticate" in answers[0].headers
    assert [(rule["kind"], rule["times"], rule["fired"]) for rule in listed] == [
        ("invalidToken", 2, 2)
    ]


async def test_token_fault_wins_over_other_faults(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    emulator.fail_mailbox(jane.id, 503)
    emulator.expire_token()

    first = await http.get(f"/users/{jane.id}/events")
    second = await http.get(f"/users/{jane.id}/events")

    assert codes(first, second) == [
        (401, "InvalidAuthenticationToken"),
        (503, "ServiceNotAvailable"),
    ]


async def test_fault_rules_are_checked_when_set(
    http: httpx.AsyncClient, emulator: GraphEmulator
) -> None:
    missing_target = await http.post(
        f"{emulator.control_url}/faults", json={"kind": "failingEvent"}
    )
    bad_status = await http.post(
        f"{emulator.control_url}/faults", json={"kind": "unavailable", "status": 418}
    )
    unknown = await http.delete(f"{emulator.control_url}/faults/no-such-rule")

    assert missing_target.status_code == 400
    assert bad_status.status_code == 400
    assert unknown.status_code == 404

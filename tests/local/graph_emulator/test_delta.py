"""calendarView delta: paging, incremental rounds, `@removed`, and invalidated tokens."""

from __future__ import annotations

from typing import Any

import httpx
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import (
    DeltaRequestBuilder,
)
from msgraph.graph_service_client import GraphServiceClient

from local.graph_emulator.model import User
from local.graph_emulator.server import GraphEmulator
from tests.local.graph_emulator.conftest import event_body

WINDOW = {"startDateTime": "2030-03-10T00:00:00Z", "endDateTime": "2030-03-20T00:00:00Z"}


def on_day(day: int, subject: str) -> dict[str, Any]:
    return event_body(
        subject,
        start={"dateTime": f"2030-03-{day:02d}T09:00:00", "timeZone": "UTC"},
        end={"dateTime": f"2030-03-{day:02d}T10:00:00", "timeZone": "UTC"},
    )


async def full_round(http: httpx.AsyncClient, user: User, page_size: int) -> tuple[list[Any], str]:
    """Follow nextLinks to the end: (pages, deltaLink)."""
    headers = {"Prefer": f"odata.maxpagesize={page_size}"}
    page = (
        await http.get(f"/users/{user.id}/calendarView/delta", params=WINDOW, headers=headers)
    ).json()
    pages = [page]
    while "@odata.nextLink" in page:
        page = (await http.get(page["@odata.nextLink"], headers=headers)).json()
        pages.append(page)
    return pages, page["@odata.deltaLink"]


async def test_sdk_follows_delta_pages_to_a_delta_link(
    graph: GraphServiceClient, emulator: GraphEmulator, jane: User
) -> None:
    for day in range(11, 16):
        emulator.create_event_as_person(jane.id, on_day(day, f"Day {day}"))
    query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
        start_date_time=WINDOW["startDateTime"], end_date_time=WINDOW["endDateTime"]
    )
    config = RequestConfiguration(query_parameters=query)
    config.headers.add("Prefer", "odata.maxpagesize=2")
    delta = graph.users.by_user_id(jane.id).calendar_view.delta

    pages = [await delta.get(config)]
    while pages[-1] is not None and pages[-1].odata_next_link:
        next_config: RequestConfiguration[Any] = RequestConfiguration()
        next_config.headers.add("Prefer", "odata.maxpagesize=2")
        pages.append(await delta.with_url(pages[-1].odata_next_link).get(next_config))

    assert [len(page.value or []) for page in pages if page] == [2, 2, 1]
    assert pages[-1] is not None
    assert pages[-1].odata_delta_link
    subjects = sorted(ev.subject or "" for page in pages if page for ev in page.value or [])
    assert subjects == [f"Day {day}" for day in range(11, 16)]


async def test_next_round_reports_changes_and_removals(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    ids = [emulator.create_event_as_person(jane.id, on_day(d, f"Day {d}")).id for d in (11, 12, 13)]
    _, delta_link = await full_round(http, jane, page_size=2)

    emulator.delete_event_as_person(jane.id, ids[0])
    moved_out = on_day(25, "Moved out")
    emulator.update_event_as_person(jane.id, ids[1], {k: moved_out[k] for k in ("start", "end")})
    emulator.update_event_as_person(jane.id, ids[2], {"subject": "Renamed"})
    added = emulator.create_event_as_person(jane.id, on_day(14, "New")).id

    changes, next_link = await full_round_from(http, delta_link)
    unchanged, _ = await full_round_from(http, next_link)

    changed = {item["id"]: item for page in changes for item in page["value"]}
    assert changed[ids[0]]["@removed"] == {"reason": "deleted"}
    assert changed[ids[1]]["@removed"] == {"reason": "deleted"}
    assert changed[ids[2]]["subject"] == "Renamed"
    assert changed[added]["subject"] == "New"
    assert set(changed) == {ids[0], ids[1], ids[2], added}
    assert all("singleValueExtendedProperties" not in item for item in changed.values())
    assert [item for page in unchanged for item in page["value"]] == []


async def full_round_from(http: httpx.AsyncClient, link: str) -> tuple[list[Any], str]:
    page = (await http.get(link)).json()
    pages = [page]
    while "@odata.nextLink" in page:
        page = (await http.get(page["@odata.nextLink"])).json()
        pages.append(page)
    return pages, page["@odata.deltaLink"]


async def test_invalidated_token_answers_410_sync_state_not_found(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    emulator.create_event_as_person(jane.id, on_day(11, "Day 11"))
    _, delta_link = await full_round(http, jane, page_size=10)

    invalidated = await http.post(f"{emulator.control_url}/users/{jane.id}/delta-tokens/invalidate")
    response = await http.get(delta_link)

    assert invalidated.json() == {"invalidated": 1}
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "syncStateNotFound"


async def test_delta_refuses_select(http: httpx.AsyncClient, jane: User) -> None:
    response = await http.get(
        f"/users/{jane.id}/calendarView/delta", params={**WINDOW, "$select": "subject"}
    )

    assert response.status_code == 400

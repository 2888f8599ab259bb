"""calendarView expands a recurring series: occurrences, an exception, a cancelled occurrence."""

from __future__ import annotations

from typing import Any

import httpx
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.users.item.calendar_view.calendar_view_request_builder import (
    CalendarViewRequestBuilder,
)
from msgraph.graph_service_client import GraphServiceClient

from local.graph_emulator.model import User
from local.graph_emulator.server import GraphEmulator

WINDOW = {"startDateTime": "2030-03-10T00:00:00Z", "endDateTime": "2030-03-20T00:00:00Z"}


def daily_series(count: int = 5) -> dict[str, Any]:
    return {
        "subject": "Team stand-up",
        "start": {"dateTime": "2030-03-11T09:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2030-03-11T09:30:00", "timeZone": "W. Europe Standard Time"},
        "recurrence": {
            "pattern": {"type": "daily", "interval": 1},
            "range": {
                "type": "numbered",
                "startDate": "2030-03-11",
                "numberOfOccurrences": count,
                "recurrenceTimeZone": "W. Europe Standard Time",
            },
        },
    }


def series_with_exception_and_cancellation(emulator: GraphEmulator, user: User) -> str:
    """A person's series: the 3rd occurrence moved to 14:00, the 4th deleted."""
    master = emulator.create_event_as_person(user.id, daily_series())
    view = emulator.state.calendar(user.id).view(*_window())
    third, fourth = view[2], view[3]
    emulator.update_event_as_person(
        user.id,
        third.id,
        {
            "subject": "Stand-up (moved)",
            "start": {"dateTime": "2030-03-13T14:00:00", "timeZone": "W. Europe Standard Time"},
            "end": {"dateTime": "2030-03-13T14:30:00", "timeZone": "W. Europe Standard Time"},
        },
    )
    emulator.delete_event_as_person(user.id, fourth.id)
    return master.id


def _window() -> tuple[Any, Any]:
    from local.graph_emulator.timezones import parse_instant

    return (
        parse_instant(WINDOW["startDateTime"], "start"),
        parse_instant(WINDOW["endDateTime"], "end"),
    )


async def test_series_expands_with_exception_and_cancelled_occurrence(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    master_id = series_with_exception_and_cancellation(emulator, jane)

    first = (await http.get(f"/users/{jane.id}/calendarView", params=WINDOW)).json()["value"]
    second = (await http.get(f"/users/{jane.id}/calendarView", params=WINDOW)).json()["value"]

    assert [(ev["start"]["dateTime"], ev["type"]) for ev in first] == [
        ("2030-03-11T08:00:00.0000000", "occurrence"),
        ("2030-03-12T08:00:00.0000000", "occurrence"),
        ("2030-03-13T13:00:00.0000000", "exception"),
        ("2030-03-15T08:00:00.0000000", "occurrence"),
    ]
    assert first[2]["subject"] == "Stand-up (moved)"
    assert first[2]["originalStart"] == "2030-03-13T08:00:00.000000Z"
    assert {ev["seriesMasterId"] for ev in first} == {master_id}
    assert len({ev["id"] for ev in first}) == 4
    assert [ev["id"] for ev in first] == [ev["id"] for ev in second]


async def test_events_list_shows_the_master_and_occurrences_can_be_read_by_id(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    master_id = emulator.create_event_as_person(jane.id, daily_series(3)).id
    occurrence = (await http.get(f"/users/{jane.id}/calendarView", params=WINDOW)).json()["value"][
        1
    ]

    listed = (await http.get(f"/users/{jane.id}/events")).json()["value"]
    read = (await http.get(f"/users/{jane.id}/events/{occurrence['id']}")).json()

    assert [(ev["id"], ev["type"]) for ev in listed] == [(master_id, "seriesMaster")]
    assert listed[0]["recurrence"]["range"]["numberOfOccurrences"] == 3
    assert read["start"]["dateTime"] == "2030-03-12T08:00:00.0000000"
    assert read["type"] == "occurrence"


async def test_calendar_view_pages_with_next_link(
    graph: GraphServiceClient, jane: User, emulator: GraphEmulator
) -> None:
    emulator.create_event_as_person(jane.id, daily_series(5))
    query = CalendarViewRequestBuilder.CalendarViewRequestBuilderGetQueryParameters(
        start_date_time=WINDOW["startDateTime"], end_date_time=WINDOW["endDateTime"], top=2
    )
    view = graph.users.by_user_id(jane.id).calendar_view

    pages = [await view.get(RequestConfiguration(query_parameters=query))]
    while pages[-1] is not None and pages[-1].odata_next_link:
        pages.append(await view.with_url(pages[-1].odata_next_link).get())

    sizes = [len(page.value or []) for page in pages if page is not None]
    starts = [
        ev.start.date_time or "" for page in pages if page for ev in page.value or [] if ev.start
    ]
    assert sizes == [2, 2, 1]
    assert starts == sorted(starts)
    assert len(set(starts)) == 5


async def test_calendar_view_needs_a_window(http: httpx.AsyncClient, jane: User) -> None:
    response = await http.get(f"/users/{jane.id}/calendarView")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ErrorInvalidParameter"

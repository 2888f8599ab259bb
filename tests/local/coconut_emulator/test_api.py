"""The emulated Coconut API, driven over HTTP the way the sync service drives it."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from local.coconut_emulator import CoconutEmulator

from .conftest import API_KEY

EVENT_ID = "AAMkAGI2:occ:2026-12-02T15:00:00Z"


def body(external_id: str = EVENT_ID, **attributes: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": "external-events",
            "id": external_id,
            "attributes": {
                "title": "Busy",
                "start": "2026-12-02T15:00:00Z",
                "end": "2026-12-02T16:00:00Z",
                "all_day": False,
                "show_as": "busy",
                **attributes,
            },
        }
    }


def event_path(user_id: str, external_id: str) -> str:
    return f"/users/{quote(user_id, safe='')}/external-events/{quote(external_id, safe='')}"


@pytest.fixture
def jane(emulator: CoconutEmulator) -> str:
    emulator.add_user("U-42", "jane.doe@bank.example", "Jane", "Doe")
    return "U-42"


# --- roster -------------------------------------------------------------------------------------


def test_roster_of_250_users_comes_in_three_pages(
    emulator: CoconutEmulator, api: httpx.Client
) -> None:
    for n in range(250):
        emulator.add_user(f"U-{n}", f"staff{n}@bank.example", "Staff", str(n), n % 2 == 0)

    pages = [
        api.get("/users", params={"page[number]": n, "page[size]": 100}).json() for n in (1, 2, 3)
    ]

    assert [page["meta"]["pagination"] for page in pages] == [
        {"current_page": n, "total_pages": 3} for n in (1, 2, 3)
    ]
    assert [len(page["data"]) for page in pages] == [100, 100, 50]
    ids = [user["id"] for page in pages for user in page["data"]]
    assert ids == [f"U-{n}" for n in range(250)]
    assert pages[0]["data"][1] == {
        "type": "users",
        "id": "U-1",
        "attributes": {
            "email": "staff1@bank.example",
            "first_name": "Staff",
            "last_name": "1",
            "calendar_sync": False,
        },
    }


def test_a_page_past_the_end_is_empty(jane: str, api: httpx.Client) -> None:
    page = api.get("/users", params={"page[number]": 4, "page[size]": 100}).json()

    assert page == {"data": [], "meta": {"pagination": {"current_page": 4, "total_pages": 1}}}


@pytest.mark.parametrize(
    "params",
    [{"page[number]": "0"}, {"page[number]": "one"}, {"page[size]": "101"}, {"page[size]": "0"}],
)
def test_bad_paging_parameters_are_refused(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get("/users", params=params)

    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["parameter"] in params


# --- authentication and headers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", f"Bearer {API_KEY} extra", f"Basic {API_KEY}", f"{API_KEY}"],
)
def test_missing_or_malformed_key_is_401(
    emulator: CoconutEmulator, authorization: str | None
) -> None:
    headers = {"Accept": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization

    response = httpx.get(f"{emulator.base_url}/users", headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_wrong_key_is_403(emulator: CoconutEmulator) -> None:
    headers = {"Authorization": "Bearer not-the-key", "Accept": "application/json"}

    response = httpx.get(f"{emulator.base_url}/users", headers=headers)

    assert response.status_code == 403


def test_a_refused_request_changes_nothing(emulator: CoconutEmulator, jane: str) -> None:
    headers = {"Authorization": "Bearer not-the-key", "Accept": "application/json"}

    response = httpx.put(
        f"{emulator.base_url}{event_path(jane, EVENT_ID)}", headers=headers, json=body()
    )

    assert response.status_code == 403
    assert emulator.external_events(jane) == {}


@pytest.mark.parametrize("accept", [None, "text/html", "application/json;q=0"])
def test_a_client_that_does_not_accept_json_gets_406(
    emulator: CoconutEmulator, accept: str | None
) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    if accept is not None:
        headers["Accept"] = accept
    # httpx adds "Accept: */*" unless told otherwise; remove it to send no Accept at all.
    with httpx.Client(headers=headers) as client:
        if accept is None:
            del client.headers["Accept"]
        response = client.get(f"{emulator.base_url}/users")

    assert response.status_code == 406


def test_accept_with_parameters_and_alternatives_is_fine(
    emulator: CoconutEmulator,
) -> None:
    headers = {
        "Authorization": f"Bearer {API_KEY}",
        "Accept": "text/html, application/json; charset=utf-8; q=0.9",
    }

    assert httpx.get(f"{emulator.base_url}/users", headers=headers).status_code == 200


def test_the_base_path_is_configurable() -> None:
    with CoconutEmulator(api_key="k", base_path="/coconut/api/v2/") as emulator:
        headers = {"Authorization": "Bearer k", "Accept": "application/json"}

        response = httpx.get(f"{emulator.base_url}/users", headers=headers)

        assert emulator.base_url.endswith("/coconut/api/v2")
        assert response.status_code == 200


# --- external events ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_unknown_user_is_404_on_external_event_routes(
    emulator: CoconutEmulator, api: httpx.Client, method: str
) -> None:
    path = f"/users/U-404/external-events{'' if method == 'GET' else '/' + EVENT_ID}"

    response = api.request(method, quote(path, safe="/"), json=body() if method == "PUT" else None)

    assert response.status_code == 404


def test_put_creates_then_replaces(emulator: CoconutEmulator, api: httpx.Client, jane: str) -> None:
    created = api.put(event_path(jane, EVENT_ID), json=body())
    replaced = api.put(event_path(jane, EVENT_ID), json=body(show_as="oof"))

    assert (created.status_code, replaced.status_code) == (201, 200)
    assert replaced.json() == body(show_as="oof")
    assert emulator.external_events(jane) == {EVENT_ID: body(show_as="oof")["data"]}


def test_delete_answers_204_then_404(
    emulator: CoconutEmulator, api: httpx.Client, jane: str
) -> None:
    api.put(event_path(jane, EVENT_ID), json=body())

    first = api.delete(event_path(jane, EVENT_ID))
    second = api.delete(event_path(jane, EVENT_ID))

    assert (first.status_code, second.status_code) == (204, 404)
    assert first.content == b""
    assert emulator.external_events(jane) == {}


def test_list_is_paged_and_items_are_shaped_like_the_put_body(api: httpx.Client, jane: str) -> None:
    sent = [body(f"event-{n:03d}") for n in range(205)]
    for document in sent:
        assert api.put(event_path(jane, document["data"]["id"]), json=document).status_code == 201

    pages = [
        api.get(f"/users/{jane}/external-events", params={"page[number]": n, "page[size]": 100})
        for n in (1, 2, 3)
    ]

    assert all(page.status_code == 200 for page in pages)
    assert [page.json()["meta"]["pagination"]["total_pages"] for page in pages] == [3, 3, 3]
    listed = [item for page in pages for item in page.json()["data"]]
    assert listed == [document["data"] for document in sent]


def test_percent_encoded_ids_are_decoded_once(emulator: CoconutEmulator, api: httpx.Client) -> None:
    user_id = "U/42 é"
    external_id = "AAMk/abc+def=?#%2F:ü"
    emulator.add_user(user_id, "x@bank.example", "X", "Y")

    put = api.put(event_path(user_id, external_id), json=body(external_id))
    listed = api.get(f"/users/{quote(user_id, safe='')}/external-events")
    deleted = api.delete(event_path(user_id, external_id))

    assert put.status_code == 201
    assert [item["id"] for item in listed.json()["data"]] == [external_id]
    assert deleted.status_code == 204


def test_unencoded_reserved_characters_in_a_segment_are_refused(
    emulator: CoconutEmulator, api: httpx.Client, jane: str
) -> None:
    response = api.put(f"/users/{jane}/external-events/a:b", json=body("a:b"))

    assert response.status_code == 400
    assert emulator.external_events(jane) == {}


def test_put_needs_a_json_content_type(
    emulator: CoconutEmulator, api: httpx.Client, jane: str
) -> None:
    response = api.put(
        event_path(jane, EVENT_ID),
        content=httpx.Client().build_request("PUT", "http://x", json=body()).content,
        headers={"Content-Type": "text/plain"},
    )

    assert response.status_code == 415
    assert emulator.external_events(jane) == {}


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    document = body()
    node: Any = document
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return document


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    document = body()
    node: Any = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return document


ATTR = ("data", "attributes")
INVALID_BODIES: dict[str, tuple[Any, str]] = {
    "wrong type": (_with(("data", "type"), "events"), "/data/type"),
    "id differs from the path": (_with(("data", "id"), "another-id"), "/data/id"),
    "title not Busy": (_with((*ATTR, "title"), "Dentist"), "/data/attributes/title"),
    "description present": (
        _with((*ATTR, "description"), "private"),
        "/data/attributes/description",
    ),
    "description empty": (_with((*ATTR, "description"), ""), "/data/attributes/description"),
    "unknown attribute": (_with((*ATTR, "location"), "Room 1"), "/data/attributes/location"),
    "start with an offset": (
        _with((*ATTR, "start"), "2026-12-02T10:00:00-05:00"),
        "/data/attributes/start",
    ),
    "start with +00:00": (
        _with((*ATTR, "start"), "2026-12-02T15:00:00+00:00"),
        "/data/attributes/start",
    ),
    "start without zone": (
        _with((*ATTR, "start"), "2026-12-02T15:00:00"),
        "/data/attributes/start",
    ),
    "start lower-case z": (
        _with((*ATTR, "start"), "2026-12-02T15:00:00z"),
        "/data/attributes/start",
    ),
    "end not a date": (_with((*ATTR, "end"), "2026-02-31T16:00:00Z"), "/data/attributes/end"),
    "end a number": (_with((*ATTR, "end"), 1796223600), "/data/attributes/end"),
    "end before start": (_with((*ATTR, "end"), "2026-12-02T14:00:00Z"), "/data/attributes/end"),
    "end equal to start": (
        _with((*ATTR, "end"), "2026-12-02T15:00:00Z"),
        "/data/attributes/end",
    ),
    "show_as free": (_with((*ATTR, "show_as"), "free"), "/data/attributes/show_as"),
    "all_day a string": (_with((*ATTR, "all_day"), "false"), "/data/attributes/all_day"),
    "all_day a number": (_with((*ATTR, "all_day"), 0), "/data/attributes/all_day"),
    "show_as missing": (_without((*ATTR, "show_as")), "/data/attributes/show_as"),
    "attributes missing": (_without(ATTR), "/data/attributes"),
    "data missing": ({"external-events": {}}, "/data"),
}


@pytest.mark.parametrize("case", INVALID_BODIES, ids=list(INVALID_BODIES))
def test_each_invalid_body_rule_gives_422(
    emulator: CoconutEmulator, api: httpx.Client, jane: str, case: str
) -> None:
    document, pointer = INVALID_BODIES[case]

    response = api.put(event_path(jane, EVENT_ID), json=copy.deepcopy(document))

    assert response.status_code == 422
    assert pointer in [error["source"]["pointer"] for error in response.json()["errors"]]
    assert emulator.external_events(jane) == {}


def test_fractional_seconds_in_utc_are_valid(api: httpx.Client, jane: str) -> None:
    document = body(start="2026-12-02T15:00:00.000Z", end="2026-12-02T16:00:00.5Z")

    assert api.put(event_path(jane, EVENT_ID), json=document).status_code == 201


def test_an_external_id_of_256_characters_is_refused_and_255_accepted(
    emulator: CoconutEmulator, api: httpx.Client, jane: str
) -> None:
    too_long, longest = "x" * 256, "y" * 255

    refused = api.put(event_path(jane, too_long), json=body(too_long))
    accepted = api.put(event_path(jane, longest), json=body(longest))

    assert (refused.status_code, accepted.status_code) == (422, 201)
    assert list(emulator.external_events(jane)) == [longest]


def test_a_body_that_is_not_json_gives_422(
    emulator: CoconutEmulator, api: httpx.Client, jane: str
) -> None:
    response = api.put(
        event_path(jane, EVENT_ID),
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert emulator.external_events(jane) == {}


def test_requests_are_counted_by_method_route_and_status(
    emulator: CoconutEmulator, api: httpx.Client, jane: str
) -> None:
    api.put(event_path(jane, EVENT_ID), json=body())
    api.put(event_path(jane, EVENT_ID), json=body())
    api.delete(event_path(jane, "missing"))

    route = "/users/{user_id}/external-events/{external_id}"
    assert emulator.requests("PUT", route, 201) == 1
    assert emulator.requests("PUT", route, 200) == 1
    assert emulator.requests("DELETE", route, 404) == 1
    assert emulator.requests() == 3

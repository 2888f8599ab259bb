"""The control API: seeding and reading state from another process."""

from __future__ import annotations

import httpx

from local.coconut_emulator import CoconutEmulator


def test_seeded_users_are_the_roster_exactly(
    emulator: CoconutEmulator, api: httpx.Client, control: httpx.Client
) -> None:
    emulator.add_user("U-old", "old@bank.example", "Old", "User")
    users = [
        {"id": "U-1", "email": "a@bank.example", "first_name": "A", "last_name": "One"},
        {
            "id": "U-2",
            "email": "b@bank.example",
            "first_name": "B",
            "last_name": "Two",
            "calendar_sync": False,
        },
    ]

    seeded = control.put("/users", json={"users": users})
    roster = api.get("/users", params={"page[number]": 1, "page[size]": 100}).json()

    assert seeded.status_code == 200
    assert [(u["id"], u["attributes"]["calendar_sync"]) for u in roster["data"]] == [
        ("U-1", True),
        ("U-2", False),
    ]


def test_adding_a_user_twice_replaces_it(control: httpx.Client, emulator: CoconutEmulator) -> None:
    user = {"id": "U-1", "email": "a@bank.example", "first_name": "A", "last_name": "One"}

    first = control.post("/users", json=user)
    second = control.post("/users", json={**user, "email": "new@bank.example"})

    assert (first.status_code, second.status_code) == (201, 200)
    assert [u.email for u in emulator.users()] == ["new@bank.example"]


def test_an_invalid_user_is_refused_without_echoing_it(control: httpx.Client) -> None:
    response = control.post("/users", json={"id": "U-1", "email": "secret@bank.example"})

    assert response.status_code == 400
    assert "secret@bank.example" not in response.text
    pointers = {error["source"]["pointer"] for error in response.json()["errors"]}
    assert pointers == {"/first_name", "/last_name"}


def test_raw_external_events_are_readable_and_seedable(
    emulator: CoconutEmulator, control: httpx.Client
) -> None:
    emulator.add_user("U-1", "a@bank.example", "A", "One")
    foreign = {"type": "external-events", "id": "x/1", "attributes": {"title": "Legacy"}}

    seeded = control.put("/users/U-1/external-events/x%2F1", json=foreign)
    read = control.get("/users/U-1/external-events")

    assert seeded.status_code == 201
    assert read.json() == {"external_events": {"x/1": foreign}}
    assert control.get("/users/U-9/external-events").status_code == 404


def test_request_counts_are_readable(
    emulator: CoconutEmulator, api: httpx.Client, control: httpx.Client
) -> None:
    api.get("/users")
    api.get("/users")
    api.get("/nowhere")

    counts = control.get("/requests").json()["requests"]

    assert {"method": "GET", "route": "/users", "status": 200, "count": 2} in counts
    assert {"method": "GET", "route": "<unmatched>", "status": 404, "count": 1} in counts


def test_faults_are_configured_and_read_back(api: httpx.Client, control: httpx.Client) -> None:
    configured = control.put("/faults", json={"scripted": [503], "retry_after_seconds": 3})
    plan_before = control.get("/faults").json()
    first = api.get("/users")
    plan_after = control.get("/faults").json()

    assert configured.status_code == 200
    assert (plan_before["scripted"], plan_after["scripted"]) == ([503], [])
    assert first.status_code == 503
    assert control.put("/faults", json={"throttle_rate": 2}).status_code == 400


def test_reset_empties_everything(
    emulator: CoconutEmulator, api: httpx.Client, control: httpx.Client
) -> None:
    emulator.add_user("U-1", "a@bank.example", "A", "One")
    control.put("/faults", json={"throttle_rate": 1.0})
    api.get("/users")

    assert control.post("/reset").status_code == 204

    assert emulator.users() == []
    assert emulator.request_counts() == {}
    assert api.get("/users").json()["data"] == []

"""JSON batching: per-item statuses, the 20-request limit, per-item throttling."""

from __future__ import annotations

from typing import Any

import httpx

from local.graph_emulator.model import User
from local.graph_emulator.server import GraphEmulator
from tests.local.graph_emulator.conftest import event_body

JSON = {"Content-Type": "application/json"}


def create_item(item_id: str, user: User, **extra: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "method": "POST",
        "url": f"/users/{user.id}/events",
        "headers": JSON,
        "body": event_body(f"Batch {item_id}", **extra),
    }


async def test_batch_answers_each_item_with_its_own_status(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    requests = [
        create_item("1", jane),
        create_item("2", jane, showAs="sometimes"),
        {"id": "3", "method": "GET", "url": f"/users/{jane.id}/events/AAMkAGmissing"},
        {"id": "4", "method": "GET", "url": f"users/{jane.id}/events", "dependsOn": ["1"]},
    ]

    response = await http.post("/$batch", json={"requests": requests})

    statuses = {item["id"]: item["status"] for item in response.json()["responses"]}
    bodies = {item["id"]: item.get("body") for item in response.json()["responses"]}
    assert response.status_code == 200
    assert statuses == {"1": 201, "2": 400, "3": 404, "4": 200}
    assert bodies["2"]["error"]["code"] == "RequestBodyRead"
    assert [ev["subject"] for ev in bodies["4"]["value"]] == ["Batch 1"]
    assert [ev["subject"] for ev in emulator.events(jane.id)] == ["Batch 1"]


async def test_batch_of_more_than_20_requests_is_refused(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    requests = [create_item(str(n), jane) for n in range(21)]

    response = await http.post("/$batch", json={"requests": requests})

    assert response.status_code == 400
    assert emulator.events(jane.id) == []


async def test_each_batch_item_counts_against_the_mailbox_limit(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    await http.put(
        f"{emulator.control_url}/throttling",
        json={"requestsPerWindow": 3, "windowSeconds": 60, "resetWindow": True},
    )
    requests = [
        {"id": str(n), "method": "GET", "url": f"/users/{jane.id}/events"} for n in range(5)
    ]

    response = await http.post("/$batch", json={"requests": requests})

    items = response.json()["responses"]
    throttled = [item for item in items if item["status"] == 429]
    assert sorted(item["status"] for item in items) == [200, 200, 200, 429, 429]
    assert all(0 < float(item["headers"]["Retry-After"]) <= 60 for item in throttled)
    assert all(item["body"]["error"]["code"] == "ApplicationThrottled" for item in throttled)

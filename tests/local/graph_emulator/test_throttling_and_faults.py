"""Outlook's per-mailbox limits and injected faults."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from local.graph_emulator.model import User
from local.graph_emulator.server import GraphEmulator
from tests.local.graph_emulator.conftest import event_body


async def configure(
    http: httpx.AsyncClient, emulator: GraphEmulator, path: str, body: object
) -> None:
    response = await http.put(f"{emulator.control_url}/{path}", json=body)
    assert response.status_code == 200


async def test_requests_over_the_window_limit_get_429_with_retry_after(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    await configure(
        http,
        emulator,
        "throttling",
        {"requestsPerWindow": 5, "windowSeconds": 120, "resetWindow": True},
    )

    statuses = [(await http.get(f"/users/{jane.id}/events")).status_code for _ in range(5)]
    refused = await http.get(f"/users/{jane.id}/events")
    counters = (await http.get(f"{emulator.control_url}/counters")).json()

    assert statuses == [200] * 5
    assert refused.status_code == 429
    assert 0 < float(refused.headers["Retry-After"]) <= 120
    assert refused.json()["error"]["code"] == "ApplicationThrottled"
    assert counters["mailboxes"][jane.id]["requests"]["GET"] == {"200": 5, "429": 1}
    assert counters["mailboxes"][jane.id]["throttled"] == 1


async def test_fifth_concurrent_request_to_a_mailbox_is_refused(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    # Each request holds its slot for a second, so five sent together overlap.
    await configure(
        http,
        emulator,
        "faults",
        {"rules": [{"kind": "latency", "latencySeconds": 1.0, "methods": ["GET"]}]},
    )

    responses = await asyncio.gather(*(http.get(f"/users/{jane.id}/events") for _ in range(5)))

    statuses = sorted(response.status_code for response in responses)
    refused = next(response for response in responses if response.status_code == 429)
    assert statuses == [200, 200, 200, 200, 429]
    assert "MailboxConcurrency" in refused.json()["error"]["message"]
    assert "Retry-After" in refused.headers


async def test_lost_response_applies_the_write_but_answers_503(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    await configure(
        http,
        emulator,
        "faults",
        {"rules": [{"kind": "lostResponse", "methods": ["POST"], "pathPattern": "/events$"}]},
    )

    response = await http.post(f"/users/{jane.id}/events", json=event_body("Lost"))

    assert response.status_code == 503
    assert [ev["subject"] for ev in emulator.events(jane.id)] == ["Lost"]


async def test_lost_response_can_drop_the_connection(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    await configure(
        http, emulator, "faults", {"rules": [{"kind": "lostResponse", "lostAs": "drop"}]}
    )

    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(f"/users/{jane.id}/events", json=event_body("Dropped"))

    assert [ev["subject"] for ev in emulator.events(jane.id)] == ["Dropped"]


class Remember(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_connection_dropped_on_purpose_is_no_server_error(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    """uvicorn would log "ASGI callable returned without completing response" for it, which
    reads like a handler that failed to answer."""
    handler = Remember()
    server_log = logging.getLogger("uvicorn.error")
    server_log.addHandler(handler)
    try:
        await configure(
            http, emulator, "faults", {"rules": [{"kind": "lostResponse", "lostAs": "drop"}]}
        )
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(f"/users/{jane.id}/events", json=event_body("Dropped"))
        await configure(http, emulator, "faults", {"rules": []})
        answered = await http.get(f"/users/{jane.id}/events")
    finally:
        server_log.removeHandler(handler)

    assert answered.status_code == 200
    assert [r.getMessage() for r in handler.records if r.levelno >= logging.ERROR] == []


async def test_injected_faults_follow_the_seed(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    rules = {"seed": 7, "rules": [{"kind": "unavailable", "rate": 0.5, "retryAfter": 2}]}

    runs = []
    for _ in range(2):
        await configure(http, emulator, "faults", rules)
        runs.append([(await http.get(f"/users/{jane.id}/events")).status_code for _ in range(12)])

    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 503}


async def test_injected_throttle_is_not_applied(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    await configure(
        http,
        emulator,
        "faults",
        {"rules": [{"kind": "throttle", "retryAfter": 3, "methods": ["POST"]}]},
    )

    response = await http.post(f"/users/{jane.id}/events", json=event_body("Refused"))

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert emulator.events(jane.id) == []

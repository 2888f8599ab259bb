"""Injected faults: throttling with Retry-After, server errors, reproducible by seed."""

from __future__ import annotations

import httpx
import pytest

from local.coconut_emulator import CoconutEmulator, FaultPlan
from local.coconut_emulator.faults import FaultInjector


def test_a_throttled_request_gets_429_with_retry_after_in_seconds(
    emulator: CoconutEmulator, api: httpx.Client
) -> None:
    emulator.configure_faults(FaultPlan(throttle_rate=1.0, retry_after_seconds=7))

    response = api.get("/users", params={"page[number]": 1, "page[size]": 100})

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert emulator.requests("GET", "/users", 429) == 1


def test_a_throttled_put_stores_nothing(emulator: CoconutEmulator, api: httpx.Client) -> None:
    emulator.add_user("U-1", "a@bank.example", "A", "B")
    emulator.configure_faults(FaultPlan(scripted=(429,)))
    body = {
        "data": {
            "type": "external-events",
            "id": "e1",
            "attributes": {
                "title": "Busy",
                "start": "2026-12-02T15:00:00Z",
                "end": "2026-12-02T16:00:00Z",
                "all_day": False,
                "show_as": "busy",
            },
        }
    }

    throttled = api.put("/users/U-1/external-events/e1", json=body)
    assert emulator.external_events("U-1") == {}
    retried = api.put("/users/U-1/external-events/e1", json=body)

    assert (throttled.status_code, retried.status_code) == (429, 201)
    assert list(emulator.external_events("U-1")) == ["e1"]


def test_scripted_faults_come_first_and_in_order(
    emulator: CoconutEmulator, api: httpx.Client
) -> None:
    emulator.configure_faults(FaultPlan(scripted=(503, 429, 500)))

    statuses = [api.get("/users").status_code for _ in range(4)]

    assert statuses == [503, 429, 500, 200]


def test_faults_come_after_authentication(emulator: CoconutEmulator) -> None:
    emulator.configure_faults(FaultPlan(throttle_rate=1.0))

    response = httpx.get(f"{emulator.base_url}/users", headers={"Accept": "application/json"})

    assert response.status_code == 401


def test_the_same_seed_fails_the_same_requests() -> None:
    plan = FaultPlan(throttle_rate=0.2, server_error_rate=0.3, server_error_status=502, seed=11)

    def run() -> list[int | None]:
        injector = FaultInjector(plan)
        faults = [injector.next_fault() for _ in range(200)]
        return [fault.status if fault else None for fault in faults]

    first, second = run(), run()

    assert first == second
    assert {429, 502, None} == set(first)
    # Rates are shares: with 200 draws they land near 20 % and 30 %.
    assert 20 <= first.count(429) <= 60
    assert 35 <= first.count(502) <= 85


@pytest.mark.parametrize("status", [200, 404, 302])
def test_only_transient_statuses_can_be_scripted(status: int) -> None:
    with pytest.raises(ValueError, match="429 or 5xx"):
        FaultPlan(scripted=(status,))

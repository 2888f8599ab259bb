"""Mailbox time zones as Graph reports them, and event writes in Windows, IANA and UTC names."""

from __future__ import annotations

import httpx
import pytest

from local.graph_emulator.server import GraphEmulator
from tests.local.graph_emulator.conftest import event_body

REPORTED_ZONES = [
    "Pacific Standard Time",
    "Mid-Atlantic Standard Time",  # Windows-only: CLDR does not map it
    "Kamchatka Standard Time",
    "Europe/Zurich",
    "Customized Time Zone",
    "tzone://Microsoft/Custom",
]


def at(date_time: str, zone: str) -> dict[str, object]:
    """A one-hour event starting at `date_time` in `zone`."""
    hour = int(date_time[11:13])
    end = f"{date_time[:11]}{hour + 1:02d}{date_time[13:]}"
    return event_body(
        start={"dateTime": date_time, "timeZone": zone},
        end={"dateTime": end, "timeZone": zone},
    )


@pytest.mark.parametrize("zone", REPORTED_ZONES)
async def test_any_reported_zone_can_be_seeded_and_read_back(
    http: httpx.AsyncClient, emulator: GraphEmulator, zone: str
) -> None:
    await http.post(
        f"{emulator.control_url}/seed",
        json={"users": [{"userPrincipalName": "ana@bank.onmicrosoft.com", "timeZone": zone}]},
    )

    settings = await http.get("/users/ana@bank.onmicrosoft.com/mailboxSettings")
    only_zone = await http.get("/users/ana@bank.onmicrosoft.com/mailboxSettings/timeZone")
    utc_write = await http.post(
        "/users/ana@bank.onmicrosoft.com/events", json=at("2030-03-11T09:00:00", "UTC")
    )

    assert settings.json()["timeZone"] == zone
    assert settings.json()["workingHours"]["timeZone"]["name"] == zone
    assert only_zone.json()["value"] == zone
    assert utc_write.status_code == 201
    assert utc_write.json()["start"] == {
        "dateTime": "2030-03-11T09:00:00.0000000",
        "timeZone": "UTC",
    }


@pytest.mark.parametrize(
    ("zone", "local", "utc"),
    [
        ("W. Europe Standard Time", "2030-07-01T09:00:00", "2030-07-01T07:00:00.0000000"),
        ("Europe/Berlin", "2030-01-15T09:00:00", "2030-01-15T08:00:00.0000000"),
        ("Pacific Standard Time", "2030-03-11T09:00:00", "2030-03-11T16:00:00.0000000"),
        # Windows zones CLDR leaves out: UTC-2, UTC-1 from late March to late September.
        ("Mid-Atlantic Standard Time", "2030-01-15T09:00:00", "2030-01-15T11:00:00.0000000"),
        ("Mid-Atlantic Standard Time", "2030-07-01T09:00:00", "2030-07-01T10:00:00.0000000"),
        ("Kamchatka Standard Time", "2030-07-01T09:00:00", "2030-06-30T21:00:00.0000000"),
    ],
)
async def test_writes_in_a_supported_zone_mean_that_zones_time(
    http: httpx.AsyncClient, emulator: GraphEmulator, zone: str, local: str, utc: str
) -> None:
    user = emulator.add_user("ana@bank.onmicrosoft.com")

    created = await http.post(f"/users/{user.id}/events", json=at(local, zone))
    read = await http.get(
        f"/users/{user.id}/events/{created.json()['id']}",
        headers={"Prefer": f'outlook.timezone="{zone}"'},
    )

    assert created.json()["start"] == {"dateTime": utc, "timeZone": "UTC"}
    assert created.json()["originalStartTimeZone"] == zone
    assert read.json()["start"] == {"dateTime": f"{local}.0000000", "timeZone": zone}


@pytest.mark.parametrize(
    "zone", ["Customized Time Zone", "tzone://Microsoft/Custom", "Mars/Olympus"]
)
async def test_write_in_a_zone_graph_cannot_interpret_is_refused(
    http: httpx.AsyncClient, emulator: GraphEmulator, zone: str
) -> None:
    user = emulator.add_user("ana@bank.onmicrosoft.com", time_zone=zone)

    response = await http.post(f"/users/{user.id}/events", json=at("2030-03-11T09:00:00", zone))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "TimeZoneNotSupportedException"
    assert zone in response.json()["error"]["message"]
    assert emulator.events(user.id) == []

"""Users whose mailbox Graph cannot serve, and which 404 means what: the directory finds them,
every mailbox endpoint refuses, and only a missing event answers ErrorItemNotFound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from local.graph_emulator.model import User
from local.graph_emulator.server import GraphEmulator
from tests.local.graph_emulator.conftest import WebhookReceiver, event_body

WINDOW = {"startDateTime": "2030-03-10T00:00:00Z", "endDateTime": "2030-03-20T00:00:00Z"}


def mailbox_requests(user: User) -> list[tuple[str, str, dict[str, object] | None]]:
    """Every mailbox endpoint the service touches, as (method, path, json body)."""
    base = f"/users/{user.id}"
    return [
        ("GET", f"{base}/events", None),
        ("POST", f"{base}/events", event_body()),
        ("GET", f"{base}/events/AAMkAGnothere", None),
        ("PATCH", f"{base}/events/AAMkAGnothere", {"subject": "x"}),
        ("DELETE", f"{base}/events/AAMkAGnothere", None),
        ("GET", f"{base}/calendar/events", None),
        ("GET", f"{base}/calendarView?startDateTime=2030-03-10&endDateTime=2030-03-20", None),
        ("GET", f"{base}/calendarView/delta?startDateTime=2030-03-10&endDateTime=2030-03-20", None),
        ("GET", f"{base}/mailboxSettings", None),
        ("GET", f"{base}/mailboxSettings/timeZone", None),
        ("GET", f"{base}/calendars", None),
        ("GET", f"{base}/calendar", None),
    ]


def subscription_body(user: User, webhook: WebhookReceiver) -> dict[str, str]:
    expiry = datetime.now(UTC) + timedelta(hours=1)
    return {
        "changeType": "created,updated,deleted",
        "notificationUrl": webhook.url("notify"),
        "resource": f"users/{user.id}/events",
        "expirationDateTime": expiry.isoformat().replace("+00:00", "Z"),
    }


@pytest.fixture
def hybrid(emulator: GraphEmulator) -> User:
    """Found by mail in the directory; mailbox on-premises, so Graph cannot serve it."""
    return emulator.add_user(
        "sam@bank.onmicrosoft.com", "sam@bank.example", "Sam Lee", has_mailbox=False
    )


@pytest.mark.parametrize("code", ["MailboxNotEnabledForRESTAPI", "ResourceNotFound"])
async def test_every_mailbox_endpoint_answers_404_with_the_users_code(
    http: httpx.AsyncClient,
    emulator: GraphEmulator,
    hybrid: User,
    webhook: WebhookReceiver,
    code: str,
) -> None:
    emulator.set_mailbox(hybrid.id, enabled=False, error=code)

    found = await http.get("/users", params={"$filter": "mail eq 'sam@bank.example'"})
    answers = [
        await http.request(method, path, json=body)
        for method, path, body in mailbox_requests(hybrid)
    ]
    subscribe = await http.post("/subscriptions", json=subscription_body(hybrid, webhook))

    assert [user["id"] for user in found.json()["value"]] == [hybrid.id]
    assert {(a.status_code, a.json()["error"]["code"]) for a in [*answers, subscribe]} == {
        (404, code)
    }
    assert webhook.validations == []


async def test_mailbox_enabled_later_is_served(
    http: httpx.AsyncClient, emulator: GraphEmulator, hybrid: User
) -> None:
    before = await http.get(f"/users/{hybrid.id}/mailboxSettings/timeZone")

    switched = await http.patch(
        f"{emulator.control_url}/users/{hybrid.id}", json={"hasMailbox": True}
    )
    after = await http.get(f"/users/{hybrid.id}/mailboxSettings/timeZone")
    created = await http.post(f"/users/{hybrid.id}/events", json=event_body())

    assert before.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"
    assert switched.json()["hasMailbox"] is True
    assert after.status_code == 200
    assert after.json()["value"] == "UTC"
    assert created.status_code == 201


async def test_control_api_refuses_an_unknown_mailbox_error(
    http: httpx.AsyncClient, emulator: GraphEmulator, hybrid: User
) -> None:
    response = await http.patch(
        f"{emulator.control_url}/users/{hybrid.id}", json={"mailboxError": "ErrorItemNotFound"}
    )

    assert response.status_code == 400


async def test_mailbox_outside_the_rbac_scope_answers_403(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User
) -> None:
    emulator.set_access_denied(jane.id, True)
    denied = await http.get(f"/users/{jane.id}/events")
    emulator.set_access_denied(jane.id, False)
    allowed = await http.get(f"/users/{jane.id}/events")

    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "ErrorAccessDenied"
    assert allowed.status_code == 200


async def test_404s_say_what_is_missing(http: httpx.AsyncClient, jane: User) -> None:
    unknown_user = await http.get("/users/nobody@bank.onmicrosoft.com")
    unknown_mailbox = await http.get("/users/nobody@bank.onmicrosoft.com/events")
    created = (await http.post(f"/users/{jane.id}/events", json=event_body())).json()
    await http.post(f"/users/{jane.id}/events/{created['id']}/permanentDelete")
    gone = [
        await http.request(method, f"/users/{jane.id}/{path}", json=body)
        for method, path, body in [
            ("GET", f"events/{created['id']}", None),
            ("PATCH", f"events/{created['id']}", {"subject": "x"}),
            ("DELETE", f"events/{created['id']}", None),
            ("POST", f"events/{created['id']}/cancel", None),
            ("GET", f"calendar/events/{created['id']}", None),
            ("GET", f"events/{created['id']}/instances?{httpx.QueryParams(WINDOW)}", None),
        ]
    ]

    assert unknown_user.status_code == 404
    assert unknown_user.json()["error"]["code"] == "Request_ResourceNotFound"
    assert unknown_mailbox.status_code == 404
    assert unknown_mailbox.json()["error"]["code"] == "ErrorInvalidUser"
    assert {(r.status_code, r.json()["error"]["code"]) for r in gone} == {
        (404, "ErrorItemNotFound")
    }
    assert {r.json()["error"]["message"] for r in gone} == {
        "The specified object was not found in the store."
    }

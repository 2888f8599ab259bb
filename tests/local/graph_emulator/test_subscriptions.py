"""Subscriptions: the validation handshake, change and lifecycle notifications."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from msgraph.generated.models.subscription import Subscription
from msgraph.graph_service_client import GraphServiceClient

from local.graph_emulator.model import User
from local.graph_emulator.server import GraphEmulator
from tests.local.graph_emulator.conftest import WebhookReceiver, event_body


def in_minutes(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def subscription_body(user: User, webhook: WebhookReceiver, **extra: Any) -> dict[str, Any]:
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": webhook.url("notify"),
        "lifecycleNotificationUrl": webhook.url("lifecycle"),
        "resource": f"users/{user.id}/events",
        "expirationDateTime": in_minutes(60),
        "clientState": "s3cret",
    }
    body.update(extra)
    return body


async def test_sdk_subscription_is_validated_and_notified_of_a_persons_edit(
    graph: GraphServiceClient, emulator: GraphEmulator, jane: User, webhook: WebhookReceiver
) -> None:
    created = await graph.subscriptions.post(
        Subscription(
            change_type="created,updated,deleted",
            notification_url=webhook.url("notify"),
            lifecycle_notification_url=webhook.url("lifecycle"),
            resource=f"/users/{jane.id}/events",
            expiration_date_time=datetime.now(UTC) + timedelta(days=3),
            client_state="s3cret",
        )
    )
    assert created is not None
    assert created.id is not None
    event = emulator.create_event_as_person(jane.id, event_body("Dentist"))

    emulator.update_event_as_person(jane.id, event.id, {"subject": "Dentist (moved)"})
    received = webhook.wait_for(lambda got: len(got) >= 2)

    assert sorted(webhook.validations) == ["/lifecycle", "/notify"]
    assert [path for path, _ in received] == ["/notify", "/notify"]
    notifications = [payload["value"][0] for _, payload in received]
    assert [n["changeType"] for n in notifications] == ["created", "updated"]
    notification = notifications[1]
    assert notification["subscriptionId"] == created.id
    assert notification["clientState"] == "s3cret"
    assert notification["resourceData"]["id"] == event.id
    assert notification["resourceData"]["@odata.etag"] == event.etag


async def test_endpoint_that_does_not_echo_the_token_fails_the_create(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User, webhook: WebhookReceiver
) -> None:
    webhook.echo_token = False

    response = await http.post("/subscriptions", json=subscription_body(jane, webhook))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ValidationError"
    assert emulator.state.subscriptions() == []


async def test_expiration_beyond_10080_minutes_is_refused(
    http: httpx.AsyncClient, jane: User, webhook: WebhookReceiver
) -> None:
    too_far = subscription_body(jane, webhook, expirationDateTime=in_minutes(10_081))
    long_state = subscription_body(jane, webhook, clientState="x" * 129)

    assert (await http.post("/subscriptions", json=too_far)).status_code == 400
    assert (await http.post("/subscriptions", json=long_state)).status_code == 400
    assert webhook.validations == []


async def test_no_notification_after_expiry(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User, webhook: WebhookReceiver
) -> None:
    created = (await http.post("/subscriptions", json=subscription_body(jane, webhook))).json()
    later = datetime.now(UTC) + timedelta(hours=2)
    emulator.state.clock = lambda: later

    emulator.create_event_as_person(jane.id, event_body("After expiry"))
    emulator.wait_for_notifications()

    assert webhook.received == []
    assert (await http.get(f"/subscriptions/{created['id']}")).status_code == 404


async def test_renewal_and_lifecycle_notification(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User, webhook: WebhookReceiver
) -> None:
    created = (await http.post("/subscriptions", json=subscription_body(jane, webhook))).json()
    new_expiry = in_minutes(3 * 24 * 60)

    renewed = await http.patch(
        f"/subscriptions/{created['id']}", json={"expirationDateTime": new_expiry}
    )
    triggered = await http.post(
        f"{emulator.control_url}/subscriptions/{created['id']}/lifecycle",
        json={"lifecycleEvent": "reauthorizationRequired"},
    )
    received = webhook.wait_for(lambda got: any(path == "/lifecycle" for path, _ in got))

    assert renewed.status_code == 200
    assert renewed.json()["expirationDateTime"][:16] == new_expiry[:16]
    assert triggered.status_code == 202
    lifecycle = [payload["value"][0] for path, payload in received if path == "/lifecycle"]
    assert lifecycle[0]["lifecycleEvent"] == "reauthorizationRequired"
    assert lifecycle[0]["subscriptionId"] == created["id"]
    assert lifecycle[0]["clientState"] == "s3cret"


async def test_validation_must_answer_within_the_time_limit(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User, webhook: WebhookReceiver
) -> None:
    default = (await http.get(f"{emulator.control_url}/settings")).json()
    await http.put(f"{emulator.control_url}/settings", json={"validationTimeoutSeconds": 0.3})
    webhook.validation_delay = 1.0

    response = await http.post("/subscriptions", json=subscription_body(jane, webhook))

    assert default["validationTimeoutSeconds"] == 10.0  # Graph's limit
    assert response.status_code == 400
    assert response.json()["error"] == response.json()["error"] | {
        "code": "InvalidRequest",
        "message": "Subscription validation request timed out.",
    }
    assert emulator.state.subscriptions() == []


async def test_validation_answered_with_an_error_status_fails_the_create(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User, webhook: WebhookReceiver
) -> None:
    webhook.validation_status = 403

    response = await http.post("/subscriptions", json=subscription_body(jane, webhook))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ValidationError"
    assert "HTTP status code is 'Forbidden'" in response.json()["error"]["message"]
    assert emulator.state.subscriptions() == []


async def test_subscription_whose_answer_was_lost_is_found_and_reused(
    http: httpx.AsyncClient, emulator: GraphEmulator, jane: User, webhook: WebhookReceiver
) -> None:
    emulator.lose_responses("POST", "^/subscriptions$")

    lost = await http.post("/subscriptions", json=subscription_body(jane, webhook))
    listed = (await http.get("/subscriptions")).json()["value"]
    renewed = await http.patch(
        f"/subscriptions/{listed[0]['id']}", json={"expirationDateTime": in_minutes(120)}
    )
    again = await http.post("/subscriptions", json=subscription_body(jane, webhook))

    assert lost.status_code == 503
    assert [(s["resource"], s["notificationUrl"]) for s in listed] == [
        (f"users/{jane.id}/events", webhook.url("notify"))
    ]
    assert listed[0]["applicationId"] == emulator.state.settings.application_id
    assert renewed.status_code == 200
    assert again.status_code == 201  # the fault fired once

"""Change-notification subscriptions: the validation handshake and webhook delivery.

Delivery runs on its own thread with its own HTTP client, so a slow or dead webhook never
holds up the request (or the control-API edit) that caused the notification.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from local.graph_emulator.errors import GraphError
from local.graph_emulator.timezones import format_instant

log = logging.getLogger(__name__)

VALIDATION_TIMEOUT_SECONDS = 10.0  # Graph's limit for answering a validation request
DELIVERY_TIMEOUT_SECONDS = 3.0  # Graph's limit for acknowledging a notification
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")


@dataclass
class Subscription:
    id: str
    resource: str
    mailbox: str
    change_types: tuple[str, ...]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expiration: datetime
    application_id: str
    creator_id: str

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": ",".join(self.change_types),
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": format_instant(self.expiration),
            "creatorId": self.creator_id,
            "includeResourceData": None,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }


def change_notification(
    subscription: Subscription, change_type: str, event_id: str, etag: str, tenant_id: str
) -> dict[str, Any]:
    resource = f"Users/{subscription.mailbox}/Events/{event_id}"
    return {
        "value": [
            {
                "subscriptionId": subscription.id,
                "subscriptionExpirationDateTime": format_instant(subscription.expiration),
                "changeType": change_type,
                "resource": resource,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": resource,
                    "@odata.etag": etag,
                    "id": event_id,
                },
                "clientState": subscription.client_state,
                "tenantId": tenant_id,
            }
        ]
    }


def lifecycle_notification(
    subscription: Subscription, lifecycle_event: str, tenant_id: str
) -> dict[str, Any]:
    return {
        "value": [
            {
                "subscriptionId": subscription.id,
                "subscriptionExpirationDateTime": format_instant(subscription.expiration),
                "tenantId": tenant_id,
                "clientState": subscription.client_state,
                "lifecycleEvent": lifecycle_event,
            }
        ]
    }


async def validate_endpoint(url: str, wait_seconds: float) -> GraphError | None:
    """Graph's handshake: POST `?validationToken=…`; the endpoint must echo it as text/plain,
    with 200, within `wait_seconds` in all (10 s at Graph). None when it did; otherwise the
    error Graph answers the create (or update) with."""
    token = (
        "Validation: Testing client application reachability for subscription Request-Id: "
        f"{uuid.uuid4()}"
    )
    separator = "&" if "?" in url else "?"
    target = f"{url}{separator}validationToken={quote(token, safe='')}"
    try:
        async with httpx.AsyncClient(timeout=wait_seconds) as client:
            # One deadline for the whole exchange: a slow trickle must not outlast it.
            response = await asyncio.wait_for(
                client.post(target, headers={"Content-Type": "text/plain"}), wait_seconds
            )
    except TimeoutError:
        return GraphError(400, "InvalidRequest", "Subscription validation request timed out.")
    except httpx.HTTPError:
        return validation_failed(
            "Notification endpoint must respond with 200 OK to validation request."
        )
    if response.status_code != 200:
        return validation_failed(
            f"HTTP status code is '{_status_name(response.status_code)}'. Notification endpoint "
            "must respond with 200 OK to validation request."
        )
    content_type = response.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "text/plain" or response.text != token:
        return validation_failed("Response must exactly match validationToken query parameter.")
    return None


def validation_failed(reason: str) -> GraphError:
    return GraphError(400, "ValidationError", f"Subscription validation request failed. {reason}")


def _status_name(status: int) -> str:
    # Graph names the status as .NET spells it: 'Forbidden', 'NotFound', 'InternalServerError'.
    try:
        return HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
    except ValueError:
        return str(status)


@dataclass
class Delivery:
    kind: str  # "change" or "lifecycle"
    subscription_id: str
    url: str
    payload: dict[str, Any]
    status: int | None = None
    attempts: int = 0
    delivered: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subscriptionId": self.subscription_id,
            "url": self.url,
            "payload": self.payload,
            "status": self.status,
            "attempts": self.attempts,
            "delivered": self.delivered,
        }


@dataclass
class NotificationOutbox:
    """A queue of webhook POSTs and the thread that sends them, retrying a few times."""

    attempts: int = 3
    backoff_seconds: float = 0.5
    _queue: queue.Queue[Delivery | None] = field(default_factory=queue.Queue)
    _log: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="graph-notify", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def send(self, kind: str, subscription_id: str, url: str, payload: dict[str, Any]) -> None:
        delivery = Delivery(kind, subscription_id, url, payload)
        with self._lock:
            self._log.append(delivery)
        self._queue.put(delivery)

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._log)

    def clear(self) -> None:
        with self._lock:
            self._log.clear()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once everything queued so far was attempted (for tests and the demo)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                pending = any(d.attempts == 0 for d in self._log)
            if not pending and self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return False

    def _run(self) -> None:
        with httpx.Client(timeout=DELIVERY_TIMEOUT_SECONDS) as client:
            while True:
                delivery = self._queue.get()
                try:
                    if delivery is None:
                        return
                    self._deliver(client, delivery)
                finally:
                    self._queue.task_done()

    def _deliver(self, client: httpx.Client, delivery: Delivery) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                response = client.post(delivery.url, json=delivery.payload)
                status: int | None = response.status_code
            except httpx.HTTPError:
                status = None
            with self._lock:
                delivery.attempts = attempt
                delivery.status = status
                delivery.delivered = status is not None and 200 <= status < 300
            if delivery.delivered:
                return
            time.sleep(self.backoff_seconds * attempt)
        log.warning("notification for subscription %s not delivered", delivery.subscription_id)

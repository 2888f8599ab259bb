"""The endpoints Graph calls: change notifications and lifecycle notifications.

Both answer Graph's validation handshake (`?validationToken=…` → 200 text/plain, at once).
Notifications are hints, not data: each one whose `clientState` matches only asks for a sync of
its staff member (a delta round finds what changed), so the answer is a fast 202. Lifecycle
events: `reauthorizationRequired` → renew the subscription now; `subscriptionRemoved` → create a
new one and resync; `missed` → resync.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sync.ports import StaffStore, SyncRequester
from sync.staff_record import StaffChanges, SubscriptionState

log = logging.getLogger("sync.notifications")


@dataclass(frozen=True)
class NotificationReply:
    status: int
    body: str = ""
    content_type: str = "text/plain"


def validation_reply(params: Mapping[str, str]) -> NotificationReply | None:
    token = params.get("validationToken")
    if token is None:
        return None
    return NotificationReply(200, token, "text/plain")


def _items(body: bytes) -> list[Mapping[str, Any]] | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    values = document.get("value") if isinstance(document, dict) else None
    if not isinstance(values, list):
        return None
    return [item for item in values if isinstance(item, dict)]


def _authentic(item: Mapping[str, Any], client_state: str) -> bool:
    offered = item.get("clientState")
    return isinstance(offered, str) and hmac.compare_digest(offered.encode(), client_state.encode())


def _parse(
    params: Mapping[str, str], body: bytes, client_state: str
) -> NotificationReply | tuple[str, list[Mapping[str, Any]]]:
    """The validation handshake's answer, a 400, or the staff id and the authentic items (those
    carrying our clientState; others are dropped)."""
    validation = validation_reply(params)
    if validation is not None:
        return validation
    staff_id = params.get("staff")
    items = _items(body)
    if not staff_id or items is None:
        return NotificationReply(400, "expected ?staff= and a JSON body with a value array")
    return staff_id, [item for item in items if _authentic(item, client_state)]


async def receive_notifications(
    params: Mapping[str, str],
    body: bytes,
    *,
    client_state: str,
    requester: SyncRequester,
) -> NotificationReply:
    parsed = _parse(params, body, client_state)
    if isinstance(parsed, NotificationReply):
        return parsed
    staff_id, items = parsed
    accepted = len(items)
    if accepted:
        await requester.request_sync(frozenset({staff_id}), "notification")
    log.info(
        "graph notification",
        extra={
            "operation": "notification",
            "staff_id": staff_id,
            "outcome": "accepted" if accepted else "ignored",
            "count": len(items),
        },
    )
    return NotificationReply(202)


async def receive_lifecycle(
    params: Mapping[str, str],
    body: bytes,
    *,
    client_state: str,
    requester: SyncRequester,
    records: StaffStore,
) -> NotificationReply:
    parsed = _parse(params, body, client_state)
    if isinstance(parsed, NotificationReply):
        return parsed
    staff_id, items = parsed
    for item in items:
        event = item.get("lifecycleEvent")
        if event == "reauthorizationRequired":
            # Marking it expired makes the next sync renew it.
            expired = SubscriptionState(expires_at=datetime.now(UTC))
            await records.merge(staff_id, StaffChanges(subscription=expired))
            await requester.request_sync(frozenset({staff_id}), "notification")
        elif event == "subscriptionRemoved":
            await records.merge(staff_id, StaffChanges(subscription=SubscriptionState(id="")))
            await requester.request_sync(frozenset({staff_id}), "notification", full=True)
        elif event == "missed":
            await requester.request_sync(frozenset({staff_id}), "notification", full=True)
        log.info(
            "graph lifecycle notification",
            extra={"operation": "lifecycle", "staff_id": staff_id, "outcome": str(event)},
        )
    return NotificationReply(202)

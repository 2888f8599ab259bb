"""`POST /api/coconut/webhooks`: check, record durably, then ask for the staff reconciles.

Checks run in the contract's order — size (413), authenticity (401), content type (415), body
(400) — and nothing is recorded unless all pass. The desired state is written before 202 is
returned; a storage failure answers 503 so that Coconut retries (a retry of a half-done delivery
is a "duplicate" that redoes the enqueue, so nothing is lost).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sync.coconut.webhook_models import (
    AppointmentChange,
    Delivery,
    InvalidPayload,
    UnavailabilityChange,
    parse_delivery,
)
from sync.desired_items import RecordResult
from sync.desired_state import delivery_key
from sync.errors import RecordTooLarge, StorageUnavailable
from sync.ports import SyncRequester
from sync.webhooks.signature import Unauthenticated, verify

log = logging.getLogger("sync.webhooks")

MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class WebhookReply:
    status: int
    body: dict[str, str] = field(default_factory=dict)


class DesiredStateRecorder(Protocol):
    async def record(self, delivery: Delivery) -> RecordResult: ...


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() != "application/json":
        return False
    charset = parameters.strip().lower()
    return charset in ("", "charset=utf-8", 'charset="utf-8"')


def _error(status: int, message: str) -> WebhookReply:
    return WebhookReply(status, {"error": message})


async def receive_webhook(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secrets: tuple[str, ...],
    recorder: DesiredStateRecorder,
    requester: SyncRequester,
    now: float | None = None,
) -> WebhookReply:
    declared = _header(headers, "Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > MAX_BODY_BYTES:
        return _error(413, "body larger than 1 MiB")
    if len(body) > MAX_BODY_BYTES:
        return _error(413, "body larger than 1 MiB")
    try:
        verify(
            secrets=secrets,
            signature_header=_header(headers, "X-Coconut-Signature"),
            timestamp_header=_header(headers, "X-Coconut-Timestamp"),
            body=body,
            now=time.time() if now is None else now,
        )
    except Unauthenticated as error:
        return _error(401, str(error))
    if not _is_json(_header(headers, "Content-Type")):
        return _error(415, "Content-Type must be application/json")
    try:
        delivery = parse_delivery(body)
    except InvalidPayload as error:
        return _error(400, str(error))
    delivery_header = _header(headers, "X-Coconut-Delivery")
    if delivery_header is not None and delivery_header.strip() != delivery.delivery_id:
        return _error(400, "X-Coconut-Delivery: does not equal the envelope id")

    try:
        result = await recorder.record(delivery)
        if result.staff_ids:
            await requester.request_sync(result.staff_ids, "webhook")
    except StorageUnavailable:
        log.warning(
            "webhook not recorded: state store unavailable",
            extra={"operation": "webhook", "outcome": "unavailable", **_dimensions(delivery)},
        )
        return _error(503, "state store unavailable; retry later")
    except RecordTooLarge:
        return _error(400, "data: the resource is too large to record")
    log.info(
        "webhook %s",
        result.outcome,
        extra={
            "operation": "webhook",
            "outcome": result.outcome,
            "staff_count": len(result.staff_ids),
            **_dimensions(delivery),
        },
    )
    return WebhookReply(202, {"status": result.outcome})


def _dimensions(delivery: Delivery) -> dict[str, str]:
    """Identifiers only (never names, e-mails, phones or notes)."""
    dimensions = {"delivery_id": delivery.delivery_id, "event_type": delivery.event_type}
    key = delivery_key(delivery)
    if key is not None:
        dimensions["coconut_id"] = key
    if isinstance(delivery, AppointmentChange | UnavailabilityChange):
        resource = (
            delivery.appointment
            if isinstance(delivery, AppointmentChange)
            else delivery.unavailability
        )
        dimensions["revision"] = str(resource.revision)
    return dimensions

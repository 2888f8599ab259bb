"""Sign a webhook delivery as Coconut does (contracts/coconut-webhooks.md, "Headers").

`X-Coconut-Signature: v1=<hex>` with hex = HMAC-SHA256(secret as UTF-8, "{timestamp}.{raw body}");
during a secret rotation one `v1=` value per secret, comma-separated.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

CONTENT_TYPE = "application/json"
SIGNATURE_HEADER = "X-Coconut-Signature"
TIMESTAMP_HEADER = "X-Coconut-Timestamp"
DELIVERY_HEADER = "X-Coconut-Delivery"


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """The raw body bytes; encoded once per event so every retry sends the very same bytes."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    return ",".join(f"v1={signature(secret, timestamp, body)}" for secret in secrets)


def signed_headers(
    delivery_id: str, body: bytes, secrets: Sequence[str], timestamp: int
) -> dict[str, str]:
    return {
        "Content-Type": CONTENT_TYPE,
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_header(secrets, timestamp, body),
    }

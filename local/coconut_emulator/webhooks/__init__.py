"""The sending side of contracts/coconut-webhooks.md: payloads, a revision-tracking model of
Coconut, signing, delivery with Coconut's retries, and deliberately bad deliveries."""

from local.coconut_emulator.webhooks.coconut import Coconut, GoneError
from local.coconut_emulator.webhooks.delivery import (
    Attempt,
    Backoff,
    Delivery,
    EnvelopeRecord,
    PreparedDelivery,
    WebhookSender,
)
from local.coconut_emulator.webhooks.signing import encode_body, signature, signed_headers

__all__ = [
    "Attempt",
    "Backoff",
    "Coconut",
    "Delivery",
    "EnvelopeRecord",
    "GoneError",
    "PreparedDelivery",
    "WebhookSender",
    "encode_body",
    "signature",
    "signed_headers",
]
